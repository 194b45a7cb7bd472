"""compat.PPO_Agent with networks in each of MetaBox's call conventions (compat/conventions.py).

Each variant wraps the plain networks (actor `fixed_action=`, log-prob and entropy `[B]`; critic
returning the value `[B]`) without changing their parameters, so a float64 `train_episode` must give
the same parameters, losses and rollouts as the plain pair. A shared trunk is checked against a torch
reference; bad outputs against their error messages.
"""

import math
import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from compat.networks import MLP, RLEPSOActor, RLEPSOCritic
from compat.ppo import PPO_Agent
from references.envs import ToyOptimizerEnv

A = 3  # action dimensions


def config(tmp_path, **changes):
    cfg = dict(gamma=0.9, n_step=3, K_epochs=2, eps_clip=0.1, max_grad_norm=0.5, device="cpu", optimizer="Adam",
               agent_save_dir=str(tmp_path), save_interval=10**6, end_mode="epoch", max_learning_step=10**6,
               no_tb=False, seed=0)
    cfg.update(changes)
    return types.SimpleNamespace(**cfg)


def envs(n=2, steps=6):
    return [ToyOptimizerEnv(action_dim=A, max_steps=steps) for _ in range(n)]  # windows 3, 3 (one compile)


def per_dim_entropy(actor, state):
    return 0.5 + 0.5 * math.log(2 * math.pi) + jnp.log(actor.distribution(state).scale)


# --------------------------------------------------------------------------- the conventions


class PlainActor(RLEPSOActor):
    """The plain convention: `fixed_action=`, always three outputs, log-prob and entropy [B] (RLEPSO's
    per-dimension entropy summed over the action)."""

    def __call__(self, state, fixed_action=None, require_entropy=False, *, key=None):
        action, logp, *entropy = super().__call__(state, fixed_action, require_entropy, key=key)
        return action, logp, entropy[0].sum(-1) if entropy else None


class PlainCritic(RLEPSOCritic):
    def __call__(self, state):
        return super().__call__(state)[1]


class RLDASLike(PlainActor):
    """`fix_action=` (RLDAS, SYMBOL); entropy per dimension [B, A] (RLEPSO, RLDAS: the issue's crash)."""

    def __call__(self, state, fix_action=None, require_entropy=False, *, key=None):
        action, logp, _ = super().__call__(state, fix_action, require_entropy, key=key)
        return action, logp, per_dim_entropy(self, state)


class PairCritic(RLEPSOCritic):
    """(value detached, value), each [B] (RLEPSO, RLDAS, RLDEAFL, SYMBOL)."""


class L2TLike(PlainActor):
    """No `require_entropy=`: always three outputs, entropy [B, A] (L2T)."""

    def __call__(self, state, fixed_action=None, *, key=None):
        action, logp, _ = super().__call__(state, fixed_action, True, key=key)
        return action, logp, per_dim_entropy(self, state)


class PairColumnCritic(RLEPSOCritic):
    """(value detached, value), each [B, 1] (L2T)."""

    def __call__(self, state):
        return tuple(jnp.reshape(v, (-1, 1)) for v in super().__call__(state))  # [] when B = 1: squeezed


class GLEETLike(PlainActor):
    """GLEET's and RLEMMO's wiring with the state itself as the critic's features: `to_critic=True` adds
    them as a fourth output, `only_critic=True` returns them alone; log-prob [B, 1], entropy [B, N, 1]."""

    def __call__(self, state, fixed_action=None, require_entropy=False, to_critic=False, only_critic=False, *,
                 key=None):
        if only_critic:
            return state
        action, logp, _ = super().__call__(state, fixed_action, require_entropy, key=key)
        return action, logp[:, None], per_dim_entropy(self, state)[..., None], state if to_critic else None


# name -> (actor class, critic class, logged entropy x this = the plain actor's (summed over A)).
# Each of the eight conventions appears in one of three pairs (a compile each; the errors are tested apart).
VARIANTS = {
    "RLDAS: fix_action, entropy [B, A], critic (detached, value)": (RLDASLike, PairCritic, A),
    "L2T: no require_entropy, critic (detached, value) [B, 1]": (L2TLike, PairColumnCritic, A),
    "GLEET: shared trunk, log_prob [B, 1], entropy [B, N, 1]": (GLEETLike, PlainCritic, A),
}


class Recorder:
    def __init__(self):
        self.scalars = {}

    def add_scalar(self, tag, value, step):
        self.scalars.setdefault(tag, []).append(value)


