r"""RLEPSO: an ensemble particle swarm whose per-group coefficients an agent sets every generation.

A port of MetaBox's ``RLEPSO_Optimizer`` (MetaBox v2 / metaevobox 2.0.2, after Yin et al., "RLEPSO:
Reinforcement learning based Ensemble particle swarm optimizer", ACAI 2021). With the same random
draws it takes the same steps, quirks included; `references/rlepso_numpy.py` is a plain numpy port
that the tests run side by side with this one.

Swarm: NP = 100 particles in G = 5 groups of NP // G consecutive particles, dimension D, bounds
[lb, ub], v_max = 0.1 (ub - lb). Costs are c(x) = f(x) - f*, with f* = f(shift) (MetaBox's
``problem.optimum``, evaluated once at reset).

Initialisation (fes = NP afterwards)::

    x = lb + (ub - lb) U,   v = -v_max + (v_max - (-v_max)) U,   U ~ U[0, 1)^{NP×D}
    pbest = x, gbest = argmin c(x), stagnation s = 0, cost log = [c(gbest)]

Action a ∈ [0, 1]^{7G}. Group g reads the seven numbers a[g·5 : g·5 + 7]: MetaBox slices with a
stride of G = 5, not 7, so neighbouring groups overlap and a[27:35] is never read (ported as is;
``RLEPSOEnv(group_stride=7)`` gives disjoint slices). For particle i of group g, with
(m, ω, κ, α₁..α₄) = a[g·5 : g·5 + 7] and s_i its stagnation count before this generation::

    w_i = 0.8 ω + 0.1
    k   = 1 / (α₁ + α₂ + α₃ + α₄ + 1e-5) · κ · 8,      c_j = k α_j
    μ_i = m · 0.01 · s_i                                  (particles past G·(NP // G) get 0 for all)

One generation (draws named as in `StepDraws`)::

    CL target   t_id = the better of pbest_{r1,d}, pbest_{r2,d} (r1, r2 ~ randint[0, NP), ties → r1)
    Pc_i        = 0.05 + 0.45 exp(10 i / (NP - 1)) / (e^10 - 1)
    v_cl        = ρ (p̃ - x),  ρ ~ U^{NP×D},  p̃_id = pbest_id if ρ_id > Pc_i else t_id   (one ρ for both)
    v_fdr       = ρ' (pbest_{j*(i,d),d} - pbest_id),
                  j*(i,d) = argmin_j (f_pbest_j - f_pbest_i) / (|pbest_jd - pbest_id| + 1e-5)
    v_pb        = r₁ (pbest - x),    v_gb = r₂ (gbest - x),    r₁, r₂ ~ U^{NP×1}
    v'          = clip(w v + c₁ v_cl + c₂ v_fdr + c₃ v_gb + c₄ v_pb, -v_max, v_max)
    x'          = clip(x + v', lb, ub);  fes += NP
    pbest, gbest updated where strictly better;  s_i ← 0 if c(x'_i) < c(x_i) else s_i + 1
    re-init     particle i with prob. μ_i · 0.01 · s_i (new s): x_i, v_i redrawn as at the start,
                fes += (number re-initialised), pbest / gbest updated again

Then: the cost log appends c(gbest) when fes ≥ log_index · log_interval (log_interval =
maxFEs // 50, at most one entry a generation); reward = +1 if c(gbest) fell this generation
else -1 (MetaBox's; `RLEPSOEnv(reward="log" | "relative")` reward the size of the fall, below);
observation = [fes / maxFEs]; terminated when fes ≥ maxFEs (no cost threshold: MetaBox's
``is_end`` is the budget only). At the end the log is padded with c(gbest) to 51 entries, or its
last entry overwritten with c(gbest) when it already has 51 or more. With re-initialisation fes
can pass maxFEs by up to NP; without it an episode is exactly (maxFEs - NP) / NP generations.

Rewards. MetaBox's ``"sign"`` reward counts generations that improve c(gbest), however little, so
a policy can raise its return by converging early onto many tiny improvements while the final cost
gets worse (`benchmarks/results/rlepso_eval.md` shows it). ``"log"`` rewards the fall of the
best cost in decades, floored at ε = 1e-8 (where MetaBox's log-scale plots stop)::

    r_t = log10(max(c*_{t-1}, ε)) - log10(max(c*_t, ε)),     c*_t = c(gbest) after generation t

so an episode's undiscounted return is log10(max(c*_0, ε) / max(c*_T, ε)): the initial swarm
does not depend on the policy, so maximising the return minimises the final log cost. It counts a
decade on an easy problem the same as on a hard one, so unimodal problems, which fall by many
decades, dominate it. ``"relative"`` rewards the fall of the best cost as a fraction of the initial
one (the reward of several MetaBox agents, GLEET's for one)::

    r_t = (c*_{t-1} - c*_t) / max(c*_0, ε),    return = 1 - c*_T / max(c*_0, ε)  ∈ [0, 1]

where every problem that converges returns nearly 1, so the hard problems carry the signal.

Actions outside [0, 1] are clipped (MetaBox's actor clamps its samples to [0, 1] before the
optimizer sees them); `check_action` rejects them, and NaN, at the Python boundary for callers
who want an error. An action of the wrong shape raises at trace time.

Problems: `params.problem` is any pytree with `lb`, `ub` (scalars or [D]) and `shift` ([D]);
`evaluate_fn(problem, x[..., D]) -> [...]` gives f(x) (default: `jppo.metabbo.bbob.evaluate` without the bias,
which cancels in the cost anyway and would cost float32 its precision near the optimum).
A batch of problems (leaves with a leading axis, `shift` [N, D]) is a suite: `reset` draws one
uniformly and keeps it in the state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import lax

from jppo.envs.base import Box, default_float
from jppo.metabbo import registry
from jppo.metabbo.swarm import (InitDraws, SwarmEnv, SwarmState, bbob_evaluate, bounds, check_bbob_strategy,
                                check_budget, cost_history, initial_swarm, max_generations, register_suites, rollout,
                                sample_init_draws, uniform, update_bests, update_cost_log)

ACTIONS_PER_GROUP = 7


@struct.dataclass
class RLEPSOParams:
    """The problem (or a suite of problems) and the budget. Sizes are static (they set shapes)."""

    problem: Any
    max_fes: int = struct.field(pytree_node=False, default=20000)
    population_size: int = struct.field(pytree_node=False, default=100)
    n_logpoint: int = struct.field(pytree_node=False, default=50)

    @property
    def log_interval(self) -> int:
        return self.max_fes // self.n_logpoint


@struct.dataclass
class StepDraws:
    """Every random number one generation uses, in MetaBox's order of drawing."""

    pbest: jax.Array  # [NP, 1]   r₁ for v_pb
    gbest: jax.Array  # [NP, 1]   r₂ for v_gb
    clpso: jax.Array  # [NP, D]   ρ: the Pc test and the v_cl factor
    tournament: jax.Array  # [NP, D, 2] int, the two candidates per particle and dimension
    fdr: jax.Array  # [NP, D]   ρ' for v_fdr
    reinit: jax.Array  # [NP]      tested against the re-initialisation probability
    reinit_position: jax.Array  # [NP, D]  used only if some particle is re-initialised
    reinit_velocity: jax.Array  # [NP, D]


