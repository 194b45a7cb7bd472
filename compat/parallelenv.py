"""MetaBox's `ParallelEnv`: a batch of environments stepped together.

Environments are MetaBox style (`reset() -> obs`, `step(a) -> (obs, reward, done, info)`,
`seed(s)`) or gymnasium style (`reset(seed=) -> (obs, info)`, `step(a) -> 5-tuple`, done =
terminated or truncated), detected per env. Attributes (`cost`, `fes`, ...) are looked up on the
env, then on `env.optimizer`, then on `env.problem`.

Batch ending follows MetaBox: once any env reports done the batch is done; stepping it again
raises `RuntimeError`.

Modes: 'dummy' (in process, the caller's objects stepped in place) and 'subproc' (one worker
process per env, started with 'spawn', never 'fork', since JAX is initialised in the parent).
"""

from __future__ import annotations

import multiprocessing as mp
import traceback

import numpy as np

MODES = ("dummy", "subproc")


def _is_gym(env) -> bool:
    import gymnasium

    return isinstance(env, gymnasium.Env)


class _Adapter:
    """One env behind MetaBox's interface, whatever its style."""

    def __init__(self, env):
        self.env = env
        self.gym = _is_gym(env)
        self.pending_seed = None

    def seed(self, s):
        if self.gym:
            self.pending_seed = s
        elif hasattr(self.env, "seed"):
            self.env.seed(s)

    def reset(self):
        if self.gym:
            obs, _ = self.env.reset(seed=self.pending_seed)
            self.pending_seed = None
            return obs
        return self.env.reset()

    def step(self, action):
        if self.gym:
            obs, reward, terminated, truncated, info = self.env.step(action)
            return obs, reward, bool(terminated or truncated), info
        return self.env.step(action)

    def get_attr(self, key):
        for holder in (self.env, getattr(self.env, "optimizer", None), getattr(self.env, "problem", None)):
            if holder is not None and hasattr(holder, key):
                return getattr(holder, key)
        raise AttributeError(f"environment has no attribute {key!r} (looked on the env, env.optimizer, env.problem)")

    def set_attr(self, key, value):
        setattr(self.env, key, value)

    def call(self, method, *args):
        return getattr(self, method)(*args)


def _worker(conn, env):
    adapter = _Adapter(env)
    while True:
        method, args = conn.recv()
        if method == "close":
            conn.close()
            return
        try:
            conn.send(("ok", adapter.call(method, *args)))
        except Exception as err:
            conn.send(("error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))


class WorkerError(RuntimeError):
    pass


class ParallelEnv:
    """A batch of environments with MetaBox's interface (see the module docstring)."""

    def __init__(self, envs, para_mode: str = "dummy", num_cpus=None, num_gpus=0):
        if para_mode not in MODES:
            raise ValueError(f"para_mode must be one of {list(MODES)}, got {para_mode!r}")
        self.envs = list(envs)
        self.mode = para_mode
        self.done = False
        self._closed = False
        if para_mode == "dummy":
            self._adapters = [_Adapter(e) for e in self.envs]
        else:
            ctx = mp.get_context("spawn")
            self._pipes, self._procs = [], []
            for env in self.envs:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child, env), daemon=True)
                proc.start()
                child.close()
                self._pipes.append(parent)
                self._procs.append(proc)

    def __len__(self):
        return len(self.envs)

    def _call_all(self, method, args_per_env):
        if self.mode == "dummy":
            results = []
            for i, (adapter, args) in enumerate(zip(self._adapters, args_per_env)):
                try:
                    results.append(adapter.call(method, *args))
                except Exception as err:
                    raise WorkerError(f"environment {i} failed in {method}: {type(err).__name__}: {err}") from err
            return results
        for pipe, args in zip(self._pipes, args_per_env):
            pipe.send((method, args))
        results, failure = [], None
        for i, pipe in enumerate(self._pipes):
            if not pipe.poll(600):
                failure = failure or f"environment {i} did not answer {method} within 600 s"
                results.append(None)
                continue
            status, value = pipe.recv()
            if status == "error" and failure is None:
                failure = f"environment {i} failed in {method} in its worker:\n{value}"
            results.append(value)
        if failure is not None:
            self.close()
            raise WorkerError(failure)
        return results

    def seed(self, seeds=None):
        """None: unseeded; an int s: env i gets s + i; a sequence: one seed per env."""
        n = len(self)
        if seeds is None:
            per_env = [None] * n
        elif isinstance(seeds, (int, np.integer)):
            per_env = [int(seeds) + i for i in range(n)]
        else:
            per_env = [None if s is None else int(s) for s in seeds]
            if len(per_env) != n:
                raise ValueError(f"seeds has {len(per_env)} entries but there are {n} environments")
        self._call_all("seed", [(s,) for s in per_env])

    def reset(self):
        self.done = False
        return np.stack([np.asarray(o) for o in self._call_all("reset", [()] * len(self))])

    def step(self, actions):
        if self.done:
            raise RuntimeError("this batch of environments is done (an env reported done); call reset() first")
        if len(actions) != len(self):
            raise ValueError(f"actions has {len(actions)} entries but there are {len(self)} environments")
        results = self._call_all("step", [(a,) for a in actions])
        obs, rewards, dones, infos = zip(*results)
        dones = np.asarray(dones, dtype=bool)
        self.done = bool(dones.any())
        return np.stack([np.asarray(o) for o in obs]), np.asarray(rewards, dtype=np.float64), dones, list(infos)

    def all_done(self) -> bool:
        return self.done

    def has_done(self) -> bool:
        return self.done

    def get_env_attr(self, key):
        return self._call_all("get_attr", [(key,)] * len(self))

    def set_env_attr(self, key, values):
        if len(values) != len(self):
            raise ValueError(f"values has {len(values)} entries but there are {len(self)} environments")
        self._call_all("set_attr", [(key, v) for v in values])

    def close(self):
        if self._closed or self.mode == "dummy":
            self._closed = True
            return
        self._closed = True
        for pipe in self._pipes:
            try:
                pipe.send(("close", ()))
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
