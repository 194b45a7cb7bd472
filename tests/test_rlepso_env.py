"""RLEPSO environment: step-for-step agreement with the numpy reference (and with MetaBox's own
optimizer when it can be loaded), invariants of an episode, batching, and bad actions."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jppo.metabbo import rlepso
from jppo.metabbo.rlepso import (RLEPSOEnv, RLEPSOParams, check_action, cost_history, max_generations, rollout,
                              sample_init_draws, sample_step_draws)
from references import metabox_source
from references.stand_ins import (NumpyProblem, StandInProblem, make_stand_in, stand_in_evaluate,
                                  stand_in_numpy)
from references.rlepso_numpy import RandomStateSource, RecordedSource, RLEPSOReference, draws_to_numpy

DIM = 10


# ---------------------------------------------------------------- stand-in problems
# Same fields as jppo.metabbo.bbob.Problem; f1 = sphere, f3 = rotated Rastrigin, both plus a bias.


def env_and_params(problem, **kw):
    return RLEPSOEnv(evaluate_fn=stand_in_evaluate), RLEPSOParams(problem=problem, **kw)


def mutation_heavy_actions(n, seed):
    """Random actions with every group's mutation entry at 1, so that re-initialisation happens."""
    a = np.random.RandomState(seed).rand(n, 35)
    a[:, [0, 5, 10, 15, 20]] = 1.0
    return a


# ---------------------------------------------------------------- same draws, same steps


def _sync_reference(ref: RLEPSOReference, state) -> None:
    """Put the JAX state into the reference, so that each generation is compared on its own."""
    s = jax.tree.map(np.asarray, state)
    ref.p = {"current_position": s.position.copy(), "c_cost": s.cost.copy(), "pbest_position": s.pbest_position.copy(),
             "pbest": s.pbest_cost.copy(), "gbest_position": s.gbest_position.copy(),
             "gbest_val": s.gbest_cost[()], "velocity": s.velocity.copy()}
    ref.per_no_improve = s.stagnation.copy()
    ref.fes, ref.log_index = int(s.fes), int(s.log_index)
    ref.cost = list(s.cost_log[: int(s.log_len)])


def _compare(state, ref: RLEPSOReference, atol):
    np.testing.assert_allclose(state.position, ref.p["current_position"], rtol=0, atol=atol)
    np.testing.assert_allclose(state.velocity, ref.p["velocity"], rtol=0, atol=atol)
    np.testing.assert_allclose(state.pbest_position, ref.p["pbest_position"], rtol=0, atol=atol)
    np.testing.assert_allclose(state.cost, ref.p["c_cost"], rtol=1e-10, atol=atol)
    np.testing.assert_allclose(state.pbest_cost, ref.p["pbest"], rtol=1e-10, atol=atol)
    np.testing.assert_allclose(state.gbest_cost, ref.p["gbest_val"], rtol=1e-10, atol=atol)
    np.testing.assert_array_equal(state.stagnation, ref.per_no_improve)
    assert int(state.fes) == ref.fes and int(state.log_index) == ref.log_index


@pytest.mark.parametrize("fid, seed, max_fes", [(1, 0, 20000), (3, 1, 20000), (3, 2, 2000)])
def test_same_draws_same_steps_as_numpy_reference(fid, seed, max_fes):
    """Every generation of a whole episode: the JAX step from the reference's state equals the
    reference's step (XLA fuses a·b + c into one rounding, so agreement is to ~1e-15, not bitwise);
    discrete outcomes (re-initialisations, fes, rewards, ends, the cost log) agree exactly."""
    with jax.enable_x64(True):
        problem = make_stand_in(fid, seed)
        env, params = env_and_params(problem, max_fes=max_fes)
        key_init, key_steps = jax.random.split(jax.random.PRNGKey(seed))
        n_gen = max_generations(params)
        init = sample_init_draws(key_init, 100, DIM)
        steps = [sample_step_draws(k, 100, DIM) for k in jax.random.split(key_steps, n_gen)]
        ref = RLEPSOReference(RecordedSource(draws_to_numpy(init), [draws_to_numpy(s) for s in steps]),
                              max_fes=max_fes)
        np_problem = NumpyProblem(problem)
        obs_ref = ref.init_population(np_problem)
        state = jax.jit(env.init)(problem, init, params)
        np.testing.assert_allclose(env.observation(state, params), obs_ref, rtol=1e-15)
        _compare(state, ref, atol=1e-13)

        step = jax.jit(env.pso_step)
        actions = mutation_heavy_actions(n_gen, seed)
        for t in range(n_gen):
            _sync_reference(ref, state)
            state, reward, done = step(state, actions[t], steps[t], params)
            obs_ref, reward_ref, done_ref, _ = ref.update(actions[t], np_problem)
            _compare(state, ref, atol=1e-12)
            assert float(reward) == reward_ref and bool(done) == done_ref
            np.testing.assert_allclose(env.observation(state, params), obs_ref, rtol=1e-15)
            np.testing.assert_allclose(cost_history(state), ref.cost, rtol=1e-10)
            if done_ref:
                break
        assert done_ref and len(ref.cost) == 51
        if max_fes == 20000:
            assert int(state.fes) > 100 * (t + 2), "no particle was re-initialised: that path went untested"


