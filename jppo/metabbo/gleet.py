r"""GLEET: a particle swarm whose per-particle exploration / exploitation balance an agent sets every step.

A port of MetaBox's ``GLEET_Optimizer`` (metaevobox 2.0.2, after Ma et al., "Auto-configuring
Exploration-Exploitation Tradeoff in Evolutionary Computation via Deep Reinforcement Learning",
GECCO 2024). With the same random draws it takes the same steps; `references/gleet_numpy.py` is a
plain numpy port that the tests run side by side with this one.

Swarm: NP = 100 particles, dimension D, bounds [lb, ub], v_max = 0.1 (ub - lb), costs
c(x) = f(x) - f* with f* = f(shift) (MetaBox's ``problem.optimum``). Constants (MetaBox hard-codes
them; here static `GLEETParams` fields): inertia w₀ = 0.9 falling by Δw = 0.5 over the episode,
acceleration c = 4.1, reward scale 100.

Initialisation (fes = NP afterwards)::

    x = lb + (ub - lb) U,   v = -v_max + 2 v_max U,   U ~ U[0, 1)^{NP×D}
    pbest = x, gbest = x_{argmin c(x)} (the first of equal minima), w = w₀
    M = c(gbest)                      the initial best cost: it scales every cost feature and the reward
    d_max = √(Σ (ub - lb)²)           over the bounds as given: 10 for BBOB's scalar ±5, not 10√D
    s = 0 (per particle), s_g = 0     stagnation counters

Features of particle i (`features`, [NP, 9]), T = maxFEs // NP::

    f₀ = c_i / M          f₁ = (c_i - c(gbest)) / M       f₂ = (c_i - c(pbest_i)) / M
    f₃ = (maxFEs - fes) / maxFEs      f₄ = s_i / T        f₅ = s_g / T
    f₆ = ‖x_i - gbest‖ / d_max        f₇ = ‖x_i - pbest_i‖ / d_max
    f₈ = p·g / (‖p‖ ‖g‖ + 1e-5),  p = pbest_i - x_i,  g = gbest - x_i   (NaN → 0)

Observation [NP, 27] = [features, pbest features, gbest features tiled]: at reset both memories are
the reset features (the gbest row: the best particle's); after a step particle i's pbest features
become its new features where s_i = 0, and the gbest features the new best particle's where s_g = 0.

One step, action a ∈ [0, 1]^NP (one number per particle; clipped, as MetaBox's actor clamps)::

    w  ← w - Δw / (maxFEs / NP)                        before use: the first step uses 0.8975
    v' = w v + c a r₁ (pbest - x) + c (1 - a) r₂ (gbest - x),    r₁, r₂ ~ U^{NP×1} (one per particle)
    v' = clip(v', -v_max, v_max),   x' = clip(x + v', lb, ub),   fes += NP
    pbest_i ← x'_i where c(x'_i) < c(pbest_i);  gbest ← the first argmin of c(x') where min c(x') < c(gbest)
    s_g ← 0 if gbest improved else s_g + 1;   s_i ← 0 if c(x'_i) < c(x_i) (the previous *current* cost) else s_i + 1
    reward = 100 (c(gbest)_before - c(gbest)_after) / M  ≥ 0
    terminated = fes ≥ maxFEs                          (100 evaluations at reset + 199 steps at the defaults)

The return of an episode is 100 (1 - c(gbest)_final / M). The cost log is MetaBox's (see
`jppo.metabbo.swarm`): 51 entries for a finished default episode. If the initial best cost is 0
(a particle on the optimum), M = 0 and features and rewards are NaN / inf, as in MetaBox.

Problems as for RLEPSO: `params.problem` is a pytree with `lb`, `ub` and `shift` ([D]), or a suite
(leading axis on every leaf) from which `reset` draws one; `evaluate_fn(problem, x[..., D]) -> f(x)`
defaults to `jppo.metabbo.bbob.evaluate` without the bias.
"""

from __future__ import annotations


from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jppo.envs.base import Box, default_float
from jppo.metabbo import registry
from jppo.metabbo.swarm import (InitDraws, SwarmEnv, SwarmState, bbob_evaluate, bounds, check_bbob_strategy,
                                check_budget, cost_history, initial_swarm, max_generations, register_suites, rollout,
                                sample_init_draws, uniform, update_bests, update_cost_log)

NUM_FEATURES = 9
OBSERVATION_WIDTH = 3 * NUM_FEATURES

