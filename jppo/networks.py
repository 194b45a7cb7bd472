"""Flax NNX layers, the MLP, and the actor and critic families every trainer and port builds on.

An actor maps observations `[..., obs]` to a distribution (`jppo.distributions`); a critic maps
them to values `[...]`. Parameters are float32 by default and float64 when `jax_enable_x64` is on.
Initialisation (`init`) is 'orthogonal' by default, common PPO practice: orthogonal weights (gain √2
in hidden layers, 0.01 on the policy head, 1 on the value head) and zero biases; or 'torch', torch's
`nn.Linear` default that MetaBox's agents start from: W, b ~ U(-1/√fan_in, 1/√fan_in) in every layer.

MetaBox's networks (`jppo.metabbo.networks`) are these modules under MetaBox's call conventions and
torch parameter names; `_torch_layout()` names a module's tensors as its torch twin does.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jppo.distributions import Categorical, ClampedNormal, Normal
from jppo.envs.base import default_float  # one dtype rule for envs and networks

# ---------------------------------------------------------------------------------------------
# initialisation


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


class Linear(nnx.Linear):
    """`nnx.Linear` (y = x W + b over the last axis) that computes an input with several leading axes
    as one [rows, n_in] matrix: the same products, but XLA's CPU gradient of W through a product with
    several leading axes runs 2-3x slower than through the same rows as one matrix."""

    def __call__(self, x):
        if x.ndim <= 2:
            return super().__call__(x)
        return super().__call__(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], self.out_features)


def linear(n_in: int, n_out: int, *, rngs: nnx.Rngs, init: str = "orthogonal", gain: float = 1.0,
           use_bias: bool = True) -> nnx.Linear:
    """y = x W + b, W [n_in, n_out]: 'orthogonal' (W orthogonal × `gain`, b = 0) or 'torch' (W, b ~
    U(±1/√n_in), `gain` unused), in the default float dtype."""
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    dtype = default_float()
    kernel_init, bias_init = ((orthogonal(gain), nnx.initializers.zeros_init()) if init == "orthogonal"
                              else (torch_uniform(n_in), torch_uniform(n_in)))
    return Linear(n_in, n_out, use_bias=use_bias, kernel_init=kernel_init, bias_init=bias_init, dtype=dtype,
                  param_dtype=dtype, rngs=rngs)


# ---------------------------------------------------------------------------------------------
# activations and the MLP


def _softmax_implicit_dim(x):
    """`nn.Softmax()` without `dim`: torch picks dim 0 for 0-, 1- and 3-D inputs, else dim 1."""
    return jax.nn.softmax(x, axis=0 if x.ndim in (0, 1, 3) else 1)


def _softplus(x):
    """`nn.Softplus()`: log(1 + eˣ), and x itself above torch's threshold 20."""
    return jnp.where(x > 20, x, jnp.log1p(jnp.exp(jnp.minimum(x, 20))))


# `nn.<name>()` with default arguments. An MLP that names its activations this way pickles (jax's
# functions do not) and reads MetaBox's layer configs as they are.
ACTIVATIONS: dict[str, Callable] = {
    "ReLU": jax.nn.relu,
    "LeakyReLU": lambda x: jax.nn.leaky_relu(x, 0.01),
    "Sigmoid": jax.nn.sigmoid,
    "Tanh": jnp.tanh,
    "ELU": jax.nn.elu,
    "SELU": jax.nn.selu,
    "GELU": lambda x: jax.nn.gelu(x, approximate=False),
    "SiLU": jax.nn.silu,
    "Mish": lambda x: x * jnp.tanh(_softplus(x)),
    "Softplus": _softplus,
    "Softsign": jax.nn.soft_sign,
    "Hardtanh": lambda x: jnp.clip(x, -1.0, 1.0),
    "ReLU6": jax.nn.relu6,
    "LogSigmoid": jax.nn.log_sigmoid,
    "Tanhshrink": lambda x: x - jnp.tanh(x),
    "Identity": lambda x: x,
    "Softmax": _softmax_implicit_dim,
}

