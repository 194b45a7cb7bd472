"""MetaBox's `ParallelEnv`: a batch of environments stepped together, in process or in workers.

Environments
    MetaBox style (`seed(s)`, `reset() -> obs`, `step(a) -> (obs, reward, done, info)`) or
    gymnasium style (`reset(seed=) -> (obs, info)`, `step(a) -> (obs, r, terminated, truncated,
    info)`, done = terminated or truncated), detected per env (`compat._workers.is_gymnasium_env`).
    Attributes (`cost`, `fes`, ...) are looked up on the env, then `env.optimizer`, then
    `env.problem` (through gymnasium's wrapper chain for gymnasium envs).

Batch ending (MetaBox's synchronous mode)
    The done flags start as "all done" (nothing to step before `reset()`); `reset()` clears them.
    `step` returns each env's own done flag. As soon as any env reports done the whole batch ends:
    every flag becomes done, so `has_done()` and `all_done()` are both true from then on (they
    differ only for the MetaBox asynchronous modes, which this class does not implement). The
    envs that were not done are not stepped again. Where MetaBox then answers further steps with
    `None` observations and rewards, this class raises `RuntimeError`; call `reset()` to start a
    new episode.

Modes
    'dummy'       in process; the caller's env objects are stepped in place.
    'subproc'     one worker process per env, a fresh interpreter (never 'fork': JAX, with its
                  threads, is initialised in the parent). On POSIX it is exec'ed directly
                  (`SUBPROC_START = 'exec'`), so the caller's `__main__` is not re-imported;
                  multiprocessing's 'spawn' or 'forkserver' can be chosen instead.
    'ray'         one Ray actor per env, holding that env for the whole episode.
    'ray-subproc' Ray actors that each hold and step a contiguous group of envs, one after the
                  other: groups of ceil(n / min(CPUs, n)) envs (MetaBox's grouping).
    In the worker modes the envs are copied into the workers (dill) and the caller's objects are
    left untouched; `get_env_attr` and `get_env_obj` read the workers' copies.
    Ray modes start Ray with `ray.init(num_cpus=num_cpus, num_gpus=num_gpus)` when it is not
    running, and split the CPUs (min of `num_cpus` and the cluster's CPUs) and `num_gpus` evenly
    over the actors: whole units when each actor gets at least one, fractions otherwise. Actors
    wait for resources other Ray work holds (up to `STARTUP_TIMEOUT_S`).

Failures
    An exception inside an env is raised in the caller as `WorkerError` naming the env index, the
    operation and the worker's traceback; every worker is then shut down and the ParallelEnv is
    closed. A worker that dies, or (with `timeout`) does not answer in time, is reported the same
    way: one `WorkerError` naming the env index, the operation and how the worker process ended
    (its exit code, or the signal that killed it, and its pid), e.g. "environment 1 failed in step:
    its worker process was killed by SIGKILL (signal 9) before answering (pid 4242); all workers
    were shut down". A missing attribute raises `EnvAttributeError` (a `WorkerError` and an `AttributeError`)
    and leaves the workers running.

Compared with MetaBox's class
    Same: seeding (None, s + i, a list), stacking (an object array for ragged observations),
    `info['env_id']`, the batch ending above, `customized_method`, `rollout` (the Tester's
    `run_batch_episode` in every env), and `close()` calling each env's `close`.
    Different: a missing attribute raises instead of returning None; stepping an ended batch and
    wrong numbers of seeds or actions raise; the `asynchronous` modes and the `id`/`align`
    arguments are not implemented; `num_cpus` is the third positional parameter (MetaBox's
    callers pass it by keyword).
"""

from __future__ import annotations

import multiprocessing as mp
import numbers
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
import warnings
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for_any

import dill
import numpy as np

from compat import _workers
from jppo import worker_groups

MODES = ("dummy", "subproc", "ray", "ray-subproc")
SUBPROC_START = "exec" if os.name == "posix" else "spawn"  # never 'fork': see _Process
_FORK_WARNING = r"os\.fork\(\) was called"  # JAX's; harmless when exec follows the fork at once
STARTUP_TIMEOUT_S = 300.0  # a worker that cannot start (or a Ray actor that cannot be placed) in this time fails


