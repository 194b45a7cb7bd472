r"""Pieces the particle-swarm environments (RLEPSO, GLEET) share: bounds, the initial swarm's draws,
problem suites, MetaBox's cost log and a scanned rollout.

Params objects here are any with `problem`, `max_fes`, `population_size`, `n_logpoint` and
`log_interval` (= max_fes // n_logpoint); states are `SwarmState`s (each env's state subclasses it
with the fields only it keeps).

MetaBox's cost log (``optimizer.cost``): c(gbest) of the initial swarm, then c(gbest) appended after
a step whenever fes ≥ log_index · log_interval (log_index then + 1, at most once a step); when the
episode ends the log is padded with c(gbest) to n_logpoint + 1 entries, or its last entry
overwritten with c(gbest) when it already has that many.
"""

from __future__ import annotations

import functools

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jppo.envs.base import Environment, default_float


@struct.dataclass
class InitDraws:
    """Uniform [0, 1) draws of the initial swarm: positions, then velocities ([NP, D] each)."""

    position: jax.Array
    velocity: jax.Array


@struct.dataclass
class SwarmState:
    """What every swarm env keeps: the episode's problem, the swarm and its bests, the budget spent and
    MetaBox's cost log."""

    problem: Any  # the problem of this episode (one of the suite)
    optimum: jax.Array  # f* = f(shift)
    position: jax.Array  # [NP, D]
    velocity: jax.Array  # [NP, D]
    cost: jax.Array  # [NP]  c(x) of the current positions
    pbest_position: jax.Array  # [NP, D]
    pbest_cost: jax.Array  # [NP]
    gbest_position: jax.Array  # [D]
    gbest_cost: jax.Array  # []
    stagnation: jax.Array  # [NP] generations since the particle's own cost last fell (float, as MetaBox)
    fes: jax.Array  # [] int32
    log_index: jax.Array  # [] int32, MetaBox's log_index
    log_len: jax.Array  # [] int32, entries of cost_log in use
    cost_log: jax.Array  # [capacity], NaN beyond log_len


def initial_swarm(problem, draws: InitDraws, evaluate_fn, optimum_fn, params) -> dict:
    """The fields of `SwarmState` at reset, from explicit draws (MetaBox's ``init_population``):

        x = lb + (ub - lb) u,   v = -v_max + 2 v_max u',   c(x) = f(x) - f*,
        pbest = x, gbest = argmin c(x), s = 0, fes = NP, cost log = [c(gbest)]
    """
    dtype = draws.position.dtype
    n, dim = draws.position.shape
    lb, ub, vmax = bounds(problem, dim, dtype)
    optimum = jnp.asarray(optimum_fn(problem), dtype)
    position = uniform(lb, ub, draws.position)
    cost = jnp.asarray(evaluate_fn(problem, position), dtype) - optimum
    best = jnp.argmin(cost)
    one = jnp.ones((), jnp.int32)
    return dict(
        problem=problem, optimum=optimum, position=position, velocity=uniform(-vmax, vmax, draws.velocity),
        cost=cost, pbest_position=position, pbest_cost=cost, gbest_position=position[best], gbest_cost=cost[best],
        stagnation=jnp.zeros_like(cost), fes=one * n, log_index=one, log_len=one,
        cost_log=new_cost_log(cost[best], params),
    )  # fmt: skip


def dim_of(problem) -> int:
    return int(jnp.shape(problem.shift)[-1])


def bounds(problem, dim: int, dtype):
    """(lb, ub, v_max = 0.1 (ub - lb)), each broadcast to [D]."""
    lb = jnp.broadcast_to(jnp.asarray(problem.lb, dtype), (dim,))
    ub = jnp.broadcast_to(jnp.asarray(problem.ub, dtype), (dim,))
    return lb, ub, 0.1 * (ub - lb)


def uniform(low, high, u):
    return low + (high - low) * u  # numpy's RandomState.uniform, operation for operation


def sample_init_draws(key, population_size: int, dim: int, dtype=None) -> InitDraws:
    dtype = dtype or default_float()
    k_pos, k_vel = jax.random.split(key)
    shape = (population_size, dim)
    return InitDraws(jax.random.uniform(k_pos, shape, dtype), jax.random.uniform(k_vel, shape, dtype))


