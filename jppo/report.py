"""The evaluation report of a checkpoint of one or many runs (`jppo eval`, environments other than MetaBBO's
suites, which have `jppo.metabbo.report`): every run's policy on the same E episodes, and per grid point
(`jppo.sweep`) the mean and the interquartile mean of the runs' scores with 95% stratified-bootstrap
confidence intervals across seeds (`jppo.stats`), per-seed rows on request, learning curves from the
run's history (`jppo.curves`).

A run's score is its mean return over the E episodes. The grid points share their seeds' keys and the
episodes, so the bootstrap resamples seeds alike for every grid point (paired). With one seed, the
episodes are the resampled runs (`jppo.stats.seed_scores`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jppo import curves, stats
from jppo.sweep import Grid, by_point

FILES = ("report.md", "returns.png", "curves.png")


def estimates(returns, num_seeds: int) -> dict[str, stats.Estimate]:
    """Per grid point, the mean and IQM of the scores in `returns [runs, episodes]`, with 95% intervals."""
    return stats.estimates(stats.seed_scores(by_point(returns, num_seeds)[:, :, None, :]))  # one task: the env


def returns_table(returns, grid: Grid, num_seeds: int, *, per_seed: bool = False) -> str:
    """Markdown: per grid point the mean and IQM [95% CI] of `returns [runs, episodes]`'s scores; with
    `per_seed`, each run's mean ± std over its episodes."""
    est = estimates(returns, num_seeds)
    labels = grid.labels() if grid.axes else ["(the config)"]
    lines = [f"Score of a run: its mean return over {returns.shape[1]} episodes (the same episodes for every run). "
             f"Mean and interquartile mean (IQM) over {stats.unit(num_seeds, 'episodes')}, with 95% "
             f"stratified-bootstrap confidence intervals ({stats.REPS} resamples).", "",
             "| grid point | seeds | mean [95% CI] | IQM [95% CI] |", "|---|---|---|---|"]
    lines += [f"| {label} | {num_seeds} | {stats.format_estimate(est['mean'], g, '.1f')} | "
              f"{stats.format_estimate(est['IQM'], g, '.1f')} |" for g, label in enumerate(labels)]
    if per_seed:
        lines += ["", "| run | mean return ± std over episodes |", "|---|---|"]
        lines += [f"| {name} | {r.mean():.1f} ± {r.std():.1f} |" for name, r in zip(grid.run_names(num_seeds), returns)]
    return "\n".join(lines) + "\n"


def plot_returns(returns, grid: Grid, num_seeds: int, path: str | Path) -> None:
    """Each run's score (dots) and each grid point's IQM with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = by_point(np.asarray(returns).mean(axis=-1), num_seeds)  # [points, seeds]
    iqm = estimates(returns, num_seeds)["IQM"]
    labels = grid.labels() if grid.axes else ["(the config)"]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(labels)), 3.6))
    for g, row in enumerate(scores):
        ax.scatter(np.full(row.shape, g) + np.linspace(-0.15, 0.15, row.size), row, s=12, color="C0", alpha=0.6)
    ax.errorbar(np.arange(len(labels)), iqm.point, yerr=[iqm.point - iqm.low, iqm.high - iqm.point], fmt="D",
                color="C3", capsize=4, label="IQM, 95% CI")
    ax.set_xticks(np.arange(len(labels)), labels, fontsize=7, rotation=20 if len(labels) > 3 else 0)
    ax.set_ylabel("mean return of a run")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def returns_report(title: str, returns, grid: Grid, num_seeds: int, *, out_dir: str | Path, per_seed: bool = False,
                   history: dict | None = None, steps_per_update: int = 1) -> str:
    """Write `report.md`, `returns.png` and, from `history` ({metric: [runs, updates]}, `jppo.history`),
    `curves.png` in `out_dir`; returns the markdown."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = f"## {title}\n\n" + returns_table(returns, grid, num_seeds, per_seed=per_seed)
    plot_returns(returns, grid, num_seeds, out / "returns.png")
    figures = "\n![returns](returns.png)\n"
    if history and curves.plot(history, grid, num_seeds, steps_per_update, out / "curves.png"):
        figures += "\n![learning curves](curves.png)\n"
    (out / "report.md").write_text(text + figures)
    return text
