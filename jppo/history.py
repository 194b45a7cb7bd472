"""A run's metrics update by update, kept beside its checkpoints: what its learning curves are drawn from
(`jppo.curves`), no TensorBoard needed.

`FILE` in the checkpoint directory holds every metric the trainer reports (`jppo.fit`) as an array
`[runs, updates]` (run order: `jppo.sweep`), column u for update u + 1. It is rewritten with every
checkpoint and holds exactly the updates that checkpoint has done, so a resumed run continues it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FILE = "history.npz"


def write(directory: str | Path, history: dict[str, np.ndarray]) -> None:
    """Save `history` ({metric: [runs, updates]}) as `directory/FILE`, atomically (a crash leaves the old one)."""
    path = Path(directory) / FILE
    partial = path.with_name(f".{FILE}.partial")
    with open(partial, "wb") as f:
        np.savez(f, **history)
    os.replace(partial, path)


def read(directory: str | Path, updates: int | None = None) -> dict[str, np.ndarray]:
    """The history saved in `directory` ({} if none), cut to its first `updates` updates."""
    path = Path(directory) / FILE
    if not path.exists():
        return {}
    with np.load(path) as saved:
        return {k: saved[k][:, :updates] for k in saved.files}


def extend(history: dict[str, np.ndarray], chunk: dict[str, np.ndarray], done_before: int) -> dict[str, np.ndarray]:
    """`history` followed by `chunk` ({metric: [runs, n]}, the updates after the first `done_before`); a
    history that lacks earlier updates (a checkpoint from before histories were kept) is padded with NaN."""
    out = dict(history)
    for key, values in chunk.items():
        old = history.get(key, np.zeros((values.shape[0], 0), values.dtype))
        missing = done_before - old.shape[1]
        if missing > 0:
            old = np.concatenate([np.full((values.shape[0], missing), np.nan, np.float64), old], axis=1)
        out[key] = np.concatenate([old, values], axis=1)
    return out
