"""compat.PPO_Agent.train_episode against a torch implementation of design.md's loop, in float64."""

import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch")

from compat.networks import ClampedGaussianActor, Critic  # noqa: E402
from compat.ppo import PPO_Agent  # noqa: E402
from tests.envs_for_tests import ToyOptimizerEnv  # noqa: E402


def torch_mlp(mlp):
    layers = []
    for lin in mlp.layers:
        k = np.asarray(lin.kernel[...])
        layer = torch.nn.Linear(*k.shape, dtype=torch.float64)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(k.T.copy()))
            layer.bias.copy_(torch.from_numpy(np.asarray(lin.bias[...]).copy()))
        layers.append(layer)

    def forward(x):
        for layer in layers[:-1]:
            x = torch.relu(layer(x))
        return layers[-1](x)

    return forward, layers


class DeterministicActor(ClampedGaussianActor):
    """Acts with clamp(μ + σ/2, 0, 1) instead of sampling; the offset keeps the policy gradient well away
    from zero (with a = μ it is exactly zero at k = 0, and Adam would amplify rounding noise)."""

    def choose(self, policy, key):
        return jax.lax.stop_gradient(jnp.clip(policy.loc + 0.5 * policy.scale, 0.0, 1.0))


class TorchActor:
    def __init__(self, actor):
        self.mu, self.mu_layers = torch_mlp(actor.mu_net)
        self.sigma, self.sigma_layers = torch_mlp(actor.sigma_net)
        self.lo, self.hi = actor.min_sigma, actor.max_sigma

    def params(self):
        return [p for layer in self.mu_layers + self.sigma_layers for p in layer.parameters()]

    def __call__(self, state, fixed_action=None):
        mu = (torch.tanh(self.mu(state)) + 1) / 2
        sigma = (torch.tanh(self.sigma(state)) + 1) / 2 * (self.hi - self.lo) + self.lo
        dist = torch.distributions.Normal(mu, sigma)
        action = torch.clamp(mu + 0.5 * sigma, 0, 1).detach() if fixed_action is None else fixed_action
        return action, dist.log_prob(action).sum(-1)


class TorchCritic:
    def __init__(self, critic):
        self.f, self.layers = torch_mlp(critic.value_head)

    def params(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def __call__(self, state):
        return self.f(state)[..., 0]


def torch_train_episode(actor, critic, opt, envs, seed, cfg):
    """design.md's train_episode, step by step, in torch."""
    for i, e in enumerate(envs):
        e.seed(seed + i)
    state = torch.tensor(np.stack([e.reset() for e in envs]))
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
            out = [e.step(a[i].numpy()) for i, e in enumerate(envs)]
            state = torch.tensor(np.stack([o[0] for o in out]))
            r = np.array([o[1] for o in out])
            returns += r
            rewards.append(torch.tensor(r))
            done = any(o[2] for o in out)
            t += 1
        old_logp = torch.stack(logps).detach().view(-1)
        old_states, old_actions = torch.stack(states), torch.stack(actions)
        old_value = None
        for k in range(cfg.K_epochs):
            if k == 0:
                logp, v = torch.stack(logps).view(-1), torch.stack(values).view(-1)
            else:
                logp = torch.stack([actor(old_states[i], old_actions[i])[1] for i in range(t)]).view(-1)
                v = torch.stack([critic(old_states[i]) for i in range(t)]).view(-1)
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
            for group in opt.param_groups:
                torch.nn.utils.clip_grad_norm_(group["params"], cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf)
            opt.step()
            losses.append(loss.item())
            learning_time += 1
            if learning_time >= cfg.max_learning_step:
                return losses, returns, learning_time
    return losses, returns, learning_time


def test_train_episode_matches_torch_reference(tmp_path):
    with jax.enable_x64(True):
        cfg = types.SimpleNamespace(gamma=0.9, n_step=5, K_epochs=3, eps_clip=0.1, max_grad_norm=0.05, device="cpu",
                                    optimizer="Adam", agent_save_dir=str(tmp_path), save_interval=1000,
                                    end_mode="epoch", max_learning_step=10_000, no_tb=True, seed=0)
        actor = DeterministicActor(3, 3, (16, 8), rngs=nnx.Rngs(0))
        critic = Critic(3, rngs=nnx.Rngs(1))
        t_actor, t_critic = TorchActor(actor), TorchCritic(critic)
        agent = PPO_Agent(cfg, {"actor": actor, "critic": critic}, [3e-3, 1e-2])
        opt = torch.optim.Adam([{"params": t_actor.params(), "lr": 3e-3}, {"params": t_critic.params(), "lr": 1e-2}])

        envs = [ToyOptimizerEnv(max_steps=13) for _ in range(3)]  # windows 5, 5, 3: the last is short
        ended, info = agent.train_episode(envs, seeds=7)
        t_losses, t_returns, t_steps = torch_train_episode(t_actor, t_critic, opt, [ToyOptimizerEnv(max_steps=13) for _ in range(3)], 7, cfg)

        assert not ended and info["learn_steps"] == t_steps == 9
        np.testing.assert_allclose(info["loss"], t_losses, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(info["return"], t_returns, rtol=0, atol=0)
        costs = [e.cost for e in envs]
        np.testing.assert_allclose(info["normalizer"], [c[0] for c in costs])
        np.testing.assert_allclose(info["gbest"], [c[-1] for c in costs])
        for mine, theirs in [(agent.actor.mu_net, t_actor.mu_layers), (agent.actor.sigma_net, t_actor.sigma_layers),
                             (agent.critic.value_head, t_critic.layers)]:
            for lin, layer in zip(mine.layers, theirs):
                np.testing.assert_allclose(np.asarray(lin.kernel[...]), layer.weight.detach().numpy().T, rtol=1e-8, atol=1e-10)
                np.testing.assert_allclose(np.asarray(lin.bias[...]), layer.bias.detach().numpy(), rtol=1e-8, atol=1e-10)
        # gradient clipping was active: the clipped norm is max_grad_norm for some step
        assert agent.learning_time == 9
