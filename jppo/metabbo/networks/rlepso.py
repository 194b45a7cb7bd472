"""RLEPSO's actor and critic (`metaevobox/baseline/metabbo/rlepso.py`) in NNX, with MetaBox's call
conventions and torch names (`_Actor__mu_net.net.layer0-linear.weight`, ...: private attributes)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jppo.networks import MLP, BoundedGaussianActor
from jppo.metabbo.networks.acting import chosen_action


class RLEPSOActor(BoundedGaussianActor):
    r"""RLEPSO's actor (`rlepso.Actor(config)` with config.feature_dim, action_dim, max_sigma,
    min_sigma): the clamped `BoundedGaussianActor` with ReLU MLPs `hidden` (MetaBox's 64-32) and
    torch's init, called as MetaBox calls it. On x [B, feature_dim]:

        μ = (tanh(f_μ(x)) + 1)/2,  σ = (tanh(f_σ(x)) + 1)/2 · (σ_max - σ_min) + σ_min
        a = clamp(a' ~ N(μ, σ), 0, 1),  log π(a) = Σ_i log N(a_i; μ_i, σ_i) → [B];  entropy [B, A]

    `actor(x, fixed_action=None, require_entropy=False, *, key)` → `(action, log_prob, entropy)` with
    require_entropy, else `(action, log_prob)`; `distribution(x)` is the `ClampedNormal` itself.
    """

    def __init__(self, feature_dim, action_dim, max_sigma=0.7, min_sigma=0.01, *, hidden=(64, 32), rngs: nnx.Rngs):
        super().__init__(feature_dim, action_dim, hidden, rngs=rngs, activation="ReLU", min_sigma=min_sigma,
                         max_sigma=max_sigma, clamp=True, init="torch")

    def __call__(self, x, fixed_action=None, require_entropy=False, *, key=None):
        dist = self.distribution(x)
        action = chosen_action(dist, fixed_action, key, shape=dist.loc.shape, actor=type(self).__name__)
        log_prob = dist.log_prob(action)
        return (action, log_prob, dist.entropy_per_dim()) if require_entropy else (action, log_prob)

    def _torch_layout(self):
        return [("_Actor__mu_net", self.mean), ("_Actor__sigma_net", self.spread)]


class RLEPSOCritic(nnx.Module):
    """RLEPSO's critic: v = squeeze(MLP(x)), ReLU MLP feature_dim → `hidden` (MetaBox's 16-8) → 1;
    returns `(stop_gradient(v), v)`. torch names `_Critic__value_head.net.layer{i}-linear.*`."""

    def __init__(self, feature_dim, *, hidden=(16, 8), rngs: nnx.Rngs):
        self.value_head = MLP([feature_dim, *hidden, 1], activation="ReLU", init="torch", rngs=rngs)

    def __call__(self, x):
        v = jnp.squeeze(self.value_head(x))
        return jax.lax.stop_gradient(v), v

    def _torch_layout(self):
        return [("_Critic__value_head", self.value_head)]
