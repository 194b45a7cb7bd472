"""MetaBox's `PPO_Agent`, `Memory` on the jppo engine.

The loop in `train_episode` is MetaBox's (see design.md, "The facade"): windows of up to `n_step`
transitions, then K epochs, each one optimizer step on the whole window:

    B = V(s_after_window)   (current critic, no gradient, every epoch)
    G_{T-1} = r_{T-1} + γB,   G_t = r_t + γG_{t+1}
    ρ = exp(logp - logp_old),   A = G - V (no gradient, not normalised)
    L = -mean(min(ρA, clip(ρ, 1-ε, 1+ε)A)) + mean(max((V-G)², (V_old + clip(V-V_old, -ε, ε) - G)²))

(at k = 0, V_old = V, so the value loss is the plain squared error), per-network gradient
clipping, one learning rate per network. Each epoch is one jitted call.

Networks are Flax NNX modules with MetaBox's call contract (`compat.networks`); the agent owns the
sampling randomness and passes `key=` to the actor. The modules always hold the current weights.
"""

from __future__ import annotations

import copy
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compat.basic_agent import Basic_Agent
from compat.parallelenv import ParallelEnv, WorkerError
from compat.utils import save_class
from jppo.loss import METABOX
from jppo.nstep import window_epoch
from jppo.optim import OPTIMIZERS, make_optimizer, set_learning_rates
from jppo.update import Hyperparams


class Memory:
    """Lists of a window's actions, states, log-probs and rewards."""

    def __init__(self):
        self.actions = []
        self.states = []
        self.logprobs = []
        self.rewards = []

    def clear_memory(self):
        del self.actions[:]
        del self.states[:]
        del self.logprobs[:]
        del self.rewards[:]


class _Optimizer:
    """What MetaBox code reads from `agent.optimizer`: `param_groups[i]['lr']` (writable, like torch)."""

    def __init__(self, name, names, lrs):
        self.name = name
        self.param_groups = [{"name": n, "lr": lr} for n, lr in zip(names, lrs)]

    def learning_rates(self):
        return {g["name"]: float(g["lr"]) for g in self.param_groups}


def _value(out):
    """A critic returns a value, or a pair whose last element is the value."""
    return out[-1] if isinstance(out, (tuple, list)) else out