class WorkerError(RuntimeError):
    """An environment failed in its worker. `env_index`, `method` and `worker_traceback` say where."""

    def __init__(self, message, env_index=None, method=None, worker_traceback=""):
        super().__init__(message)
        self.env_index, self.method, self.worker_traceback = env_index, method, worker_traceback


class EnvAttributeError(WorkerError, AttributeError):
    """`get_env_attr` found the attribute on none of the env, env.optimizer, env.problem."""


class _Lost(Exception):
    """A worker that died or did not answer in time."""


# --------------------------------------------------------------------------- worker handles
# Every handle holds a group of envs (`indices`): submit a request, then collect one outcome per env.


class _InProcess:
    def __init__(self, envs, indices):
        self.indices = list(indices)
        self.group = _workers.EnvGroup(envs)
        self._outcomes = None

    def begin_ready(self):
        self._outcomes = [("ok", None)] * len(self.indices)

    def submit(self, op, args_per_env):
        self._outcomes = self.group.run(op, args_per_env)

    def collect(self, deadline):
        return self._outcomes

    def shutdown(self, grace):
        pass


def _remaining(deadline):
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class _Process:
    """A worker process started as a fresh interpreter.

    'exec' (the default on POSIX): `python -c` with one end of a socket pair. Nothing of the
    parent is inherited (not JAX's threads, not its modules) and, unlike multiprocessing's
    'spawn', the caller's `__main__` is not re-imported: workers start in a fraction of a second
    and scripts need no `if __name__ == "__main__":` guard.
    'spawn' / 'forkserver': multiprocessing's own start methods (the fallback elsewhere).
    """

    def __init__(self, start_method, blobs, indices):
        self.indices, self._blobs, self._lost = list(indices), blobs, None
        if start_method == "exec":
            parent, child = socket.socketpair()
            code = (f"import sys; sys.path[:0] = {_child_sys_path()!r}; "
                    f"from compat._workers import serve_fd; serve_fd({child.fileno()})")
            os.set_inheritable(child.fileno(), True)
            with warnings.catch_warnings():
                # JAX warns at every fork; this one is followed by exec at once, which is safe
                warnings.filterwarnings("ignore", message=_FORK_WARNING, category=RuntimeWarning)
                self.popen = subprocess.Popen([sys.executable, "-c", code], close_fds=False)
            child.close()
            self.conn = Connection(parent.detach())
        else:
            ctx = mp.get_context(start_method)
            self.conn, child = ctx.Pipe()
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_FORK_WARNING, category=RuntimeWarning)
                self.proc = ctx.Process(target=_workers.subprocess_main, args=(child, blobs), daemon=True,
                                        name=f"ParallelEnv-env{self.indices[0]}")
                self.proc.start()
            child.close()
            self.popen = None

    def begin_ready(self):
        if self.popen is not None:  # the envs go first; the worker answers with its start-up outcomes
            self.submit(None, self._blobs)
        self._blobs = None

    def submit(self, op, args_per_env):
        message = args_per_env if op is None else (op, args_per_env)
        try:
            self.conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
            self._lost = "before the request reached it"

    def _exit_text(self, when):
        """'its worker process was killed by SIGKILL (signal 9) <when> (pid 123)', or its exit code."""
        if self.popen is not None:
            try:
                code = self.popen.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                code = None
        else:
            self.proc.join(timeout=1.0)
            code = self.proc.exitcode
        return f"its worker process {_exit_words(code)} {when} (pid {self.pid})"

    @property
    def pid(self):
        return self.popen.pid if self.popen is not None else self.proc.pid

    def collect(self, deadline):
        if self._lost:
            raise _Lost(self._exit_text(self._lost))
        watched = [self.conn] if self.popen is not None else [self.conn, self.proc.sentinel]
        if not wait_for_any(watched, timeout=_remaining(deadline)):
            raise _Lost("its worker did not answer in time")
        try:  # a dead worker's end of the connection reads as EOF
            if self.conn.poll():
                return pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            pass
        raise _Lost(self._exit_text("before answering"))

    def shutdown(self, grace):
        """Close the connection; a worker still running after `grace` seconds is terminated, then killed."""
        self.conn.close()
        proc = self.popen if self.popen is not None else self.proc
        wait = (lambda t: _wait_popen(proc, t)) if self.popen is not None else proc.join
        wait(grace)
        for stop in (proc.terminate, proc.kill):
            if (proc.poll() is None) if self.popen is not None else proc.is_alive():
                stop()
                wait(2.0)


