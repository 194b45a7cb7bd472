"""Torch modules written from the definitions of MetaBox's networks (gleet.md §2 and
metaevobox/baseline/metabbo/{networks,gleet,rldas,rlepso,l2t}.py), not imported from MetaBox. Their
attribute names reproduce MetaBox's state_dict names, so their weights load into
`jppo.metabbo.networks` by name. Each `forward` is written independently of MetaBox's code (einsum
attention, explicit formulas), so agreement checks the arithmetic, not a copy of it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

ACT = {"ReLU": nn.ReLU, "LeakyReLU": nn.LeakyReLU, "Tanh": nn.Tanh, "Sigmoid": nn.Sigmoid, "GELU": nn.GELU,
       "Softplus": nn.Softplus, "ELU": nn.ELU}


class TMLP(nn.Module):
    """Linear → Dropout → activation per config dict; names net.layer{i}-linear / -drop_out / -activation."""

    def __init__(self, config):
        super().__init__()
        self.net = nn.Sequential()
        for i, c in enumerate(config):
            self.net.add_module(f"layer{i}-linear", nn.Linear(c["in"], c["out"]))
            self.net.add_module(f"layer{i}-drop_out", nn.Dropout(c["drop_out"]))
            if c["activation"] != "None":
                self.net.add_module(f"layer{i}-activation", ACT[c["activation"]]())

    def forward(self, x):
        return self.net(x)


def mlp_config(sizes, act):
    acts = [act] * (len(sizes) - 2) + ["None"]
    return [{"in": a, "out": b, "drop_out": 0, "activation": f} for a, b, f in zip(sizes[:-1], sizes[1:], acts)]


class TNorm(nn.Module):
    def __init__(self, dim, mode):
        super().__init__()
        self.mode = mode
        if mode == "batch":
            self.normalizer = nn.BatchNorm1d(dim, affine=True)
        elif mode == "instance":
            self.normalizer = nn.InstanceNorm1d(dim, affine=True)

    def forward(self, x):
        if self.mode == "layer":
            b = x.shape[0]
            flat = x.reshape(b, -1)
            mean = flat.mean(1)[:, None, None]
            var = ((flat - flat.mean(1, keepdim=True)) ** 2).sum(1) / (flat.shape[1] - 1)
            return (x - mean) / torch.sqrt(var[:, None, None] + 1e-5)
        if self.mode == "batch":
            return self.normalizer(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        return self.normalizer(x.transpose(1, 2)).transpose(1, 2)


class TMHA(nn.Module):
    def __init__(self, heads, dim_in, dim_embed):
        super().__init__()
        d = dim_embed // heads
        self.W_query = nn.Parameter(torch.rand(heads, dim_in, d))
        self.W_key = nn.Parameter(torch.rand(heads, dim_in, d))
        self.W_val = nn.Parameter(torch.rand(heads, dim_in, d))
        self.W_out = nn.Parameter(torch.rand(heads, d, dim_embed))
        self.d = d

    def forward(self, h, q=None):
        q = h if q is None else q
        Q = torch.einsum("bqi,hik->bhqk", q, self.W_query)
        K = torch.einsum("bni,hik->bhnk", h, self.W_key)
        V = torch.einsum("bni,hik->bhnk", h, self.W_val)
        A = torch.softmax(torch.einsum("bhqk,bhnk->bhqn", Q, K) / math.sqrt(self.d), dim=-1)
        return torch.einsum("bhqn,bhnk,hke->bqe", A, V, self.W_out)


class TCompat(nn.Module):
    def __init__(self, heads, dim_in, dim_embed):
        super().__init__()
        d = dim_embed // heads
        self.W_query = nn.Parameter(torch.rand(heads, dim_in, d))
        self.W_key = nn.Parameter(torch.rand(heads, dim_in, d))
        self.d = d

    def forward(self, q, h=None):
        h = q if h is None else h
        Q = torch.einsum("bqi,hik->hbqk", q, self.W_query)
        K = torch.einsum("bni,hik->hbnk", h, self.W_key)
        return torch.einsum("hbqk,hbnk->hbqn", Q, K) / math.sqrt(self.d)


def t_ff(dim, hidden):
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim)) if hidden > 0 else nn.Linear(dim, dim)


class TAttnSub(nn.Module):
    def __init__(self, heads, dim, mode):
        super().__init__()
        self.MHA, self.Norm = TMHA(heads, dim, dim), TNorm(dim, mode)

    def forward(self, x, x_=None):
        return self.Norm(x + self.MHA(x, x_))


class TFFSub(nn.Module):
    def __init__(self, dim, hidden, mode):
        super().__init__()
        self.FF, self.Norm = t_ff(dim, hidden), TNorm(dim, mode)

    def forward(self, x):
        return self.Norm(x + self.FF(x))


class TEncoder(nn.Module):
    def __init__(self, heads, dim, hidden, mode="layer"):
        super().__init__()
        self.MHA_sublayer, self.FFandNorm_sublayer = TAttnSub(heads, dim, mode), TFFSub(dim, hidden, mode)

    def forward(self, x, x_=None):
        return self.FFandNorm_sublayer(self.MHA_sublayer(x, x_))


class TResidual(nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return x + self.module(x)


def t_critic_layer(heads, dim, hidden, mode="layer"):
    return nn.Sequential(TResidual(TMHA(heads, dim, dim)), TNorm(dim, mode), TResidual(t_ff(dim, hidden)),
                         TNorm(dim, mode))


class TEmbedding(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.embedder = nn.Linear(n_in, n_out, bias=False)

    def forward(self, x):
        return self.embedder(x)


class TGLEETActor(nn.Module):
    """GLEET's actor: returns (mu, sigma, log_prob(action) summed over particles [B,1], entropy, features)."""

    def __init__(self, emb=16, hidden=16, heads=4, layers=1, mode="layer", node=9, h1=32, h2=8, lo=0.01, hi=0.7):
        super().__init__()
        self.node, self.lo, self.hi = node, lo, hi
        self.embedder = TEmbedding(node, emb)
        self.encoder = nn.ModuleList([TEncoder(heads, emb, hidden, mode) for _ in range(layers)])
        self.embedder_for_decoder = TEmbedding(2 * emb, emb)
        self.decoder = nn.ModuleList([TEncoder(heads, emb, hidden, mode) for _ in range(layers)])
        self.mu_net = TMLP(mlp_config([emb, h1, h2, 1], "LeakyReLU"))
        self.sigma_net = TMLP(mlp_config([emb, h1, h2, 1], "LeakyReLU"))

    def forward(self, x, action):
        n = self.node
        h = self.embedder(x[..., :n])
        for layer in self.encoder:
            h = layer(h)
        d = self.embedder_for_decoder(torch.cat([self.embedder(x[..., n:2 * n]), self.embedder(x[..., 2 * n:])], -1))
        for i, layer in enumerate(self.decoder):
            h = layer(h, d) if i == 0 else layer(h)
        mu = 0.5 * (1 + torch.tanh(self.mu_net(h)))
        sigma = self.lo + (self.hi - self.lo) * 0.5 * (1 + torch.tanh(self.sigma_net(h)))
        logp = -0.5 * ((action - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
        entropy = 0.5 * (1 + math.log(2 * math.pi)) + torch.log(sigma)
        return mu, sigma, logp.sum(1), entropy, h


class TGLEETCritic(nn.Module):
    def __init__(self, dim=16, h1=32, h2=16):
        super().__init__()
        self.value_head = TMLP(mlp_config([dim, h1, h2, 1], "LeakyReLU"))

    def forward(self, f):
        return self.value_head(f.mean(-2))[..., 0]


class Actor(nn.Module):
    """RLEPSO's actor (named `Actor` for the private names `_Actor__mu_net`): (mu, sigma, logp [B], entropy [B,A])."""

    def __init__(self, feature_dim, action_dim, lo=0.01, hi=0.7):
        super().__init__()
        self.__mu_net = TMLP(mlp_config([feature_dim, 64, 32, action_dim], "ReLU"))
        self.__sigma_net = TMLP(mlp_config([feature_dim, 64, 32, action_dim], "ReLU"))
        self.lo, self.hi = lo, hi

    def forward(self, x, action):
        mu = 0.5 * (1 + torch.tanh(self.__mu_net(x)))
        sigma = self.lo + (self.hi - self.lo) * 0.5 * (1 + torch.tanh(self.__sigma_net(x)))
        logp = -0.5 * ((action - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
        return mu, sigma, logp.sum(1), 0.5 * (1 + math.log(2 * math.pi)) + torch.log(sigma)


class Critic(nn.Module):
    """RLEPSO's critic (private name `_Critic__value_head`): value [B]."""

    def __init__(self, feature_dim):
        super().__init__()
        self.__value_head = TMLP(mlp_config([feature_dim, 16, 8, 1], "ReLU"))

    def forward(self, x):
        return self.__value_head(x)[..., 0]


class TRLDAS(nn.Module):
    """RLDAS's actor (n_out = K, softmax probabilities) or critic (n_out = 1) on (feature, moves)."""

    def __init__(self, dim, k, feature_dim, critic):
        super().__init__()
        self.embedders = nn.ModuleList([nn.Sequential(nn.Linear(dim, 64), nn.ReLU(), nn.Linear(64, 1), nn.ReLU())
                                        for _ in range(2 * k)])
        self.embedder_final = nn.Sequential(nn.Linear(feature_dim + 2 * k, 64), nn.Tanh())
        tail = [] if critic else [nn.Softmax(dim=1)]
        self.model = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 1 if critic else k), *tail)

    def forward(self, feature, moves):
        m = [e(moves[:, j]) for j, e in enumerate(self.embedders)]
        return self.model(self.embedder_final(torch.cat([feature, *m], -1)))


class TL2TActor(nn.Module):
    """L2T's actor (l2t.Actor: linear1, linear2, mu, sigma): (mu, sigma, logp [B] of the given draw,
    entropy [B, A])."""

    def __init__(self, n_state, n_action, hidden=64, lo=0.05, hi=0.15):
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(n_state, hidden), nn.Linear(hidden, hidden)
        self.mu, self.sigma = nn.Linear(hidden, n_action), nn.Linear(hidden, n_action)
        self.lo, self.hi = lo, hi

    def forward(self, x, draw):
        h = torch.tanh(self.linear2(torch.tanh(self.linear1(x))))
        mu = 0.5 * (1 + torch.tanh(self.mu(h)))
        sigma = self.lo + (self.hi - self.lo) * 0.5 * (1 + torch.tanh(self.sigma(h)))
        logp = -0.5 * ((draw - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
        return mu, sigma, logp.sum(-1), 0.5 * (1 + math.log(2 * math.pi)) + torch.log(sigma)


class TL2TCritic(nn.Module):
    """L2T's critic (l2t.Critic: linear1..3, tanh): value [B, 1]."""

    def __init__(self, n_state, hidden=64):
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(n_state, hidden), nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.linear3(torch.tanh(self.linear2(torch.tanh(self.linear1(x)))))
