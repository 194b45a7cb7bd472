"""RLEMMO's actor and critic (`metaevobox/baseline/metabbo/rlemmo.py`) in NNX, with MetaBox's call
conventions (a shared trunk: `to_critic=` / `only_critic=`, as GLEET's; `sampling=False` for the
greedy action) and torch names (`embedder_1.embedder.weight`, `encoder.0.MHA_sublayer.MHA.W_query`,
`decoder.net.layer0-linear.weight`, the critic's `value_head.net.layer0-linear.weight`).

The state is MetaBox's RLEMMO_Optimizer observation [B, NP, 22] per individual: 5 population-level
features, 5 features of its niche (its k nearest neighbours), then 12 of the individual itself. The
action picks, per individual, one of the env's five niching DE operators.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jppo.metabbo.networks.acting import chosen_action, torch_categorical
from jppo.metabbo.networks.attention import MultiHeadEncoder
from jppo.metabbo.networks.gleet import GLEETCritic
from jppo.metabbo.networks.layers import EmbeddingNet, check_input
from jppo.networks import MLP


class RLEMMOActor(nnx.Module):
    r"""RLEMMO's actor (`rlemmo.Actor`, same constructor arguments). On x [B, NP, g + l + i] (g global,
    l niche, i individual features; MetaBox: 5, 5, 12):

        h   = [E₁(x[..., :g+l]), E₂(x[..., g+l:])]          (two bias-free embedders, E/2 each)
        f   = Encoder(h)                                    (self-attention over the population,
                                                             n_layers of `MultiHeadEncoder`)
        p   = softmax(decoder(f))                           (LeakyReLU MLP E → h₁ → h₂ → output_dim)
        a_j ~ Categorical(p_j) per individual j  (torch's Categorical(probs): `torch_categorical`),
              or argmax_k p_jk with sampling=False
        log π(a) = Σ_j log p_j[a_j]                           [B]
        H        = -Σ_k p_jk log p_jk                         [B, NP] (MetaBox logs it only)

    `actor(x, fixed_action=None, require_entropy=False, to_critic=False, only_critic=False,
    sampling=True, *, key=None)` → f if only_critic, else `(action [B, NP], log_prob [B][, entropy],
    f or None)`. `shares_trunk`: RLEMMO's critic reads f (`RLEMMOCritic`), with gradient.
    """

    shares_trunk = True

    def __init__(self, embedding_dim, hidden_dim, n_heads_actor, n_layers, normalization, hidden_dim1, hidden_dim2,
                 output_dim, global_dim, local_dim, ind_dim, *, rngs: nnx.Rngs):
        if embedding_dim % 2:
            raise ValueError(f"embedding_dim must be even (two embedders of embedding_dim / 2 are concatenated), "
                             f"got {embedding_dim}")
        self.embedding_dim, self.output_dim = embedding_dim, output_dim
        self.global_dim, self.local_dim, self.ind_dim = global_dim, local_dim, ind_dim
        self.embedder_1 = EmbeddingNet(global_dim + local_dim, embedding_dim // 2, rngs=rngs)
        self.embedder_2 = EmbeddingNet(ind_dim, embedding_dim // 2, rngs=rngs)
        self.encoder = nnx.List([MultiHeadEncoder(n_heads_actor, embedding_dim, hidden_dim, normalization, rngs=rngs)
                                 for _ in range(n_layers)])
        self.decoder = MLP([embedding_dim, hidden_dim1, hidden_dim2, output_dim], activation="LeakyReLU",
                           init="torch", rngs=rngs)

    def features(self, x):
        """The encoder output f [B, NP, embedding_dim], what the critic reads."""
        n_pop = self.global_dim + self.local_dim
        check_input("x", x, 3, n_pop + self.ind_dim, "[batch, population, global_dim + local_dim + ind_dim]")
        h = jnp.concatenate([self.embedder_1(x[..., :n_pop]), self.embedder_2(x[..., n_pop:])], axis=-1)
        for layer in self.encoder:
            h = layer(h)
        return h

    def distribution(self, x):
        """`(dist, f)`: `dist` a torch Categorical over the operators [B, NP, output_dim]; sum its
        `log_prob` over the population for the joint log-probability. f as in `features`."""
        f = self.features(x)
        return torch_categorical(jax.nn.softmax(self.decoder(f), axis=-1)), f

    def __call__(self, x, fixed_action=None, require_entropy=False, to_critic=False, only_critic=False,
                 sampling=True, *, key=None):
        dist, f = self.distribution(x)
        if only_critic:
            return f
        shape = dist.probs.shape[:2]
        if fixed_action is None and not sampling:
            action = jnp.argmax(dist.probs, axis=-1)
        else:
            action = chosen_action(dist, fixed_action, key, shape=shape, actor="RLEMMOActor")
        log_prob = dist.log_prob(action).sum(1)
        critic_in = f if to_critic else None
        if require_entropy:
            return action, log_prob, dist.entropy(), critic_in
        return action, log_prob, critic_in

    def _torch_layout(self):
        return [("embedder_1", self.embedder_1), ("embedder_2", self.embedder_2),
                *((f"encoder.{i}", m) for i, m in enumerate(self.encoder)), ("decoder", self.decoder)]


class RLEMMOCritic(GLEETCritic):
    r"""RLEMMO's critic (`rlemmo.Critic(input_dim, hidden_dim1, hidden_dim2)`), GLEET's in form: on the
    actor's features f [B, NP, input_dim],

        V = squeeze(MLP(mean_NP f)),   MLP input_dim → hidden_dim1 → hidden_dim2 → 1 (LeakyReLU)

    [B] (a scalar when B = 1, torch's `squeeze()`); no detach, so the value loss trains the actor's
    embedders and encoder."""


def rlemmo_networks(*, rngs: nnx.Rngs):
    """`(actor, critic)` with the sizes RLEMMO's agent sets: embedding 64, 4 heads, 1 layer, 'layer'
    normalisation, feed-forward 64, actor heads 16-8 over 5 operators, features 5 + 5 + 12, critic 16-8."""
    actor = RLEMMOActor(64, 64, 4, 1, "layer", 16, 8, 5, 5, 5, 12, rngs=rngs)
    return actor, RLEMMOCritic(64, 16, 8, rngs=rngs)
