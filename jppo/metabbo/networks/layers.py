"""MetaBox's networks (metaevobox 2.0.2) in Flax NNX, and a loader for their torch weights.

Ports of `metaevobox/baseline/metabbo/networks.py` (MLP, EmbeddingNet, Normalization,
MultiHeadAttention, MultiHeadCompat, MultiHeadEncoder, MultiHeadAttentionLayerforCritic,
PositionalEncoding) and of the actors and critics of GLEET, RLDAS and RLEPSO
(`baseline/metabbo/{gleet,rldas,rlepso}.py`): same arithmetic, same call conventions, same
initial distributions (torch `nn.Linear`: weight and bias U(±1/√fan_in); attention matrices
U[0, 1) as `torch.rand`; affine norms weight 1, bias 0). Parameters are float64 when
`jax_enable_x64` is on (MetaBox trains in float64), else float32.

`load_state_dict(module, state_dict)` copies a torch `state_dict()` (tensors or numpy arrays)
into any module here, under MetaBox's own names (`encoder.0.MHA_sublayer.MHA.W_query`,
`mu_net.net.layer0-linear.weight`, `_Actor__mu_net...`); `state_dict(module)` is its inverse.
Layouts: an `nn.Linear` weight [out, in] is the NNX kernel [in, out] transposed; attention
matrices keep torch's [n_heads, in, key_dim].

Sampling takes an explicit `key` (a `jax.random` key); samples carry no gradient, as
`torch.distributions.Normal.sample` (no reparameterisation).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jppo.distributions import ClampedNormal
from jppo.envs.base import default_float
from jppo.networks import torch_uniform

LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


# ---------------------------------------------------------------------------------------------
# initialisation and small pieces


def _uniform(low: float, high: float):
    """Initializer: U[low, high) of the requested shape and dtype."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, low, high)

    return init


def torch_linear(n_in: int, n_out: int, *, bias: bool = True, rngs: nnx.Rngs) -> nnx.Linear:
    """`nn.Linear(n_in, n_out, bias)` with torch's default initialisation, W, b ~ U(-1/√n_in, 1/√n_in)."""
    dtype = default_float()
    return nnx.Linear(n_in, n_out, use_bias=bias, kernel_init=torch_uniform(n_in), bias_init=torch_uniform(n_in),
                      dtype=dtype, param_dtype=dtype, rngs=rngs)


def _softmax_implicit_dim(x):
    """`nn.Softmax()` without `dim`: torch picks dim 0 for 0-, 1- and 3-D inputs, else dim 1."""
    return jax.nn.softmax(x, axis=0 if x.ndim in (0, 1, 3) else 1)


# nn.<name>() with default arguments, as MetaBox's MLP builds them by `eval('nn.' + name)()`.
ACTIVATIONS = {
    "ReLU": jax.nn.relu,
    "LeakyReLU": lambda x: jax.nn.leaky_relu(x, 0.01),
    "Sigmoid": jax.nn.sigmoid,
    "Tanh": jnp.tanh,
    "ELU": jax.nn.elu,
    "SELU": jax.nn.selu,
    "GELU": lambda x: jax.nn.gelu(x, approximate=False),
    "SiLU": jax.nn.silu,
    "Mish": lambda x: x * jnp.tanh(jnp.where(x > 20, x, jnp.log1p(jnp.exp(jnp.minimum(x, 20))))),
    "Softplus": lambda x: jnp.where(x > 20, x, jnp.log1p(jnp.exp(jnp.minimum(x, 20)))),  # threshold 20
    "Softsign": jax.nn.soft_sign,
    "Hardtanh": lambda x: jnp.clip(x, -1.0, 1.0),
    "ReLU6": jax.nn.relu6,
    "LogSigmoid": jax.nn.log_sigmoid,
    "Tanhshrink": lambda x: x - jnp.tanh(x),
    "Identity": lambda x: x,
    "Softmax": _softmax_implicit_dim,
}


def _check_input(name: str, x, ndim: int, last: int, layout: str):
    if x.ndim != ndim or x.shape[-1] != last:
        raise ValueError(f"{name} must have shape {layout} with last axis {last}, got {tuple(x.shape)}")


class _FeedForward(nnx.Module):
    """`nn.Sequential(Linear(d, h), ReLU, Linear(h, d))` when h > 0, else `Linear(d, d)`."""

    def __init__(self, embed_dim: int, hidden: int, *, rngs: nnx.Rngs):
        sizes = [embed_dim, hidden, embed_dim] if hidden > 0 else [embed_dim, embed_dim]
        self.layers = nnx.List([torch_linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])

    def __call__(self, x):
        if len(self.layers) == 1:
            return self.layers[0](x)
        return self.layers[1](jax.nn.relu(self.layers[0](x)))

    def _torch_layout(self):
        if len(self.layers) == 1:
            return [("", self.layers[0])]
        return [("0", self.layers[0]), ("2", self.layers[1])]


