"""Learning curves across seeds, from a run's own history (`jppo.history`): per grid point, the interquartile
mean over its seeds at each update with a 95% stratified-bootstrap band (`jppo.stats`; at one update the
seeds are the runs of a single task, so the bootstrap resamples seeds).

An update in which no episode ended reports NaN; a run's curve carries its last value over such updates
(the return of the episodes that ended last). The curves are drawn at up to `POINTS` evenly spaced updates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jppo import stats
from jppo.sweep import Grid, by_point

POINTS = 200
REPS = 500  # replicates per point: a band, not a number to report
PANELS = {"episodic_return": ("episodic return", "linear"), "final_cost": ("final cost f(gbest) - f*", "log")}


def carried(values) -> np.ndarray:
    """`[runs, updates]` with each NaN replaced by the run's last finite value before it (leading NaNs stay)."""
    values = np.asarray(values, dtype=np.float64)
    last = np.maximum.accumulate(np.where(np.isfinite(values), np.arange(values.shape[1]), -1), axis=1)
    return np.where(last >= 0, np.take_along_axis(values, np.maximum(last, 0), axis=1), np.nan)


def band(values) -> tuple[np.ndarray, stats.Estimate]:
    """`(updates shown, IQM over seeds with its 95% interval)` of `values [seeds, updates]` (carried over
    NaN updates); NaN where a seed has no value yet."""
    values = carried(values)
    shown = np.unique(np.linspace(0, values.shape[1] - 1, min(POINTS, values.shape[1])).astype(int))
    scores = values[:, shown].T[:, :, None]  # [points, seeds, 1 task]
    return shown, stats.interval(scores, stats.iqm, reps=REPS)


def plot(history: dict, grid: Grid, num_seeds: int, steps_per_update: int, path: str | Path, title: str = "") -> bool:
    """Draw the curves of `history` ({metric: [runs, updates]}) per grid point into `path` (PNG); False,
    drawing nothing, when it has none of `PANELS`' metrics."""
    panels = [key for key in PANELS if key in history and np.isfinite(history[key]).any()]
    if not panels:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    labels = grid.labels() if grid.axes else [f"{num_seeds} seed{'s' * (num_seeds > 1)}"]
    for ax, key in zip(axes[0], panels):
        name, scale = PANELS[key]
        for color, (label, values) in enumerate(zip(labels, by_point(history[key], num_seeds))):
            shown, e = band(values)
            steps = (shown + 1) * steps_per_update
            ax.plot(steps, e.point, color=f"C{color}", label=label, lw=1.4)
            ax.fill_between(steps, e.low, e.high, color=f"C{color}", alpha=0.2, lw=0)
        ax.set_yscale(scale)
        ax.set_xlabel("env steps per run")
        ax.set_ylabel(name)
        ax.set_title(f"IQM over seeds, 95% CI{': ' + title if title else ''}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
