"""Argument checks run at the Python boundary, before anything is traced.

Each check names the argument and what was expected, so a shape error surfaces as a clear message
instead of an XLA trace. Checks skip value inspection for tracers (inside jit the caller is trusted).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def float_array(name: str, x, shape: tuple | None = None, *, finite: bool = True) -> jax.Array:
    """`x` as a float array; checks dtype, optionally exact shape, and finiteness (when concrete)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        x = jnp.asarray(x)
        dtype = x.dtype
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{name} must be a floating-point array, got dtype {dtype}")
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(x.shape)}")
    if finite and is_concrete(x) and not bool(np.all(np.isfinite(np.asarray(x)))):
        raise ValueError(f"{name} contains NaN or inf")
    return jnp.asarray(x)


def flag_array(name: str, x, shape: tuple) -> jax.Array:
    """A done mask: bool or numeric of exactly `shape`, returned as bool."""
    x = jnp.asarray(x)
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(x.shape)}")
    return x.astype(bool)


def unit_interval(name: str, value) -> None:
    if is_concrete(value) and not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {float(value)}")


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