# ---------------------------------------------------------------------------------------------
# networks.py


class MLP(nnx.Module):
    """MetaBox's config-driven MLP: for each dict `{'in', 'out', 'drop_out', 'activation'}`,
    Linear(in, out) → Dropout(drop_out) → nn.<activation>() (none when 'None').

    torch names: `net.layer{i}-linear.weight`, `net.layer{i}-linear.bias`.
    """

    def __init__(self, config, *, rngs: nnx.Rngs):
        self.net_config = [dict(c) for c in config]
        for i, c in enumerate(self.net_config):
            missing = {"in", "out", "drop_out", "activation"} - set(c)
            if missing:
                raise ValueError(f"config[{i}] lacks {sorted(missing)}; each layer needs 'in', 'out', 'drop_out', "
                                 f"'activation'")
            if c["activation"] != "None" and c["activation"] not in ACTIVATIONS:
                raise ValueError(f"config[{i}]['activation'] = {c['activation']!r} is not one of "
                                 f"{sorted(ACTIVATIONS)} or 'None'")
        self.linears = nnx.List([torch_linear(c["in"], c["out"], rngs=rngs) for c in self.net_config])
        self.dropouts = nnx.List([nnx.Dropout(c["drop_out"], rngs=rngs if c["drop_out"] > 0 else None)
                                  for c in self.net_config])

    def __call__(self, x):
        for c, linear, dropout in zip(self.net_config, self.linears, self.dropouts):
            x = dropout(linear(x))
            if c["activation"] != "None":
                x = ACTIVATIONS[c["activation"]](x)
        return x

    def _torch_layout(self):
        return [(f"net.layer{i}-linear", linear) for i, linear in enumerate(self.linears)]


class SkipConnection(nnx.Module):
    """x + module(x)."""

    def __init__(self, module: nnx.Module):
        self.module = module

    def __call__(self, x):
        return x + self.module(x)

    def _torch_layout(self):
        return [("module", self.module)]


class BatchNorm1d(nnx.Module):
    r"""`nn.BatchNorm1d(C, affine=True)` on [M, C] (eps 1e-5, momentum 0.1). Training mode:

        y = (x - mean_M) / √(var_M(ddof=0) + eps) · weight + bias,
        running_mean ← 0.9 running_mean + 0.1 mean_M,  running_var ← 0.9 running_var + 0.1 var_M(ddof=1)

    `module.eval()` (use_running_average) normalises with the running statistics instead.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        dtype = default_float()
        self.weight = nnx.Param(jnp.ones((num_features,), dtype))
        self.bias = nnx.Param(jnp.zeros((num_features,), dtype))
        self.running_mean = nnx.BatchStat(jnp.zeros((num_features,), dtype))
        self.running_var = nnx.BatchStat(jnp.ones((num_features,), dtype))
        self.num_batches_tracked = nnx.BatchStat(jnp.zeros((), jnp.asarray(0).dtype))
        self.eps, self.momentum, self.use_running_average = eps, momentum, False

    def __call__(self, x):
        if self.use_running_average:
            mean, var = self.running_mean[...], self.running_var[...]
        else:
            n = x.shape[0]
            mean, var = x.mean(0), x.var(0)
            m = self.momentum
            self.running_mean[...] = (1 - m) * self.running_mean[...] + m * jax.lax.stop_gradient(mean)
            self.running_var[...] = (1 - m) * self.running_var[...] + m * jax.lax.stop_gradient(var) * n / max(n - 1, 1)
            self.num_batches_tracked[...] = self.num_batches_tracked[...] + 1
        return (x - mean) / jnp.sqrt(var + self.eps) * self.weight[...] + self.bias[...]

    def _torch_layout(self):
        return [(n, getattr(self, n)) for n in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]


class InstanceNorm1d(nnx.Module):
    r"""`nn.InstanceNorm1d(C, affine=True)` on [B, C, L]: per sample and channel over L,

        y = (x - mean_L) / √(var_L(ddof=0) + 1e-5) · weight + bias      (no running statistics)
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        dtype = default_float()
        self.weight = nnx.Param(jnp.ones((num_features,), dtype))
        self.bias = nnx.Param(jnp.zeros((num_features,), dtype))
        self.eps = eps

    def __call__(self, x):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + self.eps) * self.weight[...][:, None] + self.bias[...][:, None]

    def _torch_layout(self):
        return [("weight", self.weight), ("bias", self.bias)]