__all__ = ["GLEETEnv", "GLEETParams", "GLEETState", "InitDraws", "StepDraws", "check_action", "cost_history",
           "features", "fixed_action_policy", "gleet_step", "init_swarm", "max_distance", "max_generations",
           "observation", "rollout", "sample_init_draws", "baseline", "sample_step_draws", "suite"]


@struct.dataclass
class GLEETParams:
    """The problem (or a suite) and the budget; MetaBox's constants as static fields (they set shapes
    or are compile-time numbers)."""

    problem: Any
    max_fes: int = struct.field(pytree_node=False, default=20000)
    population_size: int = struct.field(pytree_node=False, default=100)
    n_logpoint: int = struct.field(pytree_node=False, default=50)
    inertia: float = struct.field(pytree_node=False, default=0.9)  # w₀
    inertia_decay: float = struct.field(pytree_node=False, default=0.5)  # Δw over maxFEs / NP steps
    acceleration: float = struct.field(pytree_node=False, default=4.1)  # c
    reward_scale: float = struct.field(pytree_node=False, default=100.0)

    @property
    def log_interval(self) -> int:
        return self.max_fes // self.n_logpoint

    @property
    def max_step(self) -> int:
        """T = maxFEs // NP, the scale of the stagnation features."""
        return self.max_fes // self.population_size


@struct.dataclass
class StepDraws:
    """A step's random numbers, in MetaBox's order of drawing: r₁ then r₂, [NP, 1] each."""

    pbest: jax.Array  # r₁, scales the pull towards pbest
    gbest: jax.Array  # r₂, scales the pull towards gbest


@struct.dataclass
class GLEETState(SwarmState):
    """The swarm of `SwarmState`, GLEET's inertia and stagnation of the swarm, and its feature memories."""

    inertia: jax.Array  # [] w, as last used
    swarm_stagnation: jax.Array  # [] int32 s_g
    max_cost: jax.Array  # [] M, the initial best cost
    pbest_feature: jax.Array  # [NP, 9]
    gbest_feature: jax.Array  # [9]


# ---------------------------------------------------------------- checks and draws


def check_params(params: GLEETParams, population_size: int) -> None:
    check_budget(params)
    if params.population_size != population_size:
        raise ValueError(f"params.population_size ({params.population_size}) must equal the env's population_size "
                         f"({population_size}): it sets the observation and action shapes")


def _expected_action(population_size: int) -> str:
    return (f"action must be a float array of shape ({population_size},) per environment ([..., {population_size}] "
            f"for a batch), one number in [0, 1] per particle")


def check_action(action, population_size: int = 100) -> jax.Array:
    """Python-boundary check: a float array [..., NP] with entries in [0, 1] and no NaN; anything else
    raises a ValueError naming the expected shape."""
    expected = _expected_action(population_size)
    dtype = getattr(action, "dtype", None) or np.asarray(action).dtype
    if np.ndim(action) < 1 or np.shape(action)[-1] != population_size:
        raise ValueError(f"{expected}; got shape {tuple(np.shape(action))}")
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"{expected}; got dtype {dtype}")
    if isinstance(action, jax.core.Tracer):
        return action
    values = np.asarray(action)
    finite = values[~np.isnan(values)]
    if finite.size < values.size or finite.min(initial=0.0) < 0.0 or finite.max(initial=0.0) > 1.0:
        span = f"values in [{finite.min()}, {finite.max()}]" if finite.size else "no number"
        raise ValueError(f"{expected}; got {span}" + (" and NaN" if finite.size < values.size else ""))
    return jnp.asarray(action)


def sample_step_draws(key, population_size: int, dtype=None) -> StepDraws:
    u = jax.random.uniform(key, (population_size, 2), dtype or default_float())
    return StepDraws(pbest=u[:, 0:1], gbest=u[:, 1:2])


# ---------------------------------------------------------------- the optimizer, pure functions


def max_distance(problem, dtype) -> jax.Array:
    """d_max = √(Σ (ub - lb)²) over the bounds as stored (MetaBox's; 10 for scalar ±5)."""
    span = jnp.asarray(problem.ub, dtype) - jnp.asarray(problem.lb, dtype)
    return jnp.sqrt(jnp.sum(span**2))


