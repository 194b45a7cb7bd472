"""L2T's actor and critic (`metaevobox/baseline/metabbo/l2t.py`) in NNX, with MetaBox's call
conventions and torch names (`linear1`, `linear2`, `mu`, `sigma`; the critic's `linear1..3`).

L2T's sizes come from its multi-task suite: with `task_cnt` tasks (cec2017mto 2, augmented-wcci2020
10, wcci2020 50) the state has n_state = 7·task_cnt + 1 entries and the action n_action = 3·task_cnt.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jppo.networks import MLP, bounded_normal
from jppo.metabbo.networks.acting import chosen_action
from jppo.metabbo.networks.layers import torch_linear

L2T_MIN_SIGMA, L2T_MAX_SIGMA = 0.05, 0.15  # the actor's private __min_sigma, __max_sigma


class L2TActor(nnx.Module):
    r"""L2T's actor (`l2t.Actor(n_state, n_action, hidden_dim=64)`): a tanh trunk and two linear heads.
    On x [B, n_state]:

        h = tanh(W₂ tanh(W₁x + b₁) + b₂)
        μ = (tanh(W_μh + b_μ) + 1)/2,  σ = (tanh(W_σh + b_σ) + 1)/2 · (0.15 - 0.05) + 0.05
        a' ~ N(μ, σ) (or the given fixed_action),  log π = Σ_i log N(a'_i; μ_i, σ_i) → [B]
        action = clamp(a', 0, 1),  entropy = ½ + ½ log 2π + log σ_i → [B, n_action]

    `actor(x, fixed_action=None, *, key)` → `(action, log_prob, entropy)` always (L2T's actor takes no
    `require_entropy=`). As MetaBox's, the log-probability is that of the *unclamped* draw, and the
    returned action is clamped. `distribution(x)` is the `ClampedNormal` whose samples are the clamped
    actions, scored where they land (what `compat.agents.L2T` acts with).
    """

    def __init__(self, n_state: int, n_action: int, hidden_dim: int = 64, *, rngs: nnx.Rngs):
        self.trunk = MLP([n_state, hidden_dim, hidden_dim], activation=["Tanh", "Tanh"], init="torch", rngs=rngs)
        self.mu = torch_linear(hidden_dim, n_action, rngs=rngs)
        self.sigma = torch_linear(hidden_dim, n_action, rngs=rngs)

    def _heads(self, x):
        h = self.trunk(x)
        return self.mu(h), self.sigma(h)

    def distribution(self, x):
        """π(·|x) with clamped samples (`ClampedNormal` on [0, 1])."""
        return bounded_normal(*self._heads(x), L2T_MIN_SIGMA, L2T_MAX_SIGMA, clamp=True)

    def __call__(self, x, fixed_action=None, *, key=None):
        dist = bounded_normal(*self._heads(x), L2T_MIN_SIGMA, L2T_MAX_SIGMA, clamp=False)
        draw = chosen_action(dist, fixed_action, key, shape=dist.loc.shape, actor=type(self).__name__)
        return jnp.clip(draw, 0.0, 1.0), dist.log_prob(draw), dist.entropy_per_dim()

    def _torch_layout(self):
        return [("linear1", self.trunk.layers[0]), ("linear2", self.trunk.layers[1]), ("mu", self.mu),
                ("sigma", self.sigma)]


class L2TCritic(nnx.Module):
    """L2T's critic (`l2t.Critic(n_state, hidden_dim=64)`): v = W₃ tanh(W₂ tanh(W₁x + b₁) + b₂) + b₃,
    [B, 1]; returns `(stop_gradient(v), v)` in that order (MetaBox's). Its constructor's first
    `linear1`/`linear2` (a 64 → 1 head with ReLU) are overwritten before use, so the state_dict has
    `linear1` [64, n_state], `linear2` [64, 64], `linear3` [1, 64]."""

    def __init__(self, n_state: int, hidden_dim: int = 64, *, rngs: nnx.Rngs):
        self.value_head = MLP([n_state, hidden_dim, hidden_dim, 1], activation="Tanh", init="torch", rngs=rngs)

    def __call__(self, x):
        v = self.value_head(x)
        return jax.lax.stop_gradient(v), v

    def _torch_layout(self):
        return [(f"linear{i + 1}", layer) for i, layer in enumerate(self.value_head.layers)]