class Normalization(nnx.Module):
    r"""MetaBox's `Normalization(embed_dim, normalization)` on [B, N, C]:

        'layer':    (x - mean_{N,C}) / √(var_{N,C}(ddof=1) + 1e-5)    per sample, jointly over
                    population and features, no affine (not nn.LayerNorm)
        'batch':    BatchNorm1d over the B·N rows, per feature (affine, running statistics)
        'instance': InstanceNorm1d per sample and feature over N (affine)

    torch names: `normalizer.weight`, ... for 'batch' and 'instance'; none for 'layer'.
    """

    def __init__(self, embed_dim: int, normalization: str = "batch"):
        if normalization not in ("layer", "batch", "instance"):
            raise ValueError(f"normalization must be 'layer', 'batch' or 'instance', got {normalization!r}")
        self.normalization = normalization
        self.normalizer = {"layer": lambda: None, "batch": lambda: BatchNorm1d(embed_dim),
                           "instance": lambda: InstanceNorm1d(embed_dim)}[normalization]()

    def __call__(self, x):
        if x.ndim != 3:
            raise ValueError(f"Normalization input must be [batch, population, features], got {tuple(x.shape)}")
        if self.normalization == "layer":
            mean = x.mean((1, 2), keepdims=True)
            return (x - mean) / jnp.sqrt(x.var((1, 2), ddof=1, keepdims=True) + 1e-5)
        if self.normalization == "batch":
            return self.normalizer(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        return self.normalizer(x.transpose(0, 2, 1)).transpose(0, 2, 1)

    def _torch_layout(self):
        return [] if self.normalizer is None else [("normalizer", self.normalizer)]


def _softmax_last(logits):
    """softmax over the last axis, written out: XLA's CPU backward of it makes one pass fewer over
    the [B, H, Nq, N] logits than `jax.nn.softmax`'s."""
    e = jnp.exp(logits - jax.lax.stop_gradient(logits.max(-1, keepdims=True)))
    return e / e.sum(-1, keepdims=True)


def _attention_matrix(rngs: nnx.Rngs, shape) -> nnx.Param:
    return nnx.Param(jax.random.uniform(rngs.params(), shape, default_float()))  # torch.rand: U[0, 1)


class MultiHeadAttention(nnx.Module):
    r"""MetaBox's `MultiHeadAttention(n_heads, input_dim, embed_dim, val_dim=None, key_dim=None)`;
    `mha(h, q=None)` with h [B, N, in] (keys, values) and q [B, Nq, in] (queries; h when None):

        Q_k = q W_query[k],  K_k = h W_key[k],  V_k = h W_val[k]
        out = Σ_k softmax(Q_k K_kᵀ / √key_dim) V_k W_out[k]                 → [B, Nq, embed_dim]

    W_query, W_key [H, in, key_dim], W_val [H, in, val_dim], W_out [H, key_dim, embed_dim],
    all initialised U[0, 1).
    """

    def __init__(self, n_heads: int, input_dim: int, embed_dim: int | None = None, val_dim: int | None = None,
                 key_dim: int | None = None, *, rngs: nnx.Rngs):
        if embed_dim is None:
            raise ValueError("embed_dim is required: MetaBox's forward needs W_out [n_heads, key_dim, embed_dim]")
        val_dim = embed_dim // n_heads if val_dim is None else val_dim
        key_dim = val_dim if key_dim is None else key_dim
        if key_dim != val_dim:
            raise ValueError(f"key_dim ({key_dim}) must equal val_dim ({val_dim}): MetaBox's W_out is "
                             f"[n_heads, key_dim, embed_dim] and multiplies the value heads")
        self.n_heads, self.input_dim, self.embed_dim = n_heads, input_dim, embed_dim
        self.val_dim, self.key_dim, self.norm_factor = val_dim, key_dim, 1 / math.sqrt(key_dim)
        self.W_query = _attention_matrix(rngs, (n_heads, input_dim, key_dim))
        self.W_key = _attention_matrix(rngs, (n_heads, input_dim, key_dim))
        self.W_val = _attention_matrix(rngs, (n_heads, input_dim, val_dim))
        self.W_out = _attention_matrix(rngs, (n_heads, key_dim, embed_dim))

    def __call__(self, h, q=None):
        q = h if q is None else q
        _check_input("h", h, 3, self.input_dim, "[batch, population, input_dim]")
        _check_input("q", q, 3, self.input_dim, "[batch, n_query, input_dim]")
        # 1/√key_dim scales Q [.., key_dim], not the [.., Nq, N] logits: a broadcast the size of the
        # logits costs as much as the product itself on CPU (and for key_dim 4 the result is the same bits)
        Q = self.norm_factor * jnp.einsum("bnd,hdk->bhnk", q, self.W_query[...])
        K = jnp.einsum("bnd,hdk->bhnk", h, self.W_key[...])
        V = jnp.einsum("bnd,hdk->bhnk", h, self.W_val[...])
        attn = _softmax_last(jnp.einsum("bhqk,bhnk->bhqn", Q, K))
        heads = jnp.einsum("bhqn,bhnv->bhqv", attn, V)
        return jnp.einsum("bhqv,hve->bqe", heads, self.W_out[...])

    def _torch_layout(self):
        return [(n, getattr(self, n)) for n in ("W_query", "W_key", "W_val", "W_out")]


class MultiHeadCompat(nnx.Module):
    r"""MetaBox's `MultiHeadCompat`: the scaled attention logits only, `compat(q, h=None)` →
    Q_k K_kᵀ / √key_dim of shape [H, B, Nq, N]; W_query, W_key U[0, 1)."""

    def __init__(self, n_heads: int, input_dim: int, embed_dim: int | None = None, val_dim: int | None = None,
                 key_dim: int | None = None, *, rngs: nnx.Rngs):
        if val_dim is None:
            if embed_dim is None:
                raise ValueError("give embed_dim or val_dim")
            val_dim = embed_dim // n_heads
        key_dim = val_dim if key_dim is None else key_dim
        self.n_heads, self.input_dim, self.key_dim, self.norm_factor = n_heads, input_dim, key_dim, 1 / math.sqrt(key_dim)
        self.W_query = _attention_matrix(rngs, (n_heads, input_dim, key_dim))
        self.W_key = _attention_matrix(rngs, (n_heads, input_dim, key_dim))

    def __call__(self, q, h=None, mask=None):
        h = q if h is None else h
        _check_input("q", q, 3, self.input_dim, "[batch, n_query, input_dim]")
        _check_input("h", h, 3, self.input_dim, "[batch, population, input_dim]")
        Q = jnp.einsum("bnd,hdk->hbnk", q, self.W_query[...])
        K = jnp.einsum("bnd,hdk->hbnk", h, self.W_key[...])
        return self.norm_factor * jnp.einsum("hbqk,hbnk->hbqn", Q, K)

    def _torch_layout(self):
        return [("W_query", self.W_query), ("W_key", self.W_key)]


class MultiHeadAttentionsubLayer(nnx.Module):
    """Norm(MHA(h, q) + h): attention sublayer; the residual adds the keys/values input `h`."""

    def __init__(self, n_heads: int, embed_dim: int, feed_forward_hidden: int, normalization: str = "layer", *,
                 rngs: nnx.Rngs):
        self.MHA = MultiHeadAttention(n_heads, input_dim=embed_dim, embed_dim=embed_dim, rngs=rngs)
        self.Norm = Normalization(embed_dim, normalization)

    def __call__(self, x, x_=None):
        return self.Norm(self.MHA(x, x_) + x)

    def _torch_layout(self):
        return [("MHA", self.MHA), ("Norm", self.Norm)]


class FFandNormsubLayer(nnx.Module):
    """Norm(FF(x) + x), FF = Linear → ReLU → Linear (or one Linear when feed_forward_hidden ≤ 0)."""

    def __init__(self, n_heads: int, embed_dim: int, feed_forward_hidden: int, normalization: str = "layer", *,
                 rngs: nnx.Rngs):
        self.FF = _FeedForward(embed_dim, feed_forward_hidden, rngs=rngs)
        self.Norm = Normalization(embed_dim, normalization)

    def __call__(self, x):
        return self.Norm(self.FF(x) + x)

    def _torch_layout(self):
        return [("FF", self.FF), ("Norm", self.Norm)]


class MultiHeadEncoder(nnx.Module):
    r"""MetaBox's `MultiHeadEncoder(n_heads, embed_dim, feed_forward_hidden, normalization='layer')`:

        a = Norm(MHA(h = x, q = x_ or x) + x),    out = Norm(FF(a) + a)

    With `x_` given it is GLEET's decoder: queries from x_, keys, values and residual from x.
    """

    def __init__(self, n_heads: int, embed_dim: int, feed_forward_hidden: int, normalization: str = "layer", *,
                 rngs: nnx.Rngs):
        self.MHA_sublayer = MultiHeadAttentionsubLayer(n_heads, embed_dim, feed_forward_hidden, normalization, rngs=rngs)
        self.FFandNorm_sublayer = FFandNormsubLayer(n_heads, embed_dim, feed_forward_hidden, normalization, rngs=rngs)

    def __call__(self, x, x_=None):
        return self.FFandNorm_sublayer(self.MHA_sublayer(x, x_))

    def _torch_layout(self):
        return [("MHA_sublayer", self.MHA_sublayer), ("FFandNorm_sublayer", self.FFandNorm_sublayer)]


class MultiHeadAttentionLayerforCritic(nnx.Module):
    r"""MetaBox's critic encoder layer (an nn.Sequential): self-attention only,

        a = Norm(x + MHA(x)),    out = Norm(a + FF(a))

    torch names: `0.module.W_*`, `1.normalizer.*`, `2.module.{0,2}.*` (or `2.module.*`), `3.normalizer.*`.
    """

    def __init__(self, n_heads: int, embed_dim: int, feed_forward_hidden: int, normalization: str = "layer", *,
                 rngs: nnx.Rngs):
        self.attention = SkipConnection(MultiHeadAttention(n_heads, input_dim=embed_dim, embed_dim=embed_dim, rngs=rngs))
        self.norm1 = Normalization(embed_dim, normalization)
        self.feed_forward = SkipConnection(_FeedForward(embed_dim, feed_forward_hidden, rngs=rngs))
        self.norm2 = Normalization(embed_dim, normalization)

    def __call__(self, x):
        return self.norm2(self.feed_forward(self.norm1(self.attention(x))))

    def _torch_layout(self):
        return [("0", self.attention), ("1", self.norm1), ("2", self.feed_forward), ("3", self.norm2)]


class EmbeddingNet(nnx.Module):
    """`EmbeddingNet(node_dim, embedding_dim)`: x Wᵀ, a Linear without bias (torch name `embedder.weight`)."""

    def __init__(self, node_dim: int, embedding_dim: int, *, rngs: nnx.Rngs):
        self.node_dim, self.embedding_dim = node_dim, embedding_dim
        self.embedder = torch_linear(node_dim, embedding_dim, bias=False, rngs=rngs)

    def __call__(self, x):
        if x.shape[-1] != self.node_dim:
            raise ValueError(f"EmbeddingNet input must end with node_dim = {self.node_dim}, got {tuple(x.shape)}")
        return self.embedder(x)

    def _torch_layout(self):
        return [("embedder", self.embedder)]


class PositionalEncoding:
    r"""MetaBox's sinusoid table (a plain object, no parameters), `encoding` [max_len, d_model]:

        PE[p, 2i] = sin(p / 10000^(2i/d)),   PE[p, 2i+1] = cos(p / 10000^(2i/d))

    computed in float32 as MetaBox does (`.float()`), stored in the default float dtype.
    """

    def __init__(self, d_model: int, max_len: int):
        if d_model % 2:
            raise ValueError(f"d_model must be even (sin and cos columns alternate), got {d_model}")
        pos = np.arange(max_len, dtype=np.float32)[:, None]
        angle = pos / np.float32(10000) ** (np.arange(0, d_model, 2, dtype=np.float32) / np.float32(d_model))
        table = np.zeros((max_len, d_model), np.float32)
        table[:, 0::2], table[:, 1::2] = np.sin(angle), np.cos(angle)
        self.encoding = jnp.asarray(table, default_float())

    def get_PE(self, seq_len: int):
        return self.encoding[:seq_len, :]


# ---------------------------------------------------------------------------------------------
# GLEET


def _normal_log_prob(value, loc, scale):
    """torch's Normal.log_prob: -(v - μ)² / (2σ²) - log σ - log √(2π), elementwise."""
    return -((value - loc) ** 2) / (2 * scale**2) - jnp.log(scale) - LOG_SQRT_2PI


def _normal_entropy(scale):
    """torch's Normal.entropy: ½ + ½ log 2π + log σ, elementwise."""
    return 0.5 + 0.5 * math.log(2 * math.pi) + jnp.log(scale)


def _clamped_sample(loc, scale, key, name: str):
    if key is None:
        raise ValueError(f"{name}: sampling needs key= (a jax.random key) when fixed_action is None")
    return jax.lax.stop_gradient(jnp.clip(loc + scale * jax.random.normal(key, loc.shape, loc.dtype), 0.0, 1.0))


def _fixed(action, shape, name: str):
    action = jnp.asarray(action)
    if action.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(action.shape)}")
    return action


