"""Flax NNX actor and critic MLPs.

An actor maps observations `[..., obs]` to a distribution (`jppo.distributions`); a critic maps
them to values `[...]`. Parameters are float32 by default and float64 when `jax_enable_x64` is on.
Initialisation (`init`) is 'orthogonal' by default, common PPO practice: orthogonal weights (gain √2
in hidden layers, 0.01 on the policy head, 1 on the value head) and zero biases; or 'torch', torch's
`nn.Linear` default that MetaBox's agents start from: W, b ~ U(-1/√fan_in, 1/√fan_in) in every layer.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jppo.distributions import Categorical, ClampedNormal, Normal
from jppo.envs.base import default_float  # one dtype rule for envs and networks


def orthogonal(gain: float = 1.0):
    """An orthogonal initializer (the distribution of `jax.nn.initializers.orthogonal`) that needs
    no LAPACK call: Gram-Schmidt, applied twice for stability, on a Gaussian matrix.

    Why not jax's own: under `vmap` (seeds) jaxlib runs a batched QR that parallelises over the
    CPU thread pool and waits inside it; two such QRs at once (actor and critic) deadlock XLA on a
    2-core machine (jaxlib 0.10.2). Plain XLA ops cannot.
    """

    def init(key, shape, dtype=jnp.float32):
        return _orthogonal(key, tuple(shape), jnp.dtype(dtype), gain)

    return init


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _orthogonal(key, shape, dtype, gain):
    """Compiled once per (shape, dtype, gain): called eagerly, a scan would be traced and compiled
    at every layer of every network built."""
    n_rows, n_cols = math.prod(shape[:-1]), shape[-1]
    tall = (max(n_rows, n_cols), min(n_rows, n_cols))
    a = jax.random.normal(key, tall, dtype)

    def add_column(q, j):
        v = a[:, j]
        v = v - q @ (q.T @ v)
        v = v - q @ (q.T @ v)  # second pass: classical Gram-Schmidt twice is as stable as Householder
        return q.at[:, j].set(v / jnp.linalg.norm(v)), None

    q, _ = jax.lax.scan(add_column, jnp.zeros_like(a), jnp.arange(tall[1]))
    q = q if n_rows >= n_cols else q.T
    return (gain * q).reshape(shape).astype(dtype)


INITS = ("orthogonal", "torch")


def torch_uniform(n_in: int):
    """torch's `nn.Linear` default for weights and biases alike: U(-1/√n_in, 1/√n_in) (kaiming_uniform
    with a = √5, and the bias rule)."""
    bound = 1.0 / math.sqrt(n_in) if n_in > 0 else 0.0

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _linear(n_in: int, n_out: int, gain: float, rngs: nnx.Rngs, init: str = "orthogonal") -> nnx.Linear:
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    dtype = default_float()
    kernel_init, bias_init = ((orthogonal(gain), nnx.initializers.zeros_init()) if init == "orthogonal"
                              else (torch_uniform(n_in), torch_uniform(n_in)))
    return nnx.Linear(n_in, n_out, kernel_init=kernel_init, bias_init=bias_init, dtype=dtype, param_dtype=dtype,
                      rngs=rngs)


class MLP(nnx.Module):
    """Hidden layers with an activation, then a linear output layer; `out_gain` is the orthogonal
    gain of the output layer (unused with init='torch')."""

    def __init__(self, sizes: Sequence[int], *, out_gain: float, rngs: nnx.Rngs, activation=jnp.tanh,
                 init: str = "orthogonal"):
        self.layers = nnx.List(
            [
                _linear(a, b, out_gain if i == len(sizes) - 2 else math.sqrt(2), rngs, init)
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

    def __init__(self, obs_size: int, action_size: int, hidden=(64, 64), *, rngs: nnx.Rngs, init_log_std=0.0,
                 activation=jnp.tanh, init: str = "orthogonal"):
        self.mean = MLP([obs_size, *hidden, action_size], out_gain=0.01, rngs=rngs, activation=activation, init=init)
        self.log_std = nnx.Param(jnp.full((action_size,), init_log_std, default_float()))

    def __call__(self, obs) -> Normal:
        loc = self.mean(obs)
        return Normal(loc, jnp.broadcast_to(jnp.exp(self.log_std[...]), loc.shape))


class BoundedGaussianActor(nnx.Module):
    r"""MetaBox's RLEPSO actor, for actions in [0, 1]: two MLPs give

        μ = (tanh(f_μ(s)) + 1) / 2,    σ = (tanh(f_σ(s)) + 1) / 2 · (σ_max - σ_min) + σ_min

    and actions are N(μ, σ²) samples clamped to [0, 1] (`ClampedNormal`), their log-density taken at
    the clamped value, as MetaBox does. That density is biased: a clamped sample piles up at 0 and 1,
    where ∂ log p/∂σ = (z² - 1)/σ is large, so the σ-score has a nonzero mean (about -0.7 per
    dimension at μ = 0.5, σ = 0.35) and the policy gradient moves σ with the mean advantage.
    `clamp=False` keeps the raw sample as the action (a `Normal`, exact log-density), for an
    environment that clips its actions itself.
    """

    def __init__(self, obs_size: int, action_size: int, hidden=(64, 32), *, rngs: nnx.Rngs, activation=jax.nn.relu,
                 min_sigma: float = 0.01, max_sigma: float = 0.7, clamp: bool = True, init: str = "orthogonal"):
        sizes = [obs_size, *hidden, action_size]
        self.mean = MLP(sizes, out_gain=0.01, rngs=rngs, activation=activation, init=init)
        self.spread = MLP(sizes, out_gain=0.01, rngs=rngs, activation=activation, init=init)
        self.min_sigma, self.max_sigma, self.clamp = min_sigma, max_sigma, clamp

    def __call__(self, obs) -> Normal:
        loc = (jnp.tanh(self.mean(obs)) + 1.0) / 2.0
        scale = (jnp.tanh(self.spread(obs)) + 1.0) / 2.0 * (self.max_sigma - self.min_sigma) + self.min_sigma
        return ClampedNormal(loc, scale, 0.0, 1.0) if self.clamp else Normal(loc, scale)


class CategoricalActor(nnx.Module):
    """π(a|s) = softmax(MLP(s))."""

    def __init__(self, obs_size: int, num_actions: int, hidden=(64, 64), *, rngs: nnx.Rngs, activation=jnp.tanh,
                 init: str = "orthogonal"):
        self.logits = MLP([obs_size, *hidden, num_actions], out_gain=0.01, rngs=rngs, activation=activation, init=init)

    def __call__(self, obs) -> Categorical:
        return Categorical(self.logits(obs))


class Critic(nnx.Module):
    """V(s) = MLP(s), one value per observation."""

    def __init__(self, obs_size: int, hidden=(64, 64), *, rngs: nnx.Rngs, activation=jnp.tanh,
                 init: str = "orthogonal"):
        self.value = MLP([obs_size, *hidden, 1], out_gain=1.0, rngs=rngs, activation=activation, init=init)

    def __call__(self, obs) -> jax.Array:
        return self.value(obs)[..., 0]
