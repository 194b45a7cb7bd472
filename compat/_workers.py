"""The worker side of `compat.parallelenv.ParallelEnv`: code that holds and steps environments.

It runs in the caller's process ('dummy'), in a fresh child interpreter ('subproc') or inside a Ray
actor ('ray', 'ray-subproc'), so it imports neither JAX nor Ray: a worker process stays small and
starts fast.

Every request to a group of environments answers one *outcome* per environment, in order:

* `("ok", value)` — the call returned `value`;
* `("attr", message)` — `get_attr` found the attribute nowhere (not a failure of the env);
* `("error", text)` — the call raised; `text` is the formatted traceback from the worker.

A group stops at its first error: after an env fails, the batch is unusable anyway.
"""

from __future__ import annotations

import inspect
import pickle
import sys
import traceback

import dill

# --------------------------------------------------------------------------- one environment


def is_gymnasium_env(env) -> bool:
    """True for a gymnasium environment (`reset(seed=) -> (obs, info)`, 5-tuple `step`).

    A `gymnasium.Env` instance (wrappers included) is one. An object that is not, has no `seed`
    method and whose `reset` takes a `seed` keyword is treated as one too (duck typing).
    Gymnasium is only consulted when it is already imported: an env of its classes imports it.
    """
    gym = sys.modules.get("gymnasium")
    if gym is not None and isinstance(env, gym.Env):
        return True
    if callable(getattr(env, "seed", None)):
        return False
    try:
        return "seed" in inspect.signature(env.reset).parameters
    except (TypeError, ValueError, AttributeError):
        return False


class MissingAttribute(Exception):
    """`get_attr` found the key on none of env, env.optimizer, env.problem."""


def _holders(env, gym_style: bool):
    """Where attributes are looked up, in order: the env, its optimizer, its problem (MetaBox)."""
    yield env
    for name in ("optimizer", "problem"):
        holder = _lookup(env, name, gym_style)
        if holder is not _NOTHING and holder is not None:
            yield holder


_NOTHING = object()


def _lookup(holder, key, gym_style):
    # gymnasium wrappers (>= 1.0) no longer forward attribute access to the wrapped env
    if gym_style and hasattr(holder, "has_wrapper_attr"):
        return holder.get_wrapper_attr(key) if holder.has_wrapper_attr(key) else _NOTHING
    return getattr(holder, key, _NOTHING)


class EnvSlot:
    """One environment behind MetaBox's interface, whatever its style.

    MetaBox style: `seed(s)`, `reset() -> obs`, `step(a) -> (obs, reward, done, info)`.
    Gymnasium style: `reset(seed=) -> (obs, info)`, `step(a) -> (obs, r, terminated, truncated,
    info)`; done = terminated or truncated, and a seed given to `seed` is passed to the next
    `reset(seed=...)`.
    """

    def __init__(self, env):
        self.env = env
        self.gym_style = is_gymnasium_env(env)
        self.pending_seed = None

    def seed(self, s):
        if self.gym_style:
            self.pending_seed = s
        elif callable(getattr(self.env, "seed", None)):
            self.env.seed(s)
        elif s is not None:
            raise AttributeError(f"{type(self.env).__name__} has no seed(s) method, so seed {s!r} cannot be applied")

    def reset(self):
        if not self.gym_style:
            return self.env.reset()
        seed, self.pending_seed = self.pending_seed, None
        obs, _info = self.env.reset(seed=seed)
        return obs

    def step(self, action):
        out = self.env.step(action)
        if not isinstance(out, tuple):
            raise TypeError(f"step must return a tuple, got {type(out).__name__}")
        if self.gym_style:
            if len(out) != 5:
                raise TypeError(f"a gymnasium env's step must return 5 values, got {len(out)}")
            obs, reward, terminated, truncated, info = out
            info = dict(info)
            info.setdefault("terminated", bool(terminated))
            info.setdefault("truncated", bool(truncated))
            return obs, reward, bool(terminated or truncated), info
        if len(out) == 3:  # a few MetaBox optimizers return no info
            obs, reward, done = out
            return obs, reward, done, {}
        if len(out) != 4:
            raise TypeError(f"a MetaBox-style env's step must return (obs, reward, done, info), got {len(out)} values")
        obs, reward, done, info = out
        return obs, reward, done, dict(info) if isinstance(info, dict) else info

    def get_attr(self, key):
        for holder in _holders(self.env, self.gym_style):
            value = _lookup(holder, key, self.gym_style)
            if value is not _NOTHING:
                return value
        raise MissingAttribute(f"no attribute {key!r} on the env, env.optimizer or env.problem "
                               f"({type(self.env).__name__})")

    def set_attr(self, key, value):
        """Set `key` where `get_attr` finds it; on the env itself when it exists nowhere yet."""
        for holder in _holders(self.env, self.gym_style):
            if _lookup(holder, key, self.gym_style) is not _NOTHING:
                if self.gym_style and hasattr(holder, "set_wrapper_attr"):
                    holder.set_wrapper_attr(key, value)
                else:
                    setattr(holder, key, value)
                return None
        setattr(self.env, key, value)
        return None

    def call(self, name, kwargs=None):
        """Call the env's own method `name(**kwargs)` (MetaBox's `customized_method`)."""
        return getattr(self.env, name)(**(kwargs or {}))

    def get_env(self):
        return self.env

    def close(self):
        if callable(getattr(self.env, "close", None)):
            self.env.close()