def _leaky_mlp(sizes, *, rngs):
    acts = ["LeakyReLU"] * (len(sizes) - 2) + ["None"]
    return MLP([{"in": a, "out": b, "drop_out": 0, "activation": f} for a, b, f in zip(sizes[:-1], sizes[1:], acts)],
               rngs=rngs)


class GLEETActor(nnx.Module):
    r"""GLEET's actor (`gleet.Actor`, same constructor arguments). On x [B, N, 3·node_dim]
    (population features, then exploration and exploitation features):

        h   = Encoder(E(x_pop))                              (self-attention, n_layers)
        d   = E₂([E(x_explore), E(x_exploit)])               (one embedder E shared)
        f   = Decoder(h, d)                                  (queries d, keys/values/residual h;
                                                              later layers self-attend)
        μ   = (tanh(mu_net(f)) + 1)/2,   σ = (tanh(sigma_net(f)) + 1)/2 · (σ_max - σ_min) + σ_min
        a   = clamp(a' ~ N(μ, σ), 0, 1)                      [B, N, 1]
        log π(a) = Σ_particles log N(a; μ, σ)                 [B, 1]  (MetaBox's shape)

    MetaBox passes n_heads_actor to the decoder too; n_heads_decoder and v_range are unused.
    `shares_trunk`: GLEET's critic reads `features(x)` (`jppo.policy.SharedTrunkActorCritic`).
    """

    shares_trunk = True

    def __init__(self, embedding_dim, hidden_dim, n_heads_actor, n_heads_decoder, n_layers, normalization, v_range,
                 node_dim, hidden_dim1, hidden_dim2, max_sigma=0.7, min_sigma=1e-3, *, rngs: nnx.Rngs):
        self.node_dim, self.max_sigma, self.min_sigma = node_dim, max_sigma, min_sigma
        self.embedder = EmbeddingNet(node_dim, embedding_dim, rngs=rngs)
        self.encoder = nnx.List([MultiHeadEncoder(n_heads_actor, embedding_dim, hidden_dim, normalization, rngs=rngs)
                                 for _ in range(n_layers)])
        self.embedder_for_decoder = EmbeddingNet(2 * embedding_dim, embedding_dim, rngs=rngs)
        self.decoder = nnx.List([MultiHeadEncoder(n_heads_actor, embedding_dim, hidden_dim, normalization, rngs=rngs)
                                 for _ in range(n_layers)])
        self.mu_net = _leaky_mlp([embedding_dim, hidden_dim1, hidden_dim2, 1], rngs=rngs)
        self.sigma_net = _leaky_mlp([embedding_dim, hidden_dim1, hidden_dim2, 1], rngs=rngs)

    def features(self, x):
        """The decoder output f [B, N, embedding_dim], what the critic reads."""
        _check_input("x", x, 3, 3 * self.node_dim, "[batch, population, 3 * node_dim]")
        nd = self.node_dim
        h = self.embedder(x[..., :nd])
        for layer in self.encoder:
            h = layer(h)
        d = self.embedder_for_decoder(jnp.concatenate([self.embedder(x[..., nd:2 * nd]),
                                                       self.embedder(x[..., 2 * nd:])], axis=-1))
        for i, layer in enumerate(self.decoder):
            h = layer(h, d) if i == 0 else layer(h)
        return h

    def _head(self, f):
        mu = (jnp.tanh(self.mu_net(f)) + 1.0) / 2.0
        sigma = (jnp.tanh(self.sigma_net(f)) + 1.0) / 2.0 * (self.max_sigma - self.min_sigma) + self.min_sigma
        return mu, sigma

    def distribution(self, x):
        """`(dist, f)`: the joint action of the population as one sample, for jitted trainers.
        `dist` is a `ClampedNormal` over actions [B, N] (per-particle μ, σ), so `dist.log_prob(a)`
        and `dist.entropy()` sum over particles → [B]; f as in `features`."""
        f = self.features(x)
        mu, sigma = self._head(f)
        return ClampedNormal(mu[..., 0], sigma[..., 0], 0.0, 1.0), f

    def __call__(self, x, fixed_action=None, require_entropy=False, to_critic=False, only_critic=False, *, key=None):
        """As MetaBox: `f` if only_critic; else `(action [B,N,1], log_prob [B,1], entropy [B,N,1],
        f or None)` with require_entropy, `(action, log_prob, f or None)` without."""
        f = self.features(x)
        if only_critic:
            return f
        mu, sigma = self._head(f)
        action = (_clamped_sample(mu, sigma, key, "GLEETActor") if fixed_action is None
                  else _fixed(fixed_action, mu.shape, "fixed_action"))
        log_prob = jnp.sum(_normal_log_prob(action, mu, sigma), axis=1)
        critic_in = f if to_critic else None
        if require_entropy:
            return action, log_prob, _normal_entropy(sigma), critic_in
        return action, log_prob, critic_in

    def _torch_layout(self):
        return [("embedder", self.embedder), *((f"encoder.{i}", m) for i, m in enumerate(self.encoder)),
                ("embedder_for_decoder", self.embedder_for_decoder),
                *((f"decoder.{i}", m) for i, m in enumerate(self.decoder)),
                ("mu_net", self.mu_net), ("sigma_net", self.sigma_net)]


