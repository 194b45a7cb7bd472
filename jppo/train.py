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
import numpy as np
from flax import nnx, struct
from jax import lax

from jppo import envs
from jppo.config import TrainConfig
from jppo.loss import LossConfig
from jppo.networks import BoundedGaussianActor, CategoricalActor, Critic, GaussianActor
from jppo.optim import make_optimizer, set_learning_rates
from jppo import policy as policies
from jppo.policy import ActorCritic
from jppo.returns import gae
from jppo.update import Hyperparams, UpdateConfig, make_update


@struct.dataclass
class SweepParams:
    """Hyperparameters that may differ per vmapped run without recompiling."""

    learning_rate: jax.Array
    ent_coef: jax.Array
    clip_eps: jax.Array

    @classmethod
    def from_config(cls, config: TrainConfig):
        return cls(jnp.asarray(config.learning_rate), jnp.asarray(config.ent_coef), jnp.asarray(config.clip_eps))


@struct.dataclass
class TrainState:
    params: dict
    opt_state: object
    env_state: object
    obs: jax.Array
    key: jax.Array
    update: jax.Array  # number of updates done
    sweep: SweepParams


def learning_rate(config: TrainConfig, state):
    """The next update's learning rate: the (swept) rate, annealed linearly to 0 with `anneal_lr`."""
    lr = state.sweep.learning_rate
    return lr * (1.0 - state.update / config.num_updates) if config.anneal_lr else lr


def gae_update(policy: ActorCritic, update: Callable, config: TrainConfig, state, traj: dict):
    """GAE over a rollout and the K-epoch update (after `make_update`): `(state, loss metrics)`.

    `traj` holds time-major `[T, N, ...]` obs, actions, logp, values, rewards, terminated, truncated and
    final_obs (the observation an episode ended on, for truncation bootstrapping); `state.obs` is the
    observation after the rollout.
    """
    final_values = policy.value(state.params, traj["final_obs"])
    last_value = policy.value(state.params, state.obs)
    advantages, returns = gae(traj["rewards"], traj["values"], last_value, traj["terminated"], traj["truncated"],
                              final_values, gamma=config.gamma, lam=config.gae_lambda)
    batch = {k: traj[k].reshape(config.batch_size, *traj[k].shape[2:]) for k in ("obs", "actions", "logp", "values")}
    batch["advantages"] = advantages.reshape(-1)
    batch["returns"] = returns.reshape(-1)
    key, update_key = jax.random.split(state.key)
    hp = Hyperparams(clip_eps=state.sweep.clip_eps, ent_coef=state.sweep.ent_coef, max_grad_norm=config.max_grad_norm)
    params, opt_state, losses = update(state.params, state.opt_state, batch, update_key, hp)
    state = state.replace(params=params, opt_state=opt_state, key=key, update=state.update + 1)
    return state, {k: v.mean() for k, v in losses.items()}


def make_networks(env: envs.Environment, config: TrainConfig, key) -> tuple[nnx.Module, nnx.Module]:
    """The actor and critic `config` describes (see `TrainConfig`) for `env`'s spaces."""
    if config.actor == "gleet":
        return gleet_networks_for(env, config, key)
    obs_size = env.observation_shape[0]
    actor_rngs, critic_rngs = (nnx.Rngs(k) for k in jax.random.split(key))
    activation = {"tanh": jnp.tanh, "relu": jax.nn.relu}[config.activation]
    space = env.action_space
    if config.actor.startswith("bounded"):
        if not isinstance(space, envs.Box) or np.any(np.asarray(space.low) != 0) or np.any(np.asarray(space.high) != 1):
            raise ValueError(f"actor={config.actor!r} needs a Box action space on [0, 1], {config.env_id} has {space}")
        actor = BoundedGaussianActor(obs_size, space.shape[0], config.hidden, rngs=actor_rngs, activation=activation,
                                     min_sigma=config.min_sigma, max_sigma=config.max_sigma,
                                     clamp=config.actor == "bounded", init=config.init)
    elif isinstance(space, envs.Discrete):
        actor = CategoricalActor(obs_size, space.n, config.hidden, rngs=actor_rngs, activation=activation,
                                 init=config.init)
    else:
        actor = GaussianActor(obs_size, space.shape[0], config.hidden, rngs=actor_rngs, activation=activation,
                              init=config.init)
    return actor, Critic(obs_size, config.value_hidden, rngs=critic_rngs, activation=activation, init=config.init)


def gleet_networks_for(env: envs.Environment, config: TrainConfig, key) -> tuple[nnx.Module, nnx.Module]:
    """GLEET's actor and critic (`jppo.metabbo.networks.gleet_networks`) for an env whose observation is a
    population's features [N, 27] and whose action is one number in [0, 1] per particle, [N]."""
    from jppo.metabbo.networks import gleet_networks

    space, shape = env.action_space, tuple(env.observation_shape)
    if len(shape) != 2 or shape[1] != 27 or not isinstance(space, envs.Box) or space.shape != shape[:1]:
        raise ValueError(f"actor='gleet' needs observations [N, 27] and actions [N] (a GLEET env, e.g. gleet-bbob10d); "
                         f"{config.env_id} has observations {shape} and actions {space}")
    return gleet_networks(rngs=nnx.Rngs(key), min_sigma=config.min_sigma, max_sigma=config.max_sigma)


class UpdateLoop:
    """What the jitted trainers share: `_update_once(state, _) -> (state, metrics)` scanned over
    updates, reporting to the optional host callback `progress(update, metrics)` after each."""

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
        c = self.config
        actor, critic = nnx.eval_shape(lambda: make_networks(self.env, c, jax.random.key(0)))  # graphs only
        self.policy, _ = policies.split(actor, critic)
        self.optimizer = make_optimizer(c.optimizer, {"actor": c.learning_rate, "critic": c.learning_rate})
        loss = LossConfig(vf_coef=c.vf_coef, value_clip=c.value_clip, normalize_advantages=c.normalize_advantages)
        self._update = make_update(self.policy.evaluate, self.optimizer, UpdateConfig(c.num_epochs, c.num_minibatches, "global", loss))
        self.run = jax.jit(self._run, static_argnums=1)

    # -- pure pieces -------------------------------------------------------------------------

    def init(self, key, sweep: SweepParams | None = None) -> TrainState:
        """A fresh state: new networks, optimizer, and `num_envs` reset environments."""
        c = self.config
        sweep = SweepParams.from_config(c) if sweep is None else sweep
        key, net_key, env_key = jax.random.split(key, 3)
        actor, critic = make_networks(self.env, c, net_key)
        _, params = policies.split(actor, critic)
        opt_state = self.optimizer.init(params)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(jax.random.split(env_key, c.num_envs), self.env_params)
        return TrainState(params, opt_state, env_state, obs, key, jnp.zeros((), jnp.int32), sweep)

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
        c = self.config
        lr = learning_rate(c, state)
        state, traj = self._rollout(state.replace(opt_state=set_learning_rates(state.opt_state, {"actor": lr, "critic": lr})))
        state, metrics = gae_update(self.policy, self._update, c, state, traj)

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
    env = trainer.base_env
    max_steps = getattr(trainer.env_params, "max_steps", 1000)

    def episode(key):
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

    return jax.jit(jax.vmap(episode))(jax.random.split(key, num_episodes))
