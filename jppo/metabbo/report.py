"""The MetaBBO evaluation report: the trained policies of a checkpoint (every run: grid points × seeds,
`jppo.sweep`), the untrained ones (each seed's starting point) and the backbone optimizer without an agent
(RLEPSO: plain PSO; GLEET: its PSO with a = 0.5) on a split of the suite's problems.

For every problem p of a suite and evaluation run r = 1..R, each policy runs one episode (one optimisation
to the budget); run r of every method and seed starts from the same key (paired runs); all runs of all
policies are one vmapped program. Reported:

* per problem, the final cost c(gbest) = f(gbest) - f*: mean ± std over seeds × runs, and each method's
  rank by that mean (1 = best, ties share the mean rank), with the average rank over problems;
* across training seeds (rliable's estimators, `jppo.stats`): for each seed, every method's rank on each
  problem by its mean final cost over the R runs, and its mean log10 final cost (costs floored at 1e-8);
  the mean and the interquartile mean over seeds × problems of both, with 95% stratified-bootstrap
  intervals (seeds resampled within each problem, the same draws for every method: a seed's trained and
  untrained policy stay paired); per problem, the mean log10 final cost over seeds with its interval;

      P = share of the bootstrap resamples in which a trained policy's average rank is below the untrained one's

  A checkpoint of one seed resamples its R evaluation runs instead (the intervals are then evaluation
  noise alone: `jppo.stats.seed_scores`). Per-seed rows on request.

Plots: the mean cost history (MetaBox's 51 logged points) per problem, log scale.

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

from jppo import stats
from jppo.metabbo import registry, rlepso, swarm
from jppo.sweep import Grid

# env id -> its module, which has suite(env_id, split, difficulty) and baseline(env)
SUITES = {env_id: importlib.import_module(spec.module) for env_id, spec in registry.ENVS.items()}

COST_FLOOR = 1e-8  # costs below this are shown at the floor on a log scale


@dataclasses.dataclass
class MethodResult:
    name: str
    final_cost: np.ndarray  # [seeds, problems, runs] (a method without training: one seed)
    history: np.ndarray  # [seeds, problems, runs, log points]


def suite_module(env_id: str):
    """The module of a registered MetaBBO suite id; a ValueError naming the known ids otherwise."""
    if env_id not in SUITES:
        raise ValueError(f"{env_id!r} is not a MetaBBO suite env; known: {', '.join(SUITES)}")
    return SUITES[env_id]


@functools.lru_cache(maxsize=8)
def _episodes(env, policy: Callable, stacked: bool = False):
    """Compiled `(params, keys [P, R], policy_params) -> final states [P, R]`, one per (env, policy): methods
    that differ only in `policy_params` share the compiled program. `stacked`: `policy_params` have a
    leading axis M of parameter sets, all run at once: states `[M, P, R]`."""

    def episode(params, problem, key, policy_params):
        state, _ = swarm.rollout(env, params.replace(problem=problem), key,
                                 lambda k, obs: policy(k, obs, *policy_params))
        return state

    over_runs = jax.vmap(episode, in_axes=(None, None, 0, None))
    over_problems = jax.vmap(over_runs, in_axes=(None, 0, 0, None))
    episodes = jax.vmap(over_problems, in_axes=(None, None, None, 0)) if stacked else over_problems
    return jax.jit(lambda params, keys, policy_params: episodes(params, params.problem, keys, policy_params))


def run_method(env, params, policy: Callable, key, runs: int, policy_params: tuple = (), stacked: bool = False
               ) -> tuple:
    """`(final cost [P, runs], cost history [P, runs, points])` of `policy(key, obs, *policy_params) ->
    action` on each problem of the suite in `params` (leading axis P). `stacked`: `policy_params` hold M
    parameter sets (a leading axis), run at once and paired (run r of each from the same key): `[M, P, runs]`."""
    num_problems = int(np.shape(params.problem.shift)[0])
    keys = jax.random.split(key, (num_problems, runs))
    states = _episodes(env, policy, stacked)(params, keys, tuple(policy_params))
    return np.asarray(states.gbest_cost), swarm.cost_history(states)


def run_policies(env: rlepso.RLEPSOEnv, params: rlepso.RLEPSOParams, policy: Callable, stacked_params, key,
                 runs: int) -> tuple:
    """`run_method` for M parameter sets of one policy, compiled once and run at once (`stacked`):
    `policy(p, key, obs) -> action`, `stacked_params` with a leading axis M. Returns `(final cost
    [M, P, runs], history [M, P, runs, points])`; run r of every parameter set starts from the same key
    (paired runs)."""
    return run_method(env, params, lambda k, obs, p: policy(p, k, obs), key, runs, (stacked_params,), stacked=True)


def ranks(mean_costs: np.ndarray) -> np.ndarray:
    """Ranks of the methods (axis 0) on each problem (axis 1), 1 = lowest cost, ties averaged."""
    return rankdata(mean_costs, axis=0)


def log_cost_stats(final_cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per problem: mean of log10 max(c, 1e-8) over runs and its standard error s / √R."""
    logs = np.log10(np.maximum(final_cost, COST_FLOOR))
    return logs.mean(axis=-1), logs.std(axis=-1, ddof=1) / np.sqrt(logs.shape[-1])


