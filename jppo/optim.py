"""Optimizers by name with torch's defaults, one learning rate per network, gradient clipping.

Parameters are a dict `network name -> pytree`. Each network gets its own optimizer (an
`optax.multi_transform` branch) whose learning rate is an injected hyperparameter: it lives in the
optimizer state as an array, so changing it never recompiles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import optax


def _adam(learning_rate):
    # torch.optim.Adam: betas (0.9, 0.999), eps 1e-8 added outside the square root.
    return optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8)


def _adamw(learning_rate):
    # torch.optim.AdamW: weight_decay 0.01, decoupled (p -= lr·wd·p), as optax applies it.
    return optax.adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.01)


def _sgd(learning_rate):
    # torch.optim.SGD: no momentum.
    return optax.sgd(learning_rate)


def _rmsprop(learning_rate):
    # torch.optim.RMSprop: alpha 0.99, eps 1e-8 added outside the square root, no momentum.
    return optax.rmsprop(learning_rate, decay=0.99, eps=1e-8, eps_in_sqrt=False)


OPTIMIZERS = {"Adam": _adam, "AdamW": _adamw, "SGD": _sgd, "RMSprop": _rmsprop}


def make_optimizer(name: str, learning_rates: Mapping[str, float]) -> optax.GradientTransformation:
    """One optimizer of kind `name` per network, each with its own injected learning rate.

    Args:
      name: 'Adam', 'AdamW', 'SGD' or 'RMSprop' (torch's default arguments).
      learning_rates: network name -> learning rate; the parameter dict must have these keys.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")
    for net, lr in learning_rates.items():
        if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
            raise ValueError(f"learning rate of {net!r} must be a finite number >= 0, got {lr!r}")
    factory = optax.inject_hyperparams(OPTIMIZERS[name])
    # Flattened: one vector per network, so the update is a handful of XLA ops, not a few per leaf.
    transforms = {net: optax.flatten(factory(learning_rate=float(lr))) for net, lr in learning_rates.items()}

    def labels(params):
        missing = set(transforms) ^ set(params)
        if missing:
            raise ValueError(
                f"parameter networks {sorted(params)} do not match the learning rates' {sorted(transforms)}"
            )
        return {net: jax.tree.map(lambda _, net=net: net, sub) for net, sub in params.items()}

    return optax.multi_transform(transforms, labels)


def _hyperparams(opt_state, net):
    return opt_state.inner_states[net].inner_state.hyperparams


def learning_rates(opt_state) -> dict[str, jax.Array]:
    """Network name -> current learning rate, read from a `make_optimizer` state."""
    return {net: _hyperparams(opt_state, net)["learning_rate"] for net in opt_state.inner_states}


def set_learning_rates(opt_state, rates: Mapping[str, float]):
    """A copy of `opt_state` with new learning rates (same dtypes, so jitted code does not recompile)."""
    inner_states = dict(opt_state.inner_states)
    for net, lr in rates.items():
        if net not in inner_states:
            raise ValueError(f"no network {net!r} in the optimizer; it has {sorted(inner_states)}")
        masked = inner_states[net]
        injected = masked.inner_state
        hyper = dict(injected.hyperparams)
        hyper["learning_rate"] = jnp.asarray(lr, hyper["learning_rate"].dtype)
        inner_states[net] = masked._replace(inner_state=injected._replace(hyperparams=hyper))
    return opt_state._replace(inner_states=inner_states)


def l2_norm(tree) -> jax.Array:
    return optax.tree.norm(tree)


def clip_per_network(grads: Mapping, max_norm):
    r"""MetaBox's clipping: each network's gradient is clipped by its own L2 norm.

        n_k = ‖g_k‖₂,   g_k ← g_k · min(1, max_norm / (n_k + 1e-6))

    `max_norm <= 0` or infinite means no clipping. `max_norm` may be traced.

    Returns:
      `(clipped_grads, norms, clipped_norms)` with `norms[k] = n_k` (before clipping) and
      `clipped_norms[k] = min(n_k, max_norm)` (MetaBox's report), or `n_k` without clipping.
    """
    active = (max_norm > 0) & jnp.isfinite(max_norm)
    out, norms, clipped_norms = {}, {}, {}
    for net, g in grads.items():
        norm = l2_norm(g)
        scale = jnp.where(active, jnp.minimum(1.0, max_norm / (norm + 1e-6)), 1.0).astype(norm.dtype)
        out[net] = jax.tree.map(lambda x, scale=scale: x * scale, g)
        norms[net] = norm
        clipped_norms[net] = jnp.where(active, jnp.minimum(norm, max_norm), norm).astype(norm.dtype)
    return out, norms, clipped_norms


def clip_global(grads: Mapping, max_norm):
    r"""Clip all networks together by the global norm: g ← g · min(1, max_norm / ‖g‖₂) (optax).

    `max_norm <= 0` or infinite means no clipping. Returns the same triple as `clip_per_network`,
    with per-network norms measured before and after.
    """
    active = (max_norm > 0) & jnp.isfinite(max_norm)
    safe_max = jnp.where(active, max_norm, 1.0)
    clipped, _ = optax.clip_by_global_norm(safe_max).update(grads, optax.EmptyState())
    clipped = jax.tree.map(lambda c, g: jnp.where(active, c, g), clipped, dict(grads))
    norms = {net: l2_norm(g) for net, g in grads.items()}
    clipped_norms = {net: l2_norm(g) for net, g in clipped.items()}
    return clipped, norms, clipped_norms


def no_clipping(grads: Mapping, max_norm):
    """Gradients as they are, with the same triple as `clip_per_network` (norms before = after)."""
    norms = {net: l2_norm(g) for net, g in grads.items()}
    return dict(grads), norms, norms


CLIPPING = {"per_network": clip_per_network, "global": clip_global, "none": no_clipping}
