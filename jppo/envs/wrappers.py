"""Wrappers that compose over any `Environment`: auto-reset and episode statistics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jppo.envs.base import Environment


class Wrapper(Environment):
    def __init__(self, env: Environment):
        self.env = env
        self.observation_shape = env.observation_shape
        self.action_space = env.action_space

    @property
    def default_params(self):
        return self.env.default_params

    def reset(self, key, params):
        return self.env.reset(key, params)

    def step(self, key, state, action, params):
        return self.env.step(key, state, action, params)


class AutoReset(Wrapper):
    """When an episode ends, start the next one in the same step.

    The returned observation is then the new episode's first; `info['final_obs']` holds the real
    last observation (for bootstrapping a truncated episode) and equals `obs` otherwise.
    """

    def step(self, key, state, action, params):
        step_key, reset_key = jax.random.split(key)
        obs, state, reward, terminated, truncated, info = self.env.step(step_key, state, action, params)
        done = terminated | truncated
        reset_obs, reset_state = self.env.reset(reset_key, params)
        pick = lambda new, old: jax.lax.select(jnp.broadcast_to(done, new.shape), new, old)  # noqa: E731
        next_state = jax.tree.map(pick, reset_state, state)
        info = {**info, "final_obs": obs}
        return pick(reset_obs, obs), next_state, reward, terminated, truncated, info


@struct.dataclass
class EpisodeStatsState:
    env_state: object
    episode_return: jax.Array
    episode_length: jax.Array
    returned_episode_return: jax.Array
    returned_episode_length: jax.Array


class EpisodeStats(Wrapper):
    """Running return and length; on the step an episode ends, reports them in `info`:
    `returned_episode` (bool), `returned_episode_return`, `returned_episode_length` (the last
    finished episode's, held until the next one ends)."""

    def reset(self, key, params):
        obs, env_state = self.env.reset(key, params)
        zero_f, zero_i = jnp.zeros((), obs.dtype), jnp.zeros((), jnp.int32)
        return obs, EpisodeStatsState(env_state, zero_f, zero_i, zero_f, zero_i)

    def step(self, key, state: EpisodeStatsState, action, params):
        obs, env_state, reward, terminated, truncated, info = self.env.step(key, state.env_state, action, params)
        done = terminated | truncated
        ret = state.episode_return + reward
        length = state.episode_length + 1
        new = EpisodeStatsState(
            env_state,
            jnp.where(done, 0.0, ret).astype(ret.dtype),
            jnp.where(done, 0, length),
            jnp.where(done, ret, state.returned_episode_return),
            jnp.where(done, length, state.returned_episode_length),
        )
        info = {**info, "returned_episode": done, "returned_episode_return": new.returned_episode_return,
                "returned_episode_length": new.returned_episode_length}
        return obs, new, reward, terminated, truncated, info
