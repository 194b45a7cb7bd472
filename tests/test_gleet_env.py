"""GLEET environment: step-for-step agreement with the numpy reference (and the reference with MetaBox's
own optimizer when it can be loaded), episodes, batching, registration and bad actions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jppo.metabbo import gleet
from jppo.metabbo.gleet import (GLEETEnv, GLEETParams, check_action, cost_history, fixed_action_policy,
                                max_generations, rollout, sample_init_draws, sample_step_draws)
from references import metabox_source
from references.stand_ins import NumpyToy, ToyProblem, make_toy, toy_evaluate
from references.gleet_numpy import GLEETReference
from references.rlepso_numpy import RandomStateSource, RecordedSource, draws_to_numpy

DIM = 10


# ---------------------------------------------------------------- stand-in problems
# kind 1: rotated ellipsoid (condition 1e6, costs up to ~1e7); kind 2: rotated Rastrigin. Both plus a bias.


def random_actions(n, population_size, seed):
    return np.random.RandomState(seed).rand(n, population_size)


# ---------------------------------------------------------------- same draws, same steps


def _sync_reference(ref: GLEETReference, state) -> None:
    """Put the JAX state into the reference, so that each step is compared on its own."""
    s = jax.tree.map(np.asarray, state)
    ref.p = {"current_position": s.position.copy(), "c_cost": s.cost.copy(), "pbest_position": s.pbest_position.copy(),
             "pbest": s.pbest_cost.copy(), "gbest_position": s.gbest_position.copy(), "gbest_val": s.gbest_cost[()],
             "velocity": s.velocity.copy(), "gbest_index": int(np.argmin(s.cost))}
    ref.per_no_improve, ref.no_improve = s.stagnation.copy(), int(s.swarm_stagnation)
    ref.w, ref.max_cost = float(s.inertia), s.max_cost[()]
    ref.pbest_feature, ref.gbest_feature = s.pbest_feature.copy(), s.gbest_feature.copy()
    ref.fes, ref.log_index = int(s.fes), int(s.log_index)
    ref.cost = list(s.cost_log[: int(s.log_len)])


def _compare(state, ref: GLEETReference, tol=1e-12):
    """Positions, velocities, memories and features to `tol`; costs to `tol` relative (the ellipsoid's
    reach 1e7); counters exactly."""
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=tol)  # noqa: E731
    close(state.position, ref.p["current_position"])
    close(state.velocity, ref.p["velocity"])
    close(state.pbest_position, ref.p["pbest_position"])
    close(state.gbest_position, ref.p["gbest_position"])
    for ours, theirs in ((state.cost, ref.p["c_cost"]), (state.pbest_cost, ref.p["pbest"]),
                         (state.gbest_cost, ref.p["gbest_val"]), (state.max_cost, ref.max_cost)):
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=0)
    close(state.inertia, ref.w)
    close(state.pbest_feature, ref.pbest_feature)
    close(state.gbest_feature, ref.gbest_feature)
    np.testing.assert_array_equal(state.stagnation, ref.per_no_improve)
    assert int(state.swarm_stagnation) == ref.no_improve
    assert int(state.fes) == ref.fes and int(state.log_index) == ref.log_index


@pytest.fixture(scope="module")
def x64_steps():
    """One jitted init, step and observation, shared by the module's tests (called under x64: float64)."""
    env = GLEETEnv(evaluate_fn=toy_evaluate)
    return env, jax.jit(env.init), jax.jit(env.pso_step), jax.jit(env.observation)


@pytest.mark.parametrize("kind, seed", [(1, 0), (2, 1)])
def test_same_draws_same_steps_as_numpy_reference(x64_steps, kind, seed):
    """A whole episode, every step from the reference's state: observations, rewards, ends, costs,
    features and memories agree to 1e-12 (costs relative); counters and the cost log exactly / to 1e-12."""
    env, init, step, observe = x64_steps
    with jax.enable_x64(True):
        problem = make_toy(kind, seed)
        params = GLEETParams(problem=problem)
        n_steps = max_generations(params)
        key_init, key_steps = jax.random.split(jax.random.PRNGKey(seed))
        draws0 = sample_init_draws(key_init, 100, DIM)
        draws = [sample_step_draws(k, 100) for k in jax.random.split(key_steps, n_steps)]
        ref = GLEETReference(RecordedSource(draws_to_numpy(draws0), [draws_to_numpy(d) for d in draws]))
        numpy_problem = NumpyToy(problem)
        obs_ref = ref.init_population(numpy_problem)
        state = init(problem, draws0, params)
        np.testing.assert_allclose(observe(state, params), obs_ref, rtol=0, atol=1e-12)
        _compare(state, ref)
        actions, worst, t = random_actions(n_steps, 100, seed), 0.0, 0
        for t in range(n_steps):
            _sync_reference(ref, state)
            state, reward, done = step(state, actions[t], draws[t], params)
            obs_ref, reward_ref, done_ref, _ = ref.update(actions[t], numpy_problem)
            obs = np.asarray(observe(state, params))
            worst = max(worst, np.abs(obs - obs_ref).max())
            np.testing.assert_allclose(obs, obs_ref, rtol=0, atol=1e-12)
            np.testing.assert_allclose(reward, reward_ref, rtol=0, atol=1e-12)
            assert bool(done) == done_ref
            _compare(state, ref)
            np.testing.assert_allclose(cost_history(state), ref.cost, rtol=1e-12)
            if done_ref:
                break
        assert done_ref and t == 198 and len(ref.cost) == 51
        print(f"max |obs - reference| over the episode: {worst:.2e}")