def _exit_words(code):
    """How a worker process ended, from its exit code (negative: the signal that killed it; None: still running)."""
    if code is None:
        return "stopped answering (it has not exited)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name} (signal {-code})"
    return f"exited with code {code}"


def _wait_popen(popen, timeout):
    try:
        popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


def _child_sys_path():
    """The parent's import path, absolute, so that workers import the same modules (env classes)."""
    return [os.path.abspath(p) if p else os.getcwd() for p in sys.path]


_ACTOR_CLASS = None


def _ray_actor_class(ray):
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        _ACTOR_CLASS = ray.remote(_workers.EnvGroupActor)
    return _ACTOR_CLASS


class _RayActor:
    def __init__(self, ray, blobs, indices, num_cpus, num_gpus):
        self.ray, self.indices = ray, list(indices)
        self.actor = _ray_actor_class(ray).options(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=0,
                                                   max_task_retries=0).remote(blobs)
        self._ref = None

    def begin_ready(self):
        self._ref = self.actor.ready.remote()

    def submit(self, op, args_per_env):
        self._ref = self.actor.run.remote(op, args_per_env)

    def collect(self, deadline):
        exc = self.ray.exceptions
        try:
            return self.ray.get(self._ref, timeout=_remaining(deadline))
        except exc.GetTimeoutError:
            raise _Lost("its Ray actor did not answer in time") from None
        except exc.RayActorError as err:
            raise _Lost(f"its Ray actor died: {err}") from None
        except exc.RayError as err:
            raise _Lost(f"Ray failed: {err}") from None

    def shutdown(self, grace):
        try:
            self.ray.kill(self.actor, no_restart=True)
        except Exception:  # already gone
            pass


# --------------------------------------------------------------------------- small pure helpers


def plan_ray_groups(n_envs: int, para_mode: str, cpus: float):
    """Env indices held by each Ray actor: one env per actor for 'ray'; for 'ray-subproc',
    consecutive groups over at most max(1, floor(cpus)) actors (`jppo.worker_groups.groups`)."""
    max_actors = n_envs if para_mode == "ray" else max(1, int(cpus))
    return [list(group) for group in worker_groups.groups(n_envs, max_actors)]


def _per_env_seeds(seeds, n):
    """None -> None each; an int s -> s + i for env i; a sequence/array -> one seed per env."""
    if seeds is None:
        return [None] * n
    if isinstance(seeds, np.ndarray) and seeds.ndim == 0:
        seeds = seeds.item()
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        return [int(seeds) + i for i in range(n)]
    try:
        per_env = list(seeds)
    except TypeError:
        raise TypeError(f"seeds must be None, an int or a sequence of {n} seeds, got {type(seeds).__name__}") from None
    if len(per_env) != n:
        raise ValueError(f"seeds has {len(per_env)} entries; expected {n} (one per environment)")
    return [int(s) if isinstance(s, numbers.Integral) and not isinstance(s, bool) else s for s in per_env]


def _per_env_actions(actions, n):
    """Split a batch of actions along its first axis. Arrays of other libraries (JAX, torch) become
    numpy first, so that workers never need those libraries to unpickle an action."""
    if isinstance(actions, (list, tuple)):
        items = [np.asarray(a) if hasattr(a, "__array__") and not isinstance(a, np.ndarray) else a for a in actions]
    else:
        arr = np.asarray(actions)
        if arr.ndim == 0:
            raise ValueError(f"actions must have a leading axis of one entry per environment ({n}), got a scalar")
        items = list(arr)
    if len(items) != n:
        raise ValueError(f"actions has {len(items)} entries along its first axis; expected {n} (one per environment)")
    return items


