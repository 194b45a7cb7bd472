"""RLDAS's actor and critic (`metaevobox/baseline/metabbo/rldas.py`) in NNX, with MetaBox's call
conventions (`fix_action=`, critic `(detached, value)`) and torch names (`embedders.0.0.weight`, ...)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jppo.envs.base import default_float
from jppo.metabbo.networks.acting import chosen_action, torch_categorical
from jppo.metabbo.networks.layers import torch_linear


def rldas_observation(obs, optimizer_num: int):
    """`(feature [B, feature_dim], moves [B, 2·optimizer_num, dim])` from RLDAS's observation: a
    numpy object array [B, 1 + 2·optimizer_num] (row b: the feature list, then the mean best and
    worst move of each optimizer) as MetaBox's env returns, or an already split pair."""
    if isinstance(obs, (tuple, list)) and len(obs) == 2:
        feature, moves = jnp.asarray(obs[0]), jnp.asarray(obs[1])
    else:
        obs = np.asarray(obs, dtype=object) if not isinstance(obs, np.ndarray) else obs
        if obs.ndim != 2 or obs.shape[1] != 1 + 2 * optimizer_num:
            raise ValueError(f"obs must be an object array [batch, {1 + 2 * optimizer_num}] (feature, then "
                             f"{2 * optimizer_num} moves) or a pair (feature, moves), got shape {obs.shape}")
        dtype = default_float()
        feature = jnp.asarray(np.array([np.asarray(f, float) for f in obs[:, 0]]), dtype)
        moves = jnp.asarray(np.stack([np.array([np.asarray(m, float) for m in obs[:, i + 1]])
                                      for i in range(2 * optimizer_num)], axis=1), dtype)
    if feature.ndim != 2 or moves.ndim != 3 or moves.shape[1] != 2 * optimizer_num:
        raise ValueError(f"feature must be [batch, feature_dim] and moves [batch, {2 * optimizer_num}, dim], got "
                         f"{tuple(feature.shape)} and {tuple(moves.shape)}")
    return feature, moves


class _RLDASTrunk(nnx.Module):
    r"""Shared layout of RLDAS's actor and critic:

        m_j = relu(L₂ʲ(relu(L₁ʲ(move_j))))  (j < 2K),    z = tanh(L_f([feature, m]))      [B, 64]
        out = L₂(tanh(L₁(z)))                                                           [B, n_out]
    """

    def __init__(self, dim, optimizer_num, feature_dim, n_out, *, rngs: nnx.Rngs):
        self.optimizer_num, self.feature_dim, self.dim = optimizer_num, feature_dim, dim
        self.embedders = nnx.List([nnx.List([torch_linear(dim, 64, rngs=rngs), torch_linear(64, 1, rngs=rngs)])
                                   for _ in range(2 * optimizer_num)])
        self.embedder_final = torch_linear(feature_dim + 2 * optimizer_num, 64, rngs=rngs)
        self.model = nnx.List([torch_linear(64, 16, rngs=rngs), torch_linear(16, n_out, rngs=rngs)])

    def _logits(self, obs):
        feature, moves = rldas_observation(obs, self.optimizer_num)
        if feature.shape[-1] != self.feature_dim or moves.shape[-1] != self.dim:
            raise ValueError(f"feature must end with feature_dim = {self.feature_dim} and moves with dim = {self.dim}, "
                             f"got {tuple(feature.shape)} and {tuple(moves.shape)}")
        m = [jax.nn.relu(l2(jax.nn.relu(l1(moves[:, j])))) for j, (l1, l2) in enumerate(self.embedders)]
        z = jnp.tanh(self.embedder_final(jnp.concatenate([feature, *m], axis=-1)))
        return self.model[1](jnp.tanh(self.model[0](z)))

    def _torch_layout(self):
        return [*((f"embedders.{j}.{k}", lin) for j, pair in enumerate(self.embedders) for k, lin in zip((0, 2), pair)),
                ("embedder_final.0", self.embedder_final), ("model.0", self.model[0]), ("model.2", self.model[1])]


class RLDASActor(_RLDASTrunk):
    r"""RLDAS's actor (`rldas.Actor(dim, optimizer_num, feature_dim, device)`; `device` is ignored):
    p = softmax(trunk(obs)) over the optimizer_num algorithms, then torch's `Categorical(probs=p)`:

        p̂ = p / Σp,   log π(a) = log clamp(p̂_a, ε, 1 - ε),   H = -Σ_a p̂_a log clamp(p̂_a, ε, 1 - ε)

    `actor(obs, fix_action=None, require_entropy=False, *, key)` → `(action [B], log_prob [B],
    entropy [B])` or `(action, log_prob)`.
    """

    def __init__(self, dim, optimizer_num, feature_dim, device=None, *, rngs: nnx.Rngs):
        super().__init__(dim, optimizer_num, feature_dim, optimizer_num, rngs=rngs)

    def distribution(self, obs):
        """torch's Categorical(probs) over the optimizer_num algorithms (`torch_categorical`)."""
        return torch_categorical(jax.nn.softmax(self._logits(obs), axis=1))

    def __call__(self, obs, fix_action=None, require_entropy=False, *, key=None):
        dist = self.distribution(obs)
        action = chosen_action(dist, fix_action, key, shape=dist.probs.shape[:1], actor="RLDASActor",
                               keyword="fix_action")
        log_prob = dist.log_prob(action)
        return (action, log_prob, dist.entropy()) if require_entropy else (action, log_prob)


class RLDASCritic(_RLDASTrunk):
    """RLDAS's critic: v = trunk(obs)[:, 0] → `(stop_gradient(v), v)`, both [B]."""

    def __init__(self, dim, optimizer_num, feature_dim, device=None, *, rngs: nnx.Rngs):
        super().__init__(dim, optimizer_num, feature_dim, 1, rngs=rngs)

    def __call__(self, obs):
        v = self._logits(obs)[:, 0]
        return jax.lax.stop_gradient(v), v
