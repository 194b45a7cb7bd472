r"""MetaBox's PPO loop ('nstep') for JAX environments, as one compiled program.

MetaBox trains a batch of environments (one optimizer on each problem of a batch) in lock step:

1. **Window.** Act for up to `num_steps` steps: a ~ π(·|s); store s, a, log π(a|s), V(s), r.
   As soon as any environment's episode ends, the batch's episode ends (MetaBox's ParallelEnv);
   here the window keeps its fixed length and the steps after the end are padding (valid = 0),
   and the next window starts by resetting every environment.
2. **K epochs** over the window as one batch (`window_epoch`), each:

       B   = V(s_after)                               (no gradient; recomputed every epoch;
                                                       0 for an env whose episode terminated,
                                                       unless `bootstrap_terminal`: MetaBox's way)
       G_t = r_t + γ G_{t+1},  G_{T-1} = r_{T-1} + γ B   (padding passes G through)
       A_t = G_t - V(s_t)                             (no gradient, not normalised by default)
       L   = ppo_loss(...)  with value clipping around the rollout's values

   then per-network gradient clipping and one optimizer step with per-network learning rates.

Which problem each environment works on in a batch episode is `config.batching` (`jppo.batching`):
'single' is MetaBox's Trainer (B copies of one problem, the problems in an order reshuffled every
epoch, MetaBox's seeds), 'multi' B different problems per batch, 'mixed' env i on problem i mod N
every time. The problems and reset keys of a batch episode are chosen on the device when it starts,
from the `Schedule` (epoch, episode, key) kept in the state.

With `scale_rewards_per_env`, env i's rewards enter the targets divided by the root mean square of
its finished episodes' returns, √(mean_k R_{i,k}²) (1 until its first episode ends): on a problem
suite env i always works on the same problem, so this weighs problems equally where one reward
unit means very different things across them (decades of cost under the log reward).

One update of `NStepTrainer` is one window; `lax.scan` over windows makes the whole run one
program, `vmap`-able over seeds and `SweepParams` like `jppo.train.Trainer`, and with the same
interface (`init`, `run`, `train`, `progress`), so `jppo.fit` drives either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax import lax

from jppo import batching, envs
from jppo.config import TrainConfig
from jppo.loss import LossConfig, ppo_loss
from jppo.learner import Learner, SweepParams
from jppo.returns import nstep_returns
from jppo.train import UpdateLoop
from jppo.update import Evaluate, Hyperparams, Loss, make_gradient_step

WINDOW_KEYS = ("obs", "actions", "logp", "values", "rewards", "valid")


def window_loss(evaluate: Evaluate, value: Callable, *, gamma, config: LossConfig) -> Loss:
    r"""MetaBox's loss over a window as one batch: `loss(params, (window, next_obs, terminal), hparams)`.

        B   = V(next_obs)                        (no gradient; 0 where `terminal`)
        G_t = r_t + γ G_{t+1},  G_{T-1} = r_{T-1} + γ B   (padding passes G through)
        A_t = G_t - V(s_t)                       (no gradient, not normalised unless `config` says so)
        L   = ppo_loss(...) over the valid steps (`jppo.loss.ppo_loss`)

    `window` holds time-major arrays `[T, n, ...]` (see `WINDOW_KEYS`; `logp` and `values` are the
    rollout's, `valid` marks real steps); `next_obs` `[n, ...]` is the state after the window;
    `terminal` (bool `[n]`, or None: every env bootstraps, as MetaBox does) marks envs whose episode
    terminated in the window. Returns `(L, (metrics, returns, values, logp, entropy))`, the arrays flat `[T·n]`.
    """

    def loss(params, batch, hparams: Hyperparams):
        window, next_obs, terminal = batch
        T, n = window["rewards"].shape
        flat = lambda tree: jax.tree.map(lambda x: x.reshape(T * n, *x.shape[2:]), tree)  # noqa: E731  (obs, actions may be pytrees)
        logp, entropy, values = evaluate(params, flat(window["obs"]), flat(window["actions"]))
        bootstrap = lax.stop_gradient(value(params, next_obs))
        if terminal is not None:
            bootstrap = jnp.where(terminal, 0.0, bootstrap)
        returns = nstep_returns(window["rewards"], bootstrap, gamma, window["valid"]).reshape(-1)
        advantages = returns - lax.stop_gradient(values)
        total, metrics = ppo_loss(logp, flat(window["logp"]), advantages, values, flat(window["values"]), returns,
                                  entropy, clip_eps=hparams.clip_eps, ent_coef=hparams.ent_coef,
                                  vf_coef=hparams.vf_coef, config=config, mask=flat(window["valid"]))
        return total, (metrics, returns, values, logp, entropy)

    return loss


def window_epoch(evaluate: Evaluate, value: Callable, optimizer: optax.GradientTransformation, params, opt_state,
                 window: dict, next_obs, hparams: Hyperparams, *, gamma, loss: LossConfig, terminal=None):
    """One MetaBox epoch over a window: a gradient step on `window_loss` with per-network clipping.

    Returns `(params, opt_state, aux)`; `aux` has the loss metrics, the targets, values, log-probs and
    entropies (flat, `[T·n]`) and the per-network gradient norms before and after clipping.
    """
    step = make_gradient_step(window_loss(evaluate, value, gamma=gamma, config=loss), optimizer, "per_network")
    params, opt_state, (metrics, returns, values, logp, entropy), norms, clipped = step(
        params, opt_state, (window, next_obs, terminal), hparams)
    aux = dict(metrics=metrics, returns=returns, values=values, logp=logp, entropy=entropy, norms=norms,
               clipped=clipped)
    return params, opt_state, aux


@struct.dataclass
class NStepState:
    params: dict
    opt_state: object
    env_state: object  # [num_envs, ...]
    obs: jax.Array  # [num_envs, obs]
    key: jax.Array
    update: jax.Array  # windows done
    sweep: SweepParams
    episode_return: jax.Array  # [num_envs], of the batch's current episode
    episode_length: jax.Array  # [], steps of the batch's current episode
    ended: jax.Array  # [] bool: the batch's episode ended; the next window starts with a reset
    episodes: jax.Array  # [] batch episodes finished (counted when scaling rewards)
    return_sq: jax.Array  # [num_envs], mean squared return of the finished episodes (kept when scaling)
    schedule: batching.Schedule  # the current batch episode's epoch and place in it


@dataclasses.dataclass
class NStepTrainer(UpdateLoop):
    """MetaBox's n-step PPO for one `TrainConfig` with `algorithm='nstep'` (see the module docstring).

    With batching 'mixed' the environment's `batch_params(params, num_envs)` decides what each
    environment of the batch works on (for a problem suite: problem i mod N for env i); 'single' and
    'multi' need a problem suite (`env.num_problems(params)` = N) and gather each episode's problems
    from `batch_params(params, N)`.
    """

    config: TrainConfig
    env: envs.Environment | None = None
    env_params: object = None
    progress: Callable | None = None  # called on the host after every window: progress(update, metrics)

    def __post_init__(self):
        c = self.config
        if c.algorithm != "nstep":
            raise ValueError(f"NStepTrainer runs algorithm='nstep', the config has {c.algorithm!r}")
        if self.env is None:
            self.env, default_params = envs.make(c.env_id, **c.env_options)
            self.env_params = default_params if self.env_params is None else self.env_params
        self.base_env = self.env
        self.num_problems = self.env.num_problems(self.env_params)
        batching.check(c.batching, self.num_problems, c.num_envs, c.env_id)
        self.per_epoch = batching.episodes_per_epoch(c.batching, self.num_problems, c.num_envs)
        # 'mixed': env i's params for good; else the suite's problems in order, gathered per episode
        self.batch_params = self.env.batch_params(self.env_params, c.num_envs if c.batching == "mixed"
                                                  else self.num_problems)
        self.learner = Learner.build(self.env, c)
        self.run = jax.jit(self._run, static_argnums=1)

    def episode_params(self, schedule: batching.Schedule):
        """[num_envs] params of the batch episode `schedule` points at."""
        c = self.config
        if c.batching == "mixed":
            return self.batch_params
        problems = batching.problems(c.batching, schedule, self.num_problems, c.num_envs)
        return batching.gather(self.batch_params, problems)

    def _reset(self, key, schedule: batching.Schedule):
        """Start the batch episode of `schedule`: 'mixed' from `key`, else from MetaBox's seeds."""
        c = self.config
        if c.batching == "mixed":
            keys = jax.random.split(key, c.num_envs)
        else:
            keys = batching.reset_keys(schedule, batching.seeds(c.seed, schedule, c.num_envs))
        return jax.vmap(self.env.reset)(keys, self.episode_params(schedule))

    def init(self, key, sweep: SweepParams | None = None) -> NStepState:
        c = self.config
        # the schedule's key is child 3 of `key` (`Learner.init` splits it in 3, children 0-2)
        schedule = batching.Schedule.start(jax.random.fold_in(key, 3))
        start = self.learner.init(key, sweep)
        obs, env_state = self._reset(start.env_key, schedule)
        zero = jnp.zeros((), jnp.int32)
        return NStepState(start.params, start.opt_state, env_state, obs, start.key, zero, start.sweep,
                          jnp.zeros(c.num_envs, obs.dtype), zero, jnp.zeros((), bool), zero,
                          jnp.zeros(c.num_envs, obs.dtype), schedule)

    def _start_window(self, state: NStepState) -> NStepState:
        """When the batch's episode ended in the previous window: move the schedule on to the next
        batch episode and reset every environment for it."""
        key, reset_key = jax.random.split(state.key)
        schedule = batching.advance(state.schedule, self.per_epoch)
        obs, env_state = self._reset(reset_key, schedule)
        pick = lambda fresh, old: jnp.where(state.ended, fresh, old)  # noqa: E731
        return state.replace(
            key=key, obs=pick(obs, state.obs), env_state=jax.tree.map(pick, env_state, state.env_state),
            episode_return=pick(jnp.zeros_like(state.episode_return), state.episode_return),
            episode_length=pick(0, state.episode_length), ended=jnp.zeros((), bool),
            schedule=jax.tree.map(pick, schedule, state.schedule),
        )  # fmt: skip

    def _rollout(self, state: NStepState):
        step_envs = jax.vmap(self.env.step)
        env_params = self.episode_params(state.schedule)  # one batch episode per window: fixed for the window

        def env_step(state: NStepState, _):
            key, act_key, step_key = jax.random.split(state.key, 3)
            action, logp, value = self.learner.policy.act(state.params, state.obs, act_key)
            obs, env_state, reward, terminated, truncated, info = step_envs(
                jax.random.split(step_key, self.config.num_envs), state.env_state, action, env_params)
            valid = ~state.ended  # after the batch's end the window is padding: nothing moves
            keep = lambda new, old: jnp.where(valid, new, old)  # noqa: E731
            reward = jnp.where(valid, reward.astype(value.dtype), 0.0)
            finished = valid & jnp.any(terminated | truncated)
            episode_return = state.episode_return + reward
            transition = dict(obs=state.obs, actions=action, logp=logp, values=value, rewards=reward,
                              valid=jnp.broadcast_to(valid, reward.shape), terminated=valid & terminated,
                              finished=finished,
                              episode_return=episode_return, episode_length=state.episode_length + 1,
                              info={k: v for k, v in info.items() if jnp.shape(v) == reward.shape})
            state = state.replace(key=key, obs=keep(obs, state.obs), env_state=jax.tree.map(keep, env_state, state.env_state),
                                  episode_return=episode_return, episode_length=state.episode_length + valid,
                                  ended=state.ended | finished)
            return state, transition

        return lax.scan(env_step, state, None, self.config.num_steps)

    def _update_once(self, state: NStepState, _):
        c, learner = self.config, self.learner
        lr = learner.learning_rate(state)
        state = self._start_window(state)
        state, window = self._rollout(state)
        hp = learner.hyperparams(state.sweep)
        opt_state = learner.with_learning_rate(state.opt_state, lr)
        # An env that terminated has no future: its target is the rewards alone. The batch's other envs
        # were cut off by it (a truncation) and bootstrap from where they stopped.
        terminal = None if c.bootstrap_terminal else window["terminated"].any(axis=0)
        if c.scale_rewards_per_env:
            state = _record_returns(state)
            scale = jnp.where(state.episodes > 0, jnp.sqrt(state.return_sq), 1.0)
            window = {**window, "rewards": window["rewards"] / jnp.maximum(scale, 1e-8)}

        def epoch(carry, _):
            params, opt_state = carry
            params, opt_state, aux = window_epoch(learner.policy.evaluate, learner.policy.value, learner.optimizer,
                                                  params, opt_state, window, state.obs, hp, gamma=state.sweep.gamma,
                                                  loss=learner.loss, terminal=terminal)
            return (params, opt_state), aux["metrics"]

        (params, opt_state), losses = lax.scan(epoch, (state.params, opt_state), None, c.num_epochs)
        state = state.replace(params=params, opt_state=opt_state, update=state.update + 1)
        metrics = {k: v.mean() for k, v in losses.items()}
        metrics.update(_episode_metrics(window), learning_rate=lr)
        return state, metrics


def _record_returns(state: NStepState) -> NStepState:
    """Fold the returns of a batch episode that ended in this window into `return_sq`."""
    episodes = state.episodes + state.ended
    mean = state.return_sq + (state.episode_return**2 - state.return_sq) / jnp.maximum(episodes, 1)
    return state.replace(episodes=episodes, return_sq=jnp.where(state.ended, mean, state.return_sq))


def _episode_metrics(window: dict) -> dict:
    """Means over the batch at the step where its episode ended in this window (NaN when it did not):
    episodic_return, episodic_length, and `final_<key>` for each per-env info entry (e.g. final_cost)."""
    finished = window["finished"]  # [T]
    ended = finished.any()
    at_end = lambda x: jnp.where(ended, jnp.tensordot(finished.astype(x.dtype), x, 1), jnp.nan)  # noqa: E731
    out = {"episodes": ended.astype(jnp.int32) * window["rewards"].shape[1],
           "episodic_return": at_end(window["episode_return"]).mean(),
           "episodic_length": at_end(window["episode_length"].astype(window["rewards"].dtype))}
    out.update({f"final_{k}": at_end(v.astype(window["rewards"].dtype)).mean() for k, v in window["info"].items()})
    return out