class GLEETCritic(nnx.Module):
    r"""GLEET's critic on the actor's features f [B, N, input_dim]:
    V = squeeze(MLP(mean_N f)), MLP input_dim → hidden_dim1 → hidden_dim2 → 1 (LeakyReLU); no
    detach, so the value loss reaches the actor's trunk. Shape [B] (a scalar when B = 1, as torch's
    `squeeze()`)."""

    def __init__(self, input_dim, hidden_dim1, hidden_dim2, *, rngs: nnx.Rngs):
        self.input_dim = input_dim
        self.value_head = _leaky_mlp([input_dim, hidden_dim1, hidden_dim2, 1], rngs=rngs)

    def __call__(self, h_features):
        if h_features.shape[-1] != self.input_dim:
            raise ValueError(f"h_features must end with input_dim = {self.input_dim}, got {tuple(h_features.shape)}")
        return jnp.squeeze(self.value_head(jnp.mean(h_features, axis=-2)))

    def _torch_layout(self):
        return [("value_head", self.value_head)]


def gleet_networks(*, rngs: nnx.Rngs, min_sigma: float = 0.01, max_sigma: float = 0.7):
    """`(actor, critic)` with the sizes GLEET's agent sets (embedding 16, 4 heads, 1 layer, 'layer'
    normalisation, node_dim 9, σ in [0.01, 0.7], actor heads 32-8, critic 32-16)."""
    actor = GLEETActor(16, 16, 4, 4, 1, "layer", 6, 9, 32, 8, max_sigma=max_sigma, min_sigma=min_sigma, rngs=rngs)
    return actor, GLEETCritic(16, 32, 16, rngs=rngs)


