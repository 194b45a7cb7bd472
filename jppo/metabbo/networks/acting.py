"""The action a MetaBox actor scores: its own sample, or the stored action it is given.

MetaBox's actors are called `actor(state, fixed_action=None, ...)` (`fix_action=` in RLDAS): with no
action they sample one, else they evaluate the one given. Here the sample is drawn with an explicit
`key` (a `jax.random` key) and carries no gradient, as torch's `Distribution.sample`.
`TorchCategorical` is torch's `Categorical(probs=softmax(...))` (RLDAS, RLDEAFL), clamp included.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jppo.distributions import Categorical


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


@struct.dataclass
class TorchCategorical(Categorical):
    r"""torch's `Categorical(probs=p)` over the last axis, as MetaBox's actors build it from a softmax:

        p̂ = p / Σp,   log π(a) = log clamp(p̂_a, ε, 1 - ε),   H = -Σ_a p̂_a · max(log clamp(p̂_a, ε, 1 - ε), min)

    (ε, min: the dtype's eps and most negative value). `logits` holds log clamp(p̂, ε, 1 - ε), taken
    as the log-probabilities as they are (torch does not normalise them again); samples are drawn
    from them and carry no gradient.
    """

    probs: jax.Array = None

    @property
    def log_probs(self) -> jax.Array:
        return self.logits

    def entropy(self) -> jax.Array:
        return -jnp.sum(jnp.maximum(self.logits, jnp.finfo(self.probs.dtype).min) * self.probs, axis=-1)


def torch_categorical(probs) -> TorchCategorical:
    """`TorchCategorical` from probabilities `probs` [..., K] (normalised again, as torch does)."""
    p = probs / jnp.sum(probs, axis=-1, keepdims=True)
    eps = jnp.finfo(p.dtype).eps
    return TorchCategorical(jnp.log(jnp.clip(p, eps, 1 - eps)), p)
