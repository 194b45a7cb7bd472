"""MetaBox's attention blocks (`metaevobox/baseline/metabbo/networks.py`) in NNX: multi-head
attention and its logits, the encoder layer (GLEET's encoder and, with queries from elsewhere, its
decoder) and the critic's self-attention layer. Attention matrices start U[0, 1) as `torch.rand`
and keep torch's layout [n_heads, in, key_dim].
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jppo.envs.base import default_float
from jppo.metabbo.networks.layers import FeedForward, Normalization, SkipConnection, check_input


def _softmax_last(logits):
    """softmax over the last axis, written out: XLA's CPU backward of it makes one pass fewer over
    the [B, H, Nq, N] logits than `jax.nn.softmax`'s."""
    e = jnp.exp(logits - jax.lax.stop_gradient(logits.max(-1, keepdims=True)))
    return e / e.sum(-1, keepdims=True)


def _per_head(x, w):
    """x [B, N, in] times each head's w [H, in, k] → [B, H, N, k], as one [B·N, in] × [in, H·k] product:
    XLA's CPU forms of the einsum 'bnd,hdk->bhnk' (and of its gradient) ran 1.5-3x slower."""
    n_heads, d, k = w.shape
    y = x.reshape(-1, d) @ w.transpose(1, 0, 2).reshape(d, n_heads * k)
    return y.reshape(x.shape[0], x.shape[1], n_heads, k).transpose(0, 2, 1, 3)


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
        check_input("h", h, 3, self.input_dim, "[batch, population, input_dim]")
        check_input("q", q, 3, self.input_dim, "[batch, n_query, input_dim]")
        # 1/√key_dim scales Q [.., key_dim], not the [.., Nq, N] logits: a broadcast the size of the
        # logits costs as much as the product itself on CPU (and for key_dim 4 the result is the same bits)
        Q = self.norm_factor * _per_head(q, self.W_query[...])
        K, V = _per_head(h, self.W_key[...]), _per_head(h, self.W_val[...])
        attn = _softmax_last(Q @ K.swapaxes(-1, -2))  # [B, H, Nq, N]
        heads = attn @ V  # [B, H, Nq, val_dim]
        b, n_heads, nq, v = heads.shape
        out = heads.transpose(0, 2, 1, 3).reshape(b * nq, n_heads * v) @ self.W_out[...].reshape(n_heads * v, -1)
        return out.reshape(b, nq, self.embed_dim)

    def factored(self, x, embed):
        r"""`self(h)` (self-attention) for h = x · embed, x [B, N, r], embed [r, input_dim], r small
        (an embedding of r features per token): the same products taken through the r-wide x,

            Q_k K_kᵀ = x (E W_query[k]) (E W_key[k])ᵀ xᵀ,    A_k V_k = (A_k x) (E W_val[k])

        so the [N, N] products are r wide instead of key_dim (RLDEAFL: 3 instead of 64)."""
        check_input("x", x, 3, embed.shape[0], "[batch, population, r]")
        a_q, a_k, a_v = (jnp.einsum("ri,hik->hrk", embed, w[...]) for w in (self.W_query, self.W_key, self.W_val))
        m = self.norm_factor * (a_q @ a_k.swapaxes(-1, -2))  # [H, r, r]
        x = x[:, None]  # [B, 1, N, r]
        attn = _softmax_last((x @ m) @ x.swapaxes(-1, -2))  # [B, H, N, N]
        heads = (attn @ x) @ a_v  # [B, H, N, val_dim]
        b, n_heads, nq, v = heads.shape
        out = heads.transpose(0, 2, 1, 3).reshape(b * nq, n_heads * v) @ self.W_out[...].reshape(n_heads * v, -1)
        return out.reshape(b, nq, self.embed_dim)

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
        check_input("q", q, 3, self.input_dim, "[batch, n_query, input_dim]")
        check_input("h", h, 3, self.input_dim, "[batch, population, input_dim]")
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

    def __call__(self, x, x_=None, *, factors=None):
        return self.Norm((self.MHA(x, x_) if factors is None else self.MHA.factored(*factors)) + x)

    def _torch_layout(self):
        return [("MHA", self.MHA), ("Norm", self.Norm)]


class FFandNormsubLayer(nnx.Module):
    """Norm(FF(x) + x), FF = Linear → ReLU → Linear (or one Linear when feed_forward_hidden ≤ 0)."""

    def __init__(self, n_heads: int, embed_dim: int, feed_forward_hidden: int, normalization: str = "layer", *,
                 rngs: nnx.Rngs):
        self.FF = FeedForward(embed_dim, feed_forward_hidden, rngs=rngs)
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

    def __call__(self, x, x_=None, *, factors=None):
        """`factors=(z, embed)` when x = z · embed with z narrow (`MultiHeadAttention.factored`)."""
        return self.FFandNorm_sublayer(self.MHA_sublayer(x, x_, factors=factors))

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
        self.feed_forward = SkipConnection(FeedForward(embed_dim, feed_forward_hidden, rngs=rngs))
        self.norm2 = Normalization(embed_dim, normalization)

    def __call__(self, x):
        return self.norm2(self.feed_forward(self.norm1(self.attention(x))))

    def _torch_layout(self):
        return [("0", self.attention), ("1", self.norm1), ("2", self.feed_forward), ("3", self.norm2)]
