"""Independent torch implementations, written from the equations (docs/metabox.md): the PPO loss and update, and MetaBox's
episode loop (`torch_train_episode`) with RLEPSO-shaped networks.

Used by the parity tests and the update and compat benchmarks. Networks are plain torch MLPs whose weights are
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


# --------------------------------------------------------------------------- MetaBox's episode loop
# Torch twins of MetaBox's RLEPSO actor and critic (`RLEPSOActor`, `RLEPSOCritic`: ReLU MLPs, weights
# copied from the NNX modules) and compat's train_episode (docs/metabox.md) written step by step in torch. Used by the compat parity
# test (deterministic actions, float64) and the compat benchmark (sampled actions, as MetaBox).


def relu_mlp_from_nnx(nnx_mlp):
    """`(forward, layers)`: a torch ReLU MLP with the weights of a ReLU `jppo.networks.MLP`."""
    layers = []
    for lin in nnx_mlp.layers:
        k = np.array(lin.kernel[...])  # a writable copy
        layer = nn.Linear(*k.shape, dtype=torch.from_numpy(k).dtype)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(k.T.copy()))
            layer.bias.copy_(torch.from_numpy(np.array(lin.bias[...])))
        layers.append(layer)

    def forward(x):
        for layer in layers[:-1]:
            x = torch.relu(layer(x))
        return layers[-1](x)

    return forward, layers


class TorchClampedActor:
    """Twin of `RLEPSOActor` (its `mean` and `spread` MLPs). `sample=True` acts as MetaBox's RLEPSO actor
    (clamp(a ~ N(μ, σ), 0, 1), torch's global RNG); `sample=False` acts with clamp(μ + σ/2, 0, 1)."""

    def __init__(self, actor, sample=False):
        self.mu, self.mu_layers = relu_mlp_from_nnx(actor.mean)
        self.sigma, self.sigma_layers = relu_mlp_from_nnx(actor.spread)
        self.lo, self.hi, self.sample = actor.min_sigma, actor.max_sigma, sample

    def params(self):
        return [p for layer in self.mu_layers + self.sigma_layers for p in layer.parameters()]

    def __call__(self, state, fixed_action=None):
        mu = (torch.tanh(self.mu(state)) + 1) / 2
        sigma = (torch.tanh(self.sigma(state)) + 1) / 2 * (self.hi - self.lo) + self.lo
        dist = torch.distributions.Normal(mu, sigma)
        if fixed_action is not None:
            action = fixed_action
        elif self.sample:
            action = torch.clamp(dist.sample(), 0, 1)
        else:
            action = torch.clamp(mu + 0.5 * sigma, 0, 1).detach()
        return action, dist.log_prob(action).sum(-1)


class TorchValueCritic:
    """Twin of `RLEPSOCritic` (returns the value only)."""

    def __init__(self, critic):
        self.f, self.layers = relu_mlp_from_nnx(critic.value_head)

    def params(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def __call__(self, state):
        return self.f(state)[..., 0]


def torch_train_episode(actor, critic, opt, envs, seed, cfg, *, reevaluate_at_last_state=False, stats=None):
    """compat's train_episode (docs/metabox.md), step by step, in torch, on MetaBox-style envs stepped in process.

    `reevaluate_at_last_state` reproduces MetaBox's RLEPSO loop (baseline/metabbo/rlepso.py): epochs
    k >= 1 evaluate the stored actions, and the critic, at the state after the window instead of the
    stored states. `stats` (a dict) collects per learning step 'clip_fraction', 'approx_kl' (0.5 Δ²),
    'grad_actor' (the actor group's norm before clipping) and 'epoch' (k).

    Returns `(losses, returns per env, learning steps)`."""
    for i, e in enumerate(envs):
        e.seed(seed + i)
    dtype = actor.mu_layers[0].weight.dtype
    state = torch.tensor(np.stack([e.reset() for e in envs]), dtype=dtype)
    done, losses, learning_time = False, [], 0
    returns = np.zeros(len(envs))
    while not done:
        states, actions, logps, values, rewards = [], [], [], [], []
        t = 0
        while t < cfg.n_step and not done:
            states.append(state)
            a, lp = actor(state)
            actions.append(a)
            logps.append(lp)
            values.append(critic(state))
            out = [e.step(a[i].detach().numpy()) for i, e in enumerate(envs)]
            state = torch.tensor(np.stack([o[0] for o in out]), dtype=dtype)
            r = np.array([o[1] for o in out])
            returns += r
            rewards.append(torch.tensor(r, dtype=dtype))
            done = any(o[2] for o in out)
            t += 1
        old_logp = torch.stack(logps).detach().view(-1)
        old_states, old_actions = torch.stack(states), torch.stack(actions)
        old_value = None
        for k in range(cfg.K_epochs):
            if k == 0:
                logp, v = torch.stack(logps).view(-1), torch.stack(values).view(-1)
            else:
                at = (lambda i: state) if reevaluate_at_last_state else (lambda i: old_states[i])  # noqa: E731
                logp = torch.stack([actor(at(i), old_actions[i])[1] for i in range(t)]).view(-1)
                v = torch.stack([critic(at(i)) for i in range(t)]).view(-1)
            R = critic(state).detach()
            targets = []
            for r in reversed(rewards):
                R = r + cfg.gamma * R
                targets.append(R)
            G = torch.stack(targets[::-1]).view(-1)
            ratio = torch.exp(logp - old_logp)
            adv = G - v.detach()
            policy_loss = -torch.min(ratio * adv, torch.clamp(ratio, 1 - cfg.eps_clip, 1 + cfg.eps_clip) * adv).mean()
            if old_value is None:
                value_loss = ((v - G) ** 2).mean()
                old_value = v.detach()
            else:
                clipped = old_value + torch.clamp(v - old_value, -cfg.eps_clip, cfg.eps_clip)
                value_loss = torch.max((v - G) ** 2, (clipped - G) ** 2).mean()
            loss = policy_loss + value_loss
            opt.zero_grad()
            loss.backward()
            norms = [float(torch.nn.utils.clip_grad_norm_(group["params"], cfg.max_grad_norm if cfg.max_grad_norm > 0
                                                          else math.inf)) for group in opt.param_groups]
            if stats is not None:
                with torch.no_grad():
                    for key, value in (("clip_fraction", ((ratio - 1).abs() > cfg.eps_clip).double().mean()),
                                       ("approx_kl", (0.5 * (logp - old_logp) ** 2).mean()),
                                       ("grad_actor", norms[0]), ("epoch", k)):
                        stats.setdefault(key, []).append(float(value))
            opt.step()
            losses.append(loss.item())
            learning_time += 1
            if learning_time >= cfg.max_learning_step:
                return losses, returns, learning_time
    return losses, returns, learning_time