# ---------------------------------------------------------------------------------------------
# RLEPSO


def _relu_mlp(sizes, *, rngs):
    acts = ["ReLU"] * (len(sizes) - 2) + ["None"]
    return MLP([{"in": a, "out": b, "drop_out": 0, "activation": f} for a, b, f in zip(sizes[:-1], sizes[1:], acts)],
               rngs=rngs)


class RLEPSOActor(nnx.Module):
    r"""RLEPSO's actor (`rlepso.Actor(config)` with config.feature_dim, action_dim, max_sigma,
    min_sigma). On x [B, feature_dim]:

        μ = (tanh(f_μ(x)) + 1)/2,  σ = (tanh(f_σ(x)) + 1)/2 · (σ_max - σ_min) + σ_min   (ReLU MLPs 64-32)
        a = clamp(a' ~ N(μ, σ), 0, 1),  log π(a) = Σ_{axis 1} log N(a; μ, σ) → [B];  entropy [B, A]

    torch names `_Actor__mu_net.net.layer{i}-linear.*`, `_Actor__sigma_net...` (private attributes).
    """

    def __init__(self, feature_dim, action_dim, max_sigma=0.7, min_sigma=0.01, *, rngs: nnx.Rngs):
        self.mu_net = _relu_mlp([feature_dim, 64, 32, action_dim], rngs=rngs)
        self.sigma_net = _relu_mlp([feature_dim, 64, 32, action_dim], rngs=rngs)
        self.max_sigma, self.min_sigma = max_sigma, min_sigma

    def distribution(self, x) -> ClampedNormal:
        mu = (jnp.tanh(self.mu_net(x)) + 1.0) / 2.0
        sigma = (jnp.tanh(self.sigma_net(x)) + 1.0) / 2.0 * (self.max_sigma - self.min_sigma) + self.min_sigma
        return ClampedNormal(mu, sigma, 0.0, 1.0)

    def __call__(self, x, fixed_action=None, require_entropy=False, *, key=None):
        """`(action, log_prob [B], entropy [B, A])` with require_entropy, else `(action, log_prob)`."""
        dist = self.distribution(x)
        mu, sigma = dist.loc, dist.scale
        action = (_clamped_sample(mu, sigma, key, "RLEPSOActor") if fixed_action is None
                  else _fixed(fixed_action, mu.shape, "fixed_action"))
        log_prob = jnp.sum(_normal_log_prob(action, mu, sigma), axis=1)
        return (action, log_prob, _normal_entropy(sigma)) if require_entropy else (action, log_prob)

    def _torch_layout(self):
        return [("_Actor__mu_net", self.mu_net), ("_Actor__sigma_net", self.sigma_net)]