def update_bests(state, position, cost):
    """The swarm moved to `position` with costs `cost`; pbest / gbest where strictly better (argmin: the
    first of equal minima, as numpy). `state` has the fields position, cost, pbest_*, gbest_*."""
    better = cost < state.pbest_cost
    best = jnp.argmin(cost)
    gbest_better = cost[best] < state.gbest_cost
    return state.replace(
        position=position,
        cost=cost,
        pbest_position=jnp.where(better[:, None], position, state.pbest_position),
        pbest_cost=jnp.where(better, cost, state.pbest_cost),
        gbest_position=jnp.where(gbest_better, position[best], state.gbest_position),
        gbest_cost=jnp.where(gbest_better, cost[best], state.gbest_cost),
    )


def check_budget(params) -> None:
    """The sizes every swarm env needs: positive integers, max_fes ≥ n_logpoint, shift [D] or [N, D]."""
    for name in ("max_fes", "population_size", "n_logpoint"):
        value = getattr(params, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"params.{name} must be a positive integer, got {value!r}")
    if params.log_interval < 1:
        raise ValueError(f"params.max_fes ({params.max_fes}) must be ≥ params.n_logpoint ({params.n_logpoint})")
    if np.ndim(params.problem.shift) not in (1, 2):
        raise ValueError(f"params.problem.shift must have shape [D] or [N, D], got {np.shape(params.problem.shift)}")


def log_capacity(params) -> int:
    """Entries the cost log can reach: 1 + appends, and an append needs fes ≥ k·log_interval with
    fes < maxFEs + 2·NP; never fewer than n_logpoint + 1 (the end pads to that)."""
    appends = (params.max_fes - 1 + 2 * params.population_size) // params.log_interval
    return max(params.n_logpoint + 1, 1 + appends)


