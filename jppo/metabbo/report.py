"""The MetaBBO evaluation report: a trained policy, the untrained one and the backbone optimizer without
an agent (RLEPSO: plain PSO; GLEET: its PSO with a = 0.5) on a split of the suite's problems.

For every problem p of a suite and run r = 1..R, each method runs one episode (one optimisation to
the budget); run r of every method starts from the same key (paired runs); all runs are one vmapped
program. Reported per problem: mean and std of the final cost c(gbest) = f(gbest) - f*, and each
method's rank by mean final cost (1 = best, ties share the mean rank); overall: the average rank
over problems, and

    P = share of B paired bootstrap resamples (runs drawn with replacement per problem, the same
        draws for every method) in which the trained policy's average rank is below the untrained one's

and per problem the mean log10 final cost ± its standard error (costs floored at 1e-8). Plots: the
mean cost history (MetaBox's 51 logged points) per problem, log scale.

The agent's actions are sampled, as MetaBox's `rollout_episode` does.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
from scipy.stats import rankdata

from jppo.metabbo import registry, rlepso, swarm

# env id -> its module, which has suite(env_id, split, difficulty) and baseline(env)
SUITES = {env_id: importlib.import_module(spec.module) for env_id, spec in registry.ENVS.items()}

COST_FLOOR = 1e-8  # costs below this are shown at the floor on a log scale


@dataclasses.dataclass
class MethodResult:
    name: str
    final_cost: np.ndarray  # [problems, runs]
    history: np.ndarray  # [problems, runs, log points]


def suite_module(env_id: str):
    """The module of a registered MetaBBO suite id; a ValueError naming the known ids otherwise."""
    if env_id not in SUITES:
        raise ValueError(f"{env_id!r} is not a MetaBBO suite env; known: {', '.join(SUITES)}")
    return SUITES[env_id]


@functools.lru_cache(maxsize=8)
def _episodes(env, policy: Callable):
    """Compiled `(params, keys [P, R], policy_params) -> final states [P, R]`, one per (env, policy): methods
    that differ only in `policy_params` (trained, untrained) share the compiled program."""

    def episode(params, problem, key, policy_params):
        state, _ = swarm.rollout(env, params.replace(problem=problem), key,
                                 lambda k, obs: policy(k, obs, *policy_params))
        return state

    over_runs = jax.vmap(episode, in_axes=(None, None, 0, None))
    return jax.jit(lambda params, keys, policy_params: jax.vmap(over_runs, in_axes=(None, 0, 0, None))(
        params, params.problem, keys, policy_params))


def run_method(env, params, policy: Callable, key, runs: int, policy_params: tuple = ()) -> tuple:
    """`(final cost [P, runs], cost history [P, runs, points])` of `policy(key, obs, *policy_params) ->
    action` on each problem of the suite in `params` (leading axis P)."""
    num_problems = int(np.shape(params.problem.shift)[0])
    keys = jax.random.split(key, (num_problems, runs))
    states = _episodes(env, policy)(params, keys, tuple(policy_params))
    return np.asarray(states.gbest_cost), swarm.cost_history(states)


def run_policies(env: rlepso.RLEPSOEnv, params: rlepso.RLEPSOParams, policy: Callable, stacked_params, key,
                 runs: int) -> tuple:
    """`run_method` for M parameter sets of one policy, compiled once (the sets one after another, each
    vmapped over problems and runs): `policy(p, key, obs) -> action`, `stacked_params` with a leading
    axis M. Returns `(final cost [M, P, runs], history
    [M, P, runs, points])`; run r of every parameter set starts from the same key (paired runs)."""
    problems = params.problem
    num_problems = int(np.shape(problems.shift)[0])

    def episode(p, problem, key):
        state, _ = rlepso.rollout(env, params.replace(problem=problem), key, lambda k, obs: policy(p, k, obs))
        return state

    keys = jax.random.split(key, (num_problems, runs))
    per_problem = jax.vmap(jax.vmap(episode, in_axes=(None, None, 0)), in_axes=(None, 0, 0))
    states = jax.jit(lambda stacked: jax.lax.map(lambda p: per_problem(p, problems, keys), stacked))(stacked_params)
    return np.asarray(states.gbest_cost), rlepso.cost_history(states)


def ranks(mean_costs: np.ndarray) -> np.ndarray:
    """Ranks of the methods (axis 0) on each problem (axis 1), 1 = lowest cost, ties averaged."""
    return rankdata(mean_costs, axis=0)


def average_ranks(final_costs: np.ndarray) -> np.ndarray:
    """Average rank over problems of each method, from final costs [methods, P, runs] (means over runs)."""
    return ranks(final_costs.mean(axis=-1)).mean(axis=-1)


def bootstrap_p(final_costs: np.ndarray, *, samples: int = 2000, seed: int = 0) -> float:
    """P(method 0 ranks better than method 1) over paired bootstrap resamples of the runs: per problem the
    runs are drawn with replacement, the same draws for every method (final_costs [methods, P, runs])."""
    _, num_problems, runs = final_costs.shape
    rng = np.random.default_rng(seed)
    wins = 0
    for _ in range(samples):
        index = rng.integers(0, runs, (num_problems, runs))
        resampled = np.take_along_axis(final_costs, index[None], axis=-1)
        avg = average_ranks(resampled)
        wins += avg[0] < avg[1]
    return wins / samples


def log_cost_stats(final_cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per problem: mean of log10 max(c, 1e-8) over runs and its standard error s / √R."""
    logs = np.log10(np.maximum(final_cost, COST_FLOOR))
    return logs.mean(axis=-1), logs.std(axis=-1, ddof=1) / np.sqrt(logs.shape[-1])


