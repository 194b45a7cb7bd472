"""MetaBox's helpers: `save_class` (atomic pickle) and `clip_grad_norms` (per-network clipping)."""

from __future__ import annotations

import os
import pickle
import tempfile

import jax
import numpy as np

from jppo.optim import clip_per_network


def save_class(dir: str, file_name: str, saving_class) -> None:
    """Pickle `saving_class` to `{dir}/{file_name}.pkl`, creating `dir`.

    The file is written to a temporary name beside it and renamed, so a crash never leaves a
    truncated checkpoint.
    """
    os.makedirs(dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dir, prefix=f".{file_name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(saving_class, f, -1)
        os.replace(tmp, os.path.join(dir, f"{file_name}.pkl"))
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def clip_grad_norms(groups, max_norm=float("inf")):
    r"""Clip each group's gradient by its own L2 norm: g ← g · min(1, max_norm / (‖g‖ + 1e-6)).

    `groups` is a list of gradient pytrees (one per network) or a dict name -> pytree; the clipped
    gradients are returned alongside. `max_norm <= 0` or inf means no clipping.

    Returns:
      `(grads, (norms, clipped_norms))` with `norms` before clipping and `clipped_norms = min(norm, max_norm)`.
    """
    named = dict(groups) if isinstance(groups, dict) else {i: g for i, g in enumerate(groups)}
    clipped, norms, clipped_norms = clip_per_network(named, jax.numpy.asarray(float(max_norm)))
    out = clipped if isinstance(groups, dict) else [clipped[i] for i in range(len(groups))]
    return out, ([float(np.asarray(norms[k])) for k in named], [float(np.asarray(clipped_norms[k])) for k in named])
