"""Small deterministic environments for the tests, importable by worker processes and Ray actors.

`ToyOptimizerEnv`: a flat MetaBox-style env. `TargetEnv`: one whose reward is decided by the action
(for learning tests). `ToyPBOEnv` (`make_pbo_env`): MetaBox's PBO_Env shape,
attributes on its optimizer and problem. `ProbeEnv`, `FailingEnv`, `CrashingEnv`, `SlowEnv`: for
ParallelEnv's worker tests; `SelfKillingOptimizer`: a MetaBox optimizer env whose worker is killed
mid-episode. Gymnasium-style tests use gymnasium's own CartPole-v1.
"""

import os
import signal
import sys
import time

import numpy as np


class ToyOptimizerEnv:
    """A MetaBox-style env: state = fes/maxFEs (plus two features); an action in [0,1]^d moves a point
    towards the optimum; reward +1 when the best cost improves else -1; `cost` is a history list."""

    def __init__(self, action_dim=3, max_steps=13, feature_dim=3):
        self.action_dim, self.max_steps, self.feature_dim = action_dim, max_steps, feature_dim
        self.rng = np.random.default_rng(0)

    def seed(self, s):
        self.rng = np.random.default_rng(s)

    def _state(self):
        base = [self.t / self.max_steps, np.tanh(self.best), np.sin(self.t)]
        return np.asarray(base[: self.feature_dim], dtype=np.float64)

    def reset(self):
        self.t = 0
        self.target = self.rng.uniform(0.2, 0.8, self.action_dim)
        self.x = self.rng.uniform(0, 1, self.action_dim)
        self.best = float(np.sum((self.x - self.target) ** 2))
        self.cost = [self.best]
        self.fes = 0
        return self._state()

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(self.action_dim)
        self.x = 0.5 * self.x + 0.5 * action
        c = float(np.sum((self.x - self.target) ** 2))
        reward = 1.0 if c < self.best else -1.0
        self.best = min(self.best, c)
        self.t += 1
        self.fes += 1
        self.cost.append(self.best)
        return self._state(), reward, self.t >= self.max_steps, {}


class TargetEnv:
    """A MetaBox-style env where a policy can clearly learn: every step shows a fresh target
    c ~ U[0.1, 0.9]^d in the state (after fes/max_fes) and pays r = -Σ_i (a_i - c_i)² for the action
    a ∈ [0, 1]^d. The best policy is a = c (return 0); an untrained RLEPSO-shaped actor (μ ≈ 0.5,
    σ ≈ 0.36) earns about -0.3 per step for d = 2. `cost` is the history of the best squared
    distance so far, `fes` the number of steps."""

    def __init__(self, action_dim=2, max_steps=20):
        self.action_dim, self.max_steps = action_dim, max_steps
        self.rng = np.random.default_rng(0)

    def seed(self, s):
        self.rng = np.random.default_rng(s)

    def _state(self):
        return np.concatenate([[self.fes / self.max_steps], self.target])

    def reset(self):
        self.fes = 0
        self.target = self.rng.uniform(0.1, 0.9, self.action_dim)
        self.cost = [float(np.sum((0.5 - self.target) ** 2))]
        return self._state()

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(self.action_dim)
        distance = float(np.sum((action - self.target) ** 2))
        self.fes += 1
        self.cost.append(min(self.cost[-1], distance))
        self.target = self.rng.uniform(0.1, 0.9, self.action_dim)
        return self._state(), -distance, self.fes >= self.max_steps, {}


class NaNRewardEnv(ToyOptimizerEnv):
    def step(self, action):
        obs, _, done, info = super().step(action)
        return obs, (float("nan") if self.t == 3 else 1.0), done, info


# --------------------------------------------------------------------------- MetaBox-shaped env
# MetaBox's PBO_Env holds a problem and an optimizer; attributes such as `cost` and `fes` live on
# the optimizer, `dim` on the problem, which is why ParallelEnv looks them up env -> optimizer -> problem.

MODULE_MARKER = "as imported"  # tests change it in the parent: a forked worker would inherit the change


class SphereProblem:
    """f(x) = sum((x - shift)^2), optimum 0 (MetaBox's Basic_Problem shape: `reset`, `eval`, `T1`)."""

    def __init__(self, dim=3, shift=0.3):
        self.dim, self.shift, self.optimum, self.T1 = dim, shift, 0.0, 0.0

    def reset(self):
        self.T1 = 0.0

    def eval(self, x):
        return np.sum((np.asarray(x) - self.shift) ** 2, axis=-1)


