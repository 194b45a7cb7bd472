"""The action a MetaBox actor scores: its own sample, or the stored action it is given.

MetaBox's actors are called `actor(state, fixed_action=None, ...)` (`fix_action=` in RLDAS): with no
action they sample one, else they evaluate the one given. Here the sample is drawn with an explicit
`key` (a `jax.random` key) and carries no gradient, as torch's `Distribution.sample`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def chosen_action(dist, fixed_action, key, *, shape, actor: str, keyword: str = "fixed_action"):
    """a ~ dist drawn with `key` (reshaped to `shape`) when `fixed_action` is None, else `fixed_action`.

    Raises a ValueError naming `actor` when sampling has no key, and naming `keyword` when the given
    action's shape is not `shape`.
    """
    if fixed_action is None:
        if key is None:
            raise ValueError(f"{actor}: sampling needs key= (a jax.random key) when {keyword} is None")
        return jnp.reshape(jax.lax.stop_gradient(dist.sample(key)), shape)
    action = jnp.asarray(fixed_action)
    if action.shape != tuple(shape):
        raise ValueError(f"{keyword} must have shape {tuple(shape)}, got {tuple(action.shape)}")
    return action