# --------------------------------------------------------------------------- a group of them

OPERATIONS = ("seed", "reset", "step", "get_attr", "set_attr", "call", "get_env", "close")


class EnvGroup:
    """Several environments held together by one worker, stepped one after the other."""

    def __init__(self, envs):
        self.slots = [EnvSlot(env) for env in envs]

    def run(self, op: str, args_per_env):
        """Apply `op` to every env with its own arguments; one outcome per env (module docstring)."""
        if op not in OPERATIONS:
            raise ValueError(f"unknown operation {op!r}; expected one of {OPERATIONS}")
        outcomes = []
        for slot, args in zip(self.slots, args_per_env):
            try:
                outcomes.append(("ok", getattr(slot, op)(*args)))
            except MissingAttribute as err:
                outcomes.append(("attr", str(err)))
            except Exception:
                outcomes.append(("error", traceback.format_exc()))
                break
        return outcomes


def load_group(blobs):
    """Unpack the envs sent to a worker; returns `(group or None, outcomes)`, one outcome per env:
    `("ok", pid)`, or `("error", traceback)` for the first env that could not be loaded.

    Environments travel to workers as dill bytes, so classes defined in `__main__` or inside a
    function, and closures, survive the trip.
    """
    import os

    envs, outcomes = [], []
    for blob in blobs:
        try:
            envs.append(dill.loads(blob))
        except Exception:
            outcomes.append(("error", traceback.format_exc()))
            return None, outcomes
        outcomes.append(("ok", os.getpid()))
    try:
        return EnvGroup(envs), outcomes
    except Exception:
        return None, outcomes[:-1] + [("error", traceback.format_exc())]


# --------------------------------------------------------------------------- worker loops


def _encode(outcomes) -> bytes:
    """Pickle a reply; a value that cannot be pickled becomes that env's error."""
    try:
        return pickle.dumps(outcomes, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        text = traceback.format_exc()
        fixed = [("error", "the worker could not send this result back:\n" + text) if status == "ok" else (status, v)
                 for status, v in outcomes]
        return pickle.dumps(fixed, protocol=pickle.HIGHEST_PROTOCOL)


def subprocess_main(conn, blobs):
    """Entry point of a 'subproc' worker process: load the envs, then answer requests until 'close'.

    The first message is the start-up answer (see `load_group`). Requests are pickled
    `(op, args_per_env)`; replies are pickled lists of outcomes.
    """
    group, outcomes = load_group(blobs)
    conn.send_bytes(_encode(outcomes))
    while group is not None:
        try:
            op, args_per_env = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):  # the parent went away
            break
        conn.send_bytes(_encode(group.run(op, args_per_env)))
        if op == "close":
            break
    conn.close()


def serve_fd(fd: int):
    """Entry point of a worker started as a fresh interpreter (`python -c ...`) with one end of a
    socket pair as file descriptor `fd`: the first message carries the envs."""
    import signal
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it shuts us down
    conn = Connection(fd)
    try:
        blobs = pickle.loads(conn.recv_bytes())
    except (EOFError, OSError):
        return
    subprocess_main(conn, blobs)


class EnvGroupActor:
    """The body of a Ray actor ('ray': one env; 'ray-subproc': a group); made remote by the caller."""

    def __init__(self, blobs):
        self.group, self.load_outcomes = load_group(blobs)

    def ready(self):
        return self.load_outcomes

    def run(self, op, args_per_env):
        return self.group.run(op, args_per_env)