def log_costs(final_cost) -> np.ndarray:
    """log10 max(c, 1e-8): costs below the floor count as the floor."""
    return np.log10(np.maximum(final_cost, COST_FLOOR))


def seed_ranks(costs: np.ndarray) -> np.ndarray:
    """`[methods, N, P]`: each method's rank among the methods on each problem, for each run of the estimators
    (`jppo.stats.seed_scores` of `costs [methods, seeds, P, runs]`: a seed's mean cost over its runs)."""
    return rankdata(stats.seed_scores(costs), axis=0)


def across_seeds(results: list[MethodResult], problem_names: list[str], num_seeds: int, *, per_seed: bool = False,
                 seed: int = 0) -> str:
    """Markdown: average rank and mean log10 final cost across seeds (mean, IQM, 95% stratified-bootstrap
    intervals, the same resamples for every method), P(each trained policy ranks better than the untrained
    one), the mean log10 final cost per problem with its interval, and per-seed rows if asked."""
    costs = np.stack([np.broadcast_to(r.final_cost, (num_seeds, *r.final_cost.shape[1:])) for r in results])
    rank_scores, log_scores = seed_ranks(costs), stats.seed_scores(log_costs(costs))  # [methods, N, P]
    rank_est, log_est = stats.estimates(rank_scores, seed=seed), stats.estimates(log_scores, seed=seed)
    names = [r.name for r in results]
    runs = costs.shape[-1]
    lines = ["### Across training seeds", "",
             f"Runs resampled: {stats.unit(num_seeds, 'evaluation runs')}; untrained: each seed's starting point; "
             f"run r of every method starts from the same swarm. Per seed and problem, each method's rank by its mean "
             f"final cost over the {runs} runs (1 = best) and its mean log10 final cost (floored at 1e-8); mean and "
             f"interquartile mean (IQM) over seeds × problems with 95% stratified-bootstrap confidence intervals "
             f"(seeds resampled within each problem, the same draws for every method; {stats.REPS} resamples).", "",
             "| method | average rank: mean [95% CI] | IQM [95% CI] | log10 final cost: mean [95% CI] | IQM [95% CI] |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | " + " | ".join(stats.format_estimate(e, m, ".2f") for e in
                                          (rank_est["mean"], rank_est["IQM"], log_est["mean"], log_est["IQM"])) + " |"
              for m, name in enumerate(names)]
    replicates = stats.replicates(rank_scores, stats.mean, seed=seed)  # [resamples, methods]
    untrained = names.index("untrained")
    lines += [""] + [f"P({name} ranks better than untrained) = {(replicates[:, m] < replicates[:, untrained]).mean():.2f} "
                     f"(share of the resamples in which its average rank is lower)"
                     for m, name in enumerate(names) if name.startswith("trained")]
    per_problem = stats.interval(np.moveaxis(log_scores, -1, -2)[..., None], stats.mean, seed=seed)  # [methods, P]
    lines += ["", "Mean log10 final cost per problem over seeds [95% CI]:", "",
              "| problem | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {problem} | " + " | ".join(stats.format_estimate(per_problem, (m, p), ".2f") for m in range(len(names)))
              + " |" for p, problem in enumerate(problem_names)]
    if per_seed:
        seed_rank = rankdata(costs.mean(axis=-1), axis=0).mean(axis=-1)  # [methods, seeds]
        seed_log = log_costs(costs).mean(axis=(-2, -1))
        lines += ["", "Per seed: average rank over problems / mean log10 final cost:", "",
                  "| seed | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        lines += [f"| {s} | " + " | ".join(f"{seed_rank[m, s]:.2f} / {seed_log[m, s]:.2f}" for m in range(len(names)))
                  + " |" for s in range(num_seeds)]
    return "\n".join(lines) + "\n"


