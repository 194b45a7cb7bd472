"""GLEET's actor and critic (`metaevobox/baseline/metabbo/gleet.py`) in NNX, with MetaBox's call
conventions and torch names (`embedder.embedder.weight`, `encoder.0.MHA_sublayer.MHA.W_query`,
`mu_net.net.layer0-linear.weight`, ...)."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from jppo.networks import MLP, bounded_normal
from jppo.metabbo.networks.acting import chosen_action
from jppo.metabbo.networks.attention import MultiHeadEncoder
from jppo.metabbo.networks.layers import EmbeddingNet, check_input


def _leaky_mlp(sizes, *, rngs):
    """MetaBox's MLP config GLEET writes: LeakyReLU between the layers, torch's init."""
    return MLP(sizes, activation="LeakyReLU", init="torch", rngs=rngs)


class GLEETActor(nnx.Module):
    r"""GLEET's actor (`gleet.Actor`, same constructor arguments). On x [B, N, 3·node_dim]
    (population features, then exploration and exploitation features):

        h   = Encoder(E(x_pop))                              (self-attention, n_layers)
        d   = E₂([E(x_explore), E(x_exploit)])               (one embedder E shared)
        f   = Decoder(h, d)                                  (queries d, keys/values/residual h;
                                                              later layers self-attend)
        π   = bounded_normal(mu_net(f), sigma_net(f))        (per particle: μ ∈ [0, 1], σ ∈ [σ_min, σ_max])
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
        check_input("x", x, 3, 3 * self.node_dim, "[batch, population, 3 * node_dim]")
        nd = self.node_dim
        h = self.embedder(x[..., :nd])
        for layer in self.encoder:
            h = layer(h)
        d = self.embedder_for_decoder(jnp.concatenate([self.embedder(x[..., nd:2 * nd]),
                                                       self.embedder(x[..., 2 * nd:])], axis=-1))
        for i, layer in enumerate(self.decoder):
            h = layer(h, d) if i == 0 else layer(h)
        return h

    def _policy(self, f):
        """The clamped Gaussian over the population's actions [B, N] (one number per particle)."""
        return bounded_normal(self.mu_net(f)[..., 0], self.sigma_net(f)[..., 0], self.min_sigma, self.max_sigma)

    def distribution(self, x):
        """`(dist, f)`: the joint action of the population as one sample, for jitted trainers.
        `dist` is a `ClampedNormal` over actions [B, N], so `dist.log_prob(a)` and `dist.entropy()`
        sum over particles → [B]; f as in `features`."""
        f = self.features(x)
        return self._policy(f), f

    def __call__(self, x, fixed_action=None, require_entropy=False, to_critic=False, only_critic=False, *, key=None):
        """As MetaBox: `f` if only_critic; else `(action [B,N,1], log_prob [B,1], entropy [B,N,1],
        f or None)` with require_entropy, `(action, log_prob, f or None)` without."""
        f = self.features(x)
        if only_critic:
            return f
        dist = self._policy(f)
        action = chosen_action(dist, fixed_action, key, shape=(*dist.loc.shape, 1), actor="GLEETActor")
        log_prob = dist.log_prob(action[..., 0])[:, None]
        critic_in = f if to_critic else None
        if require_entropy:
            return action, log_prob, dist.entropy_per_dim()[..., None], critic_in
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