def _stack(values):
    """Stack per-env values along a new first axis; an object array when their shapes differ (as MetaBox)."""
    try:
        return np.stack([np.asarray(v) for v in values])
    except ValueError:
        out = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            out[i] = v
        return out


# --------------------------------------------------------------------------- the batch


class ParallelEnv:
    """A batch of environments with MetaBox's interface; see the module docstring for the rules.

    Args:
        envs: list of environment objects (MetaBox or gymnasium style; styles may be mixed).
        para_mode: 'dummy', 'subproc', 'ray' or 'ray-subproc'.
        num_cpus: CPUs for the Ray modes (None: all the cluster's CPUs). Ignored otherwise.
        num_gpus: GPUs for the Ray modes, split over the actors. Ignored otherwise.
        timeout: seconds a worker may take to answer one request (None: no limit). Not enforced
            in 'dummy' mode, where the env runs in the caller's thread.
    """

    def __init__(self, envs, para_mode: str = "dummy", num_cpus=None, num_gpus=0, *, timeout=None):
        if para_mode not in MODES:
            raise ValueError(f"para_mode must be one of {list(MODES)}, got {para_mode!r}")
        envs = list(envs)
        if not envs:
            raise ValueError("envs must hold at least one environment")
        if num_cpus is not None and not (isinstance(num_cpus, numbers.Real) and num_cpus > 0):
            raise ValueError(f"num_cpus must be None or a positive number, got {num_cpus!r}")
        if not (isinstance(num_gpus, numbers.Real) and num_gpus >= 0):
            raise ValueError(f"num_gpus must be a number >= 0, got {num_gpus!r}")
        if timeout is not None and not (isinstance(timeout, numbers.Real) and timeout > 0):
            raise ValueError(f"timeout must be None or a positive number of seconds, got {timeout!r}")
        self.envs, self.para_mode = envs, para_mode
        self.num_cpus, self.num_gpus, self.timeout = num_cpus, num_gpus, timeout
        self.start_method = None  # multiprocessing start method of 'subproc' workers
        self.done = np.ones(len(envs), dtype=bool)  # MetaBox: done until the first reset
        self._ended_by = []  # envs whose done flag ended the batch
        self._closed, self._failure = False, None
        self._handles = []
        try:
            self._handles = self._start_workers()
            self._run("ready", None, deadline=self._deadline(STARTUP_TIMEOUT_S))
        except BaseException:
            self._abort("start-up failed")
            raise

    # ---- workers

    def _start_workers(self):
        n = len(self.envs)
        if self.para_mode == "dummy":
            return [_InProcess(self.envs, range(n))]
        blobs = []
        for i, env in enumerate(self.envs):
            try:
                blobs.append(dill.dumps(env, protocol=pickle.HIGHEST_PROTOCOL))
            except Exception as err:
                raise TypeError(f"environment {i} ({type(env).__name__}) cannot be pickled to send it to a worker: "
                                f"{type(err).__name__}: {err}") from err
        if self.para_mode == "subproc":
            if SUBPROC_START not in ("exec", "spawn", "forkserver"):
                raise ValueError(f"SUBPROC_START must be 'exec', 'spawn' or 'forkserver' (never 'fork'), "
                                 f"got {SUBPROC_START!r}")
            self.start_method = SUBPROC_START
            return [_Process(SUBPROC_START, [blobs[i]], [i]) for i in range(n)]
        ray = self._ray()
        # plan on the cluster's totals, not on what is free this instant: the grouping stays the same
        # from call to call, and actors wait for resources that other Ray work still holds
        total = ray.cluster_resources()
        cpus = total.get("CPU", 0.0) if self.num_cpus is None else min(float(self.num_cpus), total.get("CPU", 0.0))
        if self.num_gpus > total.get("GPU", 0.0):
            raise ValueError(f"num_gpus={self.num_gpus} but the Ray cluster has {total.get('GPU', 0.0)} GPU(s)")
        groups = plan_ray_groups(n, self.para_mode, cpus)
        cpu_each = worker_groups.resource_share(cpus, len(groups))
        gpu_each = worker_groups.resource_share(self.num_gpus, len(groups)) if self.num_gpus else 0
        if cpu_each <= 0 or (self.num_gpus and gpu_each <= 0):
            raise ValueError(f"too few Ray resources for {len(groups)} actors: {cpus} CPU(s), {self.num_gpus} GPU(s)")
        return [_RayActor(ray, [blobs[i] for i in g], g, cpu_each, gpu_each) for g in groups]

    def _ray(self):
        try:
            import ray
        except ImportError as err:
            raise ImportError(f"para_mode={self.para_mode!r} needs Ray: pip install 'jppo[ray]'") from err
        if not ray.is_initialized():
            with warnings.catch_warnings():  # Ray's own processes are exec'ed: JAX's fork warning does not apply
                warnings.filterwarnings("ignore", message=_FORK_WARNING, category=RuntimeWarning)
                ray.init(num_cpus=self.num_cpus, num_gpus=self.num_gpus, include_dashboard=False,
                         log_to_driver=False)
        return ray

    def _deadline(self, seconds):
        return None if seconds is None else time.monotonic() + seconds

    def _run(self, op, args_per_env, deadline=None):
        """Send `op` to every worker, gather one result per env in env order, raise on failure."""
        self._check_open()
        n = len(self.envs)
        if deadline is None:
            deadline = self._deadline(self.timeout)
        outcomes, lost = [None] * n, None
        try:
            for h in self._handles:
                if op == "ready":
                    h.begin_ready()
                else:
                    h.submit(op, [args_per_env[i] for i in h.indices])
            for h in self._handles:
                try:
                    for i, outcome in zip(h.indices, h.collect(deadline)):
                        outcomes[i] = outcome
                except _Lost as err:
                    lost = lost or (h.indices, str(err))
        except BaseException:
            self._abort(f"interrupted during {op}")
            raise
        first_error = next((i for i, o in enumerate(outcomes) if o is not None and o[0] == "error"), None)
        if lost is not None and (first_error is None or lost[0][0] < first_error):
            indices, reason = lost
            who = f"environment {indices[0]}" if len(indices) == 1 else f"environments {indices} (one worker)"
            message = f"{who} failed in {op}: {reason}"
            self._abort(message)
            raise WorkerError(message + "; all workers were shut down", env_index=indices[0], method=op)
        if first_error is not None:
            tb = outcomes[first_error][1]
            message = f"environment {first_error} failed in {op} in its worker ({self.para_mode} mode)"
            self._abort(message)
            raise WorkerError(f"{message}; all workers were shut down. The worker's traceback:\n{tb}",
                              env_index=first_error, method=op, worker_traceback=tb)
        missing = next((i for i, o in enumerate(outcomes) if o[0] == "attr"), None)
        if missing is not None:
            raise EnvAttributeError(f"environment {missing}: {outcomes[missing][1]}", env_index=missing, method=op)
        return [o[1] for o in outcomes]

    def _check_open(self):
        if self._closed:
            raise RuntimeError(f"this ParallelEnv is closed{'' if self._failure is None else ' (' + self._failure + ')'}")

    def _abort(self, reason, grace=0.0):
        """Shut every worker down (no env.close()); the ParallelEnv is closed for good. Workers
        get `grace` seconds to exit by themselves: a failed or hung one gets none."""
        self._closed, self._failure = True, reason
        for h in self._handles:
            h.shutdown(grace)

    # ---- MetaBox's interface

    def __len__(self):
        return len(self.envs)

    def seed(self, seeds=None):
        """Seed the envs: None -> unseeded, an int s -> env i gets s + i, a sequence -> one per env.
        A MetaBox env's `seed` is called now; a gymnasium env gets its seed at the next `reset()`."""
        self._run("seed", [(s,) for s in _per_env_seeds(seeds, len(self))])

    def reset(self):
        """Reset every env and start a new episode; returns the observations stacked on axis 0."""
        obs = self._run("reset", [()] * len(self))
        self.done = np.zeros(len(self), dtype=bool)
        self._ended_by = []
        return _stack(obs)

    def step(self, actions):
        """Step every env with its action (`actions[i]`, first axis = env).

        Returns `(obs, rewards, dones, infos)`: observations stacked on axis 0, float64 rewards,
        bool dones (each env's own flag), and a list of info dicts (a copy of each env's info,
        with `env_id` added, and `terminated`/`truncated` for gymnasium envs).
        """
        self._check_open()
        if self.done.all():
            if not self._ended_by:
                raise RuntimeError("call reset() before step(): this batch of environments has not been reset")
            raise RuntimeError(f"this batch of environments is done: environment(s) {self._ended_by} reported done, "
                               f"which ends the whole batch (as in MetaBox); call reset() to start a new episode")
        results = self._run("step", [(a,) for a in _per_env_actions(actions, len(self))])
        obs, rewards, dones, infos = zip(*results)
        try:
            rewards = np.asarray(rewards, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"the envs' rewards must be numbers (or arrays of one shape), got {rewards!r}") from err
        dones = np.asarray([np.asarray(d, dtype=bool) for d in dones])
        per_env_done = dones.reshape(len(self), -1).any(axis=1)
        if per_env_done.any():
            self._ended_by = [int(i) for i in np.flatnonzero(per_env_done)]
            self.done = np.ones(len(self), dtype=bool)
        infos = [dict(info, env_id=i) if isinstance(info, dict) else info for i, info in enumerate(infos)]
        return _stack(obs), rewards, dones, infos

    def all_done(self) -> bool:
        """True before the first reset and once the batch has ended (see the module docstring)."""
        return bool(self.done.all())

    def has_done(self) -> bool:
        """True when any env is done; equal to `all_done()` in this synchronous batch."""
        return bool(self.done.any())

    def get_env_attr(self, key: str):
        """The attribute `key` of every env (looked up on env, env.optimizer, env.problem), as a list.
        Raises `EnvAttributeError` naming the first env that has it nowhere."""
        if not isinstance(key, str):
            raise TypeError(f"key must be a str, got {type(key).__name__}")
        return self._run("get_attr", [(key,)] * len(self))

    def set_env_attr(self, key: str, values):
        """Set `key` on every env: env i gets `values[i]`, on the first of env, env.optimizer,
        env.problem that has the attribute (on the env itself when none has it)."""
        if not isinstance(key, str):
            raise TypeError(f"key must be a str, got {type(key).__name__}")
        if len(values) != len(self):
            raise ValueError(f"values has {len(values)} entries; expected {len(self)} (one per environment)")
        self._run("set_attr", [(key, values[i]) for i in range(len(self))])

    def customized_method(self, env_method: str, data=None):
        """Call the env method `env_method` on every env (with keyword arguments `data[i]` for env i
        when given); returns the results as a list (MetaBox's `customized_method`)."""
        if data is not None and len(data) != len(self):
            raise ValueError(f"data has {len(data)} entries; expected {len(self)} (one dict per environment)")
        return self._run("call", [(env_method, None if data is None else data[i]) for i in range(len(self))])

    def rollout(self):
        """Run `run_batch_episode()` of every env (MetaBox's Tester units) in its worker; list of results."""
        return self.customized_method("run_batch_episode")

    def get_env_obj(self):
        """The env objects: the caller's own in 'dummy' mode, copies of the workers' envs otherwise."""
        return self._run("get_env", [()] * len(self))

    def close(self):
        """Close every env (`env.close()` where it exists) and shut the workers down. Idempotent."""
        if self._closed:
            return
        try:
            self._run("close", [()] * len(self), deadline=self._deadline(min(self.timeout or 10.0, 10.0)))
        except WorkerError:
            pass  # _run has shut everything down already
        finally:
            if not self._closed:
                self._abort("closed", grace=2.0)
            self._failure = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        try:
            if not self._closed and self.para_mode != "dummy":
                self._abort("garbage collected")
        except Exception:
            pass

    def __repr__(self):
        state = "closed" if self._closed else ("done" if self.all_done() else "running")
        return f"ParallelEnv({len(self)} envs, para_mode={self.para_mode!r}, {state})"