def features(state: GLEETState, params: GLEETParams) -> jax.Array:
    """The 9 features of every particle, [NP, 9] (MetaBox's ``observe``; see the module docstring)."""
    dtype = state.position.dtype
    n = state.position.shape[0]
    scale = state.max_cost
    d_max = max_distance(state.problem, dtype)
    to_pbest = state.pbest_position - state.position
    to_gbest = state.gbest_position[None, :] - state.position
    dist_pbest = jnp.sqrt(jnp.sum(to_pbest**2, -1))
    dist_gbest = jnp.sqrt(jnp.sum(to_gbest**2, -1))
    cosine = jnp.sum(to_pbest * to_gbest, -1) / (dist_pbest * dist_gbest + 1e-5)
    full = lambda value: jnp.full((n,), value, dtype)  # noqa: E731
    return jnp.stack([
        state.cost / scale,
        (state.cost - state.gbest_cost) / scale,
        (state.cost - state.pbest_cost) / scale,
        full((params.max_fes - state.fes).astype(dtype) / params.max_fes),
        state.stagnation / params.max_step,
        full(state.swarm_stagnation.astype(dtype) / params.max_step),
        dist_gbest / d_max,
        dist_pbest / d_max,
        jnp.where(jnp.isnan(cosine), 0.0, cosine),
    ], axis=-1)  # fmt: skip


def observation(state: GLEETState, params: GLEETParams) -> jax.Array:
    """[features, pbest features, gbest features tiled], [NP, 27]."""
    own = features(state, params)
    tiled = jnp.broadcast_to(state.gbest_feature, own.shape)
    return jnp.concatenate([own, state.pbest_feature, tiled], axis=-1)


def init_swarm(problem, draws: InitDraws, evaluate_fn, optimum_fn, params: GLEETParams) -> GLEETState:
    """The initial swarm (`swarm.initial_swarm`) and feature memories from explicit draws (MetaBox's
    ``init_population``)."""
    swarm = initial_swarm(problem, draws, evaluate_fn, optimum_fn, params)
    dtype, (n, _) = draws.position.dtype, draws.position.shape
    state = GLEETState(
        **swarm, inertia=jnp.asarray(params.inertia, dtype), swarm_stagnation=jnp.zeros((), jnp.int32),
        max_cost=swarm["gbest_cost"], pbest_feature=jnp.zeros((n, NUM_FEATURES), dtype),
        gbest_feature=jnp.zeros((NUM_FEATURES,), dtype),
    )  # fmt: skip
    own = features(state, params)
    best = jnp.argmin(state.cost)
    return state.replace(pbest_feature=own, gbest_feature=own[best])


def gleet_step(state: GLEETState, action, draws: StepDraws, evaluate_fn, params: GLEETParams):
    """One step from explicit draws (MetaBox's ``update``). Returns (state, reward, terminated)."""
    dtype = state.position.dtype
    n, dim = state.position.shape
    lb, ub, vmax = bounds(state.problem, dim, dtype)
    a = jnp.clip(jnp.asarray(action, dtype), 0.0, 1.0)[:, None]
    w = state.inertia - params.inertia_decay / (params.max_fes / params.population_size)
    c = params.acceleration
    x = state.position
    velocity = (w * state.velocity + c * a * draws.pbest * (state.pbest_position - x)
                + c * (1 - a) * draws.gbest * (state.gbest_position[None, :] - x))
    velocity = jnp.clip(velocity, -vmax, vmax)
    position = jnp.clip(x + velocity, lb, ub)
    cost = jnp.asarray(evaluate_fn(state.problem, position), dtype) - state.optimum

    moved = update_bests(state, position, cost)
    improved = moved.gbest_cost < state.gbest_cost
    moved = moved.replace(
        velocity=velocity, inertia=w, fes=state.fes + n,
        stagnation=jnp.where(cost < state.cost, 0.0, state.stagnation + 1),
        swarm_stagnation=jnp.where(improved, 0, state.swarm_stagnation + 1),
    )  # fmt: skip
    own = features(moved, params)
    moved = moved.replace(
        pbest_feature=jnp.where((moved.stagnation == 0)[:, None], own, state.pbest_feature),
        gbest_feature=jnp.where(improved, own[jnp.argmin(cost)], state.gbest_feature),
    )  # fmt: skip

    terminated = moved.fes >= params.max_fes
    moved = update_cost_log(moved, params, terminated)
    reward = (state.gbest_cost - moved.gbest_cost) / state.max_cost * params.reward_scale
    return moved, reward, terminated


# ---------------------------------------------------------------- the environment