def train(tmp_path, actor_cls, critic_cls, agent_cls=PPO_Agent, **changes):
    """Float64: build the agent, one train_episode, one rollout_episode. Returns a summary dict."""
    with jax.enable_x64(True):
        nets = {"actor": actor_cls(3, A, hidden=(8,), rngs=nnx.Rngs(0)),
                "critic": critic_cls(3, hidden=(8,), rngs=nnx.Rngs(1))}
        agent = agent_cls(config(tmp_path, **changes), nets, [3e-3, 1e-2])
        tb = Recorder()
        ended, info = agent.train_episode(envs(), seeds=5, tb_logger=tb)
        rollout = agent.rollout_episode(ToyOptimizerEnv(action_dim=A, max_steps=6), seed=3)
        params = {n: jax.tree.map(np.asarray, nnx.state(getattr(agent, n), nnx.Param)) for n in ("actor", "critic")}
        return dict(agent=agent, info=info, tb=tb.scalars, rollout=rollout, params=params)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The plain pair's run; it saves checkpoints every 3 steps (K = 2: inside window 2)."""
    return train(tmp_path_factory.mktemp("plain"), PlainActor, PlainCritic, end_mode="step", save_interval=3)


def assert_same_run(mine, plain):
    assert mine["info"]["learn_steps"] == plain["info"]["learn_steps"] == 4
    np.testing.assert_allclose(mine["info"]["loss"], plain["info"]["loss"], rtol=0, atol=1e-12)
    for a, b in zip(jax.tree.leaves(mine["params"]), jax.tree.leaves(plain["params"]), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert mine["rollout"]["return"] == plain["rollout"]["return"]
    np.testing.assert_allclose(mine["rollout"]["cost"], plain["rollout"]["cost"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_convention_trains_like_the_plain_one(tmp_path, plain, name):
    actor_cls, critic_cls, entropy_factor = VARIANTS[name]
    mine = train(tmp_path, actor_cls, critic_cls)
    assert_same_run(mine, plain)
    assert not np.allclose(jax.tree.leaves(mine["params"]["actor"])[0], jax.tree.leaves(untrained_actor())[0])
    # MetaBox logs the mean over all entries of the entropy, whatever its shape
    np.testing.assert_allclose(np.asarray(mine["tb"]["train/avg_entropy"]) * entropy_factor,
                               plain["tb"]["train/avg_entropy"], rtol=1e-12)


def untrained_actor():
    with jax.enable_x64(True):
        return nnx.state(PlainActor(3, A, hidden=(8,), rngs=nnx.Rngs(0)), nnx.Param)


# --------------------------------------------------------------------------- hooks


class HostHooks(PPO_Agent):
    """Overrides the host hooks (delegating), so acting goes through them instead of `_act`."""

    calls = 0

    def _get_action(self, state, fixed_action=None):
        type(self).calls += 1
        return super()._get_action(state, fixed_action)

    def _get_critic(self, state):
        return super()._get_critic(state)


def test_host_hooks_are_used_and_train_alike(tmp_path, plain):
    mine = train(tmp_path, PlainActor, PlainCritic, agent_cls=HostHooks)
    assert HostHooks.calls == 6 + 6  # every env step of the episode and of the rollout
    assert_same_run(mine, plain)


class OwnCallActor(PlainActor):
    """No MetaBox convention at all: `actor(state, action=None, *, key=None) -> (action, log_prob)`."""

    def __call__(self, state, action=None, *, key=None):
        policy = self.distribution(state)
        action = policy.sample(key) if action is None else action
        return action, policy.log_prob(action)


class OwnCallAgent(PPO_Agent):
    """A port adapts such an actor by overriding the three compiled hooks."""

    def _act(self, nets, state, key):
        action, logp = nets["actor"](state, key=key)
        return action, logp, nets["actor"].distribution(state).entropy(), nets["critic"](state)

    def _evaluate(self, nets, states, actions):
        _, logp = nets["actor"](states, actions)
        return logp, nets["actor"].distribution(states).entropy(), nets["critic"](states)

    def _bootstrap(self, nets, state):
        return nets["critic"](state)


def test_compiled_hooks_are_honoured(tmp_path, plain):
    assert_same_run(train(tmp_path, OwnCallActor, PlainCritic, agent_cls=OwnCallAgent), plain)


# --------------------------------------------------------------------------- a shared trunk vs torch


class TrunkActor(nnx.Module):
    """GLEET's wiring in small: features h = tanh(W s + b) feed the policy heads and (to_critic=True)
    the critic. Log-prob [B, 1], entropy [B, A, 1] as GLEET's. Acts with clamp(μ + σ/2, 0, 1) (no
    sampling, so torch can follow)."""

    def __init__(self, feature_dim, action_dim, width, *, rngs):
        self.trunk = MLP([feature_dim, width], activation="ReLU", rngs=rngs)
        self.mu = MLP([width, action_dim], activation="ReLU", rngs=rngs)
        self.sigma = MLP([width, action_dim], activation="ReLU", rngs=rngs)

    def __call__(self, state, fixed_action=None, require_entropy=False, to_critic=False, only_critic=False, *,
                 key=None):
        h = jnp.tanh(self.trunk(state))
        if only_critic:
            return h
        mu = (jnp.tanh(self.mu(h)) + 1) / 2
        sigma = (jnp.tanh(self.sigma(h)) + 1) / 2 * 0.69 + 0.01
        action = jax.lax.stop_gradient(jnp.clip(mu + sigma / 2, 0, 1)) if fixed_action is None else fixed_action
        z = (action - mu) / sigma
        logp = jnp.sum(-0.5 * z**2 - jnp.log(sigma) - 0.5 * math.log(2 * math.pi), -1, keepdims=True)
        entropy = (0.5 + 0.5 * math.log(2 * math.pi) + jnp.log(sigma))[..., None] if require_entropy else None
        return action, logp, entropy, h if to_critic else None


class FeatureCritic(nnx.Module):
    def __init__(self, width, *, rngs):
        self.head = MLP([width, 8, 1], activation="ReLU", rngs=rngs)

    def __call__(self, h):
        v = self.head(h)
        return jax.lax.stop_gradient(v), v  # [B, 1] each


def test_shared_trunk_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from references.torch_ppo import relu_mlp_from_nnx, torch_train_episode

    with jax.enable_x64(True):
        actor, critic = TrunkActor(3, A, 6, rngs=nnx.Rngs(0)), FeatureCritic(6, rngs=nnx.Rngs(1))
        (trunk, trunk_l), (mu, mu_l), (sigma, sigma_l) = (relu_mlp_from_nnx(m) for m in (actor.trunk, actor.mu, actor.sigma))
        head, head_l = relu_mlp_from_nnx(critic.head)

        class TorchActor:
            mu_layers = mu_l

            def __call__(self, state, fixed_action=None):
                h = torch.tanh(trunk(state))
                m, s = (torch.tanh(mu(h)) + 1) / 2, (torch.tanh(sigma(h)) + 1) / 2 * 0.69 + 0.01
                a = torch.clamp(m + s / 2, 0, 1).detach() if fixed_action is None else fixed_action
                return a, torch.distributions.Normal(m, s).log_prob(a).sum(-1)

        def torch_critic(state):  # critic(actor features): value gradients reach the trunk
            return head(torch.tanh(trunk(state)))[..., 0]

        params = lambda layers: [p for layer in layers for p in layer.parameters()]  # noqa: E731
        opt = torch.optim.Adam([{"params": params(trunk_l + mu_l + sigma_l), "lr": 3e-3},
                                {"params": params(head_l), "lr": 1e-2}])
        cfg = config(tmp_path, K_epochs=3, n_step=2, max_grad_norm=0.05, max_learning_step=8)  # stops inside window 3
        agent = PPO_Agent(cfg, {"actor": actor, "critic": critic}, [3e-3, 1e-2])
        ended, info = agent.train_episode(envs(3), seeds=7)
        t_losses, t_returns, t_steps = torch_train_episode(TorchActor(), torch_critic, opt, envs(3), 7, cfg)

    assert ended and info["learn_steps"] == t_steps == 8
    np.testing.assert_allclose(info["loss"], t_losses, rtol=1e-8, atol=1e-12)
    for mine, theirs in [(actor.trunk, trunk_l), (actor.mu, mu_l), (actor.sigma, sigma_l), (critic.head, head_l)]:
        for lin, layer in zip(mine.layers, theirs, strict=True):
            np.testing.assert_allclose(np.asarray(lin.kernel[...]), layer.weight.detach().numpy().T, rtol=1e-8, atol=1e-10)
            np.testing.assert_allclose(np.asarray(lin.bias[...]), layer.bias.detach().numpy(), rtol=1e-8, atol=1e-10)


# --------------------------------------------------------------------------- checkpoints inside a window


def test_checkpoint_inside_a_window_holds_that_steps_parameters(tmp_path, plain):
    """The plain run (K = 2, save_interval 3) saved checkpoint-1 after the first epoch of window 2: it
    holds the parameters of a run stopped there by max_learning_step = 3."""
    import pickle

    stopped = train(tmp_path, PlainActor, PlainCritic, max_learning_step=3)
    assert stopped["info"]["learn_steps"] == 3 and stopped["info"]["loss"] == plain["info"]["loss"][:3]
    save_dir = plain["agent"].config.agent_save_dir
    with jax.enable_x64(True), open(f"{save_dir}/checkpoint-1.pkl", "rb") as f:
        saved = pickle.load(f)
        assert saved.learning_time == 3 and saved.cur_checkpoint == 1  # pickled just before it moved on
        for n in ("actor", "critic"):
            mine = jax.tree.leaves(nnx.state(getattr(saved, n), nnx.Param))
            for a, b in zip(mine, jax.tree.leaves(stopped["params"][n]), strict=True):
                np.testing.assert_array_equal(np.asarray(a), b)
    assert sorted(os.listdir(save_dir)) == ["checkpoint-0.pkl", "checkpoint-1.pkl"]  # 4 steps: no checkpoint-2


# --------------------------------------------------------------------------- bad outputs


class PerDimLogProb(PlainActor):
    def __call__(self, state, fixed_action=None, require_entropy=False, *, key=None):
        action, _, entropy = super().__call__(state, fixed_action, require_entropy, key=key)
        return action, self.distribution(state).scale, entropy  # [B, A]: forgot the sum


class ScalarEntropy(PlainActor):
    def __call__(self, state, fixed_action=None, require_entropy=False, *, key=None):
        action, logp, entropy = super().__call__(state, fixed_action, require_entropy, key=key)
        return action, logp, entropy.mean()


class WideCritic(RLEPSOCritic):
    def __call__(self, state):
        _, v = super().__call__(state)
        return v, jnp.stack([v, v], -1)


class TrunkWithoutFeatures(GLEETLike):
    def __call__(self, state, fixed_action=None, require_entropy=False, to_critic=False, only_critic=False, *,
                 key=None):
        return super().__call__(state, fixed_action, require_entropy, to_critic, only_critic, key=key)[:3]


class PositionalOnly(PlainActor):
    def __call__(self, state, action=None, *, key=None):
        return super().__call__(state, action, True, key=key)


class BadEvaluate(PPO_Agent):
    def _evaluate(self, nets, states, actions):
        logp, entropy, value = super()._evaluate(nets, states, actions)
        return logp, entropy, value[:1]


@pytest.mark.parametrize("actor_cls, critic_cls, agent_cls, message", [
    (PerDimLogProb, RLEPSOCritic, PPO_Agent,
     r"network 'actor' returned log_prob with shape \(2, 3\); expected \(2,\) or \(2, 1\)"),
    (ScalarEntropy, RLEPSOCritic, PPO_Agent, r"network 'actor' returned entropy with shape \(\); expected \(2, \.\.\.\)"),
    (PlainActor, WideCritic, PPO_Agent,
     r"network 'critic' returned the value \(its last output\) with shape \(2, 2\); expected \(2,\) or \(2, 1\)"),
    (TrunkWithoutFeatures, PlainCritic, PPO_Agent,
     r"network 'actor' must return \(action, log_prob, entropy, critic features\).*to_critic=.*returned 3 output"),
    (PositionalOnly, RLEPSOCritic, PPO_Agent, r"must take the stored action as a keyword, fixed_action= or fix_action="),
    (PlainActor, RLEPSOCritic, BadEvaluate,
     r"the hook _evaluate returned the value with shape \(1,\); expected \(6,\) or \(6, 1\)"),  # N = 3 steps x 2 envs
], ids=["log_prob [B, A]", "entropy []", "value [B, 2]", "trunk without features", "no action keyword",
        "_evaluate value [1]"])
def test_bad_outputs_raise_one_named_error(tmp_path, actor_cls, critic_cls, agent_cls, message):
    nets = {"actor": actor_cls(3, A, hidden=(8,), rngs=nnx.Rngs(0)),
            "critic": critic_cls(3, hidden=(8,), rngs=nnx.Rngs(1))}
    agent = agent_cls(config(tmp_path), nets, 1e-3)
    with pytest.raises(ValueError, match=message):
        agent.train_episode(envs(), seeds=1)