def log_cost_table(results: list[MethodResult], problem_names: list[str]) -> str:
    """Mean log10 final cost ± SE per problem and method, and on how many problems the first method's
    mean is below the second's."""
    stats = [log_cost_stats(r.final_cost) for r in results]
    lines = ["Mean log10 final cost ± standard error (costs floored at 1e-8):", "",
             "| problem | " + " | ".join(r.name for r in results) + " |", "|---|" + "---|" * len(results)]
    for p, name in enumerate(problem_names):
        lines.append(f"| {name} | " + " | ".join(f"{m[p]:.3f} ± {se[p]:.3f}" for m, se in stats) + " |")
    lines.append("| **mean over problems** | " + " | ".join(f"**{m.mean():.3f}**" for m, _ in stats) + " |")
    below = int((stats[0][0] < stats[1][0]).sum())
    lines += ["", f"{results[0].name} below {results[1].name} on {below} of {len(problem_names)} problems."]
    return "\n".join(lines) + "\n"


def markdown_table(results: list[MethodResult], problem_names: list[str], title: str) -> str:
    means = np.stack([r.final_cost.mean(axis=1) for r in results])  # [methods, P]
    rank = ranks(means)
    header = "| problem | " + " | ".join(r.name for r in results) + " |"
    lines = [f"## {title}", "", "Final cost f(gbest) - f*: mean ± std over runs (rank by mean).", "", header,
             "|---|" + "---|" * len(results)]
    for p, name in enumerate(problem_names):
        cells = [f"{r.final_cost[p].mean():.3e} ± {r.final_cost[p].std():.2e} ({rank[m, p]:g})"
                 for m, r in enumerate(results)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| **average rank** | " + " | ".join(f"**{v:.2f}**" for v in rank.mean(axis=1)) + " |")
    return "\n".join(lines) + "\n"


def plot_histories(results: list[MethodResult], problem_names: list[str], max_fes: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(problem_names)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for p, name in enumerate(problem_names):
        ax = axes[p // cols][p % cols]
        for r in results:
            curve = np.maximum(r.history[p].mean(axis=0), COST_FLOOR)
            ax.plot(np.linspace(0, max_fes, curve.shape[0]), curve, label=r.name)
        ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("evaluations", fontsize=8)
        ax.tick_params(labelsize=7)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def metabbo_report(env_id: str, policy: Callable, trained_params, untrained_params, *, runs: int = 10, seed: int = 0,
                   difficulty: str = "easy", split: str = "test", max_fes: int | None = None,
                   out_dir: str | Path = "report") -> tuple[str, list[MethodResult]]:
    """Write `report.md`, `cost_curves.png` and `final_costs.npz` (each method's final costs
    [problems, runs], keyed by name with `_` for spaces, and `problems`) in `out_dir` for a
    registered MetaBBO suite id's `split` ('test', or 'train' to see what was learned in sample). Run r of
    every method starts from the same swarm (one key).

    `policy(key, obs, params) -> action` (one compiled program for both parameter sets); `max_fes`
    replaces the suite's evaluation budget (None: MetaBox's). Returns `(markdown, results)`."""
    module = suite_module(env_id)
    env, params, fids = module.suite(env_id, split, difficulty)
    if max_fes is not None:
        params = params.replace(max_fes=max_fes)
    names = [f"F{fid}" for fid in fids]
    key = jax.random.key(seed)
    name, base_env, base_policy = module.baseline(env)
    methods = [("trained", env, policy, (trained_params,)), ("untrained", env, policy, (untrained_params,)),
               (name, base_env, base_policy, ())]
    results = [MethodResult(name, *run_method(m_env, params, m_policy, key, runs, m_params))
               for name, m_env, m_policy, m_params in methods]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = f"{env_id}: {split} split ({difficulty}), {runs} runs per problem"
    p = bootstrap_p(np.stack([r.final_cost for r in results]), seed=seed)
    text = (markdown_table(results, names, title) + f"\nP(trained ranks better than untrained) = {p:.2f} "
            f"(paired bootstrap over runs, 2000 resamples)\n\n" + log_cost_table(results, names))
    (out / "report.md").write_text(text + "\n![cost curves](cost_curves.png)\n")
    plot_histories(results, names, params.max_fes, out / "cost_curves.png")
    np.savez(out / "final_costs.npz", problems=np.array(names), **{r.name.replace(" ", "_"): r.final_cost for r in results})
    return text, results
