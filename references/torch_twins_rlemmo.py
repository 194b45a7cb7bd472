"""Torch twins of RLEMMO's actor and critic, written from the definitions in
metaevobox/baseline/metabbo/rlemmo.py (not imported from MetaBox), from the pieces of
`references.torch_twins`. Attribute names reproduce MetaBox's state_dict names (`embedder_1.embedder.weight`,
`encoder.0.MHA_sublayer.MHA.W_query`, `decoder.net.layer0-linear.weight`; the critic's
`value_head.net.layer{i}-linear.*`), so their weights load into `jppo.metabbo.networks` by name.
"""

from __future__ import annotations

import torch
from torch import nn

from references.torch_twins import TEmbedding, TEncoder, TGLEETCritic, TMLP, mlp_config


class TRLEMMOActor(nn.Module):
    """RLEMMO's actor: on x [B, NP, g + l + i] the two embedders (population and niche features, then
    the individual's) side by side, the attention encoder, then softmax(decoder) over the operators.
    `forward(x)` → (probabilities [B, NP, output_dim], the encoder's features [B, NP, embedding_dim])."""

    def __init__(self, emb=64, hidden=64, heads=4, layers=1, mode="layer", h1=16, h2=8, out=5, g=5, l=5, i=12):
        super().__init__()
        self.n_pop = g + l
        self.embedder_1, self.embedder_2 = TEmbedding(g + l, emb // 2), TEmbedding(i, emb // 2)
        self.encoder = nn.ModuleList([TEncoder(heads, emb, hidden, mode) for _ in range(layers)])
        self.decoder = TMLP(mlp_config([emb, h1, h2, out], "LeakyReLU"))

    def forward(self, x):
        h = torch.cat([self.embedder_1(x[..., :self.n_pop]), self.embedder_2(x[..., self.n_pop:])], -1)
        for layer in self.encoder:
            h = layer(h)
        return torch.softmax(self.decoder(h), -1), h


def t_rlemmo_critic(emb=64, h1=16, h2=8) -> TGLEETCritic:
    """RLEMMO's critic has GLEET's form: LeakyReLU MLP emb → h1 → h2 → 1 on the population mean → [B]."""
    return TGLEETCritic(emb, h1, h2)


def t_rlemmo_outputs(actor, critic, x, action):
    """(log π(action) summed over the population [B], entropy [B, NP], value [B]) of the twins, with
    torch's own `Categorical(probs)`."""
    probs, f = actor(x)
    dist = torch.distributions.Categorical(probs)
    return dist.log_prob(torch.as_tensor(action)).sum(1), dist.entropy(), critic(f)