class GLEETEnv(SwarmEnv):
    """MetaBox's GLEET optimizer as a JAX environment (see the module docstring).

    Observation [NP, 27], action [NP] in [0, 1], reward 100 × the fall of c(gbest) over the initial
    best cost; info: `cost` (c(gbest)) and `fes`. `step` refuses an action of the wrong shape (at
    trace time) and, when it is a concrete array, values outside [0, 1] (`check_action`); under
    `jit` / `vmap` values cannot be inspected and are clipped.
    """

    def __init__(self, evaluate_fn: Callable | None = None, optimum_fn: Callable | None = None,
                 population_size: int = 100, bbob_strategy: str = "auto"):
        if isinstance(population_size, bool) or not isinstance(population_size, int) or population_size < 1:
            raise ValueError(f"population_size must be a positive integer, got {population_size!r}")
        check_bbob_strategy(bbob_strategy, evaluate_fn)
        self.evaluate_fn = evaluate_fn or bbob_evaluate(strategy=bbob_strategy)
        self.optimum_fn = optimum_fn or (lambda problem: self.evaluate_fn(problem, problem.shift))
        self.population_size = population_size
        self.observation_shape = (population_size, OBSERVATION_WIDTH)
        self.action_space = Box(0.0, 1.0, (population_size,))

    @property
    def default_params(self) -> GLEETParams:
        from jppo.metabbo import bbob

        return GLEETParams(problem=bbob.make_problem(1, 10), population_size=self.population_size)

    def check_action(self, action) -> jax.Array:
        return check_action(action, self.population_size)

    def observation(self, state: GLEETState, params: GLEETParams) -> jax.Array:
        return observation(state, params)

    def init(self, problem, draws: InitDraws, params: GLEETParams) -> GLEETState:
        return init_swarm(problem, draws, self.evaluate_fn, self.optimum_fn, params)

    def pso_step(self, state: GLEETState, action, draws: StepDraws, params: GLEETParams):
        """(state, reward, terminated) from explicit draws."""
        self._check_action(action)
        return gleet_step(state, action, draws, self.evaluate_fn, params)

    def _check_action(self, action) -> None:
        """Shape [NP] (at trace time); values in [0, 1] when the action is a concrete array."""
        if jnp.shape(action) != (self.population_size,):
            raise ValueError(f"{_expected_action(self.population_size)}; got shape {tuple(jnp.shape(action))}")
        check_action(action, self.population_size)

    def check_params(self, params: GLEETParams) -> None:
        check_params(params, self.population_size)

    def step(self, key, state: GLEETState, action, params: GLEETParams):
        self._check_action(action)  # before any work, so that a bad action fails fast
        draws = sample_step_draws(key, params.population_size, state.position.dtype)
        state, reward, terminated = self.pso_step(state, action, draws, params)
        info = {"cost": state.gbest_cost, "fes": state.fes}
        return self.observation(state, params), state, reward, terminated, jnp.zeros((), bool), info


def fixed_action_policy(value: float = 0.5) -> Callable:
    """`policy(key, obs) -> action` giving every particle `value`: with 0.5 GLEET's step is a plain PSO
    with both acceleration coefficients c/2 = 2.05 and the decaying inertia (the baseline of a report)."""
    return lambda key, obs: jnp.full(obs.shape[:-1], value, obs.dtype)


# env id -> (dim, max_fes) for the ids this module builds (their rows in jppo.metabbo.registry)
SUITES = {env_id: (spec.dim, spec.max_fes) for env_id, spec in registry.specs_of(__name__).items()}


def suite(env_id: str, split: str = "train", difficulty: str = "easy", bbob_strategy: str = "auto"):
    """`(env, params, fids)` for a registered GLEET id on one split of MetaBox's bbob suite."""
    from jppo.metabbo import bbob

    dim, max_fes = SUITES[env_id]
    problems, fids = bbob.bbob_suite(dim, difficulty, split)
    return GLEETEnv(bbob_strategy=bbob_strategy), GLEETParams(problem=problems, max_fes=max_fes), fids


def baseline(env: GLEETEnv):
    """The report's backbone without an agent: `(name, env, policy)`, GLEET's PSO with a = 0.5 for every
    particle (`fixed_action_policy`)."""
    return "PSO a=0.5", env, fixed_action_policy(0.5)


def train_suite(env_id: str, difficulty: str = "easy", bbob_strategy: str = "auto"):
    """`(env, params)` on the train split of `difficulty`: what `jppo.envs.make(env_id, difficulty=...,
    bbob_strategy=...)` gives."""
    return suite(env_id, "train", difficulty, bbob_strategy)[:2]


register_suites(SUITES, train_suite)