class RLEPSOCritic(nnx.Module):
    """RLEPSO's critic: v = squeeze(MLP(x)), ReLU MLP feature_dim → 16 → 8 → 1; returns
    `(stop_gradient(v), v)`. torch names `_Critic__value_head.net.layer{i}-linear.*`."""

    def __init__(self, feature_dim, *, rngs: nnx.Rngs):
        self.value_head = _relu_mlp([feature_dim, 16, 8, 1], rngs=rngs)

    def __call__(self, x):
        v = jnp.squeeze(self.value_head(x))
        return jax.lax.stop_gradient(v), v

    def _torch_layout(self):
        return [("_Critic__value_head", self.value_head)]


# ---------------------------------------------------------------------------------------------
# RLDAS


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

    def log_probs(self, obs):
        """`(p̂, log p̂)` [B, optimizer_num], torch's Categorical(probs) normalisation and clamp."""
        p = jax.nn.softmax(self._logits(obs), axis=1)
        p = p / jnp.sum(p, axis=-1, keepdims=True)
        eps = jnp.finfo(p.dtype).eps
        return p, jnp.log(jnp.clip(p, eps, 1 - eps))

    def __call__(self, obs, fix_action=None, require_entropy=False, *, key=None):
        p, log_p = self.log_probs(obs)
        if fix_action is None:
            if key is None:
                raise ValueError("RLDASActor: sampling needs key= (a jax.random key) when fix_action is None")
            action = jax.random.categorical(key, log_p, axis=-1)
        else:
            action = _fixed(fix_action, p.shape[:1], "fix_action")
        log_prob = jnp.take_along_axis(log_p, action.astype(jnp.int32)[:, None], axis=-1)[:, 0]
        if require_entropy:
            return action, log_prob, -jnp.sum(jnp.maximum(log_p, jnp.finfo(p.dtype).min) * p, axis=-1)
        return action, log_prob