@struct.dataclass
class RLEPSOState(SwarmState):
    """The swarm of `SwarmState`; RLEPSO keeps nothing more."""


# ---------------------------------------------------------------- sizes and checks


def check_params(params: RLEPSOParams, n_groups: int) -> None:
    check_budget(params)
    if params.population_size < n_groups:
        raise ValueError(f"params.population_size must be ≥ n_groups = {n_groups}, got {params.population_size}")


def check_action(action, n_groups: int = 5) -> jax.Array:
    """Python-boundary check: a float array [..., 7·n_groups] with entries in [0, 1] and no NaN."""
    width = ACTIONS_PER_GROUP * n_groups
    dtype = getattr(action, "dtype", None) or np.asarray(action).dtype
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"action must be a floating-point array, got dtype {dtype}")
    if np.ndim(action) < 1 or np.shape(action)[-1] != width:
        raise ValueError(f"action must have shape [..., {width}], got {tuple(np.shape(action))}")
    if isinstance(action, jax.core.Tracer):
        return action
    values = np.asarray(action)
    if np.isnan(values).any():
        raise ValueError("action contains NaN")
    if values.min(initial=0.0) < 0.0 or values.max(initial=0.0) > 1.0:
        raise ValueError(f"action must lie in [0, 1], got values in [{values.min()}, {values.max()}]")
    return jnp.asarray(action)