def markdown_table(results: list[MethodResult], problem_names: list[str], title: str) -> str:
    means = np.stack([r.final_cost.mean(axis=(0, 2)) for r in results])  # [methods, P]
    rank = ranks(means)
    header = "| problem | " + " | ".join(r.name for r in results) + " |"
    lines = [f"## {title}", "", "Final cost f(gbest) - f*: mean ± std over seeds × runs (rank by mean).", "", header,
             "|---|" + "---|" * len(results)]
    for p, name in enumerate(problem_names):
        cells = [f"{r.final_cost[:, p].mean():.3e} ± {r.final_cost[:, p].std():.2e} ({rank[m, p]:g})"
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
            curve = np.maximum(r.history[:, p].mean(axis=(0, 1)), COST_FLOOR)
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


def metabbo_report(env_id: str, policy: Callable, trained_params, untrained_params, *, grid: Grid = Grid(),
                   num_seeds: int = 1, runs: int = 10, seed: int = 0, difficulty: str = "easy", split: str = "test",
                   max_fes: int | None = None, per_seed: bool = False,
                   out_dir: str | Path = "report") -> tuple[str, list[MethodResult]]:
    """Write `report.md`, `cost_curves.png` and `final_costs.npz` (each method's final costs
    [seeds, problems, runs], keyed by name with `_` for spaces, and `problems`) in `out_dir` for a
    registered MetaBBO suite id's `split` ('test', or 'train' to see what was learned in sample). Run r of
    every method and seed starts from the same swarm (one key).

    `policy(key, obs, params) -> action`; `trained_params` hold every run of a checkpoint (a leading axis of
    `grid`'s points × `num_seeds`, `jppo.sweep`), `untrained_params` each seed's starting point (a leading
    axis of `num_seeds`); all of them run as one compiled program. `max_fes` replaces the suite's evaluation
    budget (None: MetaBox's). Returns `(markdown, results)`."""
    module = suite_module(env_id)
    env, params, fids = module.suite(env_id, split, difficulty)
    if max_fes is not None:
        params = params.replace(max_fes=max_fes)
    names = [f"F{fid}" for fid in fids]
    key = jax.random.key(seed)
    both = jax.tree.map(lambda t, u: np.concatenate([np.asarray(t), np.asarray(u)]), trained_params, untrained_params)
    final, history = run_method(env, params, policy, key, runs, (both,), stacked=True)  # [runs + seeds, P, R]
    points = [f"trained {label}" for label in grid.labels()] if grid.axes else ["trained"]
    results = [MethodResult(name, final[g * num_seeds:(g + 1) * num_seeds], history[g * num_seeds:(g + 1) * num_seeds])
               for g, name in enumerate([*points, "untrained"])]
    base_name, base_env, base_policy = module.baseline(env)
    base_final, base_history = run_method(base_env, params, base_policy, key, runs)
    results.append(MethodResult(base_name, base_final[None], base_history[None]))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = (f"{env_id}: {split} split ({difficulty}), {runs} runs per problem, "
             f"{grid.describe(num_seeds)} trained")
    text = markdown_table(results, names, title) + "\n" + across_seeds(results, names, num_seeds, per_seed=per_seed,
                                                                       seed=seed)
    (out / "report.md").write_text(text + "\n![cost curves](cost_curves.png)\n")
    plot_histories(results, names, params.max_fes, out / "cost_curves.png")
    np.savez(out / "final_costs.npz", problems=np.array(names), **{r.name.replace(" ", "_"): r.final_cost for r in results})
    return text, results
