"""Torch-style layers of MetaBox's networks (`metaevobox/baseline/metabbo/networks.py`) in NNX.

`torch_linear` is `nn.Linear` with torch's initialisation; the norms are torch's `BatchNorm1d`,
`InstanceNorm1d` and MetaBox's `Normalization`; `FeedForward`, `SkipConnection`, `EmbeddingNet` and
`PositionalEncoding` are MetaBox's; `LSTM` is torch's `nn.LSTM` (SYMBOL's). Each module's
`_torch_layout()` lists its tensors under the names its torch twin gives them
(`jppo.metabbo.networks.state_dict`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jppo.envs.base import default_float
from jppo.networks import MLP, linear, torch_uniform


def torch_linear(n_in: int, n_out: int, *, bias: bool = True, rngs: nnx.Rngs) -> nnx.Linear:
    """`nn.Linear(n_in, n_out, bias)` with torch's default initialisation, W, b ~ U(-1/√n_in, 1/√n_in)."""
    return linear(n_in, n_out, rngs=rngs, init="torch", use_bias=bias)


def check_input(name: str, x, ndim: int, last: int, layout: str):
    """A ValueError naming `name` unless x has `ndim` axes and `last` entries on the last one."""
    if x.ndim != ndim or x.shape[-1] != last:
        raise ValueError(f"{name} must have shape {layout} with last axis {last}, got {tuple(x.shape)}")


class FeedForward(MLP):
    """`nn.Sequential(Linear(d, h), ReLU, Linear(h, d))` when h > 0, else `Linear(d, d)`; torch names
    `0`, `2` (or none: the Linear itself)."""

    def __init__(self, embed_dim: int, hidden: int, *, rngs: nnx.Rngs):
        sizes = [embed_dim, hidden, embed_dim] if hidden > 0 else [embed_dim, embed_dim]
        super().__init__(sizes, activation="ReLU", init="torch", rngs=rngs)

    def _torch_layout(self):
        if len(self.layers) == 1:
            return [("", self.layers[0])]
        return [("0", self.layers[0]), ("2", self.layers[1])]


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


class Table(nnx.Variable):
    """A fixed tensor a network reads and never trains (MetaBox's sinusoid table): loaded and saved
    with the weights, outside `nnx.Param`."""


class PositionalEncoding(nnx.Module):
    r"""MetaBox's sinusoid table (no trained parameters), `encoding` [max_len, d_model]:

        PE[p, 2i] = sin(p / 10000^(2i/d)),   PE[p, 2i+1] = cos(p / 10000^(2i/d))

    computed in float32 as MetaBox does (`.float()`), stored in the default float dtype. numpy's
    float32 sin and cos differ from torch's by an ulp here and there, so the table is a `Table` that
    loads: torch name `encoding`, which MetaBox's state_dict lacks (its PositionalEncoding is a plain
    object pickled with the agent; `python -m compat.convert_checkpoint` adds it).
    """

    def __init__(self, d_model: int, max_len: int):
        if d_model % 2:
            raise ValueError(f"d_model must be even (sin and cos columns alternate), got {d_model}")
        pos = np.arange(max_len, dtype=np.float32)[:, None]
        angle = pos / np.float32(10000) ** (np.arange(0, d_model, 2, dtype=np.float32) / np.float32(d_model))
        table = np.zeros((max_len, d_model), np.float32)
        table[:, 0::2], table[:, 1::2] = np.sin(angle), np.cos(angle)
        self.table = Table(jnp.asarray(table, default_float()))

    @property
    def encoding(self):
        return self.table[...]

    def get_PE(self, seq_len: int):
        return self.table[...][:seq_len, :]

    def _torch_layout(self):
        return [("encoding", self.table)]


class LSTM(nnx.Module):
    r"""torch's `nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)`, one time step at a time.

    Layer l (input u = x for l = 0, else the layer below's h), gates in torch's order i, f, g, o:

        [i, f, g, o] = u W_ihᵀ + b_ih + h W_hhᵀ + b_hh
        c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g),   h' = σ(o) ⊙ tanh(c')

    Weights as torch stores them (`weight_ih_l{l}` [4H, in], `weight_hh_l{l}` [4H, H], `bias_ih_l{l}`,
    `bias_hh_l{l}` [4H]), all drawn U(-1/√H, 1/√H) as torch does. `step(x, h, c)` takes x [B, in]
    and the states h, c [num_layers, B, H], and returns `(h'[-1], h', c')`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *, rngs: nnx.Rngs):
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        dtype, init = default_float(), torch_uniform(hidden_size)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        for layer in range(num_layers):
            n_in = input_size if layer == 0 else hidden_size
            for name, shape in ((f"weight_ih_l{layer}", (4 * hidden_size, n_in)),
                                (f"weight_hh_l{layer}", (4 * hidden_size, hidden_size)),
                                (f"bias_ih_l{layer}", (4 * hidden_size,)), (f"bias_hh_l{layer}", (4 * hidden_size,))):
                setattr(self, name, nnx.Param(init(rngs.params(), shape, dtype)))

    def step(self, x, h, c):
        """One time step: x [B, input_size], h, c [num_layers, B, H] → `(output [B, H], h', c')`."""
        if x.ndim != 2 or x.shape[-1] != self.input_size:
            raise ValueError(f"LSTM input must have shape [batch, {self.input_size}], got {tuple(x.shape)}")
        hs, cs, u = [], [], x
        for layer in range(self.num_layers):
            gates = (u @ self._weight("weight_ih", layer).T + self._weight("bias_ih", layer)
                     + h[layer] @ self._weight("weight_hh", layer).T + self._weight("bias_hh", layer))
            i, f, g, o = jnp.split(gates, 4, axis=-1)
            c_new = jax.nn.sigmoid(f) * c[layer] + jax.nn.sigmoid(i) * jnp.tanh(g)
            u = jax.nn.sigmoid(o) * jnp.tanh(c_new)
            hs.append(u)
            cs.append(c_new)
        return u, jnp.stack(hs), jnp.stack(cs)

    def _weight(self, name, layer):
        return getattr(self, f"{name}_l{layer}")[...]

    def _torch_layout(self):
        return [(f"{name}_l{layer}", getattr(self, f"{name}_l{layer}")) for layer in range(self.num_layers)
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
