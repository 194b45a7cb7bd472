"""What every trainer of one `TrainConfig` builds alike: the learner (networks, optimizer, loss switches).

The jitted trainer (`jppo.train`), MetaBox's n-step loop (`jppo.nstep`) and the host trainer
(`jppo.host`) differ in how they collect experience and in the update they run on it; they learn
with the same pieces, built here once:

    learner = Learner.build(env, config)      # graphs only (nnx.eval_shape): nothing is initialised
    start = learner.init(key)                 # fresh params and optimizer state, the keys that go on

* the actor and critic of `make_networks`, as pure functions of their parameters (`learner.policy`);
* one optimizer per network with an injected learning rate (`jppo.optim.make_optimizer`);
* the loss switches (`loss_config`);
* the traced hyperparameters of an update: the learning rate (`learning_rate`), and `SweepParams`,
  which may differ per vmapped run without recompiling (`jppo.sweep` runs a grid of them).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from jppo import envs
from jppo import policy as policies
from jppo.config import TrainConfig
from jppo.loss import LossConfig
from jppo.networks import BoundedGaussianActor, CategoricalActor, Critic, GaussianActor
from jppo.optim import make_optimizer, set_learning_rates
from jppo.policy import ActorCritic
from jppo.update import Hyperparams

NETWORKS = ("actor", "critic")  # the parameter dict's networks, each with its own learning rate

# c in L_V = c · mean((V - G)²): CleanRL's ½ for 'ppo', MetaBox's 1 for its n-step loop
VALUE_LOSS_FACTOR = {"ppo": 0.5, "nstep": 1.0}


@struct.dataclass
class SweepParams:
    """The hyperparameters a run holds as data (arrays in its state), so that runs differing only in them are
    one compiled program (vmapped: `jppo.sweep`) and a new value never recompiles:

    * learning_rate: injected into the optimizer state (`optax.inject_hyperparams`), annealed from it;
    * clip_eps, ent_coef, vf_coef: the clip range and the weights of the loss (`jppo.loss.ppo_loss`);
    * max_grad_norm: the clipping threshold (`jppo.optim.clip_global`, `clip_per_network`);
    * gamma, gae_lambda: the discount and GAE's λ of the targets (`jppo.returns`; 'nstep' has no λ).

    The other `TrainConfig` fields cannot be: sizes (num_envs, num_steps, num_epochs, num_minibatches,
    total_steps, hidden, critic_hidden) set array shapes and loop lengths; switches (algorithm, actor,
    activation, optimizer, init, value_clip, normalize_advantages, anneal_lr, bootstrap_terminal,
    scale_rewards_per_env, batching) choose the code that is traced; env settings (env_id, difficulty,
    metabox_costs, bbob_strategy) build the env; min_sigma and max_sigma are constants of the actor modules;
    the seed is the run axis itself.
    """

    learning_rate: jax.Array
    ent_coef: jax.Array
    clip_eps: jax.Array
    vf_coef: jax.Array
    max_grad_norm: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array

    @classmethod
    def from_config(cls, config: TrainConfig):
        return cls(**{name: jnp.asarray(getattr(config, name)) for name in SWEEPABLE})


SWEEPABLE = tuple(f.name for f in dataclasses.fields(SweepParams))  # TrainConfig fields of the same names


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


def loss_config(config: TrainConfig) -> LossConfig:
    """The loss switches of `config`; the value loss's factor is its algorithm's (`VALUE_LOSS_FACTOR`)."""
    return LossConfig(value_loss_factor=VALUE_LOSS_FACTOR[config.algorithm], value_clip=config.value_clip,
                      normalize_advantages=config.normalize_advantages)


class Start(NamedTuple):
    """A fresh learner, from `Learner.init`: what a trainer's state starts with."""

    params: dict
    opt_state: optax.OptState
    key: jax.Array  # the run's key from here on
    env_key: jax.Array  # for the environments' first reset
    sweep: SweepParams


@dataclasses.dataclass(frozen=True)
class Learner:
    """The networks (graphs only), optimizer and loss switches of one `TrainConfig` for an env's spaces
    (`env.observation_shape`, `env.action_space`)."""

    env: object
    config: TrainConfig
    policy: ActorCritic  # pure functions of the parameters: distribution, value, evaluate, act
    optimizer: optax.GradientTransformation
    loss: LossConfig

    @classmethod
    def build(cls, env, config: TrainConfig) -> Learner:
        actor, critic = nnx.eval_shape(lambda: make_networks(env, config, jax.random.key(0)))  # graphs only
        policy, _ = policies.split(actor, critic)
        optimizer = make_optimizer(config.optimizer, dict.fromkeys(NETWORKS, config.learning_rate))
        return cls(env, config, policy, optimizer, loss_config(config))

    def init(self, key, sweep: SweepParams | None = None) -> Start:
        """New networks from child 1 of `key`; child 0 goes on as the run's key, child 2 to the envs.
        `sweep` defaults to the config's values."""
        sweep = SweepParams.from_config(self.config) if sweep is None else sweep
        key, net_key, env_key = jax.random.split(key, 3)
        actor, critic = make_networks(self.env, self.config, net_key)
        _, params = policies.split(actor, critic)
        return Start(params, self.optimizer.init(params), key, env_key, sweep)

    def learning_rate(self, state):
        """The next update's learning rate: the (swept) rate, annealed linearly to 0 with `anneal_lr`,

            lr_u = lr · (1 - u / num_updates)     (u: updates done, `state.update`)
        """
        lr = state.sweep.learning_rate
        return lr * (1.0 - state.update / self.config.num_updates) if self.config.anneal_lr else lr

    def with_learning_rate(self, opt_state, lr):
        """`opt_state` with every network's learning rate set to `lr` (traced: no recompile)."""
        return set_learning_rates(opt_state, dict.fromkeys(NETWORKS, lr))

    def hyperparams(self, sweep: SweepParams) -> Hyperparams:
        """The traced hyperparameters of the loss and clipping, `sweep`'s."""
        return Hyperparams(clip_eps=sweep.clip_eps, ent_coef=sweep.ent_coef, max_grad_norm=sweep.max_grad_norm,
                           vf_coef=sweep.vf_coef)