def test_free_running_trajectories_stay_together():
    """Without re-syncing, 60 generations of both ports from the same draws stay within 1e-9."""
    with jax.enable_x64(True):
        problem = make_stand_in(3, 5)
        env, params = env_and_params(problem)
        init = sample_init_draws(jax.random.PRNGKey(1), 100, DIM)
        steps = [sample_step_draws(k, 100, DIM) for k in jax.random.split(jax.random.PRNGKey(2), 60)]
        ref = RLEPSOReference(RecordedSource(draws_to_numpy(init), [draws_to_numpy(s) for s in steps]))
        np_problem = NumpyProblem(problem)
        ref.init_population(np_problem)
        state = env.init(problem, init, params)
        step = jax.jit(env.pso_step)
        for t, action in enumerate(mutation_heavy_actions(60, 3)):
            state, reward, _ = step(state, action, steps[t], params)
            _, reward_ref, _, _ = ref.update(action, np_problem)
            assert float(reward) == reward_ref
        _compare(state, ref, atol=1e-9)


# ---------------------------------------------------------------- MetaBox itself, when available


class _MetaBoxConfig:
    def __init__(self, max_fes=20000):
        self.maxFEs, self.n_logpoint = max_fes, 50
        self.log_interval = max_fes // 50
        self.full_meta_data, self.device = False, "cpu"


def _metabox_episode(optimizer_class, problem, seed, action):
    opt = optimizer_class(_MetaBoxConfig())
    opt.seed(seed)
    opt.init_population(problem)
    done = False
    while not done:
        _, _, done, _ = opt.update(action, problem)
    return opt


@pytest.mark.metabox
def test_reference_is_metabox_bit_for_bit():
    """With MetaBox's RandomState stream the numpy reference takes exactly MetaBox's steps."""
    optimizer_class = metabox_source.rlepso_optimizer_class()
    if optimizer_class is None:
        pytest.skip(metabox_source.SKIP_REASON)
    problem = NumpyProblem(make_stand_in(3, 7))
    for seed in range(2):
        opt = optimizer_class(_MetaBoxConfig())
        opt.seed(seed)
        ref = RLEPSOReference(RandomStateSource(np.random.RandomState(seed)))
        np.testing.assert_array_equal(opt.init_population(problem), ref.init_population(problem))
        actions, done, t = mutation_heavy_actions(max_generations(RLEPSOParams(None)), seed), False, 0
        while not done:
            out, out_ref = opt.update(actions[t], problem), ref.update(actions[t], problem)
            particles = opt._RLEPSO_Optimizer__particles
            np.testing.assert_array_equal(particles["current_position"], ref.p["current_position"])
            np.testing.assert_array_equal(particles["velocity"], ref.p["velocity"])
            np.testing.assert_array_equal(particles["pbest"], ref.p["pbest"])
            assert out[1:3] == out_ref[1:3] and opt.fes == ref.fes
            done, t = out[2], t + 1
        np.testing.assert_array_equal(opt.cost, ref.cost)