# ---------------------------------------------------------------- random draws


def sample_step_draws(key, population_size: int, dim: int, dtype=None) -> StepDraws:
    """All of a generation's draws from one uniform call (one threefry pass instead of eight). The
    tournament's indices are ⌊u·NP⌋ (uniform over [0, NP) to the float's resolution), which XLA's CPU
    backend makes about twice as fast as `jax.random.randint`."""
    dtype = dtype or default_float()
    n, d = population_size, dim
    u = jax.random.uniform(key, (n, 3 + 6 * d), dtype)
    per_dim = u[:, 3:].reshape(n, 6, d)
    tournament = jnp.minimum(jnp.floor(per_dim[:, 4:].transpose(0, 2, 1) * n), n - 1).astype(jnp.int32)
    return StepDraws(pbest=u[:, 0:1], gbest=u[:, 1:2], clpso=per_dim[:, 0], tournament=tournament, fdr=per_dim[:, 1],
                     reinit=u[:, 2], reinit_position=per_dim[:, 2], reinit_velocity=per_dim[:, 3])


# ---------------------------------------------------------------- the optimizer, pure functions


def learning_probability(population_size: int, dtype=None) -> jax.Array:
    """MetaBox's Pc_i = 0.05 + 0.45 exp(10 i / (NP - 1)) / (e^10 - 1), a constant computed by numpy
    (XLA's exp differs from numpy's in the last bit)."""
    i = np.arange(population_size)
    pc = 0.05 + 0.45 * np.exp(10 * i / (population_size - 1)) / (np.exp(10) - 1)
    return jnp.asarray(pc, dtype or default_float())