def max_generations(params) -> int:
    """Generations an episode can take at most (each adds ≥ NP evaluations, the reset adds NP)."""
    return max(1, -(-(params.max_fes - params.population_size) // params.population_size))


def new_cost_log(first_cost, params) -> jax.Array:
    """The log at reset: [c(gbest), NaN, ...] of `log_capacity(params)` entries."""
    return jnp.full((log_capacity(params),), jnp.nan, first_cost.dtype).at[0].set(first_cost)


def log_cost(state, params):
    due = state.fes >= state.log_index * params.log_interval
    cost_log = jnp.where(due, state.cost_log.at[state.log_len].set(state.gbest_cost), state.cost_log)
    step = due.astype(jnp.int32)
    return state.replace(cost_log=cost_log, log_index=state.log_index + step, log_len=state.log_len + step)


def close_log(state, params):
    """The end of an episode: pad to n_logpoint + 1 entries with gbest, or overwrite the last one."""
    final_len = jnp.maximum(state.log_len, params.n_logpoint + 1)
    i = jnp.arange(state.cost_log.shape[0])
    fill = ((i >= state.log_len) & (i < final_len)) | (i == final_len - 1)
    return state.replace(cost_log=jnp.where(fill, state.gbest_cost, state.cost_log), log_len=final_len)


def update_cost_log(state, params, terminated):
    """One step's logging: append when due, then close the log if the episode `terminated`."""
    state = log_cost(state, params)
    closed = close_log(state, params)
    return state.replace(cost_log=jnp.where(terminated, closed.cost_log, state.cost_log),
                         log_len=jnp.where(terminated, closed.log_len, state.log_len))


def cost_history(state) -> np.ndarray:
    """MetaBox's ``optimizer.cost``: the logged costs, [log_len] for one state, [..., log_len] for a
    batch (which must agree on the length; 51 entries for every finished default episode)."""
    lengths = np.asarray(state.log_len)
    if lengths.size and not (lengths == lengths.flat[0]).all():
        raise ValueError(f"the states' cost logs differ in length: {sorted(set(lengths.ravel().tolist()))}")
    return np.asarray(state.cost_log)[..., : int(lengths.flat[0])]


def bbob_evaluate(bias: bool = False, strategy: str = "auto") -> Callable:
    """`evaluate_fn(problem, x)`: BBOB's f(x) - bias (the default: costs f(x) - f(x*) keep their float32
    precision) or, with `bias`, f(x) as MetaBox's problems evaluate it (MetaBox's cost arithmetic:
    eval(x) - optimum); a batch of problems evaluated as `strategy` says (`jppo.metabbo.bbob.STRATEGIES`)."""
    from jppo.metabbo import bbob

    return functools.partial(bbob.evaluate, bias=bias, strategy=bbob.check_strategy(strategy))


def check_bbob_strategy(strategy: str, evaluate_fn) -> None:
    """A ValueError for an unknown `strategy`, or for one given with an `evaluate_fn` (which it would not reach)."""
    from jppo.metabbo import bbob

    bbob.check_strategy(strategy)
    if strategy != "auto" and evaluate_fn is not None:
        raise ValueError(f"bbob_strategy={strategy!r} picks how BBOB evaluates a batch of problems; give it or "
                         f"evaluate_fn, not both")


def select_problem(problem, key):
    """One problem of a suite (leading axis on every leaf), drawn uniformly; a single problem as is."""
    if jnp.ndim(problem.shift) == 1:
        return problem
    i = jax.random.randint(key, (), 0, jnp.shape(problem.shift)[0])
    return jax.tree.map(lambda leaf: jnp.asarray(leaf)[i], problem)


class SwarmEnv(Environment):
    """Base of the swarm envs: params hold one problem or a suite (`problem` with a leading axis)."""

    def batch_params(self, params, num_envs: int):
        """Environment i works on problem i mod N of a suite of N (the whole suite as the batch when
        num_envs = N, MetaBox's batch of train problems); a single problem goes to every env."""
        n = self.num_problems(params)
        if n is None:
            return super().batch_params(params, num_envs)
        index = np.arange(num_envs) % n
        return params.replace(problem=jax.tree.map(lambda leaf: jnp.asarray(leaf)[index], params.problem))

    def check_params(self, params) -> None:
        """A ValueError for params this env cannot run (each env says what it needs)."""
        raise NotImplementedError

    def reset(self, key, params):
        """Draw the episode's problem from the suite, then the initial swarm (`self.init`)."""
        self.check_params(params)
        problem_key, init_key = jax.random.split(key)
        problem = select_problem(params.problem, problem_key)
        draws = sample_init_draws(init_key, params.population_size, dim_of(problem))
        state = self.init(problem, draws, params)
        return self.observation(state, params), state

    def num_problems(self, params) -> int | None:
        """N for a suite (`shift` [N, D]), None for a single problem (`shift` [D])."""
        return None if jnp.ndim(params.problem.shift) == 1 else int(jnp.shape(params.problem.shift)[0])


def rollout(env: Environment, params, key, policy: Callable, num_steps: int | None = None):
    """One episode under `lax.scan`: `policy(key, obs) -> action`. Runs `max_generations(params)`
    steps (or `num_steps`); after termination the state is frozen and rewards are 0.
    Returns (final state, {'reward', 'done', 'cost', 'fes'} each [steps])."""
    num_steps = max_generations(params) if num_steps is None else num_steps
    reset_key, key = jax.random.split(key)
    obs, state = env.reset(reset_key, params)

    def one(carry, step_key):
        obs, state, done = carry
        act_key, env_key = jax.random.split(step_key)
        action = policy(act_key, obs)
        new_obs, new_state, reward, terminated, _, _ = env.step(env_key, state, action, params)
        keep = lambda new, old: jnp.where(done, old, new)  # noqa: E731
        state = jax.tree.map(keep, new_state, state)
        out = {"reward": jnp.where(done, 0.0, reward), "done": done | terminated, "cost": state.gbest_cost,
               "fes": state.fes}
        return (keep(new_obs, obs), state, done | terminated), out

    (_, state, _), trajectory = jax.lax.scan(one, (obs, state, jnp.zeros((), bool)), jax.random.split(key, num_steps))
    return state, trajectory


def register_suites(env_ids, train_suite: Callable) -> None:
    """Register each id with `jppo.envs`: `make(env_id, difficulty=...)` gives `train_suite(env_id, difficulty)`."""
    from jppo.envs import register

    for env_id in env_ids:
        register(env_id, functools.partial(train_suite, env_id))
