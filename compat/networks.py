"""NNX networks with MetaBox's call contract, and a loader for torch MLP weights.

Contract (as MetaBox's torch networks):
  actor(state, fixed_action=None, require_entropy=False, *, key=None) -> (action, log_prob, entropy)
      samples with `key` when `fixed_action` is None, else evaluates `fixed_action`;
  critic(state) -> value, or a pair whose last element is the value.
The agent owns the randomness and passes `key`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jppo.distributions import Normal
from jppo.networks import default_float


class MLP(nnx.Module):
    """Linear layers with ReLU between them (MetaBox's `MLP` with 'ReLU' activations)."""

    def __init__(self, sizes, *, rngs: nnx.Rngs):
        dtype = default_float()
        self.layers = nnx.List([nnx.Linear(a, b, dtype=dtype, param_dtype=dtype, rngs=rngs)
                                for a, b in zip(sizes[:-1], sizes[1:])])

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = jax.nn.relu(layer(x))
        return self.layers[-1](x)


class ClampedGaussianActor(nnx.Module):
    r"""RLEPSO's actor: μ = (tanh(f_μ(s)) + 1)/2, σ = (tanh(f_σ(s)) + 1)/2 · (σ_max - σ_min) + σ_min,
    action = clamp(a ~ N(μ, σ), 0, 1), log π = Σ_i log N(action_i; μ_i, σ_i).
    """

    def __init__(self, feature_dim, action_dim, hidden=(64, 32), *, rngs, min_sigma=0.01, max_sigma=0.7):
        self.mu_net = MLP([feature_dim, *hidden, action_dim], rngs=rngs)
        self.sigma_net = MLP([feature_dim, *hidden, action_dim], rngs=rngs)
        self.min_sigma, self.max_sigma = min_sigma, max_sigma

    def policy(self, state) -> Normal:
        mu = (jnp.tanh(self.mu_net(state)) + 1.0) / 2.0
        sigma = (jnp.tanh(self.sigma_net(state)) + 1.0) / 2.0 * (self.max_sigma - self.min_sigma) + self.min_sigma
        return Normal(mu, sigma)

    def choose(self, policy: Normal, key):
        return policy.clamped_sample(key, 0.0, 1.0)

    def __call__(self, state, fixed_action=None, require_entropy=False, *, key=None):
        policy = self.policy(state)
        action = self.choose(policy, key) if fixed_action is None else fixed_action
        entropy = policy.entropy() if require_entropy else None
        return action, policy.log_prob(action), entropy


class Critic(nnx.Module):
    """RLEPSO's critic: returns `(value detached, value)`."""

    def __init__(self, feature_dim, hidden=(16, 8), *, rngs):
        self.value_head = MLP([feature_dim, *hidden, 1], rngs=rngs)

    def __call__(self, state):
        value = self.value_head(state)[..., 0]
        return jax.lax.stop_gradient(value), value


def load_torch_state_dict(mlp: MLP, state_dict, prefix: str = "") -> None:
    """Copy a torch MLP's Linear weights (in order of appearance, `*.weight` / `*.bias` under
    `prefix`) into an NNX `MLP` of matching sizes. Raises ValueError on a count or shape mismatch."""
    items = [(k, v) for k, v in state_dict.items() if k.startswith(prefix)]
    weights = [np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for k, v in items if k.endswith("weight")]
    biases = [np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for k, v in items if k.endswith("bias")]
    if len(weights) != len(mlp.layers) or len(biases) != len(mlp.layers):
        raise ValueError(f"state_dict has {len(weights)} weight / {len(biases)} bias tensors under {prefix!r}, "
                         f"the MLP has {len(mlp.layers)} layers")
    for i, (layer, w, b) in enumerate(zip(mlp.layers, weights, biases)):
        if w.T.shape != layer.kernel[...].shape or b.shape != layer.bias[...].shape:
            raise ValueError(f"layer {i}: torch weight {w.shape} / bias {b.shape} do not fit kernel "
                             f"{layer.kernel[...].shape} (in, out)")
        layer.kernel[...] = jnp.asarray(w.T, layer.kernel[...].dtype)
        layer.bias[...] = jnp.asarray(b, layer.bias[...].dtype)
