"""What a training run shows and records: a progress bar, TensorBoard scalars, a final summary."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from jppo.config import TrainConfig

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


def _nanmean(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


class RunLogger:
    """Progress bar (steps, steps/s, recent return, ETA), tensorboardX scalars, summary at the end."""

    def __init__(self, config: TrainConfig, logdir, *, total: int, start: int, num_seeds: int, show_progress=True):
        self.config, self.total, self.num_seeds = config, total, num_seeds
        self.writer = None
        if logdir is not None:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(str(Path(logdir)))
            self.writer.add_text("config", str(config.to_dict()))
        steps_per_update = config.batch_size * num_seeds
        self.bar = tqdm(
            total=total * steps_per_update, initial=start * steps_per_update, unit="step", unit_scale=True,
            desc=f"PPO {config.env_id}", disable=not show_progress, dynamic_ncols=True,
        )
        self.recent_return = float("nan")
        self.best_return = -float("inf")
        self.started = time.perf_counter()
        self.start_update = start

    def log_chunk(self, done: int, n: int, metrics: dict, seconds: float):
        """Metrics are arrays [seeds, n] for updates done-n .. done-1."""
        sps = n * self.config.batch_size * self.num_seeds / max(seconds, 1e-9)
        if self.writer is not None:
            for i in range(n):
                step = (done - n + i + 1) * self.config.batch_size
                for tag, key in {**TB_TAGS, **_episode_info_tags(metrics)}.items():
                    value = _nanmean(metrics[key][:, i])
                    if np.isfinite(value):
                        self.writer.add_scalar(tag, value, step)
            self.writer.add_scalar("charts/SPS", sps, done * self.config.batch_size)
        ret = metrics["episodic_return"]
        if np.isfinite(ret).any():
            self.recent_return = _nanmean(ret[:, -max(1, n // 2):]) if np.isfinite(ret[:, -max(1, n // 2):]).any() else _nanmean(ret)
            self.best_return = max(self.best_return, self.recent_return)
        postfix = {"ret": f"{self.recent_return:.1f}", "sps": f"{sps:,.0f}"}
        if "final_cost" in metrics and np.isfinite(metrics["final_cost"]).any():  # MetaBBO: the optimizers' result
            postfix["cost"] = f"{_nanmean(metrics['final_cost']):.3g}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(n * self.config.batch_size * self.num_seeds)

    def message(self, text: str):
        self.bar.write(text)

    def close(self):
        self.bar.close()
        if self.writer is not None:
            self.writer.close()


def summary(config: TrainConfig, result, *, logdir=None, ckpt_dir=None) -> str:
    """A one-screen summary of a finished (or interrupted) run."""
    m = result.metrics
    ret = np.asarray(m.get("episodic_return", [np.nan]), dtype=np.float64)
    last = ret[..., -max(1, ret.shape[-1] // 10):]
    updates = ret.shape[-1]
    steps = updates * config.batch_size * (ret.shape[0] if ret.ndim == 2 else 1)
    lines = [
        "",
        f"PPO on {config.env_id}: {updates} updates, {steps:,} env steps in {result.seconds:.1f} s "
        f"({steps / max(result.seconds, 1e-9):,.0f} steps/s; first chunk incl. compile {result.compile_seconds:.1f} s)",
        f"  mean episodic return over the last 10% of updates: {_nanmean(last):.1f}"
        + (f"  (per seed: {', '.join(f'{_nanmean(r):.1f}' for r in last)})" if ret.ndim == 2 else ""),
        f"  final losses: policy {_nanmean(np.asarray(m['policy_loss'])[..., -1]):.4f}, "
        f"value {_nanmean(np.asarray(m['value_loss'])[..., -1]):.4f}, "
        f"entropy {_nanmean(np.asarray(m['entropy'])[..., -1]):.4f}" if "policy_loss" in m else "",
    ]
    if "final_cost" in m:
        cost = np.asarray(m["final_cost"], dtype=np.float64)
        lines.append(f"  mean final cost of the episodes in the last 10% of updates: "
                     f"{_nanmean(cost[..., -max(1, cost.shape[-1] // 10):]):.4g}")
    if logdir is not None:
        lines.append(f"  TensorBoard: tensorboard --logdir {logdir}")
    if ckpt_dir is not None:
        lines.append(f"  checkpoints: {ckpt_dir}  (evaluate: jppo eval --ckpt {ckpt_dir})")
    if result.interrupted:
        lines.append("  (interrupted before the end)")
    return "\n".join(line for line in lines if line)
