"""An independent torch implementation of the PPO loss and update, written from design.md's equations.

Used by the parity tests and the update benchmark. Networks are plain torch MLPs whose weights are
copied from the jppo NNX modules, so both sides start identical.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def torch_loss(logp, old_logp, adv, values, old_values, returns, entropy, *, clip_eps, ent_coef,
               value_loss_factor, vf_coef, value_clip, value_clip_eps, normalize_advantages):
    if normalize_advantages:
        adv = (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-8)
    ratio = torch.exp(logp - old_logp)
    policy_loss = -torch.min(ratio * adv, torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * adv).mean()
    err = (values - returns) ** 2
    if value_clip:
        eps_v = clip_eps if value_clip_eps is None else value_clip_eps
        clipped = old_values + torch.clamp(values - old_values, -eps_v, eps_v)
        err = torch.max(err, (clipped - returns) ** 2)
    value_loss = value_loss_factor * err.mean()
    return policy_loss + vf_coef * value_loss - ent_coef * entropy.mean()


class TorchMLP(nn.Module):
    """tanh MLP mirroring `jppo.networks.MLP`."""

    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = torch.tanh(layer(x))
        return self.layers[-1](x)


def mlp_from_jppo(jppo_mlp) -> TorchMLP:
    layers = []
    for lin in jppo_mlp.layers:
        kernel = np.asarray(lin.kernel[...])
        layer = nn.Linear(kernel.shape[0], kernel.shape[1], dtype=torch.from_numpy(kernel).dtype)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(kernel.T.copy()))
            layer.bias.copy_(torch.from_numpy(np.asarray(lin.bias[...]).copy()))
        layers.append(layer)
    return TorchMLP(layers)


class TorchGaussianActorCritic(nn.Module):
    """Torch twin of `GaussianActor` + `Critic`."""

    def __init__(self, actor, critic):
        super().__init__()
        self.mean = mlp_from_jppo(actor.mean)
        self.log_std = nn.Parameter(torch.from_numpy(np.asarray(actor.log_std[...]).copy()))
        self.value = mlp_from_jppo(critic.value)

    def groups(self):
        return [list(self.mean.parameters()) + [self.log_std], list(self.value.parameters())]

    def evaluate(self, obs, actions):
        mu = self.mean(obs)
        std = torch.exp(self.log_std).expand_as(mu)
        dist = torch.distributions.Normal(mu, std)
        return dist.log_prob(actions).sum(-1), dist.entropy().sum(-1), self.value(obs)[..., 0]


def clip_groups(groups, max_norm):
    """MetaBox's per-network clipping, built on torch.nn.utils.clip_grad_norm_."""
    limit = max_norm if max_norm > 0 else math.inf
    return [float(torch.nn.utils.clip_grad_norm_(g, limit, norm_type=2)) for g in groups]


def torch_update(model, optimizer, batch, permutations, num_minibatches, *, clipping, max_grad_norm, **loss_kw):
    """K epochs × M minibatches over `batch` (dict of float64 tensors) in the given order."""
    losses = []
    for perm in permutations:
        for idx in np.split(np.asarray(perm), num_minibatches):
            idx = torch.from_numpy(idx)
            mb = {k: v[idx] for k, v in batch.items()}
            logp, ent, values = model.evaluate(mb["obs"], mb["actions"])
            loss = torch_loss(logp, mb["logp"], mb["advantages"], values, mb["values"], mb["returns"], ent, **loss_kw)
            optimizer.zero_grad()
            loss.backward()
            if clipping == "per_network":
                clip_groups(model.groups(), max_grad_norm)
            elif clipping == "global":  # optax's rule: scale by max/‖g‖ only when ‖g‖ > max
                params = list(model.parameters())
                norm = torch.sqrt(sum((p.grad**2).sum() for p in params))
                if norm > max_grad_norm:
                    for p in params:
                        p.grad.mul_(max_grad_norm / norm)
            optimizer.step()
            losses.append(loss.item())
    return losses
