"""Torch twins of SYMBOL's actor and critic, written from the definitions of MetaBox's `symbol.py`
(not imported from MetaBox). Attribute names reproduce MetaBox's state_dict names (`lstm.weight_ih_l0`,
`output_net.*`, `x_to_c.*`, `constval_net.*`; critic `value_net.*`), so the weights load into
`jppo.metabbo.networks.SYMBOLActor` / `SYMBOLCritic` by name.

The twin scores a recorded update rule step by step, as MetaBox's actor does: torch's own `nn.LSTM`
fed one step at a time ([B, 1, 4L], batch_first), the tree input written slot by slot with each
token's 4-bit code, torch's `Categorical(probs)` for the masked token softmax and the constant
softmax. Padded steps are skipped row by row (the batch shrinks as trees finish, as MetaBox's does)
instead of masked: agreement checks the scan, the padding and the bit encoding, not a copy of them.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Categorical

CONSTS = (3, 4)


class TSYMBOLActor(nn.Module):
    """SYMBOL's LSTM actor: lstm (4L → H), output_net (H → 11), x_to_c (fea_dim → H), constval_net (H → K)."""

    def __init__(self, max_layer=6, hidden_dim=16, num_layers=1, max_c=1.0, min_c=-1.0, fea_dim=9, c_interval=0.4):
        super().__init__()
        self.L = int(2**max_layer - 1)
        self.num_layers = num_layers
        self.lstm = nn.LSTM(self.L * 4, hidden_dim, num_layers, batch_first=True)
        self.output_net = nn.Linear(hidden_dim, 11)
        self.x_to_c = nn.Linear(fea_dim, hidden_dim)
        self.constval_net = nn.Linear(hidden_dim, int((max_c - min_c) // c_interval))

    def forward(self, x, tokens, positions, masks, constants, valid):
        """log π(rule | x) [B] and the summed joint per-step entropy [B] of recorded rules (int / bool
        tensors [B, L], masks [B, L, 11])."""
        b = x.shape[0]
        h = torch.zeros(self.num_layers, b, self.lstm.hidden_size, dtype=x.dtype)
        c = self.x_to_c(x)[None].repeat(self.num_layers, 1, 1)
        u = torch.zeros(b, 1, self.L * 4, dtype=x.dtype)
        logp = torch.zeros(b, dtype=x.dtype)
        ent = torch.zeros(b, dtype=x.dtype)
        rows = torch.arange(b)
        for t in range(self.L):
            keep = valid[rows, t]
            rows, u, h, c = rows[keep], u[keep], h[:, keep], c[:, keep]
            if len(rows) == 0:
                break
            out, (h, c) = self.lstm(u, (h, c))
            out = out[:, 0]
            logits = self.output_net(out).masked_fill(~masks[rows, t], -math.inf)
            tok = Categorical(probs=torch.softmax(logits, -1))
            con = Categorical(probs=torch.softmax(self.constval_net(out), -1))
            a = tokens[rows, t]
            is_const = (a == CONSTS[0]) | (a == CONSTS[1])
            const_logp = torch.where(is_const, con.log_prob(constants[rows, t]), torch.zeros_like(logp[rows]))
            step = tok.log_prob(a) + const_logp
            logp = logp.index_add(0, rows, step)
            ent = ent.index_add(0, rows, tok.entropy() + tok.probs[:, list(CONSTS)].sum(-1) * con.entropy())
            u = u.clone()
            for i in range(len(rows)):
                slot, code = int(positions[rows[i], t]), int(a[i]) + 1
                for j, bit in enumerate(format(code, "04b")):
                    u[i, 0, slot * 4 + j] = float(bit)
        return logp, ent


class TSYMBOLCritic(nn.Module):
    """SYMBOL's critic: value_net Linear(fea_dim → value_dim), `(detached, value)` squeezed."""

    def __init__(self, fea_dim=9, value_dim=1):
        super().__init__()
        self.value_net = nn.Linear(fea_dim, value_dim)

    def forward(self, x):
        v = self.value_net(x)
        return v.detach().squeeze(), v.squeeze()
