"""The protocol every JAX environment follows (gymnax-like): pure functions, jit-able, vmap-able.

    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

`state` and `params` are pytrees (flax.struct dataclasses); `info` is a dict of arrays. A batch
of environments is `jax.vmap` of these functions over keys (and, if wanted, over params).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Discrete:
    """Actions 0..n-1 (int32 scalars)."""

    n: int


@dataclasses.dataclass(frozen=True)
class Box:
    """Continuous actions of `shape` in [low, high]."""

    low: float
    high: float
    shape: tuple[int, ...]


class Environment:
    """Base class; subclasses define `default_params`, `reset`, `step`, `observation_shape`, `action_space`."""

    observation_shape: tuple[int, ...]
    action_space: Discrete | Box

    @property
    def default_params(self) -> Any:
        raise NotImplementedError

    def reset(self, key: jax.Array, params) -> tuple[jax.Array, Any]:
        raise NotImplementedError

    def step(self, key: jax.Array, state, action, params):
        raise NotImplementedError

    def batch_params(self, params, num_envs: int):
        """Params for `num_envs` environments, leading axis `num_envs` (vmap with in_axes=0).
        By default every environment gets the same params; a suite of N problems overrides this and
        gives env i problem i mod N (so `batch_params(params, N)` lists the problems in order)."""
        return jax.tree.map(lambda leaf: jnp.broadcast_to(leaf, (num_envs, *jnp.shape(leaf))), params)

    def num_problems(self, params) -> int | None:
        """N when `params` hold a suite of N problems (see `batch_params`), else None: what
        `jppo.batching` needs to schedule problems over batch episodes."""
        return None


def default_float():
    """float64 when jax_enable_x64 is on, else float32."""
    return jnp.asarray(0.0).dtype
