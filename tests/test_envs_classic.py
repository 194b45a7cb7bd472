"""The JAX CartPole and Pendulum step for step against gymnasium's own, and the wrappers."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jppo import envs


def test_cartpole_matches_gymnasium_step_by_step():
    with jax.enable_x64(True):  # gymnasium integrates in float64
        env, params = envs.make("CartPole-v1")
        step = jax.jit(env.step)
        ref = gym.make("CartPole-v1")
        rng = np.random.default_rng(0)
        episodes = 0
        for episode in range(6):
            ref.reset(seed=episode)
            start = ref.unwrapped.state.copy()
            state = envs.classic.CartPoleState(jnp.asarray(start), jnp.zeros((), jnp.int32))
            # a biased random policy keeps some episodes long enough for the time limit
            bias = 0.5 if episode % 2 else rng.uniform(0.3, 0.7)
            while True:
                a = int(rng.random() < bias)
                obs_r, rew_r, term_r, trunc_r, _ = ref.step(a)
                obs, state, rew, term, trunc, _ = step(jax.random.key(0), state, a, params)
                np.testing.assert_allclose(np.asarray(state.physics), ref.unwrapped.state, rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(np.asarray(obs, np.float32), obs_r, rtol=1e-6, atol=1e-6)
                assert float(rew) == rew_r and bool(term) == term_r and bool(trunc) == trunc_r
                if term_r or trunc_r:
                    episodes += 1
                    break
        assert episodes == 6


def test_cartpole_time_limit_is_500_steps():
    env, params = envs.make("CartPole-v1")
    state = envs.classic.CartPoleState(jnp.zeros(4), jnp.asarray(499, jnp.int32))
    *_, term, trunc, _ = env.step(jax.random.key(0), state, 0, params)
    assert bool(trunc) and not bool(term)


def test_pendulum_matches_gymnasium_step_by_step():
    with jax.enable_x64(True):
        env, params = envs.make("Pendulum-v1")
        step = jax.jit(env.step)
        ref = gym.make("Pendulum-v1")
        ref.reset(seed=3)
        th, thdot = ref.unwrapped.state
        state = envs.classic.PendulumState(jnp.asarray(th), jnp.asarray(thdot), jnp.zeros((), jnp.int32))
        rng = np.random.default_rng(1)
        for t in range(200):
            a = rng.uniform(-3, 3, size=1)  # outside the bounds too: both clip
            obs_r, rew_r, term_r, trunc_r, _ = ref.step(a.astype(np.float32))
            obs, state, rew, term, trunc, _ = step(jax.random.key(0), state, jnp.asarray(a.astype(np.float32)), params)
            np.testing.assert_allclose(np.asarray(obs), obs_r, rtol=1e-5, atol=1e-5)
            assert np.isclose(float(rew), rew_r, rtol=1e-6)
            assert bool(term) == term_r and bool(trunc) == trunc_r
        assert trunc_r  # the 200-step limit was reached on both sides


def test_reset_distributions():
    keys = jax.random.split(jax.random.key(0), 2000)
    cart, cp = envs.make("CartPole-v1")
    obs, _ = jax.vmap(cart.reset, in_axes=(0, None))(keys, cp)
    assert float(jnp.abs(obs).max()) <= 0.05 and float(jnp.abs(obs).max()) > 0.049
    pend, pp = envs.make("Pendulum-v1")
    _, st = jax.vmap(pend.reset, in_axes=(0, None))(keys, pp)
    assert float(jnp.abs(st.theta).max()) <= np.pi and float(jnp.abs(st.theta_dot).max()) <= 1.0


def test_autoreset_reports_final_obs_and_episode_stats_count():
    env, params = envs.make("CartPole-v1")
    wrapped = envs.EpisodeStats(envs.AutoReset(env))
    obs, state = wrapped.reset(jax.random.key(0), params)
    step = jax.jit(wrapped.step)
    length, total = 0, 0.0
    for i in range(200):
        obs, state, reward, term, trunc, info = step(jax.random.key(i), state, 1, params)  # always push right: falls fast
        length += 1
        total += float(reward)
        if bool(term | trunc):
            assert bool(info["returned_episode"])
            assert int(info["returned_episode_length"]) == length
            assert float(info["returned_episode_return"]) == total
            assert abs(float(info["final_obs"][2])) > env.default_params.theta_threshold or abs(
                float(info["final_obs"][0])) > 2.4
            assert float(jnp.abs(obs).max()) <= 0.05  # the next episode's first observation
            break
        assert not bool(info["returned_episode"])
        np.testing.assert_array_equal(np.asarray(info["final_obs"]), np.asarray(obs))
    else:
        pytest.fail("the episode never ended")


def test_vmapped_batch_under_jit():
    env, params = envs.make("Pendulum-v1")
    env = envs.AutoReset(env)
    keys = jax.random.split(jax.random.key(0), 8)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    obs, state, reward, term, trunc, info = step(keys, state, jnp.zeros((8, 1)), params)
    assert obs.shape == (8, 3) and reward.shape == (8,)


def test_unknown_env_lists_available():
    with pytest.raises(ValueError, match="unknown environment 'CartPole-v9'; available: .*CartPole-v1.*Pendulum-v1"):
        envs.make("CartPole-v9")