class ScaledSearchOptimizer:
    """A learnable optimizer (MetaBox shape: `seed`, `init_population`, `update`): each step samples
    `pop_size` points around the best one with step size `action` (a scalar in (0, 1]).
    State = (fes / max_fes, log10 best cost, last step size); reward = improvement of the best cost;
    done when fes >= max_fes. `cost` is the best-cost history, `fes` the evaluation count."""

    def __init__(self, pop_size=4, max_fes=40):
        self.pop_size, self.max_fes = pop_size, max_fes
        self.rng = np.random.default_rng(0)

    def seed(self, s):
        self.rng = np.random.default_rng(s)

    def _state(self, step_size):
        return np.array([self.fes / self.max_fes, np.log10(self.best + 1e-12), step_size])

    def init_population(self, problem):
        pop = self.rng.uniform(-1.0, 1.0, (self.pop_size, problem.dim))
        costs = problem.eval(pop)
        self.best_x, self.best = pop[np.argmin(costs)], float(np.min(costs))
        self.fes, self.cost = self.pop_size, [self.best]
        return self._state(0.0)

    def update(self, action, problem):
        step_size = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], 1e-3, 1.0))
        pop = self.best_x + step_size * self.rng.normal(size=(self.pop_size, problem.dim))
        costs = problem.eval(pop)
        reward = max(0.0, self.best - float(np.min(costs)))
        if np.min(costs) < self.best:
            self.best_x, self.best = pop[np.argmin(costs)], float(np.min(costs))
        self.fes += self.pop_size
        self.cost.append(self.best)
        return self._state(step_size), reward, self.fes >= self.max_fes, {"best": self.best}


class ToyPBOEnv:
    """MetaBox's PBO_Env shape: reset = problem.reset + optimizer.init_population, step =
    optimizer.update, seed = optimizer.seed."""

    def __init__(self, problem=None, optimizer=None):
        self.problem = problem if problem is not None else SphereProblem()
        self.optimizer = optimizer if optimizer is not None else ScaledSearchOptimizer()

    def seed(self, s):
        self.optimizer.seed(s)

    def reset(self):
        self.problem.reset()
        return self.optimizer.init_population(self.problem)

    def step(self, action):
        return self.optimizer.update(action, self.problem)


def make_pbo_env(max_fes=40, dim=3, pop_size=4):
    return ToyPBOEnv(SphereProblem(dim=dim), ScaledSearchOptimizer(pop_size=pop_size, max_fes=max_fes))


class ProbeEnv(ToyPBOEnv):
    """A ToyPBOEnv that reports where it runs: the worker's pid, this module's marker as the worker
    sees it, whether JAX is imported there, and the Ray resources assigned to its actor."""

    @property
    def worker_pid(self):
        return os.getpid()

    @property
    def module_marker(self):
        return MODULE_MARKER

    @property
    def jax_imported(self):
        return "jax" in sys.modules

    @property
    def ray_resources(self):
        import ray

        return dict(ray.get_runtime_context().get_assigned_resources())

    def close(self):
        self.close_calls = getattr(self, "close_calls", 0) + 1

    def run_batch_episode(self, step_size=0.5):
        """A whole episode at a fixed step size (MetaBox's Tester calls this on its test units)."""
        self.reset()
        done = False
        while not done:
            _, _, done, _ = self.step(step_size)
        return {"cost": list(self.optimizer.cost), "fes": self.optimizer.fes, "pid": os.getpid()}


class FailingEnv(ProbeEnv):
    """Raises ValueError at step number `fail_at` (1-based)."""

    def __init__(self, fail_at=2):
        super().__init__()
        self.fail_at, self.steps = fail_at, 0

    def step(self, action):
        self.steps += 1
        if self.steps == self.fail_at:
            raise ValueError(f"boom at step {self.steps}")
        return super().step(action)


class CrashingEnv(ProbeEnv):
    """Kills its own process at the first step (a segfaulting extension, an OOM kill)."""

    def step(self, action):
        os._exit(3)


class SelfKillingOptimizer:
    """A MetaBox optimizer env (`inner`: calls and attributes go to it) whose process kills itself with
    SIGKILL, as an OOM killer or a user's `kill -9` would, at its `at_update`-th `update` after a reset
    when it was seeded with `kill_seed`. Only in a process other than the one that built it (a
    'subproc' worker, which gets a copy): in the caller's process it never kills."""

    def __init__(self, inner, kill_seed, at_update):
        self.inner, self.kill_seed, self.at_update = inner, kill_seed, at_update
        self.home_pid, self.seeded, self.updates = os.getpid(), None, 0

    def seed(self, seed=None):
        self.seeded = seed
        return self.inner.seed(seed)

    def init_population(self, problem):
        self.updates = 0
        return self.inner.init_population(problem)

    def update(self, action, problem):
        self.updates += 1
        if self.seeded == self.kill_seed and self.updates == self.at_update and os.getpid() != self.home_pid:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.update(action, problem)

    def __getattr__(self, name):
        if name == "inner":  # not set yet (copy and pickle build the object before its __dict__)
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __str__(self):
        return str(self.inner)


class SlowEnv(ProbeEnv):
    """Takes `delay` seconds per step."""

    def __init__(self, delay=30.0):
        super().__init__()
        self.delay = delay

    def step(self, action):
        time.sleep(self.delay)
        return super().step(action)


def _refuse_to_load():
    raise RuntimeError("cannot load me")


class UnloadableEnv(ToyPBOEnv):
    """Pickles fine but cannot be unpickled: a worker fails while loading it."""

    def __reduce__(self):
        return (_refuse_to_load, ())