def test_free_running_trajectories_stay_together(x64_steps):
    """Without re-syncing, 40 steps of both ports from the same draws stay within 1e-9."""
    env, init, step, observe = x64_steps
    with jax.enable_x64(True):
        problem = make_toy(2, 5)
        params = GLEETParams(problem=problem)
        draws0 = sample_init_draws(jax.random.PRNGKey(1), 100, DIM)
        draws = [sample_step_draws(k, 100) for k in jax.random.split(jax.random.PRNGKey(2), 40)]
        ref = GLEETReference(RecordedSource(draws_to_numpy(draws0), [draws_to_numpy(d) for d in draws]))
        numpy_problem = NumpyToy(problem)
        ref.init_population(numpy_problem)
        state = init(problem, draws0, params)
        for t, action in enumerate(random_actions(40, 100, 3)):
            state, reward, _ = step(state, action, draws[t], params)
            obs_ref, reward_ref, _, _ = ref.update(action, numpy_problem)
            np.testing.assert_allclose(reward, reward_ref, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(observe(state, params), obs_ref, rtol=0, atol=1e-9)
        _compare(state, ref, tol=1e-9)


@pytest.mark.xla_defaults
def test_metabox_quirks(x64_steps):
    """w is decayed before its first use (0.8975); d_max is 10 for scalar bounds ±5 whatever D; M is the
    initial best cost; r₁, r₂ are one number per particle."""
    env, init, step, observe = x64_steps
    with jax.enable_x64(True):
        problem = make_toy(2, 2)
        params = GLEETParams(problem=problem)
        state = init(problem, sample_init_draws(jax.random.PRNGKey(0), 100, DIM), params)
        assert float(state.max_cost) == float(state.gbest_cost) == float(state.cost.min())
        assert float(gleet.max_distance(problem, jnp.float64)) == 10.0
        obs = np.asarray(observe(state, params))
        x, g = np.asarray(state.position), np.asarray(state.gbest_position)
        np.testing.assert_allclose(obs[:, 6], np.linalg.norm(x - g, axis=1) / 10.0, rtol=1e-14)
        np.testing.assert_array_equal(obs[:, 18:], np.tile(obs[int(np.argmin(state.cost)), :9], (100, 1)))
        np.testing.assert_array_equal(obs[:, 9:18], obs[:, :9])
        draws = sample_step_draws(jax.random.PRNGKey(1), 100)
        assert draws.pbest.shape == draws.gbest.shape == (100, 1)
        moved, _, _ = step(state, np.full(100, 0.5), draws, params)
        assert float(moved.inertia) == 0.9 - 0.5 / (20000 / 100) == pytest.approx(0.8975, abs=1e-15)


# ---------------------------------------------------------------- MetaBox itself, when available


class _MetaBoxConfig:
    def __init__(self, max_fes=20000):
        self.maxFEs, self.n_logpoint = max_fes, 50
        self.log_interval = max_fes // 50
        self.full_meta_data, self.device = False, "cpu"


def _metabox_problems(fids, dim=DIM):
    """MetaBox's bbob-`dim`D instances of `fids` (its get_datasets draws: seed 3849, all 24 in order)."""
    from jppo.metabbo import bbob

    module = metabox_source.bbob_numpy()
    state = np.random.get_state()
    np.random.seed(bbob.INSTANCE_SEED)  # MetaBox draws from numpy's global state
    problems = {}
    for fid in range(1, 25):
        shift = 0.8 * (np.random.random(dim) * 10 - 5)
        rotation, bias = module.rotate_gen(dim), np.random.randint(1, 26) * 100
        problems[fid] = getattr(module, f"F{fid}")(dim=dim, shift=shift, rotate=rotation, bias=bias, lb=-5, ub=5)
    np.random.set_state(state)
    for problem in problems.values():
        problem.reset()
    return [problems[f] for f in fids]


@pytest.mark.metabox
def test_reference_is_metabox_bit_for_bit():
    """With MetaBox's RandomState stream the numpy reference takes exactly MetaBox's steps: states
    (observations), rewards, ends, the swarm and the cost log are equal bit for bit."""
    optimizer_class = metabox_source.gleet_optimizer_class()
    if optimizer_class is None or metabox_source.bbob_numpy() is None:
        pytest.skip(metabox_source.SKIP_REASON)
    for problem, seed in zip(_metabox_problems((3, 10)), (0, 1)):
        opt = optimizer_class(_MetaBoxConfig())
        opt.seed(seed)
        ref = GLEETReference(RandomStateSource(np.random.RandomState(seed)))
        np.testing.assert_array_equal(opt.init_population(problem), ref.init_population(problem))
        actions, done, t = random_actions(199, 100, seed), False, 0
        while not done:
            state, reward, done, _ = opt.update(actions[t], problem)
            state_ref, reward_ref, done_ref, _ = ref.update(actions[t], problem)
            np.testing.assert_array_equal(state, state_ref)
            assert reward == reward_ref and done == done_ref
            for name in ("current_position", "velocity", "pbest", "gbest_val"):
                np.testing.assert_array_equal(opt.particles[name], ref.p[name])
            assert opt.fes == ref.fes and opt.w == ref.w
            t += 1
        assert t == 199
        np.testing.assert_array_equal(opt.cost, ref.cost)


def _metabox_final_costs(optimizer_class, problem, runs, action):
    finals = []
    for seed in range(runs):
        opt = optimizer_class(_MetaBoxConfig())
        opt.seed(seed)
        opt.init_population(problem)
        done = False
        while not done:
            _, _, done, _ = opt.update(action, problem)
        finals.append(opt.cost[-1])
    return np.asarray(finals)


# (kind, instance seed, bounds): the ellipsoid, Rastrigin, and Rastrigin in asymmetric bounds.
FINAL_COST_PROBLEMS = ((1, 11, (-5.0, 5.0)), (2, 12, (-5.0, 5.0)), (2, 13, (-2.0, 3.0)))
FLOOR = 1e-8  # costs this small count as solved (MetaBox's f - f* with the bias rounds them to 0)


@pytest.mark.metabox
def test_final_cost_statistics_match_metabox(x64_steps):
    """The fixed action 0.5, 24 episodes per problem: the mean log10 final cost of the JAX env
    (jax.random draws) and of MetaBox's optimizer (RandomState draws) differ by less than 4 standard
    errors of the difference; final costs floored at 1e-8. (Stand-in problems: a jitted episode over
    all 24 BBOB functions takes minutes to compile; `test_reference_is_metabox_bit_for_bit` runs
    MetaBox's own BBOB.)"""
    optimizer_class = metabox_source.gleet_optimizer_class()
    if optimizer_class is None:
        pytest.skip(metabox_source.SKIP_REASON)
    env = x64_steps[0]
    runs, action = 24, np.full(100, 0.5)
    problems = [make_toy(kind, seed, lb=lb, ub=ub) for kind, seed, (lb, ub) in FINAL_COST_PROBLEMS]
    with jax.enable_x64(True):
        def final(problem, key):
            return rollout(env, GLEETParams(problem=problem), key, fixed_action_policy(0.5))[0].gbest_cost

        finals = jax.jit(jax.vmap(jax.vmap(final, in_axes=(None, 0)), in_axes=(0, None)))
        ours = np.log10(np.maximum(finals(jax.tree.map(lambda *x: jnp.stack(x), *problems),
                                          jax.random.split(jax.random.PRNGKey(0), runs)), FLOOR))
    for i, problem in enumerate(problems):
        theirs = np.log10(np.maximum(_metabox_final_costs(optimizer_class, NumpyToy(problem), runs, action), FLOOR))
        se = np.sqrt(ours[i].var(ddof=1) / runs + theirs.var(ddof=1) / runs)
        print(f"{FINAL_COST_PROBLEMS[i]}: log10 final cost JAX {ours[i].mean():.3f} ± {ours[i].std(ddof=1):.3f}, "
              f"MetaBox {theirs.mean():.3f} ± {theirs.std(ddof=1):.3f}, |diff| / se = "
              f"{abs(ours[i].mean() - theirs.mean()) / se:.2f}")
        assert abs(ours[i].mean() - theirs.mean()) <= 4 * se, (FINAL_COST_PROBLEMS[i], ours[i].mean(), theirs.mean())


# ---------------------------------------------------------------- episodes


def _trace_episode(env, params, key, policy, n_steps):
    """Reset, then `n_steps` steps under scan: every observation (reset's first) and per-step records."""
    obs, state = env.reset(jax.random.fold_in(key, 0), params)

    def one(carry, k):
        obs, state = carry
        action = policy(k, obs)
        obs, state, reward, terminated, truncated, info = env.step(k, state, action, params)
        return (obs, state), {"obs": obs, "reward": reward, "terminated": terminated, "truncated": truncated,
                              "cost": info["cost"], "fes": info["fes"]}

    first = obs
    (_, state), records = jax.lax.scan(one, (obs, state), jax.random.split(key, n_steps))
    return first, state, records


def _uniform_policy(key, obs):
    return jax.random.uniform(key, obs.shape[:-1], obs.dtype)


@pytest.fixture(scope="module")
def batch_episodes():
    """Three problems, random actions, one vmapped and jitted program (float64)."""
    with jax.enable_x64(True):
        problems = [make_toy(1, 0), make_toy(2, 1), make_toy(2, 2, lb=-2.0, ub=3.0)]
        batch = jax.tree.map(lambda *x: jnp.stack(x), *problems)
        env = GLEETEnv(evaluate_fn=toy_evaluate)

        def episode(key, problem):
            return _trace_episode(env, GLEETParams(problem=problem), key, _uniform_policy, 199)

        keys = jax.random.split(jax.random.PRNGKey(7), len(problems))
        out = jax.jit(jax.vmap(episode))(keys, batch)
        return env, problems, keys, episode, jax.tree.map(np.asarray, out)


def test_episode_length_rewards_and_log(batch_episodes):
    """200 observations [100, 27] (reset's and 199 steps'), the 199th step terminates; rewards ≥ 0 sum
    to 100 (1 - final / initial best); the cost log has 51 entries from the initial to the final best."""
    _, _, _, _, (first, state, r) = batch_episodes
    observations = np.concatenate([first[:, None], r["obs"]], 1)
    assert observations.shape == (3, 200, 100, 27)
    np.testing.assert_array_equal(r["terminated"][:, :198], False)
    np.testing.assert_array_equal(r["terminated"][:, 198], True)
    assert not r["truncated"].any()
    np.testing.assert_array_equal(r["fes"][:, -1], 20000)
    remaining = np.broadcast_to((20000 - 100 * np.arange(1, 201)) / 20000, (3, 200))
    np.testing.assert_allclose(observations[:, :, 0, 3], remaining, rtol=1e-12)
    assert (r["reward"] >= 0).all() and (np.diff(r["cost"], axis=1) <= 0).all()
    initial, final = state.max_cost, r["cost"][:, -1]
    np.testing.assert_allclose(r["reward"].sum(1), 100 * (1 - final / initial), rtol=1e-12)
    history = cost_history(state)
    assert history.shape == (3, 51)
    np.testing.assert_array_equal(history[:, 0], initial)
    np.testing.assert_array_equal(history[:, -1], final)
    np.testing.assert_array_equal(history[:, 1:], r["cost"][:, 2::4])  # after step t fes = 100 (t + 2): ≥ 400 k


def test_vmapped_batch_equals_single_runs(batch_episodes):
    """vmap over problems is the same computation as one problem at a time (float64, to 1e-9: the
    batched program may fuse the rotation's dot products differently)."""
    _, problems, keys, episode, (first, state, r) = batch_episodes
    with jax.enable_x64(True):
        single = jax.jit(episode)
        for i, problem in enumerate(problems):
            first1, state1, r1 = single(keys[i], problem)
            np.testing.assert_allclose(first[i], first1, rtol=0, atol=1e-12)
            np.testing.assert_allclose(r["cost"][i], r1["cost"], rtol=1e-9)
            np.testing.assert_array_equal(r["terminated"][i], r1["terminated"])


def test_float32_by_default_and_plain_pso():
    """Without x64 the env is float32; the fixed action 0.5 (plain PSO) runs a whole episode."""
    params = GLEETParams(problem=make_toy(2, 4), max_fes=2000, population_size=20)
    env = GLEETEnv(evaluate_fn=toy_evaluate, population_size=20)
    state, trajectory = jax.jit(lambda k: rollout(env, params, k, fixed_action_policy(0.5)))(jax.random.PRNGKey(0))
    assert state.position.dtype == jnp.float32 and trajectory["reward"].dtype == jnp.float32
    assert np.asarray(trajectory["done"])[-1] and int(state.fes) == 2000 and len(trajectory["done"]) == 99
    assert cost_history(state).shape == (51,) and float(cost_history(state)[-1]) == float(state.gbest_cost)
    np.testing.assert_array_equal(fixed_action_policy(0.5)(None, jnp.zeros((20, 27))), np.full(20, 0.5))


# ---------------------------------------------------------------- suites, registration, actions, params


def test_suite_reset_and_batch_params():
    """A suite's reset draws one problem per episode; batch_params gives env i problem i mod N."""
    problems = [make_toy(2, s) for s in range(5)]
    suite = jax.tree.map(lambda *x: jnp.stack(x), *problems)
    env = GLEETEnv(evaluate_fn=toy_evaluate, population_size=10)
    params = GLEETParams(problem=suite, max_fes=500, population_size=10)
    obs, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(jax.random.PRNGKey(0), 16), params)
    assert obs.shape == (16, 10, 27)
    shifts = np.asarray(suite.shift)
    picked = [int(np.argmin(np.abs(shifts - s).sum(1))) for s in np.asarray(states.problem.shift)]
    assert len(set(picked)) >= 3
    batched = env.batch_params(params, 7)
    np.testing.assert_array_equal(batched.problem.shift, shifts[np.arange(7) % 5])


