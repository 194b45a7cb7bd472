"""Small action distributions: diagonal Normal (and its clamped-sample variant) and Categorical.

Written here rather than taken from distrax (which pulls in tensorflow-probability). `log_prob` and
`entropy` are summed over the action dimensions, one number per sample; a Normal also gives them per
dimension (`log_prob_per_dim`, `entropy_per_dim`), the shapes some MetaBox actors return.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Normal:
    r"""Diagonal Gaussian N(loc, diag(scale²)) over the last axis.

        log p(a) = Σ_i [ -(a_i - μ_i)² / (2σ_i²) - log σ_i - ½ log 2π ]
        H        = Σ_i [ ½ + ½ log 2π + log σ_i ]
    """

    loc: jax.Array
    scale: jax.Array

    def sample(self, key) -> jax.Array:
        return self.loc + self.scale * jax.random.normal(key, self.loc.shape, self.loc.dtype)

    def log_prob_per_dim(self, action) -> jax.Array:
        """log N(a_i; μ_i, σ_i), elementwise."""
        z = (action - self.loc) / self.scale
        return -0.5 * z**2 - jnp.log(self.scale) - 0.5 * math.log(2 * math.pi)

    def log_prob(self, action) -> jax.Array:
        return jnp.sum(self.log_prob_per_dim(action), axis=-1)

    def entropy_per_dim(self) -> jax.Array:
        """½ + ½ log 2π + log σ_i, elementwise."""
        return 0.5 + 0.5 * math.log(2 * math.pi) + jnp.log(self.scale)

    def entropy(self) -> jax.Array:
        return jnp.sum(self.entropy_per_dim(), axis=-1)

    def mode(self) -> jax.Array:
        return self.loc


@struct.dataclass
class ClampedNormal(Normal):
    """A Normal whose samples (and mode) are clamped to [low, high], as MetaBox's continuous actors
    act; `log_prob` evaluates the clamped action under the unclamped density (MetaBox's convention),
    not as a censored density, so clamped samples bias the σ-score (`jppo.networks.BoundedGaussianActor`)."""

    low: float = struct.field(pytree_node=False, default=0.0)
    high: float = struct.field(pytree_node=False, default=1.0)

    def sample(self, key) -> jax.Array:
        return jnp.clip(super().sample(key), self.low, self.high)

    def mode(self) -> jax.Array:
        return jnp.clip(self.loc, self.low, self.high)


@struct.dataclass
class Categorical:
    r"""Categorical over the last axis of `logits`.

        log p(a) = logits_a - logsumexp(logits)
        H        = -Σ_a p_a log p_a
    """

    logits: jax.Array

    @property
    def log_probs(self) -> jax.Array:
        return jax.nn.log_softmax(self.logits, axis=-1)

    def sample(self, key) -> jax.Array:
        return jax.random.categorical(key, self.logits, axis=-1)

    def log_prob(self, action) -> jax.Array:
        action = jnp.asarray(action).astype(jnp.int32)
        return jnp.take_along_axis(self.log_probs, action[..., None], axis=-1)[..., 0]

    def entropy(self) -> jax.Array:
        log_p = self.log_probs
        return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)

    def mode(self) -> jax.Array:
        return jnp.argmax(self.logits, axis=-1)
