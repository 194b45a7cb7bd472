"""The MetaBBO evaluation report: a trained policy, the untrained one and plain PSO on test problems.

For every problem p of a suite and run r = 1..R, each method runs one episode (one optimisation to
the budget) from its own key; all runs are one vmapped program. Reported per problem: mean and std
of the final cost c(gbest) = f(gbest) - f*, and each method's rank by mean final cost (1 = best,
ties share the mean rank); overall: the average rank over problems. Plots: the mean cost history
(MetaBox's 51 logged points) per problem, log scale.

The agent's actions are sampled, as MetaBox's `rollout_episode` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import rankdata

from jppo.metabbo import rlepso

COST_FLOOR = 1e-8  # costs below this are shown at the floor on a log scale


@dataclasses.dataclass
class MethodResult:
    name: str
    final_cost: np.ndarray  # [problems, runs]
    history: np.ndarray  # [problems, runs, log points]


def run_method(env: rlepso.RLEPSOEnv, params: rlepso.RLEPSOParams, policy: Callable, key, runs: int) -> tuple:
    """`(final cost [P, runs], cost history [P, runs, points])` of `policy(key, obs) -> action` on
    each problem of the suite in `params` (leading axis P)."""
    problems = params.problem
    num_problems = int(np.shape(problems.shift)[0])

    def episode(problem, key):
        state, _ = rlepso.rollout(env, params.replace(problem=problem), key, policy)
        return state

    keys = jax.random.split(key, (num_problems, runs))
    states = jax.jit(jax.vmap(jax.vmap(episode, in_axes=(None, 0))))(problems, keys)
    return np.asarray(states.gbest_cost), rlepso.cost_history(states)


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


def metabbo_report(env_id: str, policy_of: Callable, trained_params, untrained_params, *, runs: int = 10, seed: int = 0,
                   difficulty: str = "easy", split: str = "test",
                   out_dir: str | Path = "report") -> tuple[str, list[MethodResult]]:
    """Write `report.md`, `cost_curves.png` and `final_costs.npz` (each method's final costs
    [problems, runs], keyed by name with `_` for spaces, and `problems`) in `out_dir` for a
    registered RLEPSO id's `split` ('test', or 'train' to see what was learned in sample). Run r of
    every method starts from the same swarm (one key).

    `policy_of(params) -> policy(key, obs) -> action`. Returns `(markdown, results)`."""
    env, params, fids = rlepso.suite(env_id, split, difficulty)
    names = [f"F{fid}" for fid in fids]
    key = jax.random.key(seed)
    methods = [("trained", env, policy_of(trained_params)), ("untrained", env, policy_of(untrained_params)),
               ("plain PSO", rlepso.PlainPSO(evaluate_fn=env.evaluate_fn), lambda k, obs: jnp.zeros(35, obs.dtype))]
    results = [MethodResult(name, *run_method(m_env, params, policy, key, runs)) for name, m_env, policy in methods]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = f"{env_id}: {split} split ({difficulty}), {runs} runs per problem"
    text = markdown_table(results, names, title)
    (out / "report.md").write_text(text + "\n![cost curves](cost_curves.png)\n")
    plot_histories(results, names, params.max_fes, out / "cost_curves.png")
    np.savez(out / "final_costs.npz", problems=np.array(names), **{r.name.replace(" ", "_"): r.final_cost for r in results})
    return text, results