Activation = str | Callable | None  # a name of ACTIVATIONS, a function, or None (none)


def _check_activation(activation: Activation, where: str) -> Activation:
    if isinstance(activation, str) and activation not in ACTIVATIONS:
        raise ValueError(f"{where} = {activation!r} is not one of {sorted(ACTIVATIONS)} or 'None'")
    return activation


class MLP(nnx.Module):
    r"""y = L_n(… φ_1(D_1(L_1(x))) …): Linear layers L_i, each followed by dropout D_i and its
    activation φ_i.

    `activation` is one activation for the hidden layers (none after the last) or a sequence with one
    per layer (None: none); each a name of `ACTIVATIONS` or a function. `drop_out` is one rate for
    every layer or one per layer (rate 0: none; `module.eval()` turns dropout off). `init` as `linear`,
    `out_gain` the orthogonal gain of the last layer (√2 in the others). `MLP.from_config` builds
    MetaBox's config-driven MLP; its torch names are MetaBox's, `net.layer{i}-linear.{weight,bias}`.
    """

    def __init__(self, sizes: Sequence[int], *, activation: Activation | Sequence[Activation], rngs: nnx.Rngs,
                 init: str = "orthogonal", out_gain: float = 1.0, drop_out: float | Sequence[float] = 0.0):
        n = len(sizes) - 1
        if isinstance(activation, (str, type(None))) or callable(activation):
            activation = [activation] * (n - 1) + [None]
        rates = [drop_out] * n if isinstance(drop_out, (int, float)) else list(drop_out)
        if len(activation) != n or len(rates) != n:
            raise ValueError(f"{n} layer(s) need {n} activations and dropout rates, got {len(activation)} and "
                             f"{len(rates)}")
        self.activations = tuple(_check_activation(a, f"activation[{i}]") for i, a in enumerate(activation))
        self.layers = nnx.List([linear(a, b, rngs=rngs, init=init, gain=out_gain if i == n - 1 else math.sqrt(2))
                                for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))])
        self.dropouts = nnx.List([nnx.Dropout(r, rngs=rngs if r > 0 else None) for r in rates])

    @classmethod
    def from_config(cls, config: Sequence[Mapping], *, rngs: nnx.Rngs) -> MLP:
        """MetaBox's `MLP(config)`: for each dict `{'in', 'out', 'drop_out', 'activation'}`,
        Linear(in, out) → Dropout(drop_out) → nn.<activation>() (none when 'None'), torch's init."""
        for i, c in enumerate(config):
            missing = {"in", "out", "drop_out", "activation"} - set(c)
            if missing:
                raise ValueError(f"config[{i}] lacks {sorted(missing)}; each layer needs 'in', 'out', 'drop_out', "
                                 f"'activation'")
            if i and c["in"] != config[i - 1]["out"]:
                raise ValueError(f"config[{i}]['in'] = {c['in']} does not match config[{i - 1}]['out'] = "
                                 f"{config[i - 1]['out']}")
        activations = [None if c["activation"] == "None" else _check_activation(c["activation"],
                                                                                 f"config[{i}]['activation']")
                       for i, c in enumerate(config)]
        return cls([config[0]["in"], *(c["out"] for c in config)], activation=activations, rngs=rngs, init="torch",
                   drop_out=[c["drop_out"] for c in config])

    def __call__(self, x):
        for layer, dropout, activation in zip(self.layers, self.dropouts, self.activations):
            x = dropout(layer(x))
            if activation is not None:
                x = (ACTIVATIONS[activation] if isinstance(activation, str) else activation)(x)
        return x

    def _torch_layout(self):
        return [(f"net.layer{i}-linear", layer) for i, layer in enumerate(self.layers)]


# ---------------------------------------------------------------------------------------------
# actors and critic