def test_registered_suites():
    from jppo import envs

    assert {"gleet-bbob10d", "gleet-bbob30d"} <= set(envs.available())
    for env_id, dim, max_fes in (("gleet-bbob10d", 10, 20000), ("gleet-bbob30d", 30, 50000)):
        env, params = envs.make(env_id)
        assert isinstance(env, GLEETEnv) and params.max_fes == max_fes
        assert np.shape(params.problem.shift) == (16, dim)  # the easy train split
        assert env.observation_shape == (100, 27) and env.action_space.shape == (100,)
    _, test_params, fids = gleet.suite("gleet-bbob10d", "test", "difficult")
    assert fids == [4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 18, 19, 20, 22, 23, 24]
    assert np.shape(test_params.problem.shift) == (16, 10)


@pytest.fixture(scope="module")
def small_env():
    env = GLEETEnv(evaluate_fn=toy_evaluate)
    params = GLEETParams(problem=make_toy(2, 0))
    _, state = jax.jit(env.reset)(jax.random.PRNGKey(0), params)
    return env, params, state


@pytest.mark.parametrize("action", [np.zeros(99), np.zeros((2, 100)), np.zeros(()), np.zeros(100, np.int32),
                                    np.full(100, 1.5), np.full(100, -0.1), np.full(100, np.nan)])
