"""RLDEAFL's feature extractor, actor and critic (`metaevobox/baseline/metabbo/rldeafl.py`) in NNX,
with MetaBox's call conventions (the actor and critic read the extractor's features; critic
`(detached, value)`) and torch names (`dimension_encoder.0.MHA_sublayer.MHA.W_query`,
`mutation_selector_net.net.layer0-linear.weight`, `_Critic__value_head.net.layer0-linear.weight`, ...).

The state is MetaBox's [B, NP, d + 2]: per individual its position x (d), its cost y, then the
fraction of evaluations used (the same for every individual; the extractor reads individual 0's).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jppo.metabbo.networks.acting import chosen_action, torch_categorical
from jppo.metabbo.networks.attention import MultiHeadEncoder
from jppo.metabbo.networks.layers import EmbeddingNet, PositionalEncoding, check_input
from jppo.networks import MLP, bounded_normal


def encode_cost(y, constant: float = 32.0):
    r"""MetaBox's `encode_y`: a cost as mantissa and exponent, both 0 where y = 0,

        e = ⌊log₁₀|y|⌋,   encoded_y = y / 10ᵉ / 10,   encoded_e = (e + 1) / constant

    At exact powers of ten ⌊log₁₀|y|⌋ is taken as torch's log10 gives it (y = 1000: e = 3), where
    XLA's log10 can round below. Unlike MetaBox's, the input is not written to (MetaBox sets its
    zero costs to 1 in the state it is given).
    """
    zero = y == 0
    magnitude = jnp.abs(jnp.where(zero, 1.0, y))
    e = jnp.floor(jnp.log10(magnitude))
    e = jnp.where(10.0 ** (e + 1) == magnitude, e + 1, e)
    mantissa = jnp.where(zero, 1.0, y) / 10.0**e
    return jnp.where(zero, 0.0, mantissa / 10), jnp.where(zero, 0.0, (e + 1) / constant)


class RLDEAFLFeatureExtractor(nnx.Module):
    r"""RLDEAFL's `Feature_Extractor(node_dim=3, hidden_dim=16, n_heads=1, ffh=16, n_layers=1,
    use_positional_encoding=True)` (MetaBox builds it with hidden_dim 64). On the state [B, NP, d + 2]:

        h_bjn = W_emb [x_bnj, ŷ_bn, ê_bn]                          (encode_cost; [B, d, NP, H])
        o = dimension_encoder(h)         attention over the population, per (sample, dimension)
        o ← o + ½ PE[:d]                 per individual over its dimensions: [B·NP, d, H]
        o = mean_j individual_encoder(o)  attention over dimensions, per individual  [B, NP, H]
        out = [o, W_fes · fes]                                                      [B, NP, H + 16]

    MetaBox's `is_train` only switches torch's gradients off (`set_on_train` / `set_off_train`);
    here gradients are whatever the caller differentiates. The table PE is part of the weights
    (torch name `position_encoder.encoding`: MetaBox's float32 table, which its pickled agent holds).
    """

    def __init__(self, node_dim: int = 3, hidden_dim: int = 16, n_heads: int = 1, ffh: int = 16, n_layers: int = 1,
                 use_positional_encoding: bool = True, is_train: bool = False, device=None, *, rngs: nnx.Rngs):
        if node_dim != 3:
            raise ValueError(f"node_dim must be 3 (x, encoded cost, its exponent): the forward builds those three, "
                             f"got {node_dim}")
        self.hidden_dim, self.is_train = hidden_dim, is_train
        self.embedder = EmbeddingNet(node_dim, hidden_dim, rngs=rngs)
        self.fes_embedder = EmbeddingNet(1, 16, rngs=rngs)
        self.position_encoder = PositionalEncoding(hidden_dim, 512) if use_positional_encoding else None
        self.dimension_encoder = nnx.List([MultiHeadEncoder(n_heads, hidden_dim, ffh, "layer", rngs=rngs)
                                           for _ in range(n_layers)])
        self.individual_encoder = nnx.List([MultiHeadEncoder(n_heads, hidden_dim, ffh, "layer", rngs=rngs)
                                            for _ in range(n_layers)])

    def __call__(self, state):
        state = jnp.asarray(state)
        if state.ndim != 3 or state.shape[-1] < 3:
            raise ValueError(f"state must have shape [batch, population, dim + 2] (x, cost, fes), got "
                             f"{tuple(state.shape)}")
        xs, fes = state[:, :, :-2], state[:, 0, -1][:, None]
        b, n, d = xs.shape
        y, e = encode_cost(state[:, :, -2])
        raw = jnp.stack([xs, jnp.broadcast_to(y[:, :, None], xs.shape), jnp.broadcast_to(e[:, :, None], xs.shape)],
                        axis=-1)
        raw = raw.transpose(0, 2, 1, 3).reshape(b * d, n, 3)
        h = self.embedder(raw)
        # the first layer's attention goes through the 3 raw features (MultiHeadAttention.factored): its
        # [NP, NP] products are 3 wide instead of hidden_dim; the same attention, a third of the work
        factors = (raw, self.embedder.embedder.kernel[...])
        for i, layer in enumerate(self.dimension_encoder):
            h = layer(h, factors=factors if i == 0 else None)
        o = h.reshape(b, d, n, self.hidden_dim).transpose(0, 2, 1, 3).reshape(b * n, d, self.hidden_dim)
        if self.position_encoder is not None:
            o = o + self.position_encoder.get_PE(d) * 0.5
        for layer in self.individual_encoder:
            o = layer(o)
        o = o.reshape(b, n, d, self.hidden_dim).mean(2)
        embed_fes = jnp.broadcast_to(self.fes_embedder(fes)[:, None, :], (b, n, 16))
        return jnp.concatenate([o, embed_fes], axis=-1)

    def set_on_train(self):
        self.is_train = True

    def set_off_train(self):
        self.is_train = False

    def _torch_layout(self):
        return [("embedder", self.embedder), ("fes_embedder", self.fes_embedder),
                *([("position_encoder", self.position_encoder)] if self.position_encoder is not None else []),
                *((f"dimension_encoder.{i}", layer) for i, layer in enumerate(self.dimension_encoder)),
                *((f"individual_encoder.{i}", layer) for i, layer in enumerate(self.individual_encoder))]


def _head(n_in: int, n_out: int, rngs: nnx.Rngs) -> MLP:
    """MetaBox's head config: Linear(n_in, 32) → ReLU → Linear(32, n_out)."""
    return MLP.from_config([{"in": n_in, "out": 32, "drop_out": 0, "activation": "ReLU"},
                            {"in": 32, "out": n_out, "drop_out": 0, "activation": "None"}], rngs=rngs)


class RLDEAFLActor(nnx.Module):
    r"""RLDEAFL's `Actor(input_dim, mu_operator, cr_operator, n_mutation, n_crossover)`: six heads
    on the features f [B, NP, input_dim], per individual

        mutation operator  ~ Categorical(softmax(g_mo(f)))       (14 in MetaBox)
        crossover operator ~ Categorical(softmax(g_co(f)))       (3)
        F  = clamp(N(μ_m, σ_m), 0, 1),  CR = clamp(N(μ_c, σ_c), 0, 1)   (bounded_normal, σ ∈ [0.1, 0.7])

    torch's Categorical(probs) (`torch_categorical`); action [B, NP, 2 + n_mutation + n_crossover]
    (operator indices as floats, then F, then CR); log π = Σ over individuals of the four log-probs
    (Gaussians summed over their parameters) → [B]; entropy [B, NP, 2 + n_mutation + n_crossover].
    `actor(f, fixed_action=None, require_entropy=False, *, key)` → `(action, log_prob[, entropy])`.
    """

    def __init__(self, input_dim: int, mu_operator: int, cr_operator: int, n_mutation: int, n_crossover: int, *,
                 rngs: nnx.Rngs):
        self.input_dim, self.n_mutation, self.n_crossover = input_dim, n_mutation, n_crossover
        self.output_dim = 2 + n_mutation + n_crossover
        self.max_sigma, self.min_sigma = 0.7, 0.1
        self.mutation_selector_net = _head(input_dim, mu_operator, rngs)
        self.crossover_selector_net = _head(input_dim, cr_operator, rngs)
        self.mutation_param_sigma_net = _head(input_dim, n_mutation, rngs)
        self.mutation_param_mu_net = _head(input_dim, n_mutation, rngs)
        self.crossover_param_sigma_net = _head(input_dim, n_crossover, rngs)
        self.crossover_param_mu_net = _head(input_dim, n_crossover, rngs)

    def distributions(self, f):
        """`(mutation operator, crossover operator, F, CR)`: two torch Categoricals, two ClampedNormals."""
        check_input("features", f, 3, self.input_dim, "[batch, population, input_dim]")
        return (torch_categorical(jax.nn.softmax(self.mutation_selector_net(f), axis=2)),
                torch_categorical(jax.nn.softmax(self.crossover_selector_net(f), axis=2)),
                bounded_normal(self.mutation_param_mu_net(f), self.mutation_param_sigma_net(f), self.min_sigma,
                               self.max_sigma),
                bounded_normal(self.crossover_param_mu_net(f), self.crossover_param_sigma_net(f), self.min_sigma,
                               self.max_sigma))

    def __call__(self, f, fixed_action=None, require_entropy=False, *, key=None):
        mutation_op, crossover_op, m_policy, c_policy = dists = self.distributions(f)
        b, n = f.shape[:2]
        if fixed_action is None:
            if key is None:
                raise ValueError("RLDEAFLActor: sampling needs key= (a jax.random key) when fixed_action is None")
            keys = jax.random.split(key, 4)
            parts = [chosen_action(dist, None, k, shape=shape, actor="RLDEAFLActor") for dist, k, shape in
                     zip(dists, keys, [(b, n), (b, n), (b, n, self.n_mutation), (b, n, self.n_crossover)])]
            action = jnp.concatenate([parts[0][..., None].astype(f.dtype), parts[1][..., None].astype(f.dtype),
                                      parts[2], parts[3]], axis=2)
        else:
            action = chosen_action(None, fixed_action, None, shape=(b, n, self.output_dim), actor="RLDEAFLActor")
        m_action, c_action = action[:, :, 2:2 + self.n_mutation], action[:, :, -self.n_crossover:]
        log_prob = (mutation_op.log_prob(action[:, :, 0]) + crossover_op.log_prob(action[:, :, 1])
                    + m_policy.log_prob(m_action) + c_policy.log_prob(c_action)).sum(1)
        if not require_entropy:
            return action, log_prob
        entropy = jnp.concatenate([mutation_op.entropy()[..., None], crossover_op.entropy()[..., None],
                                   m_policy.entropy_per_dim(), c_policy.entropy_per_dim()], axis=2)
        return action, log_prob, entropy

    def _torch_layout(self):
        return [(name, getattr(self, name)) for name in (
            "mutation_selector_net", "crossover_selector_net", "mutation_param_sigma_net", "mutation_param_mu_net",
            "crossover_param_sigma_net", "crossover_param_mu_net")]


class RLDEAFLCritic(nnx.Module):
    """RLDEAFL's `Critic(input_dim)`: v = squeeze(mean over the population of MLP(f)), ReLU MLP
    input_dim → 16 → 8 → 1 → `(stop_gradient(v), v)`, [B] ([] when B = 1, torch's squeeze).
    torch names `_Critic__value_head.net.layer{i}-linear.*`."""

    def __init__(self, input_dim: int, *, rngs: nnx.Rngs):
        self.input_dim = input_dim
        self.value_head = MLP([input_dim, 16, 8, 1], activation="ReLU", init="torch", rngs=rngs)

    def __call__(self, f):
        check_input("features", f, 3, self.input_dim, "[batch, population, input_dim]")
        v = jnp.squeeze(self.value_head(f).mean(1))
        return jax.lax.stop_gradient(v), v

    def _torch_layout(self):
        return [("_Critic__value_head", self.value_head)]