@pytest.mark.metabox
def test_final_cost_statistics_match_metabox():
    """A fixed action, 24 episodes each: the mean log10 final cost of the JAX env (jax.random draws)
    and of MetaBox (RandomState draws) differ by less than 4 standard errors of the difference."""
    optimizer_class = metabox_source.rlepso_optimizer_class()
    if optimizer_class is None:
        pytest.skip(metabox_source.SKIP_REASON)
    runs = 24
    action = np.full(35, 0.5)
    with jax.enable_x64(True):
        problem = make_stand_in(3, 11)
        env, params = env_and_params(problem)
        final = jax.jit(jax.vmap(lambda k: rollout(env, params, k, lambda _, __: jnp.asarray(action))[0].gbest_cost))
        ours = np.log10(np.asarray(final(jax.random.split(jax.random.PRNGKey(0), runs))))
    numpy_problem = NumpyProblem(problem)
    theirs = np.log10([_metabox_episode(optimizer_class, numpy_problem, s, action).cost[-1] for s in range(runs)])
    se = np.sqrt(ours.var(ddof=1) / runs + theirs.var(ddof=1) / runs)
    assert abs(ours.mean() - theirs.mean()) < 4 * se, (ours.mean(), theirs.mean(), se)


# ---------------------------------------------------------------- episodes: invariants


def _trace_episode(env, params, key, policy, n_steps):
    """Per-step records of a jitted episode: bounds, speeds, best cost, fes, rewards, ends."""
    obs, state = env.reset(jax.random.fold_in(key, 0), params)

    def one(carry, k):
        obs, state = carry
        action = policy(k, obs)
        obs, state, reward, terminated, truncated, info = env.step(k, state, action, params)
        lb, ub, vmax = rlepso.bounds(state.problem, state.position.shape[1], state.position.dtype)
        record = {"inside": jnp.all((state.position >= lb) & (state.position <= ub)),
                  "slow": jnp.all(jnp.abs(state.velocity) <= vmax), "cost": info["cost"], "fes": info["fes"],
                  "reward": reward, "terminated": terminated, "truncated": truncated, "obs": obs[0],
                  "pbest_ok": jnp.all(state.pbest_cost >= state.gbest_cost)}
        return (obs, state), record

    (_, state), records = jax.lax.scan(one, (obs, state), jax.random.split(key, n_steps))
    return obs, state, records


def _random_policy(mutation):
    def policy(key, obs):
        a = jax.random.uniform(key, (35,), obs.dtype)
        return a.at[jnp.array([0, 5, 10, 15, 20])].set(mutation)

    return policy


@pytest.fixture(scope="module")
def batch_episodes():
    """Four problems, two policies (no mutation / full mutation), vmapped and jitted, float32."""
    problems = [make_stand_in(1, 0), make_stand_in(3, 1), make_stand_in(3, 2, lb=-2.0, ub=3.0), make_stand_in(1, 3)]
    batch = jax.tree.map(lambda *x: jnp.stack(x), *problems)
    env = RLEPSOEnv(evaluate_fn=stand_in_evaluate)
    out = {}
    for mutation in (0.0, 1.0):
        def episode(key, problem):
            return _trace_episode(env, RLEPSOParams(problem=problem), key, _random_policy(mutation), 199)

        keys = jax.random.split(jax.random.PRNGKey(7), len(problems))
        out[mutation] = jax.jit(jax.vmap(episode))(keys, batch)
    return env, problems, out


def test_episode_invariants(batch_episodes):
    _, _, out = batch_episodes
    for mutation, (obs, state, r) in out.items():
        r = jax.tree.map(np.asarray, r)
        assert r["inside"].all() and r["slow"].all() and r["pbest_ok"].all()
        assert (np.diff(r["cost"], axis=1) <= 0).all(), "best-so-far must never rise"
        assert (r["cost"] >= 0).all(), "costs are relative to the optimum"
        improved = np.concatenate([r["cost"][:, :1] < state.cost_log[:, :1], np.diff(r["cost"], axis=1) < 0], 1)
        np.testing.assert_array_equal(r["reward"], np.where(improved, 1.0, -1.0))
        assert not r["truncated"].any()
        np.testing.assert_allclose(r["obs"], r["fes"] / 20000, rtol=1e-6)
        first_end = np.argmax(r["terminated"], axis=1)
        assert r["terminated"].any(axis=1).all()
        for b in range(4):
            assert r["fes"][b, first_end[b]] >= 20000 > (r["fes"][b, first_end[b] - 1])
            assert r["fes"][b, first_end[b]] < 20000 + 200
        history = cost_history(state)
        assert history.shape == (4, 51) and (np.diff(history, axis=1) <= 0).all()
        if mutation == 0.0:  # no re-initialisation: exactly the budget, in exactly 199 generations
            np.testing.assert_array_equal(first_end, 198)
            np.testing.assert_array_equal(state.fes, 20000)
            np.testing.assert_array_equal(history[:, -1], r["cost"][:, -1])
        else:
            assert (np.asarray(state.fes) > 20000).any() or (first_end < 198).any()


