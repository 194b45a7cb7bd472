"""JAX environments and their registry.

    env, params = jppo.envs.make("CartPole-v1")
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from jppo.envs.base import Box, Discrete, Environment
from jppo.envs.classic import CartPole, Pendulum
from jppo.envs.wrappers import AutoReset, EpisodeStats
from jppo.metabbo import registry as metabbo_registry

_REGISTRY: dict[str, Callable[..., tuple[Environment, object]]] = {}
# ids whose module is imported on first use (it registers them): loading JAX envs only when asked for
_LAZY = {env_id: spec.module for env_id, spec in metabbo_registry.ENVS.items()}


HOST_PREFIX = "gym:"  # ids the host trainer runs (`jppo.host`), gymnasium's behind the prefix


def is_host_env(env_id: str) -> bool:
    """True for ids the host trainer runs (`gym:<gymnasium id>`)."""
    return env_id.startswith(HOST_PREFIX)


def register(env_id: str, factory: Callable[..., tuple[Environment, object]]) -> None:
    """Make `make(env_id, **options)` return `factory(**options)`, an `(env, params)` pair (a problem
    suite's factory takes `difficulty`)."""
    _REGISTRY[env_id] = factory


def available() -> list[str]:
    return sorted({*_REGISTRY, *_LAZY})


def make(env_id: str, **options) -> tuple[Environment, object]:
    """`(env, default params)` for a registered id, `options` passed to its factory (e.g. a suite's
    `difficulty`). Unknown ids, and options the factory does not take, raise a ValueError that lists
    the known ones."""
    if env_id not in _REGISTRY and env_id in _LAZY:
        import importlib

        importlib.import_module(_LAZY[env_id])  # registers itself
    if env_id not in _REGISTRY:
        raise ValueError(f"unknown environment {env_id!r}; available: {', '.join(available())}")
    factory = _REGISTRY[env_id]
    takes = list(inspect.signature(factory).parameters)
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise ValueError(f"environment {env_id!r} takes no option {', '.join(unknown)} "
                         f"(its options: {', '.join(takes) or 'none'})")
    return factory(**options)


register("CartPole-v1", lambda: (CartPole(), CartPole().default_params))
register("Pendulum-v1", lambda: (Pendulum(), Pendulum().default_params))

__all__ = ["AutoReset", "Box", "CartPole", "Discrete", "Environment", "EpisodeStats", "Pendulum", "available", "make",
           "register"]