def test_bad_actions_raise_naming_the_shape(small_env, action):
    env, params, state = small_env
    with pytest.raises(ValueError, match=r"shape \(100,\).*in \[0, 1\]"):
        env.step(jax.random.PRNGKey(0), state, action, params)
    if np.shape(action) != (100,):
        with pytest.raises(ValueError, match=r"shape \(100,\)"):
            jax.jit(env.step)(jax.random.PRNGKey(0), state, jnp.asarray(action), params)
    if np.shape(action) == (100,):
        with pytest.raises(ValueError, match=r"shape \(100,\)"):
            check_action(action)


def test_good_actions_pass_and_are_clipped_under_jit(small_env):
    env, params, state = small_env
    assert check_action(np.full((4, 100), 0.5)).shape == (4, 100)
    assert env.check_action(np.linspace(0, 1, 100)).shape == (100,)
    step = jax.jit(env.step)
    wild = np.where(np.arange(100) % 2 == 0, 3.0, -2.0)
    out_wild = step(jax.random.PRNGKey(1), state, jnp.asarray(wild), params)
    out_clip = step(jax.random.PRNGKey(1), state, jnp.asarray(np.clip(wild, 0, 1)), params)
    np.testing.assert_array_equal(out_wild[1].position, out_clip[1].position)


def test_bad_params_raise():
    env = GLEETEnv(evaluate_fn=toy_evaluate)
    with pytest.raises(ValueError, match="population_size"):
        env.reset(jax.random.PRNGKey(0), GLEETParams(problem=make_toy(1, 0), population_size=50))
    with pytest.raises(ValueError, match="max_fes"):
        env.reset(jax.random.PRNGKey(0), GLEETParams(problem=make_toy(1, 0), max_fes=0))
    with pytest.raises(ValueError, match="population_size"):
        GLEETEnv(population_size=0)