def test_cost_history_logs_every_log_interval(batch_episodes):
    """Without re-initialisation fes = 100 (t + 1), so the log takes gbest every 4 generations."""
    _, _, out = batch_episodes
    _, state, r = out[0.0]
    history = cost_history(state)
    np.testing.assert_array_equal(history[:, 1:], np.asarray(r["cost"])[:, 2::4][:, :50])
    np.testing.assert_array_equal(history[:, 0] >= history[:, 1], True)


def test_vmapped_batch_equals_single_runs():
    """vmap over a batch of problems is the same computation as one problem at a time. In float64 over a
    short episode: the swarm is chaotic, so float32 rounding differences between the batched and the
    single program (different fusion of the rotation's dot products) grow into visible ones."""
    with jax.enable_x64(True):
        problems = [make_stand_in(1, 0), make_stand_in(3, 1), make_stand_in(3, 2, lb=-2.0, ub=3.0)]
        batch = jax.tree.map(lambda *x: jnp.stack(x), *problems)
        env = RLEPSOEnv(evaluate_fn=stand_in_evaluate)

        def episode(key, problem):
            return _trace_episode(env, RLEPSOParams(problem=problem, max_fes=3000), key, _random_policy(1.0), 29)

        keys = jax.random.split(jax.random.PRNGKey(7), len(problems))
        _, state, r = jax.jit(jax.vmap(episode))(keys, batch)
        single = jax.jit(episode)
        for i, problem in enumerate(problems):
            _, s1, r1 = single(keys[i], problem)
            np.testing.assert_allclose(np.asarray(r["cost"])[i], r1["cost"], rtol=1e-9)
            np.testing.assert_array_equal(np.asarray(r["fes"])[i], r1["fes"])
            assert int(state.fes[i]) == int(s1.fes)


def _rollouts_with_rewards(params, key, rewards):
    """{reward: (final state, trajectory)} of one random policy from one key under each reward."""
    runs = {}
    for reward in rewards:
        env = RLEPSOEnv(evaluate_fn=stand_in_evaluate, reward=reward)
        runs[reward] = jax.jit(lambda k, env=env: rollout(env, params, k, _random_policy(0.5)))(key)
    return runs


