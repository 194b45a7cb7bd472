"""MetaBox's n-step loop as a compiled trainer: padded windows, batch-wide episode ends, learning.

`window_epoch` itself is checked against torch through the compat facade, which runs on it
(tests/test_compat_parity.py)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jppo.config import TrainConfig, preset
from jppo.envs import Box, Environment
from jppo.loss import METABOX
from jppo.nstep import NStepTrainer, _record_returns, window_epoch
from jppo.optim import make_optimizer
from jppo.policy import ActorCritic
from jppo.learner import make_networks
from jppo.update import Hyperparams


@struct.dataclass
class TargetParams:
    target: jax.Array  # [3]
    length: jax.Array  # [] steps of an episode


class TargetEnv(Environment):
    """Actions in [0, 1]^3, reward -Σ(a - target)²; an episode lasts `params.length` steps."""

    observation_shape = (1,)
    action_space = Box(0.0, 1.0, (3,))

    @property
    def default_params(self):
        return TargetParams(jnp.full(3, 0.9), jnp.asarray(20))

    def reset(self, key, params):
        return jnp.zeros(1), jnp.zeros((), jnp.int32)

    def step(self, key, t, action, params):
        t = t + 1
        reward = -jnp.sum((action - params.target) ** 2)
        return (t / params.length).reshape(1).astype(action.dtype), t, reward, t >= params.length, jnp.zeros((), bool), \
            {"t": t}


class UnevenLengths(TargetEnv):
    """Env i of the batch ends after 5 + 2 i steps."""

    def batch_params(self, params, num_envs):
        return TargetParams(jnp.broadcast_to(params.target, (num_envs, 3)), 5 + 2 * jnp.arange(num_envs))


@struct.dataclass
class UnitParams(TargetParams):
    unit: jax.Array  # [] what one reward unit is worth


class RewardUnits(TargetEnv):
    """TargetEnv with env i's rewards multiplied by `units[i]`."""

    def __init__(self, units):
        self.units = jnp.asarray(units)

    def batch_params(self, params, num_envs):
        return UnitParams(jnp.broadcast_to(params.target, (num_envs, 3)), jnp.broadcast_to(params.length, num_envs),
                          self.units)

    def step(self, key, t, action, params):
        obs, t, reward, terminated, truncated, info = super().step(key, t, action, params)
        return obs, t, reward * params.unit, terminated, truncated, info


CONFIG = TrainConfig(env_id="target", algorithm="nstep", num_envs=4, num_steps=8, num_epochs=3, num_minibatches=1,
                     total_steps=4 * 8 * 200, learning_rate=3e-3, anneal_lr=False, gamma=0.5, clip_eps=0.2,
                     max_grad_norm=float("inf"), vf_coef=1.0, normalize_advantages=False, hidden=(32, 32),
                     critic_hidden=(16,), activation="relu", actor="bounded", ent_coef=0.0)


def random_window(T, n, seed, valid):
    """(policy, params, Adam at lr 1e-2, a window of random numbers [T, n, ...] with `valid`) for TargetEnv."""
    actor, critic = make_networks(TargetEnv(), CONFIG, jax.random.key(0))
    policy, params = ActorCritic.split(actor, critic)
    rng = np.random.default_rng(seed)
    window = {"obs": rng.random((T, n, 1)), "actions": rng.random((T, n, 3)), "logp": rng.normal(size=(T, n)),
              "values": rng.normal(size=(T, n)), "rewards": rng.normal(size=(T, n)), "valid": valid}
    return policy, params, make_optimizer("Adam", {"actor": 1e-2, "critic": 1e-2}), window, rng.random((n, 1))


