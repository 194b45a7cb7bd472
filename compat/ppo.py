"""MetaBox's `PPO_Agent`, `Memory` on the jppo engine.

The loop in `train_episode` is MetaBox's (docs/metabox.md): windows of up to `n_step` transitions,
then K epochs, each one optimizer step on the whole window:

    B = V(s_after_window)   (current critic, no gradient, every epoch)
    G_{T-1} = r_{T-1} + γB,   G_t = r_t + γG_{t+1}
    ρ = exp(logp - logp_old),   A = G - V (no gradient, not normalised)
    L = -mean(min(ρA, clip(ρ, 1-ε, 1+ε)A)) + mean(max((V-G)², (V_old + clip(V-V_old, -ε, ε) - G)²))

(at k = 0, V_old = V, so the value loss is the plain squared error), per-network gradient
clipping, one learning rate per network. The K epochs of a window are one compiled call (a scan
over epochs; it stops early at a checkpoint or `max_learning_step`, see `_epochs_until_event`), and
each env step is one compiled call giving action, log-prob, entropy and value.

Networks are Flax NNX modules; the agent owns the sampling randomness and passes `key=` to the
actor. The modules always hold the current weights. Three compiled hooks say how the networks are
called, so a port with other conventions overrides one small method, not the loop:

    _act(nets, state, key)          -> (action, log_prob [B], entropy [B, ...], value [B])
    _evaluate(nets, states, actions) -> (log_prob [N], entropy [N, ...], value [N])
    _bootstrap(nets, state)         -> value [B]     (the state after a window)

`nets` is a dict name -> NNX module. The defaults cover MetaBox's conventions
(`compat.conventions`): `fixed_action=` or `fix_action=`, with or without `require_entropy=`,
shared trunks (`to_critic=` / `only_critic=`: V = critic(features from the actor), so value-loss
gradients reach the actor), tuple critics, `[B, 1]` log-probs and values, entropies of any shape.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from compat.basic_agent import Basic_Agent
from compat.conventions import ActorCall, actor_outputs, batch_size, critic_value, leading, per_env
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
        """name -> (graph definition, non-parameter state): what `nnx.merge` needs besides the parameters."""
        return {n: nnx.split(getattr(self, n), nnx.Param, ...)[::2] for n in self.network}

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
        state["_key_data"] = np.asarray(self._key_data)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._device = _resolve_device(self.device)

    # -- compiled hooks: how the networks are called (pure; traced inside jit) ---------------

    def _act(self, nets, state, key):
        """Sample at `state` `[B, ...]`: `(action, log_prob [B], entropy [B, ...], value [B])`."""
        call, batch = ActorCall.of(nets["actor"]), batch_size(state)
        action, logp, entropy, features = actor_outputs(nets["actor"](state, **call.kwargs(key=key)), call, batch)
        return action, logp, entropy, critic_value(nets["critic"](state if features is None else features), batch)

    def _evaluate(self, nets, states, actions):
        """The stored `actions` at `states` `[N, ...]`: `(log_prob [N], entropy [N, ...], value [N])`."""
        call, n = ActorCall.of(nets["actor"]), batch_size(states)
        out = nets["actor"](states, **call.kwargs(fixed_action=actions))
        _, logp, entropy, features = actor_outputs(out, call, n)
        return logp, entropy, critic_value(nets["critic"](states if features is None else features), n)

    def _bootstrap(self, nets, state):
        """The value `[B]` of the state after a window: critic(state), or
        critic(actor(state, only_critic=True)) for a shared trunk."""
        call = ActorCall.of(nets["actor"])
        features = nets["actor"](state, only_critic=True) if call.shared_trunk else state
        return critic_value(nets["critic"](features), batch_size(state))

    # -- host hooks (override in subclasses) -------------------------------------------------

    def _trans_state(self, state):
        return jnp.asarray(np.asarray(state), dtype=jnp.asarray(0.0).dtype)

    def _trans_action(self, action):
        return np.asarray(action)

    def _get_action(self, state, fixed_action=None):
        """`(action, log_prob, entropy)` from the current actor: sampled with the agent's key, or
        `fixed_action` evaluated. Training acts through `_act` unless this or `_get_critic` is overridden."""
        params = self._current_params()
        if fixed_action is None:
            self._key_data, out = self._fns()["sample"](params, state, self._key_data)
            return out
        return (fixed_action, *self._fns()["judge"](params, state, fixed_action))

    def _get_critic(self, state):
        return self._fns()["value"](self._current_params(), state)

    def _rollout_action(self, state):
        """The action `rollout_episode` takes at `state`: the actor's sample. A port whose MetaBox agent
        acts otherwise when it rolls out overrides this (RLEMMO: the most probable operator)."""
        return self._get_action(state)[0]

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

    # -- compiled pieces -------------------------------------------------------------------

    def _fns(self):
        if self._compiled is None:
            self._compiled = self._build()
        return self._compiled

    def _build(self):
        graphs, tx = self._graphs(), self._tx()

        def nets(params):
            return {n: nnx.merge(graph, params[n], rest) for n, (graph, rest) in graphs.items()}

        def act(params, state, key_data):
            key, sub = jax.random.split(jax.random.wrap_key_data(key_data))
            return jax.random.key_data(key), _checked("_act", self._act(nets(params), state, sub), batch_size(state))

        def sample(params, state, key_data):  # the value is dropped, so XLA does not compute it
            key_data, (action, logp, entropy, _) = act(params, state, key_data)
            return key_data, (action, logp, entropy)

        def evaluate(params, states, actions):
            return _checked("_evaluate", self._evaluate(nets(params), states, actions), batch_size(states))

        def value(params, state):
            return per_env(self._bootstrap(nets(params), state), batch_size(state), "the hook _bootstrap", "the value")

        def epochs(params, opt_state, lrs, window, next_state, gamma, eps, max_norm, count, *, num_epochs):
            """`num_epochs` window epochs, of which the first `count` run (the rest pass the state
            through): `(params, opt_state, aux)` with aux stacked per epoch `[num_epochs, ...]`."""
            hp = Hyperparams(clip_eps=eps, ent_coef=0.0, max_grad_norm=max_norm, vf_coef=1.0)  # MetaBox's weights

            def run(carry):
                params, opt_state, aux = window_epoch(evaluate, value, tx, *carry, window, next_state, hp,
                                                      gamma=gamma, loss=METABOX)
                return (params, opt_state), aux

            def skip(carry):
                shapes = jax.eval_shape(run, carry)[1]
                return carry, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

            def one(carry, k):
                return lax.cond(k < count, run, skip, carry)

            (params, opt_state), aux = lax.scan(one, (params, set_learning_rates(opt_state, lrs)),
                                                jnp.arange(num_epochs))
            return params, opt_state, aux

        return {"act": jax.jit(act), "sample": jax.jit(sample), "judge": jax.jit(lambda p, s, a: evaluate(p, s, a)[:2]),
                "value": jax.jit(value), "epochs": jax.jit(epochs, static_argnames="num_epochs")}

    # -- training --------------------------------------------------------------------------

    def _acts_in_one_call(self):
        """Whether acting may use the compiled `_act` (action and value in one call): not when a
        subclass overrides the host hooks `_get_action` or `_get_critic`."""
        cls = type(self)
        return cls._get_action is PPO_Agent._get_action and cls._get_critic is PPO_Agent._get_critic

    def _epochs_until_event(self):
        """Optimizer steps (>= 1) until the next checkpoint or `max_learning_step`: a window's compiled
        epochs stop there, so checkpoint-N.pkl holds the parameters after exactly step N."""
        limits = [self.config.max_learning_step - self.learning_time]
        if self.config.end_mode == "step":
            limits.append(self.config.save_interval * self.cur_checkpoint - self.learning_time)
        return max(1, min(limits))

    def train_episode(self, envs, seeds=None, para_mode="dummy", compute_resource={}, tb_logger=None,
                      required_info={}):
        """One training episode over the batch `envs`; returns `(ended, info)` (docs/metabox.md)."""
        if seeds is not None and not isinstance(seeds, numbers.Integral) and len(seeds) != len(envs):
            raise ValueError(f"seeds has {len(seeds)} entries but {len(envs)} environments were given")
        self._set_train()
        self._seed(seeds)
        fns = self._fns()
        one_call = self._acts_in_one_call()
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
                values = []
                while t - t_start < self.n_step and not env.all_done():
                    memory.states.append(state)
                    if one_call:
                        self._key_data, (action, logp, _, value) = fns["act"](params, state, self._key_data)
                    else:
                        action, logp, _ = self._get_action(state)
                        logp = per_env(logp, len(env), "the hook _get_action", "log_prob")
                        value = per_env(self._get_critic(state), len(env), "the hook _get_critic", "the value")
                    memory.actions.append(action)
                    memory.logprobs.append(logp)
                    values.append(value)
                    state, rewards, _, _ = env.step(self._trans_action(action))
                    rewards = np.asarray(rewards, dtype=np.float64)
                    if not np.all(np.isfinite(rewards)):
                        bad = int(np.flatnonzero(~np.isfinite(rewards))[0])
                        raise ValueError(f"environment {bad} returned a non-finite reward ({rewards[bad]}) at step {t}")
                    memory.rewards.append(rewards)
                    returns_per_env += rewards
                    t += 1
                    state = self._trans_state(state)
                values = jnp.stack(values)
                window = dict(obs=_stack(memory.states), actions=_stack(memory.actions), logp=jnp.stack(memory.logprobs),
                              values=values, rewards=jnp.asarray(np.stack(memory.rewards), dtype=values.dtype),
                              valid=jnp.ones(values.shape, bool))
                done = 0
                while done < self.K_epochs:
                    count = min(self.K_epochs - done, self._epochs_until_event())
                    params, self._opt_state, aux = fns["epochs"](
                        params, self._opt_state, self.optimizer.learning_rates(), window, state, self.gamma,
                        self.eps_clip, float(self.max_grad_norm), count, num_epochs=self.K_epochs)
                    self._live = params
                    if not one_call:  # host hooks may read the modules; else they are updated when read (below)
                        self._load_params(params)
                    done += count
                    step_losses = np.asarray(aux["metrics"]["loss"])
                    for k in range(count):
                        losses.append(float(step_losses[k]))
                        self.learning_time += 1
                        if self.config.end_mode == "step" and self.learning_time >= self.config.save_interval * self.cur_checkpoint:
                            self._load_params(params)
                            save_class(self.config.agent_save_dir, "checkpoint-" + str(self.cur_checkpoint), self)
                            self.cur_checkpoint += 1
                        if tb_logger is not None and not getattr(self.config, "no_tb", False):
                            self._log_epoch(tb_logger, jax.tree.map(lambda x, k=k: x[k], aux), returns_per_env,
                                            memory.rewards)
                        if self.learning_time >= self.config.max_learning_step:
                            return True, self._episode_info(env, returns_per_env, losses, required_info)
                memory.clear_memory()
            return self.learning_time >= self.config.max_learning_step, self._episode_info(
                env, returns_per_env, losses, required_info)
        finally:  # the modules hold the trained parameters when train_episode returns (or raises)
            if self._live is not None:
                self._load_params(self._live)
            self._live = None
            self._key_data = np.asarray(self._key_data)
            env.close()

    def _log_epoch(self, tb_logger, aux, returns_per_env, rewards):
        m = aux["metrics"]
        self.log_to_tb_train(
            tb_logger, self.learning_time,
            ([float(aux["norms"][n]) for n in self.network], [float(aux["clipped"][n]) for n in self.network]),
            m["policy_loss"], m["value_loss"], returns_per_env, aux["returns"], rewards,
            aux["values"], aux["logp"], aux["entropy"], m["approx_kl_metabox"])

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
                action = self._rollout_action(self._trans_state(state))
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


def _stack(trees):
    """Stack a list of arrays (or of pytrees of arrays) along a new leading axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _checked(hook, out, batch):
    """The outputs of `_act` / `_evaluate`, log-prob and value as `[batch]`; one error names what is wrong."""
    names = ("action", "log_prob", "entropy", "value") if hook == "_act" else ("log_prob", "entropy", "value")
    if not isinstance(out, (tuple, list)) or len(out) != len(names):
        n = len(out) if isinstance(out, (tuple, list)) else 1
        raise ValueError(f"the hook {hook} must return ({', '.join(names)}); it returned {n} output(s)")
    out = dict(zip(names, out))
    if "action" in out:
        out["action"] = leading(out["action"], batch, f"the hook {hook}", "action")
    out["log_prob"] = per_env(out["log_prob"], batch, f"the hook {hook}", "log_prob")
    out["entropy"] = leading(out["entropy"], batch, f"the hook {hook}", "entropy")
    out["value"] = per_env(out["value"], batch, f"the hook {hook}", "the value")
    return tuple(out[n] for n in names)
