"""What a training run shows and records: a progress bar, TensorBoard scalars, a final summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from jppo.config import TrainConfig
from jppo.sweep import Grid, by_point

# TensorBoard tag -> metric name in the trainer's output
TB_TAGS = {
    "charts/episodic_return": "episodic_return",
    "charts/episodic_length": "episodic_length",
    "charts/learning_rate": "learning_rate",
    "losses/value_loss": "value_loss",
    "losses/policy_loss": "policy_loss",
    "losses/entropy": "entropy",
    "losses/approx_kl": "approx_kl_k3",
    "losses/clipfrac": "clip_fraction",
    "losses/explained_variance": "explained_variance",
}


def _episode_info_tags(metrics: dict) -> dict:
    """`final_<key>` metrics (an env's info at the end of an episode, e.g. MetaBBO's final cost)."""
    return {f"charts/{key}": key for key in metrics if key.startswith("final_")}


def _nanmean(x, axis=None):
    """The mean of the finite entries (NaN where there are none), quietly."""
    x = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(x)
    return np.where(finite.any(axis=axis), np.where(finite, x, 0).sum(axis=axis) / np.maximum(finite.sum(axis=axis), 1),
                    np.nan)[()]


def _spread(values: np.ndarray, digits: str) -> str:
    """'mean ± std' of a grid point's per-seed values (NaN seeds left out; the std needs 2 seeds)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "nan"
    return f"{values.mean():{digits}}" + (f"±{values.std():{digits}}" if values.size > 1 else "")


class RunLogger:
    """Progress bar (steps, steps/s, recent return, ETA; each grid point's mean ± std over its seeds),
    tensorboardX scalars (one run: `logdir`; several: each in `logdir/<run name>`, `jppo.sweep`)."""

    def __init__(self, config: TrainConfig, logdir, *, total: int, start: int, num_seeds: int, grid: Grid = Grid(),
                 show_progress=True):
        self.config, self.total, self.num_seeds, self.grid = config, total, num_seeds, grid
        self.runs = grid.num_points * num_seeds
        self.writers = []  # one per run, in run order
        if logdir is not None:
            from tensorboardX import SummaryWriter

            names = [""] if self.runs == 1 else grid.run_names(num_seeds)
            self.writers = [SummaryWriter(str(Path(logdir, name))) for name in names]
            for writer in self.writers:
                writer.add_text("config", str(config.to_dict()))
        steps_per_update = config.batch_size * self.runs
        self.bar = tqdm(
            total=total * steps_per_update, initial=start * steps_per_update, unit="step", unit_scale=True,
            desc=f"PPO {config.env_id}", disable=not show_progress, dynamic_ncols=True,
        )
        self.recent = {}  # metric -> [runs], the last chunk's values (its second half, where finite)

    def log_chunk(self, done: int, n: int, metrics: dict, seconds: float):
        """Metrics are arrays [runs, n] for updates done-n .. done-1."""
        sps = n * self.config.batch_size * self.runs / max(seconds, 1e-9)
        tags = {**TB_TAGS, **_episode_info_tags(metrics)}
        for run, writer in enumerate(self.writers):
            for i in range(n):
                step = (done - n + i + 1) * self.config.batch_size
                for tag, key in tags.items():
                    value = float(metrics[key][run, i])
                    if np.isfinite(value):
                        writer.add_scalar(tag, value, step)
            writer.add_scalar("charts/SPS", sps, done * self.config.batch_size)
        for key in ("episodic_return", "final_cost"):  # MetaBBO: final_cost, the optimizers' result
            if key in metrics and np.isfinite(metrics[key]).any():
                late = metrics[key][:, -max(1, n // 2):]
                self.recent[key] = np.where(np.isfinite(late).any(axis=1), _nanmean(late, axis=1),
                                            _nanmean(metrics[key], axis=1))
        self.bar.set_postfix_str(self._postfix(sps), refresh=False)
        self.bar.update(n * self.config.batch_size * self.runs)

    def _postfix(self, sps: float) -> str:
        ret, cost = self.recent.get("episodic_return"), self.recent.get("final_cost")
        if self.grid.num_points == 1:
            shown = [f"ret={_nanmean(ret) if ret is not None else float('nan'):.1f}"]
            shown += [f"cost={_nanmean(cost):.3g}"] if cost is not None else []
        else:  # each grid point: its seeds' mean ± std, of the final cost where there is one
            values, digits = (cost, ".3g") if cost is not None else (ret, ".1f")
            shown = [f"{label}: {_spread(v, digits)}" for label, v in
                     zip(self.grid.labels(), by_point(values, self.num_seeds))] if values is not None else []
        return ", ".join([*shown, f"sps={sps:,.0f}"])

    def message(self, text: str):
        self.bar.write(text)

    def close(self):
        self.bar.close()
        for writer in self.writers:
            writer.close()


def summary(config: TrainConfig, result, *, logdir=None, ckpt_dir=None) -> str:
    """A one-screen summary of a finished (or interrupted) run: per grid point, its seeds' mean ± std."""
    m = result.metrics
    ret = np.asarray(m.get("episodic_return", [np.nan]), dtype=np.float64)
    runs = ret.reshape(-1, ret.shape[-1])  # [runs, updates]
    last = lambda x: x[..., -max(1, x.shape[-1] // 10):]  # noqa: E731  (the last 10% of updates)
    updates = ret.shape[-1]
    steps = updates * config.batch_size * runs.shape[0]
    grid, seeds = result.grid, result.num_seeds
    lines = [
        "",
        f"PPO on {config.env_id}" + (f" ({grid.describe(seeds)})" if grid.axes else "") +
        f": {updates} updates, {steps:,} env steps in {result.seconds:.1f} s "
        f"({steps / max(result.seconds, 1e-9):,.0f} steps/s; first chunk incl. compile {result.compile_seconds:.1f} s)",
    ]
    per_run = {"episodic return": (_nanmean(last(runs), axis=1), ".1f")}
    if "final_cost" in m:
        cost = np.asarray(m["final_cost"], dtype=np.float64).reshape(runs.shape)
        per_run["final cost of the episodes"] = (_nanmean(last(cost), axis=1), ".4g")
    for what, (values, digits) in per_run.items():
        if grid.axes:
            lines.append(f"  mean {what} over the last 10% of updates, per grid point (mean ± std over {seeds} seeds):")
            lines += [f"    {label}: {_spread(v, digits).replace('±', ' ± ')}"
                      for label, v in zip(grid.labels(), by_point(values, seeds))]
        else:
            lines.append(f"  mean {what} over the last 10% of updates: {_nanmean(values):{digits}}"
                         + (f"  (per seed: {', '.join(f'{v:{digits}}' for v in values)})" if ret.ndim == 2 else ""))
    if "policy_loss" in m:
        lines.append(f"  final losses: policy {_nanmean(np.asarray(m['policy_loss'])[..., -1]):.4f}, "
                     f"value {_nanmean(np.asarray(m['value_loss'])[..., -1]):.4f}, "
                     f"entropy {_nanmean(np.asarray(m['entropy'])[..., -1]):.4f}")
    if logdir is not None:
        lines.append(f"  TensorBoard: tensorboard --logdir {logdir}")
    if ckpt_dir is not None:
        lines.append(f"  checkpoints: {ckpt_dir}  (evaluate every run: jppo eval --ckpt {ckpt_dir})")
    if result.interrupted:
        lines.append("  (interrupted before the end)")
    return "\n".join(lines)
