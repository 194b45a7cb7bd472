"""The host trainer: PPO for environments that cannot be jitted (gymnasium, by id with a `gym:` prefix).

The environments step on the host, in one of three vector modes:

* `sync`  — `gymnasium.vector.SyncVectorEnv`, in this process;
* `async` — `gymnasium.vector.AsyncVectorEnv`, one worker process per env, started with
  'forkserver' (or 'spawn' where there is none), never 'fork' (JAX is multithreaded);
* `ray`   — Ray actors, each holding a contiguous slice of the envs in a `SyncVectorEnv`
  (at most `num_workers` actors, `jppo.worker_groups`; Ray is started locally when it is not
  initialised).

Acting and learning stay compiled and are the engine's own pieces: the learner of
`jppo.learner.Learner` (networks, optimizer, loss), `ActorCritic.act`, and `jppo.train.make_gae_update`
(GAE, where a truncated episode bootstraps from the value of its final observation and a terminated
one does not, then the K-epoch update of `jppo.update.make_update`), with the same `TrainConfig` and
`TrainState` as the jitted trainer.
Per step, the batch of observations crosses to the device once and the actions come back once;
rewards, done flags and final observations travel once per update.

    with HostTrainer(TrainConfig(env_id="gym:CartPole-v1"), mode="async") as trainer:
        state = trainer.init(jax.random.key(0))
        state, metrics = trainer.run(state, 10)        # metrics: numpy arrays [10]

`jppo.fit.fit` (and `jppo train --env gym:CartPole-v1 --vector-mode async`) drive it like the
jitted trainer: progress bar, TensorBoard tags, checkpoints, resume. The same seed gives the same
result in every mode. The envs' own state lives in their workers, outside the checkpoint: a
`TrainState` this trainer did not just produce (a fresh `init`, a restored checkpoint) starts new
episodes, seeded from the state's key; everything else resumes exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import multiprocessing
import os
import warnings

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from jppo import envs, worker_groups
from jppo.config import TrainConfig
from jppo.envs import HOST_PREFIX as PREFIX
from jppo.envs import is_host_env
from jppo.envs.base import default_float
from jppo.learner import Learner, SweepParams
from jppo.train import TrainState, make_gae_update

MODES = ("sync", "async", "ray")
STARTUP_TIMEOUT_S = 300.0  # Ray actors that cannot start (or be placed) in this time fail


def check_env_id(env_id: str) -> str:
    """The gymnasium id behind `gym:<id>`; a clear ValueError for anything gymnasium does not know."""
    if not is_host_env(env_id):
        raise ValueError(f"the host trainer runs gymnasium environments named '{PREFIX}<id>' "
                         f"(e.g. {PREFIX}CartPole-v1), got {env_id!r}")
    gym_id = env_id[len(PREFIX):]
    module, _, name = gym_id.rpartition(":")  # gymnasium's "module:EnvId" imports module (which registers EnvId)
    try:
        if module:
            importlib.import_module(module)
        gymnasium.spec(name)
    except (gymnasium.error.Error, ImportError) as err:
        raise ValueError(f"unknown gymnasium environment {env_id!r}: {err} "
                         f"(e.g. {PREFIX}CartPole-v1, {PREFIX}Pendulum-v1, {PREFIX}my_package.envs:MyEnv-v0)") from None
    return gym_id


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"vector mode must be one of {MODES}, got {mode!r}")
    return mode


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """A gymnasium env's spaces in the engine's terms (what `make_networks` reads)."""

    observation_shape: tuple[int, ...]
    action_space: envs.Discrete | envs.Box

    @classmethod
    def of(cls, env: gymnasium.Env, env_id: str) -> EnvSpec:
        obs, act = env.observation_space, env.action_space
        if not isinstance(obs, gymnasium.spaces.Box) or len(obs.shape) != 1:
            raise ValueError(f"the host trainer needs a Box observation space with one axis; {env_id} has {obs}")
        if isinstance(act, gymnasium.spaces.Discrete):
            if act.start != 0:
                raise ValueError(f"Discrete action spaces must start at 0; {env_id} has {act}")
            return cls(obs.shape, envs.Discrete(int(act.n)))
        if isinstance(act, gymnasium.spaces.Box) and len(act.shape) == 1:
            return cls(obs.shape, envs.Box(act.low, act.high, act.shape))
        raise ValueError(f"the host trainer needs a Discrete or one-axis Box action space; {env_id} has {act}")


# --------------------------------------------------------------------------- vector envs


class _EnvSlice:
    """The body of a Ray actor: a contiguous slice of the envs in a `SyncVectorEnv`."""

    def __init__(self, gym_id: str, num_envs: int):
        self.envs = SyncVectorEnv([functools.partial(gymnasium.make, gym_id)] * num_envs,
                                  autoreset_mode=AutoresetMode.SAME_STEP)

    def ready(self):
        return True

    def reset(self, seeds):
        obs, _ = self.envs.reset(seed=seeds)
        return obs

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.envs.step(actions)
        return obs, reward, terminated, truncated, _final_obs_info(info)

    def close(self):
        self.envs.close()


_RAY_ACTOR = None


def _ray():
    try:
        import ray
    except ImportError as err:
        raise ImportError("vector mode 'ray' needs Ray: pip install 'jppo[ray]'") from err
    return ray


def _final_obs_info(info: dict) -> dict:
    """Only the keys the trainer reads: the final observations of episodes that just ended."""
    return {k: info[k] for k in ("final_obs", "_final_obs") if k in info}


class RayVectorEnv(gymnasium.vector.VectorEnv):
    """`num_envs` envs in Ray actors that each own a slice; behaves as a same-step auto-resetting
    gymnasium vector env whose `info` holds only `final_obs` / `_final_obs`."""

    def __init__(self, gym_id: str, num_envs: int, num_workers: int | None = None):
        ray = _ray()
        cpus = os.cpu_count() or 1
        self.slices = worker_groups.groups(num_envs, num_workers or cpus)
        if not ray.is_initialized():
            with warnings.catch_warnings():  # Ray's processes are exec'ed after the fork: JAX's warning does not apply
                warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
                ray.init(num_cpus=max(len(self.slices), cpus), include_dashboard=False, log_to_driver=False)
        global _RAY_ACTOR
        if _RAY_ACTOR is None:
            _RAY_ACTOR = ray.remote(_EnvSlice)
        # a share of the cluster's CPUs (at most one each), so that any number of actors can be placed
        share = min(1.0, worker_groups.resource_share(ray.cluster_resources().get("CPU", 1.0), len(self.slices)))
        self._ray_mod = ray
        self.actors = [_RAY_ACTOR.options(num_cpus=share, max_restarts=0, max_task_retries=0).remote(gym_id, len(s))
                       for s in self.slices]
        probe = gymnasium.make(gym_id)
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = probe.observation_space, probe.action_space
        self.observation_space = gymnasium.vector.utils.batch_space(probe.observation_space, num_envs)
        self.action_space = gymnasium.vector.utils.batch_space(probe.action_space, num_envs)
        self.metadata = {**probe.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
        probe.close()
        try:
            self._gather([a.ready.remote() for a in self.actors], timeout=STARTUP_TIMEOUT_S)
        except BaseException:
            self.close()
            raise

    def _gather(self, refs, timeout=None):
        ray = self._ray_mod
        try:
            return ray.get(refs, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            raise RuntimeError(f"Ray env workers did not answer within {timeout} s") from None
        except ray.exceptions.RayError as err:
            bad = next((i for i, r in enumerate(refs) if _failed(ray, r)), None)
            where = "a Ray env worker" if bad is None else \
                f"env worker {bad} (envs {self.slices[bad].start}..{self.slices[bad].stop - 1})"
            raise RuntimeError(f"{where} failed: {err}") from err

    def reset(self, *, seed=None, options=None):
        seeds = [None] * self.num_envs if seed is None else list(seed)
        obs = self._gather([a.reset.remote([seeds[i] for i in s]) for a, s in zip(self.actors, self.slices)])
        return np.concatenate(obs), {}

    def step(self, actions):
        actions = np.asarray(actions)
        parts = self._gather([a.step.remote(actions[s.start:s.stop]) for a, s in zip(self.actors, self.slices)])
        obs, reward, terminated, truncated = (np.concatenate([p[i] for p in parts]) for i in range(4))
        info = {}
        if any("_final_obs" in p[4] for p in parts):
            info["_final_obs"] = np.concatenate([p[4].get("_final_obs", np.zeros(len(s), bool))
                                                 for p, s in zip(parts, self.slices)])
            info["final_obs"] = np.concatenate([p[4].get("final_obs", np.full(len(s), None, object))
                                                for p, s in zip(parts, self.slices)])
        return obs, reward, terminated, truncated, info

    def close(self, terminate: bool = False, **kwargs):
        """Close the envs in their actors (unless `terminate`), then end the actors."""
        actors, self.actors = getattr(self, "actors", []), []
        if actors and not terminate:
            try:
                self._ray_mod.get([a.close.remote() for a in actors], timeout=10.0)
            except Exception:  # a dead or stuck actor: ended below all the same
                pass
        for actor in actors:
            try:
                self._ray_mod.kill(actor, no_restart=True)
            except Exception:  # already gone
                pass


def _failed(ray, ref) -> bool:
    try:
        ray.get(ref, timeout=1.0)
    except ray.exceptions.GetTimeoutError:  # still running: not the one that failed
        return False
    except Exception:
        return True
    return False


def make_vector_env(gym_id: str, num_envs: int, mode: str = "sync", num_workers: int | None = None):
    """A same-step auto-resetting gymnasium vector env of `num_envs` copies of `gym_id`."""
    check_mode(mode)
    fns = [functools.partial(gymnasium.make, gym_id)] * num_envs
    if mode == "sync":
        return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    if mode == "async":
        context = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        return AsyncVectorEnv(fns, context=context, autoreset_mode=AutoresetMode.SAME_STEP)
    return RayVectorEnv(gym_id, num_envs, num_workers)


def _close_vector_env(venv, broken: bool):
    """Close `venv`; after a failure or an interrupt, end its workers without waiting on them."""
    if isinstance(venv, AsyncVectorEnv):
        try:
            venv.close(timeout=5.0 if broken else None, terminate=broken)
        except Exception:
            venv.close(terminate=True)
    elif isinstance(venv, RayVectorEnv):
        venv.close(terminate=broken)
    else:
        venv.close()


# --------------------------------------------------------------------------- the trainer


class HostProgram:
    """The compiled, stateless half of the host trainer for one (config, gymnasium id): the learner
    (networks, optimizer, loss), `init`, `act` and `learn`. Shared by every `HostTrainer` of that pair (`program`),
    so that sync, async and Ray runs of one config compile once."""

    def __init__(self, config: TrainConfig, gym_id: str):
        probe = gymnasium.make(gym_id)
        try:
            env = EnvSpec.of(probe, config.env_id)
        finally:
            probe.close()
        self.learner = Learner.build(env, config)
        self._gae_update = make_gae_update(self.learner)
        self.init = jax.jit(self._init)
        self.act = jax.jit(self._act)
        self.learn = jax.jit(self._learn)

    def _init(self, key, sweep: SweepParams | None = None) -> TrainState:
        """A fresh state, as `Trainer.init` (the same networks for the same key), with no env state:
        the envs live on the host."""
        start = self.learner.init(key, sweep)
        obs = jnp.zeros((self.learner.config.num_envs, *self.learner.env.observation_shape), default_float())
        return TrainState(start.params, start.opt_state, None, obs, start.key, jnp.zeros((), jnp.int32), start.sweep)

    def _act(self, params, obs, key):
        """`(action, log_prob, value, next key)` for a batch of observations."""
        key, act_key = jax.random.split(key)
        action, logp, value = self.learner.policy.act(params, obs, act_key)
        return action, logp, value, key

    def _learn(self, state: TrainState, steps: dict, host: dict):
        """GAE and the update over one rollout, as `Trainer._update_once` after its rollout.

        `steps`: lists of T device arrays `[N, ...]` (obs, actions, logp, values) from `act`;
        `host`: numpy arrays `[T, N, ...]` (rewards, terminated, truncated, final_obs).
        """
        lr = self.learner.learning_rate(state)
        state = state.replace(opt_state=self.learner.with_learning_rate(state.opt_state, lr))
        traj = {k: jnp.stack(v) for k, v in steps.items()}  # [T, N, ...]
        traj.update(rewards=host["rewards"].astype(traj["values"].dtype), terminated=host["terminated"],
                    truncated=host["truncated"], final_obs=host["final_obs"].astype(traj["obs"].dtype))
        state, metrics = self._gae_update(state, traj)
        metrics["learning_rate"] = lr
        return state, metrics

@functools.lru_cache(maxsize=16)
def program(config: TrainConfig, gym_id: str) -> HostProgram:
    """The (cached) `HostProgram` of a config and gymnasium id."""
    return HostProgram(config, gym_id)


class HostTrainer:
    """PPO on gymnasium vector envs with jitted acting and learning; the interface of
    `jppo.train.Trainer` (`config`, `init(key)`, `run(state, n)`) plus `close()` (also a context
    manager). `init` is pure and jit-able; `run` is host code (it cannot be vmapped): `jppo.fit`
    trains one seed per host trainer.

    Scripts that use mode 'async' need the usual `if __name__ == "__main__":` guard: its worker
    processes are started fresh ('forkserver' / 'spawn') and import the main module.
    """

    jittable = False

    def __init__(self, config: TrainConfig, mode: str = "sync", num_workers: int | None = None):
        self.config, self.mode, self.num_workers = config, check_mode(mode), num_workers
        self.gym_id = check_env_id(config.env_id)
        if config.difficulty:
            raise ValueError(f"difficulty belongs to problem suites; {config.env_id!r} is a gymnasium env, "
                             f"got difficulty={config.difficulty!r}")
        if getattr(config, "algorithm", "ppo") != "ppo":
            raise ValueError(f"the host trainer runs algorithm 'ppo' (GAE, auto-resetting envs), "
                             f"got {config.algorithm!r}")
        if num_workers is not None:
            if mode != "ray":
                raise ValueError(f"num_workers (Ray actors) applies to mode 'ray' only, got mode {mode!r}")
            if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
                raise ValueError(f"num_workers must be a positive integer, got {num_workers!r}")
        self.program = program(config, self.gym_id)
        self.env, self.policy = self.program.learner.env, self.program.learner.policy
        self.envs = None
        self._live = None  # (update, key data) of the state the envs' episodes belong to
        self._broken = False

    def init(self, key, sweep: SweepParams | None = None) -> TrainState:
        """A fresh state (see `HostProgram.init`); the first `run` starts episodes seeded from its key."""
        return self.program.init(key, sweep)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self):
        """Start the env workers (done by the first `run`)."""
        if self.envs is None:
            self.envs = make_vector_env(self.gym_id, self.config.num_envs, self.mode, self.num_workers)
            self._broken, self._live = False, None
        return self

    def close(self):
        """Shut the env workers down (a broken run terminates them). A later `run` starts new ones."""
        venv, self.envs, self._live = self.envs, None, None
        if venv is not None:
            _close_vector_env(venv, self._broken)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- host loop -----------------------------------------------------------------------------

    def _attach(self, state: TrainState) -> TrainState:
        """Use the running episodes if `state` is the one this trainer last produced; otherwise
        (a fresh or restored state) reset every env, seeded from the state's key."""
        self.start()
        tag = (int(state.update), np.asarray(jax.random.key_data(state.key)).tobytes())
        if self._live == tag:
            return state
        seeds = jax.random.randint(jax.random.fold_in(state.key, 1), (self.config.num_envs,), 0, 2**31 - 1)
        obs, _ = self.envs.reset(seed=[int(s) for s in np.asarray(seeds)])
        self._episode_return = np.zeros(self.config.num_envs)
        self._episode_length = np.zeros(self.config.num_envs, np.int64)
        return state.replace(obs=jnp.asarray(np.asarray(obs, default_float())))

    def _rollout(self, state: TrainState):
        c = self.config
        T, N = c.num_steps, c.num_envs
        dtype = np.dtype(default_float())
        steps = {k: [] for k in ("obs", "actions", "logp", "values")}
        host = dict(rewards=np.zeros((T, N), dtype), terminated=np.zeros((T, N), bool),
                    truncated=np.zeros((T, N), bool), final_obs=np.zeros((T, N, *self.env.observation_shape), dtype))
        finished_returns, finished_lengths = [], []
        box = self.env.action_space if isinstance(self.env.action_space, envs.Box) else None
        obs, key = state.obs, state.key
        for t in range(T):
            action, logp, value, key = self.program.act(state.params, obs, key)
            for name, x in zip(("obs", "actions", "logp", "values"), (obs, action, logp, value)):
                steps[name].append(x)
            env_action = np.asarray(action)
            if box is not None:  # the env gets a valid action; the stored one is the sample (CleanRL's ClipAction)
                env_action = np.clip(env_action, box.low, box.high).astype(self.envs.single_action_space.dtype)
            next_obs, reward, terminated, truncated, info = self.envs.step(env_action)
            host["rewards"][t], host["terminated"][t], host["truncated"][t] = reward, terminated, truncated
            host["final_obs"][t] = next_obs
            if "_final_obs" in info and info["_final_obs"].any():
                ended = np.flatnonzero(info["_final_obs"])
                host["final_obs"][t, ended] = np.stack(list(info["final_obs"][ended]))
            self._episode_return += reward
            self._episode_length += 1
            done = np.asarray(terminated) | np.asarray(truncated)
            if done.any():
                finished_returns.extend(self._episode_return[done])
                finished_lengths.extend(self._episode_length[done])
                self._episode_return[done], self._episode_length[done] = 0.0, 0
            obs = jnp.asarray(np.asarray(next_obs, dtype))  # the one transfer of observations per step
        episodes = dict(episodes=np.int32(len(finished_returns)),
                        episodic_return=np.mean(finished_returns) if finished_returns else np.nan,
                        episodic_length=np.mean(finished_lengths) if finished_lengths else np.nan)
        return state.replace(obs=obs, key=key), steps, host, episodes

    def _update_once(self, state: TrainState):
        state, steps, host, episodes = self._rollout(state)
        state, metrics = self.program.learn(state, steps, host)
        return state, metrics, episodes

    def run(self, state: TrainState, num_updates: int):
        """`num_updates` updates: `(state, metrics)`, metrics numpy arrays `[num_updates]` with the
        jitted trainer's keys."""
        try:
            state = self._attach(state)
            device_metrics, host_metrics = [], []
            for _ in range(num_updates):
                state, metrics, episodes = self._update_once(state)
                device_metrics.append(metrics)
                host_metrics.append(episodes)
        except BaseException:  # an env worker failed, or Ctrl-C: the envs' episodes are lost
            self._broken, self._live = True, None
            raise
        self._live = (int(state.update), np.asarray(jax.random.key_data(state.key)).tobytes())
        merged = [{**d, **h} for d, h in zip(jax.device_get(device_metrics), host_metrics)]
        return state, {k: np.stack([m[k] for m in merged]) for k in (merged[0] if merged else {})}