def group_coefficients(action, stagnation, n_groups: int, group_stride: int):
    """Per-particle (w, c₁, c₂, c₃, c₄ as [NP, 1], μ as [NP]) from the action; see the module docstring."""
    population_size = stagnation.shape[0]
    per_group = population_size // n_groups
    rows = jnp.arange(n_groups)[:, None] * group_stride + jnp.arange(ACTIONS_PER_GROUP)[None, :]
    a = action[rows]  # [G, 7]
    m, omega, kappa, a1, a2, a3, a4 = (a[:, j] for j in range(ACTIONS_PER_GROUP))
    scale = 1.0 / ((((a1 + a2) + a3) + a4) + 1e-5) * kappa * 8
    per_group_values = jnp.stack([omega * 0.8 + 0.1, scale * a1, scale * a2, scale * a3, scale * a4, m * 0.01], 1)
    particle = jnp.arange(population_size)
    group = jnp.minimum(particle // per_group, n_groups - 1)
    values = jnp.where((particle < n_groups * per_group)[:, None], per_group_values[group], 0.0)
    w, c1, c2, c3, c4 = (values[:, j : j + 1] for j in range(5))
    return w, c1, c2, c3, c4, values[:, 5] * stagnation


def clpso_velocity(state: RLEPSOState, draws: StepDraws, pc):
    """v_cl = ρ (p̃ - x): own pbest where ρ > Pc_i, else the binary-tournament winner, per dimension."""
    r1, r2 = draws.tournament[..., 0], draws.tournament[..., 1]  # [NP, D] each
    winner = jnp.where(state.pbest_cost[r2] < state.pbest_cost[r1], r2, r1)  # ties → r1
    target = jnp.take_along_axis(state.pbest_position, winner, axis=0)  # t_id = pbest_{winner_id, d}
    rho = draws.clpso
    exemplar = jnp.where(rho > pc[:, None], state.pbest_position, target)
    return rho * (exemplar - state.position)


def fdr_velocity(state: RLEPSOState, draws: StepDraws):
    """v_fdr = ρ' (pbest_{j*,d} - pbest_{i,d}), j* minimising the fitness-distance ratio per (i, d).

    j* is found by a loop over j keeping the running minimum (strict <: the first of equal minima, as
    numpy's argmin): the same result as an argmin over the [NP, NP, D] ratios, which XLA's CPU
    backend computes about 2x slower. The loop works on [D, NP] (particles last: the long axis
    vectorises), 10-25% faster per training episode on CPU than [NP, D]."""
    pos, fit = state.pbest_position, state.pbest_cost
    pos_t = pos.T  # [d, i]

    def candidate(j, best):
        ratio = (fit[j] - fit)[None, :] / (jnp.abs(pos_t[:, j, None] - pos_t) + 1e-5)  # [d, i]
        better = ratio < best[0]
        return jnp.where(better, ratio, best[0]), jnp.where(better, j, best[1])

    start = (jnp.full(pos_t.shape, jnp.inf, pos.dtype), jnp.zeros(pos_t.shape, jnp.int32))
    j_star = lax.fori_loop(0, pos.shape[0], candidate, start, unroll=10)[1]  # [d, i]
    target = jnp.take_along_axis(pos_t, j_star, axis=1).T
    return draws.fdr * (target - pos)


def init_swarm(problem, draws: InitDraws, evaluate_fn, optimum_fn, params: RLEPSOParams) -> RLEPSOState:
    """The initial swarm from explicit draws (MetaBox's ``init_population``; `swarm.initial_swarm`)."""
    return RLEPSOState(**initial_swarm(problem, draws, evaluate_fn, optimum_fn, params))


def pso_step(state: RLEPSOState, action, draws: StepDraws, evaluate_fn, params: RLEPSOParams,
             n_groups: int = 5, group_stride: int = 5):
    """One generation from explicit draws (MetaBox's ``update``). Returns (state, reward, terminated)."""
    action = jnp.clip(jnp.asarray(action, state.position.dtype), 0.0, 1.0)
    coefficients = group_coefficients(action, state.stagnation, n_groups, group_stride)
    return swarm_step(state, coefficients, draws, evaluate_fn, params)


def fixed_coefficients(population_size: int, w=0.729, c_gbest=1.49445, c_pbest=1.49445, dtype=None):
    """Coefficients of a plain PSO for `swarm_step` (Clerc's constriction values by default): inertia
    w, attraction to gbest and pbest, no CLPSO / FDR terms, no re-initialisation."""
    dtype = dtype or default_float()
    column = lambda value: jnp.full((population_size, 1), value, dtype)  # noqa: E731
    return column(w), column(0.0), column(0.0), column(c_gbest), column(c_pbest), jnp.zeros(population_size, dtype)


def swarm_step(state: RLEPSOState, coefficients, draws: StepDraws, evaluate_fn, params: RLEPSOParams):
    """One generation with per-particle coefficients `(w, c₁, c₂, c₃, c₄ [NP, 1], μ [NP])` (see
    `group_coefficients`). Returns (state, reward, terminated)."""
    dtype = state.position.dtype
    n, dim = state.position.shape
    lb, ub, vmax = bounds(state.problem, dim, dtype)
    previous_gbest = state.gbest_cost
    w, c1, c2, c3, c4, mutation = coefficients

    v_cl = clpso_velocity(state, draws, learning_probability(n, dtype))
    v_fdr = fdr_velocity(state, draws)
    v_pb = draws.pbest * (state.pbest_position - state.position)
    v_gb = draws.gbest * (state.gbest_position[None, :] - state.position)
    velocity = w * state.velocity + c1 * v_cl + c2 * v_fdr + c3 * v_gb + c4 * v_pb
    velocity = jnp.clip(velocity, -vmax, vmax)
    position = jnp.clip(state.position + velocity, lb, ub)

    # The re-initialisation candidates do not depend on the swarm: evaluate them with the new positions.
    fresh_position = uniform(lb, ub, draws.reinit_position)
    fresh_velocity = uniform(-vmax, vmax, draws.reinit_velocity)
    both = jnp.asarray(evaluate_fn(state.problem, jnp.concatenate([position, fresh_position])), dtype) - state.optimum
    cost, fresh_cost = both[:n], both[n:]

    stagnation = jnp.where(cost < state.cost, 0.0, state.stagnation + 1)
    moved = update_bests(state, position, cost).replace(velocity=velocity, stagnation=stagnation,
                                                         fes=state.fes + n)

    reinit = draws.reinit < mutation * 0.01 * stagnation
    position = jnp.where(reinit[:, None], fresh_position, moved.position)
    velocity = jnp.where(reinit[:, None], fresh_velocity, moved.velocity)
    cost = jnp.where(reinit, fresh_cost, moved.cost)
    state = update_bests(moved, position, cost).replace(velocity=velocity,
                                                         fes=moved.fes + jnp.sum(reinit, dtype=jnp.int32))

    terminated = state.fes >= params.max_fes
    state = update_cost_log(state, params, terminated)
    reward = jnp.where(state.gbest_cost < previous_gbest, 1.0, -1.0).astype(dtype)
    return state, reward, terminated


def log_improvement(previous_cost, cost, floor: float = 1e-8):
    """log10(max(previous_cost, floor)) - log10(max(cost, floor)): the `"log"` reward."""
    return jnp.log10(jnp.maximum(previous_cost, floor)) - jnp.log10(jnp.maximum(cost, floor))


def relative_improvement(previous_cost, cost, initial_cost, floor: float = 1e-8):
    """(previous_cost - cost) / max(initial_cost, floor): the `"relative"` reward."""
    return (previous_cost - cost) / jnp.maximum(initial_cost, floor)


class RLEPSOEnv(SwarmEnv):
    """MetaBox's RLEPSO optimizer as a JAX environment (see the module docstring).

    `evaluate_fn(problem, x[..., D]) -> f(x)[...]` defaults to `jppo.metabbo.bbob.evaluate(..., bias=False)`;
    `optimum_fn(problem) -> f*` defaults to f(problem.shift), as MetaBox's ``problem.optimum``.
    `metabox_costs=True` evaluates with the bias instead, so that cost = (f(x) + bias) - (f(x*) + bias) as
    MetaBox computes it: in float64 costs are then quantised at the bias's spacing (1e-14 to 5e-13) exactly
    as MetaBox's are, and the ±1 reward gives -1 for improvements below it where exact costs give +1 (a
    settled swarm keeps "improving" in the last bits). It is what makes jppo's ±1 reward, and so its training,
    MetaBox's; in float32 the spacing is 1e-5 to 2e-4, coarser than MetaBox's.
    Observation [fes / maxFEs]; reward `"sign"` (±1, MetaBox's), `"log"` (the fall of log10 c(gbest))
    or `"relative"` (the fall of c(gbest) over its initial value);
    info: `cost` (best cost so far, c(gbest)) and `fes`.
    """

    observation_shape = (1,)
    REWARDS = ("sign", "log", "relative")

    def __init__(self, evaluate_fn: Callable | None = None, optimum_fn: Callable | None = None,
                 n_groups: int = 5, group_stride: int | None = None, reward: str = "sign", metabox_costs: bool = False,
                 bbob_strategy: str = "auto"):
        if reward not in self.REWARDS:
            raise ValueError(f"reward must be one of {self.REWARDS}, got {reward!r}")
        self.reward = reward
        if isinstance(n_groups, bool) or not isinstance(n_groups, int) or n_groups < 1:
            raise ValueError(f"n_groups must be a positive integer, got {n_groups!r}")
        group_stride = n_groups if group_stride is None else group_stride
        if not isinstance(group_stride, int) or group_stride < 0 or \
                (n_groups - 1) * group_stride + ACTIONS_PER_GROUP > ACTIONS_PER_GROUP * n_groups:
            raise ValueError(f"group_stride must be an integer in [0, 7] so every group's 7 actions exist, "
                             f"got {group_stride!r}")
        if metabox_costs and evaluate_fn is not None:
            raise ValueError("metabox_costs=True picks the evaluation (BBOB with its bias); give it or evaluate_fn, not both")
        check_bbob_strategy(bbob_strategy, evaluate_fn)
        self.metabox_costs = metabox_costs
        self.evaluate_fn = evaluate_fn or bbob_evaluate(bias=metabox_costs, strategy=bbob_strategy)
        self.optimum_fn = optimum_fn or (lambda problem: self.evaluate_fn(problem, problem.shift))
        self.n_groups = n_groups
        self.group_stride = group_stride
        self.action_space = Box(0.0, 1.0, (ACTIONS_PER_GROUP * n_groups,))

    @property
    def default_params(self) -> RLEPSOParams:
        from jppo.metabbo import bbob

        return RLEPSOParams(problem=bbob.make_problem(1, 10))

    def check_action(self, action) -> jax.Array:
        return check_action(action, self.n_groups)

    def observation(self, state: RLEPSOState, params: RLEPSOParams):
        return jnp.reshape(state.fes.astype(state.position.dtype) / params.max_fes, (1,))

    def init(self, problem, draws: InitDraws, params: RLEPSOParams) -> RLEPSOState:
        return init_swarm(problem, draws, self.evaluate_fn, self.optimum_fn, params)

    def pso_step(self, state: RLEPSOState, action, draws: StepDraws, params: RLEPSOParams):
        """(state, reward, terminated) from explicit draws."""
        self._check_action_shape(action)
        new_state, sign, terminated = pso_step(state, action, draws, self.evaluate_fn, params, self.n_groups,
                                               self.group_stride)
        if self.reward == "log":
            return new_state, log_improvement(state.gbest_cost, new_state.gbest_cost), terminated
        if self.reward == "relative":
            initial = state.cost_log[0]  # c(gbest) of the initial swarm
            return new_state, relative_improvement(state.gbest_cost, new_state.gbest_cost, initial), terminated
        return new_state, sign, terminated

    def check_params(self, params: RLEPSOParams) -> None:
        check_params(params, self.n_groups)

    def step(self, key, state: RLEPSOState, action, params: RLEPSOParams):
        draws = sample_step_draws(key, params.population_size, state.position.shape[1], state.position.dtype)
        state, reward, terminated = self.pso_step(state, action, draws, params)
        info = {"cost": state.gbest_cost, "fes": state.fes}
        return self.observation(state, params), state, reward, terminated, jnp.zeros((), bool), info

    def _check_action_shape(self, action) -> None:
        width = self.action_space.shape[0]
        if jnp.shape(action) != (width,):
            raise ValueError(f"action must have shape ({width},) per environment, got {tuple(jnp.shape(action))}")


class PlainPSO(RLEPSOEnv):
    """The same swarm with fixed, hand-set coefficients (`fixed_coefficients`): a baseline that
    ignores its action."""

    def __init__(self, evaluate_fn: Callable | None = None, optimum_fn: Callable | None = None, **coefficients):
        super().__init__(evaluate_fn, optimum_fn)
        self.coefficients = coefficients

    def pso_step(self, state: RLEPSOState, action, draws: StepDraws, params: RLEPSOParams):
        fixed = fixed_coefficients(state.position.shape[0], dtype=state.position.dtype, **self.coefficients)
        return swarm_step(state, fixed, draws, self.evaluate_fn, params)


# env id -> (dim, max_fes, reward) for the ids this module builds (their rows in jppo.metabbo.registry)
SUITES = {env_id: (spec.dim, spec.max_fes, spec.reward) for env_id, spec in registry.specs_of(__name__).items()}


def suite(env_id: str, split: str = "train", difficulty: str = "easy", metabox_costs: bool = False,
          bbob_strategy: str = "auto"):
    """`(env, params, fids)` for a registered RLEPSO id on one split of MetaBox's bbob suite."""
    from jppo.metabbo import bbob

    dim, max_fes, reward = SUITES[env_id]
    problems, fids = bbob.bbob_suite(dim, difficulty, split)
    env = RLEPSOEnv(reward=reward, metabox_costs=metabox_costs, bbob_strategy=bbob_strategy)
    return env, RLEPSOParams(problem=problems, max_fes=max_fes), fids


def baseline(env: RLEPSOEnv):
    """The report's backbone without an agent: `(name, env, policy)`, plain PSO with fixed coefficients
    (it ignores its action)."""
    return "plain PSO", PlainPSO(evaluate_fn=env.evaluate_fn), lambda key, obs: jnp.zeros(35, obs.dtype)


def train_suite(env_id: str, difficulty: str = "easy", metabox_costs: bool = False, bbob_strategy: str = "auto"):
    """`(env, params)` on the train split of `difficulty`: what `jppo.envs.make(env_id, difficulty=...,
    metabox_costs=..., bbob_strategy=...)` gives."""
    return suite(env_id, "train", difficulty, metabox_costs, bbob_strategy)[:2]


register_suites(SUITES, train_suite)