class RLDASCritic(_RLDASTrunk):
    """RLDAS's critic: v = trunk(obs)[:, 0] → `(stop_gradient(v), v)`, both [B]."""

    def __init__(self, dim, optimizer_num, feature_dim, device=None, *, rngs: nnx.Rngs):
        super().__init__(dim, optimizer_num, feature_dim, 1, rngs=rngs)

    def __call__(self, obs):
        v = self._logits(obs)[:, 0]
        return jax.lax.stop_gradient(v), v


# ---------------------------------------------------------------------------------------------
# torch state_dict <-> NNX


class StateDictError(ValueError):
    """A state_dict whose names or shapes do not fit the module; lists every problem at once."""


def _entries(item, path: tuple[str, ...]) -> Iterator[tuple[str, nnx.Variable, bool]]:
    """`(torch name, variable, transposed)` for every tensor of `item`, in torch's order."""
    if isinstance(item, nnx.Linear):
        yield ".".join((*path, "weight")), item.kernel, True
        if item.bias is not None:
            yield ".".join((*path, "bias")), item.bias, False
    elif isinstance(item, nnx.Variable):
        yield ".".join(path), item, False
    elif hasattr(item, "_torch_layout"):
        for name, child in item._torch_layout():
            yield from _entries(child, path + ((name,) if name else ()))
    else:
        raise TypeError(f"{type(item).__name__} has no torch layout: load_state_dict takes the modules of "
                        f"jppo.metabbo.networks (and nnx.Linear)")


def torch_layout(module) -> dict[str, tuple[int, ...]]:
    """torch name → torch shape of every tensor `module` holds (what its state_dict must contain)."""
    return {name: tuple(var[...].shape[::-1] if t else var[...].shape) for name, var, t in _entries(module, ())}


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def load_state_dict(module, state_dict) -> None:
    """Copy a torch `state_dict` (name → tensor or numpy array) into `module`, in place.

    Names and shapes are torch's (`nn.Linear` weight [out, in], stored transposed as the NNX
    kernel); values are cast to the module's dtypes. Everything is checked before anything is
    written: on any missing name, unexpected name or shape mismatch, one `StateDictError` lists
    them all and `module` is unchanged.
    """
    entries = {name: (var, t) for name, var, t in _entries(module, ())}
    given = {name: _to_numpy(value) for name, value in state_dict.items()}
    expected = torch_layout(module)
    missing = [n for n in entries if n not in given]
    unexpected = [n for n in given if n not in entries]
    mismatched = [f"{n}: expected {expected[n]}, got {tuple(given[n].shape)}"
                  for n in entries if n in given and tuple(given[n].shape) != expected[n]]
    if missing or unexpected or mismatched:
        lines = [f"state_dict does not fit {type(module).__name__}:"]
        lines += [f"  missing: {', '.join(missing)}"] if missing else []
        lines += [f"  unexpected: {', '.join(unexpected)}"] if unexpected else []
        lines += [f"  shape mismatch (torch layout): {'; '.join(mismatched)}"] if mismatched else []
        raise StateDictError("\n".join(lines))
    for name, (var, transposed) in entries.items():
        value = given[name].T if transposed else given[name]
        var[...] = jnp.asarray(value, var[...].dtype)


def state_dict(module) -> dict[str, np.ndarray]:
    """The inverse of `load_state_dict`: torch name → numpy array in torch's layout."""
    return {name: np.asarray(var[...]).T if t else np.asarray(var[...]) for name, var, t in _entries(module, ())}
