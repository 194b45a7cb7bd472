"""The fully jitted PPO trainer for JAX environments (the PureJaxRL pattern).

Rollout (`lax.scan` over steps, `vmap` over envs), GAE, and the K-epoch update form one compiled
update; `lax.scan` over updates makes a whole training run one program:

    trainer = Trainer(TrainConfig())
    state, metrics = trainer.train(jax.random.key(0))          # metrics: arrays [num_updates]
    states, metrics = jax.vmap(trainer.train)(keys)              # many seeds at once

Training can also run in chunks (`trainer.run(state, n)`), which is how checkpoints are taken;
a chunk boundary changes nothing (the RNG key travels in the state).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct
from jax import lax

from jppo import envs
from jppo.config import TrainConfig
from jppo.learner import Learner, SweepParams
from jppo.policy import ActorCritic
from jppo.returns import gae
from jppo.update import UpdateConfig, make_update


@struct.dataclass
class TrainState:
    params: dict
    opt_state: object
    env_state: object
    obs: jax.Array
    key: jax.Array
    update: jax.Array  # number of updates done
    sweep: SweepParams


def make_gae_update(learner: Learner) -> Callable:
    """GAE over a rollout and the K-epoch update (`jppo.update.make_update`):
    `gae_update(state, traj) -> (state, loss metrics)`.

    `traj` holds time-major `[T, N, ...]` obs, actions, logp, values, rewards, terminated, truncated and
    final_obs (the observation an episode ended on, for truncation bootstrapping); `state.obs` is the
    observation after the rollout.
    """
    c, policy = learner.config, learner.policy
    update = make_update(policy.evaluate, learner.optimizer,
                         UpdateConfig(c.num_epochs, c.num_minibatches, "global", learner.loss))

    def gae_update(state, traj: dict):
        final_values = policy.value(state.params, traj["final_obs"])
        last_value = policy.value(state.params, state.obs)
        advantages, returns = gae(traj["rewards"], traj["values"], last_value, traj["terminated"], traj["truncated"],
                                  final_values, gamma=state.sweep.gamma, lam=state.sweep.gae_lambda)
        batch = {k: traj[k].reshape(c.batch_size, *traj[k].shape[2:]) for k in ("obs", "actions", "logp", "values")}
        batch["advantages"] = advantages.reshape(-1)
        batch["returns"] = returns.reshape(-1)
        key, update_key = jax.random.split(state.key)
        params, opt_state, losses = update(state.params, state.opt_state, batch, update_key,
                                           learner.hyperparams(state.sweep))
        state = state.replace(params=params, opt_state=opt_state, key=key, update=state.update + 1)
        return state, {k: v.mean() for k, v in losses.items()}

    return gae_update


class UpdateLoop:
    """What the jitted trainers share: `_update_once(state, _) -> (state, metrics)` scanned over
    updates, reporting to the optional host callback `progress(update, metrics)` after each, and the
    `learner` they build (`jppo.learner.Learner`)."""

    @property
    def policy(self) -> ActorCritic:
        """The actor and critic as pure functions of their parameters."""
        return self.learner.policy

    def _step(self, state, _):
        state, metrics = self._update_once(state, None)
        if self.progress is not None:
            jax.debug.callback(self.progress, state.update, metrics)
        return state, metrics

    def _run(self, state, num_updates: int):
        return lax.scan(self._step, state, None, num_updates)

    def train(self, key, sweep: SweepParams | None = None):
        """The whole run as one program: `(final state, metrics [num_updates])`. vmap-able."""
        return self._run(self.init(key, sweep), self.config.num_updates)


@dataclasses.dataclass
class Trainer(UpdateLoop):
    """Builds the compiled pieces for one `TrainConfig` (and optional env override)."""

    config: TrainConfig
    env: envs.Environment | None = None
    env_params: object = None
    progress: Callable | None = None  # called on the host after every update: progress(update, metrics)

    def __post_init__(self):
        if self.env is None:
            self.env, default_params = envs.make(self.config.env_id, **self.config.env_options)
            self.env_params = default_params if self.env_params is None else self.env_params
        self.base_env = self.env
        self.env = envs.EpisodeStats(envs.AutoReset(self.env))
        self.learner = Learner.build(self.env, self.config)
        self._gae_update = make_gae_update(self.learner)
        self.run = jax.jit(self._run, static_argnums=1)

    # -- pure pieces -------------------------------------------------------------------------

    def init(self, key, sweep: SweepParams | None = None) -> TrainState:
        """A fresh state: new networks, optimizer, and `num_envs` reset environments."""
        start = self.learner.init(key, sweep)
        reset_keys = jax.random.split(start.env_key, self.config.num_envs)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(reset_keys, self.env_params)
        return TrainState(start.params, start.opt_state, env_state, obs, start.key, jnp.zeros((), jnp.int32), start.sweep)

    def _rollout(self, state: TrainState):
        c = self.config

        def env_step(carry, _):
            env_state, obs, key = carry
            key, act_key, step_key = jax.random.split(key, 3)
            action, logp, value = self.policy.act(state.params, obs, act_key)
            step = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))
            next_obs, env_state, reward, terminated, truncated, info = step(
                jax.random.split(step_key, c.num_envs), env_state, action, self.env_params
            )
            transition = dict(obs=obs, actions=action, logp=logp, values=value, rewards=reward.astype(value.dtype),
                              terminated=terminated, truncated=truncated, final_obs=info["final_obs"],
                              episode_done=info["returned_episode"], episode_return=info["returned_episode_return"],
                              episode_length=info["returned_episode_length"])
            return (env_state, next_obs, key), transition

        (env_state, obs, key), traj = lax.scan(env_step, (state.env_state, state.obs, state.key), None, c.num_steps)
        return state.replace(env_state=env_state, obs=obs, key=key), traj

    def _update_once(self, state: TrainState, _):
        lr = self.learner.learning_rate(state)
        state, traj = self._rollout(state.replace(opt_state=self.learner.with_learning_rate(state.opt_state, lr)))
        state, metrics = self._gae_update(state, traj)

        done = traj["episode_done"]
        n_done = done.sum()
        metrics.update(
            episodes=n_done,
            episodic_return=jnp.where(n_done > 0, (traj["episode_return"] * done).sum() / jnp.maximum(n_done, 1), jnp.nan),
            episodic_length=jnp.where(n_done > 0, (traj["episode_length"] * done).sum() / jnp.maximum(n_done, 1), jnp.nan),
            learning_rate=lr,
        )
        return state, metrics


def evaluate_policy(trainer: Trainer, params, key, num_episodes: int = 10, deterministic: bool = True):
    """Returns of `num_episodes` complete episodes of the (mode of the) policy, run in parallel."""
    return evaluate_runs(trainer, jax.tree.map(lambda x: x[None], params), key, num_episodes, deterministic)[0]


def evaluate_runs(trainer: Trainer, params, key, num_episodes: int = 10, deterministic: bool = True):
    """Returns `[runs, num_episodes]` of every run's policy (`params` with a leading run axis) in one program;
    episode e starts from the same key for every run, so runs are compared on the same episodes."""
    env = trainer.base_env
    max_steps = getattr(trainer.env_params, "max_steps", 1000)

    def episode(params, key):
        reset_key, key = jax.random.split(key)
        obs, state = env.reset(reset_key, trainer.env_params)

        def step(carry, key):
            obs, state, done, total = carry
            dist = trainer.policy.distribution(params, obs)
            action = dist.mode() if deterministic else dist.sample(key)
            obs, state, reward, term, trunc, _ = env.step(key, state, action, trainer.env_params)
            total = total + jnp.where(done, 0.0, reward)
            return (obs, state, done | term | trunc, total), None

        init = (obs, state, jnp.zeros((), bool), jnp.zeros((), obs.dtype))
        (_, _, _, total), _ = lax.scan(step, init, jax.random.split(key, max_steps))
        return total

    episodes = jax.vmap(jax.vmap(episode, in_axes=(None, 0)), in_axes=(0, None))
    return jax.jit(episodes)(params, jax.random.split(key, num_episodes))