def _resolve_device(name):
    name = str(name or "cpu")
    kind, _, index = name.partition(":")
    platform = {"cpu": "cpu", "cuda": "gpu", "gpu": "gpu"}.get(kind)
    if platform is None:
        raise ValueError(f"config.device must be 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    try:
        devices = jax.devices(platform)
    except RuntimeError as err:
        raise ValueError(f"config.device={name!r}: JAX has no {platform} device here ({err})") from None
    i = int(index or 0)
    if i >= len(devices):
        raise ValueError(f"config.device={name!r}: only {len(devices)} {platform} device(s)")
    return devices[i]


class PPO_Agent(Basic_Agent):
    """MetaBox's PPO agent (`src.rl.ppo.PPO_Agent`) with the same constructor, attributes,
    methods, return values, checkpoints and TensorBoard tags."""

    def __init__(self, config, networks: dict, learning_rates):
        super().__init__(config)
        self.config = config
        self.gamma = config.gamma
        self.n_step = config.n_step
        self.K_epochs = config.K_epochs
        self.eps_clip = config.eps_clip
        self.max_grad_norm = config.max_grad_norm
        self.device = config.device
        self._key_data = np.asarray(jax.random.key_data(jax.random.key(int(getattr(config, "seed", 0) or 0))))
        self.set_network(networks, learning_rates)
        self.learning_time = 0
        self.cur_checkpoint = 0
        save_class(self.config.agent_save_dir, "checkpoint-" + str(self.cur_checkpoint), self)
        self.cur_checkpoint += 1

    # -- setup ----------------------------------------------------------------------------

    def set_network(self, networks: dict, learning_rates):
        names = list(networks or {})
        for required in ("actor", "critic"):
            if required not in names:
                raise ValueError(f"networks must contain 'actor' and 'critic'; got {names}")
        for name, net in networks.items():
            if not isinstance(net, nnx.Module):
                raise TypeError(f"network {name!r} must be a Flax NNX module, got {type(net).__name__}")
            setattr(self, name, net)
        self.network = names
        if isinstance(learning_rates, numbers.Number):
            learning_rates = [learning_rates] * len(names)
        elif len(learning_rates) != len(names):
            raise ValueError(
                f"The length of the learning rates list ({len(learning_rates)}) must match the number of "
                f"networks ({len(names)}: {names})!"
            )
        if self.config.optimizer not in OPTIMIZERS:
            raise ValueError(f"config.optimizer must be one of {sorted(OPTIMIZERS)}, got {self.config.optimizer!r}")
        self._device = _resolve_device(self.device)
        self.optimizer = _Optimizer(self.config.optimizer, names, [float(lr) for lr in learning_rates])
        self._opt_state = self._tx().init(self._params())
        self._compiled = None
        self._live = None  # the parameters of the episode in progress, so acting does not re-read the modules

    def _tx(self):
        return make_optimizer(self.optimizer.name, self.optimizer.learning_rates())

    def _params(self):
        return {n: jax.device_put(nnx.state(getattr(self, n), nnx.Param), self._device) for n in self.network}

    def _current_params(self):
        return self._live if self._live is not None else self._params()

    def _graphs(self):
        return {n: nnx.graphdef(getattr(self, n)) for n in self.network}

    def _load_params(self, params):
        for n in self.network:
            nnx.update(getattr(self, n), params[n])

    def get_step(self):
        return self.learning_time

    def update_setting(self, config):
        self.config.max_learning_step = config.max_learning_step
        self.config.agent_save_dir = config.agent_save_dir
        self.learning_time = 0
        save_class(self.config.agent_save_dir, "checkpoint-0", self)
        self.config.save_interval = config.save_interval
        self.cur_checkpoint = 1

    # -- pickling: compiled functions are rebuilt, never pickled ---------------------------

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_compiled"] = None
        state["_device"] = None
        state["_live"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._device = _resolve_device(self.device)

    # -- hooks (override in subclasses) ----------------------------------------------------

    def _trans_state(self, state):
        return jnp.asarray(np.asarray(state), dtype=jnp.asarray(0.0).dtype)

    def _trans_action(self, action):
        return np.asarray(action)

    def _get_action(self, state, fixed_action=None):
        """`(action, log_prob, entropy)` from the current actor; samples with the agent's key."""
        return self._fns()["act"](self._current_params(), state, self._next_key(), fixed_action)

    def _get_critic(self, state):
        return self._fns()["value"](self._current_params(), state)

    def _set_train(self):
        pass

    def _set_test(self):
        pass

    # -- randomness ------------------------------------------------------------------------

    def _seed(self, seeds):
        if seeds is None:
            return
        flat = np.asarray(seeds).ravel()
        base = jax.random.key(int(getattr(self.config, "seed", 0) or 0))
        key = jax.random.fold_in(base, int(flat[0]) if flat.size else 0)
        self._key_data = np.asarray(jax.random.key_data(jax.random.fold_in(key, flat.size)))

    def _next_key(self):
        self._key_data, sub = self._fns()["split"](self._key_data)
        return sub

    # -- compiled pieces -------------------------------------------------------------------

    def _fns(self):
        if self._compiled is None:
            self._compiled = self._build()
        return self._compiled

    def _build(self):
        graphs, tx = self._graphs(), self._tx()

        def nets(params):
            return {n: nnx.merge(graphs[n], params[n]) for n in graphs}

        def act(params, state, key, fixed_action):
            out = nets(params)["actor"](state, fixed_action, True, key=key)
            return tuple(out)

        def value(params, state):
            return _value(nets(params)["critic"](state))

        def evaluate(params, states, actions):
            m = nets(params)
            _, logp, entropy = m["actor"](states, actions, True)
            return logp, entropy, _value(m["critic"](states))

        def epoch(params, opt_state, lrs, states, actions, old_logp, old_values, rewards, next_state, gamma, eps, max_norm):
            window = dict(obs=states, actions=actions, logp=old_logp, values=old_values, rewards=rewards,
                          valid=jnp.ones(rewards.shape, bool))
            return window_epoch(evaluate, value, tx, params, set_learning_rates(opt_state, lrs), window, next_state,
                                Hyperparams(clip_eps=eps, ent_coef=0.0, max_grad_norm=max_norm), gamma=gamma,
                                loss=METABOX)

        def split(key_data):
            key, sub = jax.random.split(jax.random.wrap_key_data(key_data))
            return jax.random.key_data(key), sub

        return {"act": jax.jit(act), "value": jax.jit(value), "epoch": jax.jit(epoch), "split": jax.jit(split)}

    # -- training --------------------------------------------------------------------------

    def _check_actor_output(self, out, state):
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            n = len(out) if isinstance(out, (tuple, list)) else 1
            raise ValueError(f"the actor must return (action, log_prob, entropy) when called with require_entropy=True; "
                             f"it returned {n} output(s)")
        batch = state.shape[0]
        action, logp, entropy = out
        if np.shape(action)[:1] != (batch,) or np.shape(logp) != (batch,) or np.shape(entropy)[:1] != (batch,):
            raise ValueError(
                f"the actor's outputs must have a leading batch axis of {batch} (one per env): got action "
                f"{np.shape(action)}, log_prob {np.shape(logp)} (must be ({batch},)), entropy {np.shape(entropy)}"
            )

    def train_episode(self, envs, seeds=None, para_mode="dummy", compute_resource={}, tb_logger=None,
                      required_info={}):
        """One training episode over the batch `envs`; returns `(ended, info)` (see design.md)."""
        if seeds is not None and not isinstance(seeds, numbers.Integral) and len(seeds) != len(envs):
            raise ValueError(f"seeds has {len(seeds)} entries but {len(envs)} environments were given")
        self._set_train()
        self._seed(seeds)
        fns = self._fns()
        env = ParallelEnv(envs, para_mode, num_cpus=compute_resource.get("num_cpus"),
                          num_gpus=compute_resource.get("num_gpus", 0))
        try:
            env.seed(seeds)
            state = self._trans_state(env.reset())
            params = self._live = self._params()
            memory = Memory()
            returns_per_env = np.zeros(len(env))
            losses = []
            t = 0
            while not env.all_done():
                t_start = t
                values, entropies = [], []
                while t - t_start < self.n_step and not env.all_done():
                    memory.states.append(state)
                    out = self._get_action(state)
                    if t == 0:
                        self._check_actor_output(out, state)
                    action, logp, entropy = out
                    memory.actions.append(action)
                    memory.logprobs.append(logp)
                    entropies.append(entropy)
                    values.append(self._get_critic(state))
                    state, rewards, _, _ = env.step(self._trans_action(action))
                    rewards = np.asarray(rewards, dtype=np.float64)
                    if not np.all(np.isfinite(rewards)):
                        bad = int(np.flatnonzero(~np.isfinite(rewards))[0])
                        raise ValueError(f"environment {bad} returned a non-finite reward ({rewards[bad]}) at step {t}")
                    memory.rewards.append(rewards)
                    returns_per_env += rewards
                    t += 1
                    state = self._trans_state(state)
                window = (jnp.stack(memory.states), jnp.stack(memory.actions), jnp.stack(memory.logprobs),
                          jnp.stack(values), jnp.asarray(np.stack(memory.rewards), dtype=jnp.stack(values).dtype))
                for _ in range(self.K_epochs):
                    params, self._opt_state, aux = fns["epoch"](
                        params, self._opt_state, self.optimizer.learning_rates(), *window, state,
                        self.gamma, self.eps_clip, float(self.max_grad_norm))
                    self._load_params(params)
                    self._live = params
                    loss = float(aux["metrics"]["loss"])
                    losses.append(loss)
                    self.learning_time += 1
                    if self.config.end_mode == "step" and self.learning_time >= self.config.save_interval * self.cur_checkpoint:
                        save_class(self.config.agent_save_dir, "checkpoint-" + str(self.cur_checkpoint), self)
                        self.cur_checkpoint += 1
                    if tb_logger is not None and not getattr(self.config, "no_tb", False):
                        m = aux["metrics"]
                        self.log_to_tb_train(
                            tb_logger, self.learning_time,
                            ([float(aux["norms"][n]) for n in self.network], [float(aux["clipped"][n]) for n in self.network]),
                            m["policy_loss"], m["value_loss"], returns_per_env, aux["returns"], memory.rewards,
                            aux["values"], aux["logp"], aux["entropy"], m["approx_kl_metabox"])
                    if self.learning_time >= self.config.max_learning_step:
                        return True, self._episode_info(env, returns_per_env, losses, required_info)
                memory.clear_memory()
            return self.learning_time >= self.config.max_learning_step, self._episode_info(
                env, returns_per_env, losses, required_info)
        finally:
            self._live = None
            env.close()

    def _episode_info(self, env, returns_per_env, losses, required_info):
        info = {"return": [float(r) for r in returns_per_env], "loss": losses, "learn_steps": self.learning_time}
        try:
            cost = np.array(env.get_env_attr("cost"), dtype=object)
        except WorkerError:
            cost = None
        if cost is not None:
            info["normalizer"] = np.array([c[0] for c in cost])
            info["gbest"] = np.array([c[-1] for c in cost])
        for key, attr in required_info.items():
            info[key] = env.get_env_attr(attr)
        return info

    def rollout_episode(self, env, seed=None, required_info={}):
        """Roll out one env (batch axis of one) without learning; returns cost, fes, return, metadata."""
        self._set_test()
        if seed is not None:
            env.seed(seed)
            self._seed([seed])
        adapter = ParallelEnv([env], "dummy")
        state = adapter.reset()
        total, done = 0.0, False
        self._live = self._params()
        try:
            while not done:
                action = self._get_action(self._trans_state(state))[0]
                state, reward, dones, _ = adapter.step(self._trans_action(action))
                total += float(reward[0])
                done = bool(dones[0])
        finally:
            self._live = None
        results = {"return": total}
        for key in ("cost", "fes", "metadata"):
            try:
                results[key] = adapter.get_env_attr(key)[0]
            except WorkerError:  # the env has no such attribute
                pass
        for key, attr in required_info.items():
            results[key] = adapter.get_env_attr(attr)[0]
        return results

    def log_to_tb_train(self, tb_logger, mini_step, grad_norms, reinforce_loss, baseline_loss, Return, Reward,
                        memory_reward, critic_output, logprobs, entropy, approx_kl_divergence, extra_info={}):
        """Write MetaBox's training scalars (same tags) as plain floats."""
        f = lambda x: float(np.asarray(x))  # noqa: E731
        for i, name in enumerate(self.network):
            tb_logger.add_scalar(f"learnrate/{name}", f(self.optimizer.param_groups[i]["lr"]), mini_step)
        norms, clipped = grad_norms
        for i, name in enumerate(self.network):
            tb_logger.add_scalar(f"grad/{name}", f(norms[i]), mini_step)
            tb_logger.add_scalar(f"grad_clipped/{name}", f(clipped[i]), mini_step)
        tb_logger.add_scalar("loss/actor_loss", f(reinforce_loss), mini_step)
        tb_logger.add_scalar("loss/critic_loss", f(baseline_loss), mini_step)
        tb_logger.add_scalar("loss/total_loss", f(reinforce_loss) + f(baseline_loss), mini_step)
        rewards = np.stack([np.asarray(r) for r in memory_reward])
        tb_logger.add_scalar("train/episode_avg_return", f(np.mean(Return)), mini_step)
        tb_logger.add_scalar("train/target_avg_return_changed", f(np.mean(Reward)), mini_step)
        tb_logger.add_scalar("train/critic_avg_output", f(np.mean(critic_output)), mini_step)
        tb_logger.add_scalar("train/avg_entropy", f(np.mean(entropy)), mini_step)
        tb_logger.add_scalar("train/-avg_logprobs", -f(np.mean(logprobs)), mini_step)
        tb_logger.add_scalar("train/approx_kl", f(approx_kl_divergence), mini_step)
        tb_logger.add_scalar("train/avg_reward", f(rewards.mean()), mini_step)
        tb_logger.add_scalar("train/max_reward", f(rewards.max()), mini_step)
        for key, value in extra_info.items():
            if not value["name"]:
                tb_logger.add_scalar(f"{key}", f(value["data"][0]), mini_step)
            else:
                for name, data in zip(value["name"], value["data"]):
                    tb_logger.add_scalar(f"{key}/{name}", f(data), mini_step)