def test_padded_window_updates_like_the_shorter_window():
    """A window whose last steps are padding (valid = 0, any rewards there) gives the same parameters
    as MetaBox's shorter window: targets pass through the padding and means skip it."""
    with jax.enable_x64(True):
        T, pad, n = 6, 3, 4
        policy, params, optimizer, window, next_obs = random_window(T, n, 0, np.arange(T)[:, None].repeat(n, 1) < T - pad)
        hp = Hyperparams(clip_eps=0.1, ent_coef=0.0, max_grad_norm=np.inf)
        short = {k: jnp.asarray(v[: T - pad]) for k, v in window.items()}
        padded = {k: jnp.asarray(v) for k, v in window.items()}
        epoch = jax.jit(lambda p, o, w: window_epoch(policy.evaluate, policy.value, optimizer, p, o, w, next_obs, hp,
                                                     gamma=0.9, loss=METABOX))
        p_short = p_pad = params
        o_short = o_pad = optimizer.init(params)
        for _ in range(3):  # several epochs: Adam's state must agree too
            p_short, o_short, a_short = epoch(p_short, o_short, short)
            p_pad, o_pad, a_pad = epoch(p_pad, o_pad, padded)
        for a, b in zip(jax.tree.leaves(p_short), jax.tree.leaves(p_pad)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(a_pad["returns"].reshape(T, n)[: T - pad], a_short["returns"].reshape(T - pad, n),
                                   rtol=1e-12)


def test_terminated_envs_target_the_rewards_alone_and_the_others_bootstrap():
    """G_t = Σ_k γ^k r_{t+k} for an env whose episode terminated in the window (B = 0); the rest
    bootstrap from V(s_after); without `terminal` every env bootstraps (MetaBox)."""
    with jax.enable_x64(True):
        T, n, gamma = 5, 4, 0.9
        policy, params, optimizer, window, next_obs = random_window(T, n, 1, np.ones((T, n), bool))
        window, next_obs = {k: jnp.asarray(v) for k, v in window.items()}, jnp.asarray(next_obs)
        terminal = jnp.asarray([True, False, True, False])
        hp = Hyperparams(clip_eps=0.1, ent_coef=0.0, max_grad_norm=np.inf)
        epoch = jax.jit(lambda term: window_epoch(policy.evaluate, policy.value, optimizer, params,  # one compile,
                                                  optimizer.init(params), window, next_obs, hp,  # not op by op
                                                  gamma=gamma, loss=METABOX, terminal=term))
        discounts = gamma ** np.arange(T)
        rewards, v_after = np.asarray(window["rewards"]), np.asarray(policy.value(params, next_obs))
        expected = np.stack([(discounts[: T - t, None] * rewards[t:]).sum(0) for t in range(T)])
        expected_boot = expected + (gamma ** (T - np.arange(T)))[:, None] * v_after
        got = np.asarray(epoch(terminal)[2]["returns"]).reshape(T, n)
        np.testing.assert_allclose(got[:, [0, 2]], expected[:, [0, 2]], rtol=1e-12)
        np.testing.assert_allclose(got[:, [1, 3]], expected_boot[:, [1, 3]], rtol=1e-12)
        np.testing.assert_allclose(np.asarray(epoch(None)[2]["returns"]).reshape(T, n), expected_boot, rtol=1e-12)


def test_batch_episode_ends_with_its_first_env_and_restarts():
    """MetaBox's ParallelEnv ends the batch's episode when any env ends: with episodes of 5, 7, 9, 11
    steps every batch episode lasts 5 steps; the rest of the window is padding, then all reset."""
    trainer = NStepTrainer(dataclasses.replace(CONFIG, total_steps=4 * 8 * 3), env=UnevenLengths(),
                           env_params=TargetEnv().default_params)
    state = trainer.init(jax.random.key(0))
    state, window = jax.jit(trainer._rollout)(trainer._start_window(state))
    valid = np.asarray(window["valid"])
    np.testing.assert_array_equal(valid[:, 0], np.arange(8) < 5)
    np.testing.assert_array_equal(np.asarray(window["rewards"])[5:], 0.0)
    assert bool(state.ended) and int(state.episode_length) == 5
    np.testing.assert_array_equal(np.asarray(state.env_state), 5)  # frozen after the end
    terminated = np.asarray(window["terminated"])  # only env 0 terminated; the others were cut off
    np.testing.assert_array_equal(terminated.any(axis=0), [True, False, False, False])
    assert terminated[4, 0] and terminated.sum() == 1
    _, metrics = jax.jit(trainer.train)(jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(metrics["episodic_length"]), 5.0)  # one batch episode per window
    np.testing.assert_array_equal(np.asarray(metrics["final_t"]), 5.0)
    np.testing.assert_array_equal(np.asarray(metrics["episodes"]), 4)


def test_nstep_trainer_learns_and_vmaps_over_seeds():
    trainer = NStepTrainer(CONFIG, env=TargetEnv(), env_params=TargetEnv().default_params)
    _, metrics = jax.jit(jax.vmap(trainer.train))(jax.random.split(jax.random.key(0), 2))
    ret = np.asarray(metrics["episodic_return"])  # [2, windows], NaN where no episode ended
    first, last = np.nanmean(ret[:, :10], axis=1), np.nanmean(ret[:, -10:], axis=1)
    assert np.all(first < -4.0), first  # μ ≈ 0.5, σ ≈ 0.35: about -0.3 a step for 20 steps
    assert np.all(last > 0.1 * first), (first, last)  # at least 90% of the regret gone


def test_config_checks_for_nstep():
    with pytest.raises(ValueError, match="num_minibatches must be 1"):
        TrainConfig(algorithm="nstep", num_minibatches=4)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        TrainConfig(algorithm="a2c")
    with pytest.raises(ValueError, match="needs a Box action space on \\[0, 1\\]"):
        NStepTrainer(TrainConfig(env_id="CartPole-v1", algorithm="nstep", num_minibatches=1, actor="bounded"))
    with pytest.raises(ValueError, match="runs algorithm='nstep'"):
        NStepTrainer(TrainConfig())
    for flag in ("bootstrap_terminal", "scale_rewards_per_env"):
        with pytest.raises(ValueError, match="belong to algorithm=.nstep."):
            TrainConfig(**{flag: True})
    rlepso = preset("rlepso-bbob10d", learning_rate=3e-4)
    assert (rlepso.num_steps, rlepso.num_epochs, rlepso.clip_eps, rlepso.gamma) == (10, 3, 0.1, 0.999)
    assert rlepso.learning_rate == 3e-4 and rlepso.algorithm == "nstep"


def test_per_env_reward_scaling_makes_training_blind_to_each_envs_reward_unit():
    """Rewards of env i multiplied by u_i (powers of 2: exact in floating point) and its return
    statistics likewise: with `scale_rewards_per_env` every update is the same as with u = 1,
    without it they differ; a finished batch episode folds its returns² into the running mean."""
    config = dataclasses.replace(CONFIG, total_steps=4 * 8 * 12, scale_rewards_per_env=True)
    units = np.array([1.0, 4.0, 0.25, 16.0])

    def run(config, units):
        trainer = NStepTrainer(config, env=RewardUnits(units), env_params=TargetEnv().default_params)
        state = trainer.init(jax.random.key(0))
        state = state.replace(episodes=jnp.asarray(1), return_sq=jnp.asarray(9.0 * units**2, state.return_sq.dtype))
        return jax.jit(trainer.run, static_argnums=1)(state, config.num_updates)

    (plain, _), (scaled, _) = run(config, np.ones(4)), run(config, units)
    for a, b in zip(jax.tree.leaves(plain.params), jax.tree.leaves(scaled.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(np.asarray(scaled.return_sq), np.asarray(plain.return_sq) * units**2, rtol=1e-6)
    assert int(plain.episodes) == 1 + 12 * 8 // 20  # episodes of 20 steps, windows of 8
    state = plain.replace(episodes=jnp.asarray(2), return_sq=jnp.array([4.0, 1.0]), episode_return=jnp.array([1.0, 3.0]))
    folded = _record_returns(state.replace(ended=jnp.asarray(True)))
    assert int(folded.episodes) == 3
    np.testing.assert_allclose(np.asarray(folded.return_sq), [(2 * 4 + 1) / 3, (2 * 1 + 9) / 3], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(_record_returns(state.replace(ended=jnp.asarray(False))).return_sq), [4, 1])
    unscaled = dataclasses.replace(config, scale_rewards_per_env=False)
    (a, _), (b, _) = run(unscaled, np.ones(4)), run(unscaled, units)
    assert not np.allclose(np.asarray(jax.tree.leaves(a.params)[0]), np.asarray(jax.tree.leaves(b.params)[0]))