def test_log_reward_is_the_fall_of_the_log_cost():
    """`reward="log"`: the same swarm (same draws, same steps), rewards log10 c*_{t-1} - log10 c*_t with costs
    floored at 1e-8, so an episode's return is log10 of initial over final best cost."""
    with jax.enable_x64(True):
        params = RLEPSOParams(problem=make_stand_in(1, 5), max_fes=3000)
        runs = _rollouts_with_rewards(params, jax.random.PRNGKey(3), ("sign", "log"))
        (sign_state, sign), (state, log) = runs["sign"], runs["log"]
        np.testing.assert_array_equal(log["cost"], sign["cost"])
        floored = np.log10(np.maximum(np.concatenate([cost_history(state)[:1], np.asarray(log["cost"])]), 1e-8))
        np.testing.assert_allclose(log["reward"], -np.diff(floored), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(log["reward"].sum(), floored[0] - floored[-1], rtol=1e-12)
        assert (np.asarray(log["reward"]) > -1e-12).all()  # never rewards a rise (up to log10 rounding)
    np.testing.assert_allclose(rlepso.log_improvement(jnp.array([1e-9, 1.0, 100.0]), jnp.array([1e-12, 1e-12, 10.0])),
                               [0.0, 8.0, 1.0], atol=1e-6)  # below the floor nothing more is rewarded
    with pytest.raises(ValueError, match="reward must be one of"):
        RLEPSOEnv(reward="cost")


def test_relative_reward_is_the_fall_over_the_initial_cost():
    """`reward="relative"`: the same swarm, rewards (c*_{t-1} - c*_t) / c*_0, so an episode's return is
    1 - c*_T / c*_0."""
    with jax.enable_x64(True):
        params = RLEPSOParams(problem=make_stand_in(3, 5), max_fes=3000)
        runs = _rollouts_with_rewards(params, jax.random.PRNGKey(4), ("sign", "relative"))
        (_, sign), (state, rel) = runs["sign"], runs["relative"]
        np.testing.assert_array_equal(rel["cost"], sign["cost"])
        costs = np.concatenate([cost_history(state)[:1], np.asarray(rel["cost"])])
        np.testing.assert_allclose(rel["reward"], -np.diff(costs) / costs[0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(rel["reward"].sum(), 1 - costs[-1] / costs[0], rtol=1e-12)
        assert (np.asarray(rel["reward"]) >= 0).all() and 0 < rel["reward"].sum() < 1
    np.testing.assert_allclose(rlepso.relative_improvement(jnp.array([4.0, 1e-9]), jnp.array([1.0, 0.0]),
                                                           jnp.array([8.0, 0.0])), [0.375, 0.1], rtol=1e-6)


def test_float32_by_default_and_rollout_helper():
    env, params = env_and_params(make_stand_in(3, 4), max_fes=3000)
    state, traj = jax.jit(lambda k: rollout(env, params, k, _random_policy(0.5)))(jax.random.PRNGKey(0))
    assert state.position.dtype == jnp.float32 and traj["reward"].dtype == jnp.float32
    done = np.asarray(traj["done"])
    assert done[-1] and int(state.fes) >= 3000
    assert float(traj["cost"][-1]) == float(state.gbest_cost) == float(cost_history(state)[-1])
    assert cost_history(state).shape == (51,)


# ---------------------------------------------------------------- suites, actions, params


def test_suite_reset_draws_one_problem_per_episode():
    problems = [make_stand_in(1, s) for s in range(6)]
    suite = jax.tree.map(lambda *x: jnp.stack(x), *problems)
    env, params = env_and_params(suite)
    _, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(jax.random.PRNGKey(0), 32), params)
    shifts = np.asarray(suite.shift)
    picked = [int(np.argmin(np.abs(shifts - s).sum(1))) for s in np.asarray(states.problem.shift)]
    np.testing.assert_array_equal(np.asarray(states.problem.shift), shifts[picked])
    assert len(set(picked)) >= 4
    np.testing.assert_allclose(states.optimum, np.asarray(suite.bias)[picked], rtol=1e-6)


def test_registered_suites_and_presets():
    """`rlepso-bbob<D>d` is MetaBox's setting (±1 reward); the `-log` and `-rel` ids differ only in the reward."""
    from jppo import envs
    from jppo.config import preset

    for base in ("rlepso-bbob10d", "rlepso-bbob30d"):
        env, params = envs.make(base)
        assert env.reward == "sign"
        for suffix, reward in (("-log", "log"), ("-rel", "relative")):
            other_env, other_params = envs.make(base + suffix)
            assert other_env.reward == reward
            assert params.max_fes == other_params.max_fes == {"rlepso-bbob10d": 20000, "rlepso-bbob30d": 50000}[base]
            np.testing.assert_array_equal(params.problem.shift, other_params.problem.shift)
            assert dataclasses.replace(preset(base + suffix), env_id=base) == preset(base)


def test_group_coefficients_follow_metabox_slices():
    """Group g reads a[5g : 5g + 7] (MetaBox's stride); a[27:] is unused; stride 7 reads a[7g : 7g + 7]."""
    a = np.random.RandomState(0).rand(35)
    stagnation = jnp.arange(100.0)
    coefficients = rlepso.group_coefficients(jnp.asarray(a), stagnation, 5, 5)
    w, c1, _, _, c4, mu = coefficients
    for g in range(5):
        m, omega, kappa, *alpha = a[5 * g : 5 * g + 7]
        rows = slice(20 * g, 20 * g + 20)
        np.testing.assert_allclose(w[rows, 0], omega * 0.8 + 0.1, rtol=1e-6)
        scale = kappa * 8 / (sum(alpha) + 1e-5)
        np.testing.assert_allclose(c1[rows, 0], scale * alpha[0], rtol=1e-5)
        np.testing.assert_allclose(c4[rows, 0], scale * alpha[3], rtol=1e-5)
        np.testing.assert_allclose(mu[rows], m * 0.01 * np.arange(100.0)[rows], rtol=1e-5)
    b = a.copy()
    b[27:] = 1 - b[27:]
    same = rlepso.group_coefficients(jnp.asarray(b), stagnation, 5, 5)
    for x, y in zip(same, coefficients):
        np.testing.assert_array_equal(x, y)
    w7 = rlepso.group_coefficients(jnp.asarray(a), stagnation, 5, 7)[0]
    np.testing.assert_allclose(w7[80:, 0], a[29] * 0.8 + 0.1, rtol=1e-6)


def test_actions_outside_unit_interval_are_clipped():
    env, params = env_and_params(make_stand_in(3, 0))
    _, state = env.reset(jax.random.PRNGKey(0), params)
    a = np.random.RandomState(1).rand(35)
    wild = a.copy()
    wild[:10] = np.where(a[:10] > 0.5, 3.0, -2.0)
    step = jax.jit(env.step)
    out_wild = step(jax.random.PRNGKey(1), state, jnp.asarray(wild, jnp.float32), params)
    out_clip = step(jax.random.PRNGKey(1), state, jnp.asarray(np.clip(wild, 0, 1), jnp.float32), params)
    np.testing.assert_array_equal(out_wild[1].position, out_clip[1].position)


def test_bad_actions_raise():
    env, params = env_and_params(make_stand_in(1, 0))
    _, state = env.reset(jax.random.PRNGKey(0), params)
    with pytest.raises(ValueError, match=r"action must have shape \(35,\)"):
        jax.jit(env.step)(jax.random.PRNGKey(0), state, jnp.zeros(34), params)
    with pytest.raises(ValueError, match=r"action must have shape \(35,\)"):
        env.step(jax.random.PRNGKey(0), state, jnp.zeros((2, 35)), params)
    assert check_action(np.full((4, 35), 0.5)).shape == (4, 35)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_action(np.full(35, 1.5))
    with pytest.raises(ValueError, match="NaN"):
        check_action(np.full(35, np.nan))
    with pytest.raises(ValueError, match=r"\[\.\.\., 35\]"):
        env.check_action(np.zeros(7))
    with pytest.raises(TypeError, match="floating"):
        check_action(np.zeros(35, np.int32))


def test_bad_params_raise():
    problem = make_stand_in(1, 0)
    env = RLEPSOEnv(evaluate_fn=stand_in_evaluate)
    with pytest.raises(ValueError, match="population_size"):
        env.reset(jax.random.PRNGKey(0), RLEPSOParams(problem=problem, population_size=3))
    with pytest.raises(ValueError, match="max_fes"):
        env.reset(jax.random.PRNGKey(0), RLEPSOParams(problem=problem, max_fes=0))
    with pytest.raises(ValueError, match="n_groups"):
        RLEPSOEnv(evaluate_fn=stand_in_evaluate, n_groups=0)
    with pytest.raises(ValueError, match="group_stride"):
        RLEPSOEnv(evaluate_fn=stand_in_evaluate, group_stride=8)


def test_metabox_cost_arithmetic_is_an_option_of_the_env_config_and_cli():
    """`metabox_costs`: cost = (f(x) + bias) - (f(x*) + bias), MetaBox's arithmetic, from the CLI to the env."""
    import argparse

    from jppo import cli
    from jppo.config import TrainConfig
    from jppo.metabbo import bbob
    from jppo.envs import make

    env, params = make("rlepso-bbob10d", difficulty="difficult", metabox_costs=True)
    assert env.metabox_costs and not make("rlepso-bbob10d")[0].metabox_costs
    problem = jax.tree.map(lambda leaf: leaf[0], params.problem)
    x = jnp.zeros((2, 10))
    exact = bbob.evaluate(problem, x, bias=False)
    np.testing.assert_allclose(env.evaluate_fn(problem, x), exact + problem.bias, rtol=1e-6)
    flags = argparse.ArgumentParser()
    flags.add_argument("--config")
    cli._add_config_flags(flags)
    config = cli.build_config(flags.parse_args(["--env", "rlepso-bbob10d", "--metabox-costs"]))
    assert config.metabox_costs and config.env_options["metabox_costs"] is True
    with pytest.raises(ValueError, match="metabox_costs is an option of the RLEPSO envs"):
        TrainConfig(env_id="gleet-bbob10d", metabox_costs=True)
    with pytest.raises(ValueError, match="give it or evaluate_fn, not both"):
        rlepso.RLEPSOEnv(evaluate_fn=exact, metabox_costs=True)