def evaluate_policy(trainer: HostTrainer, params, key, num_episodes: int = 10, deterministic: bool = True):
    """Returns of `num_episodes` complete episodes of the (mode of the) policy, on in-process envs."""
    venv = SyncVectorEnv([functools.partial(gymnasium.make, trainer.gym_id)] * num_episodes,
                         autoreset_mode=AutoresetMode.SAME_STEP)
    seed_key, key = jax.random.split(key)
    seeds = np.asarray(jax.random.randint(seed_key, (num_episodes,), 0, 2**31 - 1))

    @jax.jit
    def policy(obs, key):
        dist = trainer.policy.distribution(params, obs)
        return dist.mode() if deterministic else dist.sample(key)

    box = trainer.env.action_space if isinstance(trainer.env.action_space, envs.Box) else None
    try:
        obs, _ = venv.reset(seed=[int(s) for s in seeds])
        totals, done = np.zeros(num_episodes), np.zeros(num_episodes, bool)
        while not done.all():
            key, act_key = jax.random.split(key)
            action = np.asarray(policy(jnp.asarray(np.asarray(obs, default_float())), act_key))
            if box is not None:
                action = np.clip(action, box.low, box.high).astype(venv.single_action_space.dtype)
            obs, reward, terminated, truncated, _ = venv.step(action)
            totals += np.where(done, 0.0, reward)
            done |= np.asarray(terminated) | np.asarray(truncated)
    finally:
        venv.close()
    return totals
