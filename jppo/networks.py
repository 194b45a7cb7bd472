"""Flax NNX actor and critic MLPs.

An actor maps observations `[..., obs]` to a distribution (`jppo.distributions`); a critic maps
them to values `[...]`. Parameters are float32 by default and float64 when `jax_enable_x64` is on.
Initialisation follows common PPO practice: orthogonal weights (gain √2 in hidden layers, 0.01 on
the policy head, 1 on the value head) and zero biases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jppo.distributions import Categorical, Normal


def default_float():
    """float64 when jax_enable_x64 is on, else float32."""
    return jnp.asarray(0.0).dtype


def _linear(n_in: int, n_out: int, gain: float, rngs: nnx.Rngs) -> nnx.Linear:
    dtype = default_float()
    return nnx.Linear(
        n_in,
        n_out,
        kernel_init=nnx.initializers.orthogonal(gain),
        bias_init=nnx.initializers.zeros_init(),
        dtype=dtype,
        param_dtype=dtype,
        rngs=rngs,
    )


class MLP(nnx.Module):
    """Hidden layers with an activation, then a linear output layer."""

    def __init__(self, sizes: Sequence[int], *, out_gain: float, rngs: nnx.Rngs, activation=jnp.tanh):
        self.layers = nnx.List(
            [
                _linear(a, b, out_gain if i == len(sizes) - 2 else math.sqrt(2), rngs)
                for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))
            ]
        )
        self.activation = activation

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


class GaussianActor(nnx.Module):
    """π(a|s) = N(MLP(s), exp(log_std)²), with a state-independent learned `log_std`."""

    def __init__(self, obs_size: int, action_size: int, hidden=(64, 64), *, rngs: nnx.Rngs, init_log_std=0.0):
        self.mean = MLP([obs_size, *hidden, action_size], out_gain=0.01, rngs=rngs)
        self.log_std = nnx.Param(jnp.full((action_size,), init_log_std, default_float()))

    def __call__(self, obs) -> Normal:
        loc = self.mean(obs)
        return Normal(loc, jnp.broadcast_to(jnp.exp(self.log_std[...]), loc.shape))


class CategoricalActor(nnx.Module):
    """π(a|s) = softmax(MLP(s))."""

    def __init__(self, obs_size: int, num_actions: int, hidden=(64, 64), *, rngs: nnx.Rngs):
        self.logits = MLP([obs_size, *hidden, num_actions], out_gain=0.01, rngs=rngs)

    def __call__(self, obs) -> Categorical:
        return Categorical(self.logits(obs))


class Critic(nnx.Module):
    """V(s) = MLP(s), one value per observation."""

    def __init__(self, obs_size: int, hidden=(64, 64), *, rngs: nnx.Rngs):
        self.value = MLP([obs_size, *hidden, 1], out_gain=1.0, rngs=rngs)

    def __call__(self, obs) -> jax.Array:
        return self.value(obs)[..., 0]
