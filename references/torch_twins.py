"""Torch modules written from the definitions of MetaBox's networks
(metaevobox/baseline/metabbo/{networks,gleet,rldas,rldeafl,rlepso,l2t}.py), not imported from MetaBox. Their
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


class TCompat(nn.Module):
    """Scaled logits Q Kᵀ / √d per head, [H, B, Q, N] (MetaBox's MultiHeadCompat)."""

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


class TMHA(TCompat):
    """Multi-head attention: softmax of TCompat's logits over the keys, values, output projection."""

    def __init__(self, heads, dim_in, dim_embed):
        super().__init__(heads, dim_in, dim_embed)
        self.W_val = nn.Parameter(torch.rand(heads, dim_in, self.d))
        self.W_out = nn.Parameter(torch.rand(heads, self.d, dim_embed))

    def forward(self, h, q=None):
        q = h if q is None else q
        A = torch.softmax(super().forward(q, h), dim=-1)
        V = torch.einsum("bni,hik->hbnk", h, self.W_val)
        return torch.einsum("hbqn,hbnk,hke->bqe", A, V, self.W_out)


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


class TRLDEAFLExtractor(nn.Module):
    """RLDEAFL's Feature_Extractor: state [B, NP, d + 2] (x, cost, fes) → features [B, NP, hidden + 16].
    The cost enters as mantissa/10 and (exponent + 1)/32, both 0 for a zero cost; attention over the
    population per dimension, then (with half the float32 sinusoid table added) over the dimensions
    per individual, averaged over the dimensions."""

    def __init__(self, hidden=64, heads=1, ffh=16, n_layers=1):
        super().__init__()
        self.embedder, self.fes_embedder = TEmbedding(3, hidden), TEmbedding(1, 16)
        self.dimension_encoder = nn.Sequential(*(TEncoder(heads, hidden, ffh) for _ in range(n_layers)))
        self.individual_encoder = nn.Sequential(*(TEncoder(heads, hidden, ffh) for _ in range(n_layers)))
        pos = torch.arange(512, dtype=torch.float32)[:, None]
        angle = pos / 10000.0 ** (torch.arange(0, hidden, 2, dtype=torch.float32) / hidden)
        self.position_encoder = nn.Module()  # MetaBox's is a plain object; a buffer here, so it loads by name
        self.position_encoder.register_buffer(
            "encoding", torch.stack([torch.sin(angle), torch.cos(angle)], -1).reshape(512, hidden))

    def forward(self, state):
        x, y, fes = state[..., :-2], state[..., -2], state[:, :1, -1:]
        zero = y == 0
        safe = torch.where(zero, torch.ones_like(y), y)
        e = torch.floor(torch.log10(safe.abs()))
        y_code = torch.where(zero, torch.zeros_like(y), safe / 10.0 ** e / 10)
        e_code = torch.where(zero, torch.zeros_like(y), (e + 1) / 32)
        raw = torch.stack([x, y_code[..., None].expand_as(x), e_code[..., None].expand_as(x)], -1)
        h = self.embedder(raw.transpose(1, 2))  # [B, d, NP, H]
        b, d, n, hidden = h.shape
        h = self.dimension_encoder(h.reshape(b * d, n, hidden)).reshape(b, d, n, hidden)
        h = h.transpose(1, 2).reshape(b * n, d, hidden) + 0.5 * self.position_encoder.encoding[:d]
        o = self.individual_encoder(h).reshape(b, n, d, hidden).mean(2)
        return torch.cat([o, self.fes_embedder(fes).expand(b, n, 16)], -1)


class TRLDEAFLActor(nn.Module):
    """RLDEAFL's actor: per individual (softmax over mutation operators, softmax over crossover
    operators, μ_F, σ_F, μ_CR, σ_CR), μ = (1 + tanh)/2 and σ = 0.1 + 0.6 (1 + tanh)/2."""

    def __init__(self, input_dim, mu_operator=14, cr_operator=3, n_mutation=3, n_crossover=2):
        super().__init__()
        for name, k in (("mutation_selector_net", mu_operator), ("crossover_selector_net", cr_operator),
                        ("mutation_param_sigma_net", n_mutation), ("mutation_param_mu_net", n_mutation),
                        ("crossover_param_sigma_net", n_crossover), ("crossover_param_mu_net", n_crossover)):
            self.add_module(name, TMLP(mlp_config([input_dim, 32, k], "ReLU")))

    def forward(self, f):
        mu = lambda net: 0.5 * (1 + torch.tanh(net(f)))  # noqa: E731
        sigma = lambda net: 0.1 + 0.6 * 0.5 * (1 + torch.tanh(net(f)))  # noqa: E731
        return (torch.softmax(self.mutation_selector_net(f), -1), torch.softmax(self.crossover_selector_net(f), -1),
                mu(self.mutation_param_mu_net), sigma(self.mutation_param_sigma_net),
                mu(self.crossover_param_mu_net), sigma(self.crossover_param_sigma_net))


class TRLDEAFLCritic(nn.Module):
    """RLDEAFL's critic (private name `_Critic__value_head`): ReLU MLP 16-8-1 averaged over the population → [B]."""

    def __init__(self, input_dim):
        super().__init__()
        self.add_module("_Critic__value_head", TMLP(mlp_config([input_dim, 16, 8, 1], "ReLU")))

    def forward(self, f):
        return getattr(self, "_Critic__value_head")(f).mean(1)[:, 0]


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