class GaussianActor(nnx.Module):
    """π(a|s) = N(MLP(s), exp(log_std)²), with a state-independent learned `log_std`."""

    def __init__(self, obs_size: int, action_size: int, hidden=(64, 64), *, rngs: nnx.Rngs, init_log_std=0.0,
                 activation="Tanh", init: str = "orthogonal"):
        self.mean = MLP([obs_size, *hidden, action_size], out_gain=0.01, rngs=rngs, activation=activation, init=init)
        self.log_std = nnx.Param(jnp.full((action_size,), init_log_std, default_float()))

    def __call__(self, obs) -> Normal:
        loc = self.mean(obs)
        return Normal(loc, jnp.broadcast_to(jnp.exp(self.log_std[...]), loc.shape))


def bounded_normal(mean_out, spread_out, min_sigma: float, max_sigma: float, clamp: bool = True) -> Normal:
    r"""The Gaussian head of MetaBox's continuous actors, for actions in [0, 1]:

        μ = (tanh(mean_out) + 1) / 2,    σ = (tanh(spread_out) + 1) / 2 · (σ_max - σ_min) + σ_min

    `clamp`: samples clamped to [0, 1] are the actions (`ClampedNormal`, MetaBox's); else the raw
    sample (`Normal`, exact log-density) for an environment that clips its actions itself.
    """
    loc = (jnp.tanh(mean_out) + 1.0) / 2.0
    scale = (jnp.tanh(spread_out) + 1.0) / 2.0 * (max_sigma - min_sigma) + min_sigma
    return ClampedNormal(loc, scale, 0.0, 1.0) if clamp else Normal(loc, scale)


class BoundedGaussianActor(nnx.Module):
    r"""π(a|s) = `bounded_normal(f_μ(s), f_σ(s))`, two MLPs `mean` (f_μ) and `spread` (f_σ).

    With `clamp` (MetaBox's RLEPSO) the action is the sample clamped to [0, 1] and its log-density is
    taken at the clamped value. That density is biased: a clamped sample piles up at 0 and 1, where
    ∂ log p/∂σ = (z² - 1)/σ is large, so the σ-score has a nonzero mean (about -0.7 per dimension at
    μ = 0.5, σ = 0.35) and the policy gradient moves σ with the mean advantage. `clamp=False` keeps
    the raw sample as the action (exact log-density), for an environment that clips its actions.
    """

    def __init__(self, obs_size: int, action_size: int, hidden=(64, 32), *, rngs: nnx.Rngs, activation="ReLU",
                 min_sigma: float = 0.01, max_sigma: float = 0.7, clamp: bool = True, init: str = "orthogonal"):
        sizes = [obs_size, *hidden, action_size]
        self.mean = MLP(sizes, out_gain=0.01, rngs=rngs, activation=activation, init=init)
        self.spread = MLP(sizes, out_gain=0.01, rngs=rngs, activation=activation, init=init)
        self.min_sigma, self.max_sigma, self.clamp = min_sigma, max_sigma, clamp

    def distribution(self, obs) -> Normal:
        return bounded_normal(self.mean(obs), self.spread(obs), self.min_sigma, self.max_sigma, self.clamp)

    def __call__(self, obs) -> Normal:
        return self.distribution(obs)


class CategoricalActor(nnx.Module):
    """π(a|s) = softmax(MLP(s))."""

    def __init__(self, obs_size: int, num_actions: int, hidden=(64, 64), *, rngs: nnx.Rngs, activation="Tanh",
                 init: str = "orthogonal"):
        self.logits = MLP([obs_size, *hidden, num_actions], out_gain=0.01, rngs=rngs, activation=activation, init=init)

    def __call__(self, obs) -> Categorical:
        return Categorical(self.logits(obs))


class Critic(nnx.Module):
    """V(s) = MLP(s), one value per observation."""

    def __init__(self, obs_size: int, hidden=(64, 64), *, rngs: nnx.Rngs, activation="Tanh",
                 init: str = "orthogonal"):
        self.value = MLP([obs_size, *hidden, 1], out_gain=1.0, rngs=rngs, activation=activation, init=init)

    def __call__(self, obs) -> jax.Array:
        return self.value(obs)[..., 0]
