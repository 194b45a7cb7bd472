"""compat.parallelenv.ParallelEnv: the same episode in every mode, seeding, MetaBox's batch ending,
attribute lookup (env -> optimizer -> problem), worker failures without hangs, and no fork."""

import os
import time
import warnings

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import compat.parallelenv as pe_module
import references.envs as test_envs
from compat.parallelenv import MODES, EnvAttributeError, ParallelEnv, WorkerError, plan_ray_groups
from jppo import worker_groups
from references.envs import CrashingEnv, FailingEnv, ProbeEnv, SlowEnv, UnloadableEnv, make_pbo_env

LOCAL_MODES = ("dummy", "subproc")
RAY_MODES = ("ray", "ray-subproc")


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray for the whole module (2 CPUs), stopped at its end; skip when Ray is absent."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        with warnings.catch_warnings():  # JAX warns at Ray's fork+exec of its own processes
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(params=MODES)
def mode(request):
    if request.param in RAY_MODES:
        request.getfixturevalue("ray_cluster")
    return request.param


def pbo_envs(n=3):
    """MetaBox-shaped envs of different lengths (9, 11, 13 steps): env 0 ends the batch."""
    return [make_pbo_env(max_fes=40 + 8 * i) for i in range(n)]


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def play(env, policy):
    """seed(11), reset, step until all_done; stack what came back."""
    env.seed(11)
    obs = [env.reset()]
    rewards, dones, infos = [], [], []
    while not env.all_done():
        o, r, d, info = env.step(policy(obs[-1]))
        obs.append(o), rewards.append(r), dones.append(d), infos.append(info)
    return np.stack(obs), np.stack(rewards), np.stack(dones), infos


def step_size_policy(obs):
    return jnp.asarray(0.2 + 0.6 * obs[:, 0])  # a JAX array: workers get numpy


def cartpole_policy(obs):
    return (obs[:, 2] + 0.1 * obs[:, 3] > 0).astype(np.int64)


# --------------------------------------------------------------------------- same results in every mode

_REFERENCE = {}


def reference(kind):
    if kind not in _REFERENCE:
        if kind == "pbo":
            with ParallelEnv(pbo_envs(), "dummy") as env:
                _REFERENCE[kind] = play(env, step_size_policy) + (env.get_env_attr("cost"),)
        else:
            with ParallelEnv([gym.make("CartPole-v1") for _ in range(3)], "dummy") as env:
                _REFERENCE[kind] = play(env, cartpole_policy) + (env.get_env_attr("state"),)
    return _REFERENCE[kind]


def test_metabox_style_episode_is_the_same_in_every_mode(mode):
    callers_envs = pbo_envs()
    with ParallelEnv(callers_envs, mode) as env:
        obs, rewards, dones, infos = play(env, step_size_policy)
        cost = env.get_env_attr("cost")
    ref_obs, ref_rewards, ref_dones, _, ref_cost = reference("pbo")
    np.testing.assert_array_equal(obs, ref_obs)
    np.testing.assert_array_equal(rewards, ref_rewards)
    np.testing.assert_array_equal(dones, ref_dones)
    assert [list(c) for c in cost] == [list(c) for c in ref_cost]
    assert obs.shape == (10, 3, 3) and rewards.dtype == np.float64 and dones.dtype == bool
    # the batch ends at env 0's last step (9 steps), each env reporting its own flag
    assert dones[-1].tolist() == [True, False, False] and not dones[:-1].any()
    assert [info["env_id"] for info in infos[-1]] == [0, 1, 2]
    assert infos[-1][0]["best"] == cost[0][-1]
    # dummy steps the caller's objects; the other modes step copies in their workers
    if mode == "dummy":
        assert [e.optimizer.fes for e in callers_envs] == [40, 40, 40]
    else:
        assert not any(hasattr(e.optimizer, "fes") for e in callers_envs)


def test_gymnasium_cartpole_episode_is_the_same_in_every_mode(mode):
    with ParallelEnv([gym.make("CartPole-v1") for _ in range(3)], mode) as env:
        obs, rewards, dones, infos = play(env, cartpole_policy)
        state = env.get_env_attr("state")  # on the unwrapped CartPole, through gymnasium's wrappers
    ref_obs, ref_rewards, ref_dones, _, ref_state = reference("cartpole")
    np.testing.assert_array_equal(obs, ref_obs)
    np.testing.assert_array_equal(rewards, ref_rewards)
    np.testing.assert_array_equal(dones, ref_dones)
    np.testing.assert_array_equal(np.stack(state), np.stack(ref_state))
    assert obs.dtype == np.float32 and dones[-1].any()
    ended = int(np.flatnonzero(dones[-1])[0])
    assert infos[-1][ended]["terminated"] or infos[-1][ended]["truncated"]


# --------------------------------------------------------------------------- seeding


def singly_seeded_starts(seeds):
    starts = []
    for e, s in zip(pbo_envs(), seeds):
        e.seed(s)
        starts.append(e.reset())
    return np.stack(starts)


def test_int_seed_gives_env_i_seed_plus_i_and_a_list_one_each():
    with ParallelEnv(pbo_envs(), "dummy") as env:
        env.seed(5)
        np.testing.assert_array_equal(env.reset(), singly_seeded_starts([5, 6, 7]))
        env.seed([9, 2, 4])
        np.testing.assert_array_equal(env.reset(), singly_seeded_starts([9, 2, 4]))
        env.seed(np.array([7, 6, 5]))
        np.testing.assert_array_equal(env.reset(), singly_seeded_starts([7, 6, 5]))
        env.seed(np.int64(5))
        np.testing.assert_array_equal(env.reset(), singly_seeded_starts([5, 6, 7]))


def test_seed_none_is_passed_on_and_unseeded_runs_differ():
    with ParallelEnv(pbo_envs(2), "dummy") as env:
        env.seed(None)
        first = env.reset()
        env.seed(None)
        second = env.reset()
    assert not np.array_equal(first[:, 1], second[:, 1])  # fresh entropy each time


def test_gymnasium_seed_is_used_at_the_next_reset_only():
    with ParallelEnv([gym.make("CartPole-v1") for _ in range(2)], "dummy") as env:
        env.seed(3)
        seeded = env.reset()
        unseeded_after = env.reset()  # continues the env's RNG: not the seeded start again
        env.seed(3)
        again = env.reset()
    expected = np.stack([gym.make("CartPole-v1").reset(seed=s)[0] for s in (3, 4)])
    np.testing.assert_array_equal(seeded, expected)
    np.testing.assert_array_equal(again, expected)
    assert not np.array_equal(unseeded_after, expected)


def test_wrong_number_of_seeds_says_how_many_were_expected():
    with ParallelEnv(pbo_envs(), "dummy") as env:
        with pytest.raises(ValueError, match=r"seeds has 2 entries; expected 3"):
            env.seed([1, 2])
        with pytest.raises(TypeError, match="seeds must be None, an int or a sequence"):
            env.seed(1.5)


# --------------------------------------------------------------------------- batch ending


def test_batch_ends_when_any_env_is_done_and_stepping_on_raises():
    callers_envs = pbo_envs()
    env = ParallelEnv(callers_envs, "dummy")
    assert env.all_done() and env.has_done()  # MetaBox: done until the first reset
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        env.step(np.full(3, 0.5))
    env.seed(0)
    env.reset()
    assert not env.all_done() and not env.has_done()
    for _ in range(8):
        _, _, dones, _ = env.step(np.full(3, 0.5))
        assert not dones.any() and not env.has_done() and not env.all_done()
    _, _, dones, _ = env.step(np.full(3, 0.5))
    assert dones.tolist() == [True, False, False]
    assert env.all_done() and env.has_done()
    fes = [e.optimizer.fes for e in callers_envs]
    with pytest.raises(RuntimeError, match=r"batch of environments is done: environment\(s\) \[0\] reported done"):
        env.step(np.full(3, 0.5))
    assert [e.optimizer.fes for e in callers_envs] == fes == [40, 40, 40]  # nobody was stepped again
    env.reset()
    assert not env.all_done()
    env.step(np.full(3, 0.5))
    env.close()


def test_actions_must_have_one_entry_per_env():
    with ParallelEnv(pbo_envs(), "dummy") as env:
        env.reset()
        with pytest.raises(ValueError, match=r"actions has 2 entries along its first axis; expected 3"):
            env.step(np.zeros(2))
        with pytest.raises(ValueError, match="got a scalar"):
            env.step(0.5)
        env.step([0.5, np.float32(0.5), jnp.asarray(0.5)])  # a list with mixed types is fine


def test_ragged_observations_become_an_object_array():
    envs = [make_pbo_env(), ToyRaggedEnv()]
    with ParallelEnv(envs, "dummy") as env:
        obs = env.reset()
    assert obs.dtype == object and obs.shape == (2,) and obs[1].shape == (5,)


class ToyRaggedEnv(test_envs.ToyPBOEnv):
    def reset(self):
        return np.concatenate([super().reset(), [0.0, 0.0]])


def test_unknown_mode_and_bad_arguments():
    with pytest.raises(ValueError, match=r"para_mode must be one of \['dummy', 'subproc', 'ray', 'ray-subproc'\], got 'threads'"):
        ParallelEnv(pbo_envs(), "threads")
    with pytest.raises(ValueError, match="at least one environment"):
        ParallelEnv([], "dummy")
    with pytest.raises(ValueError, match="num_cpus must be None or a positive number"):
        ParallelEnv(pbo_envs(), "dummy", num_cpus=0)
    with pytest.raises(ValueError, match="num_gpus must be a number >= 0"):
        ParallelEnv(pbo_envs(), "dummy", num_gpus=-1)
    with pytest.raises(ValueError, match="timeout must be None or a positive number"):
        ParallelEnv(pbo_envs(), "dummy", timeout=0)
    with pytest.raises(TypeError, match="environment 1 .* cannot be pickled"):
        ParallelEnv([make_pbo_env(), UnpicklableEnv()], "subproc")


class UnpicklableEnv(test_envs.ToyPBOEnv):
    def __reduce__(self):
        raise TypeError("not today")


# --------------------------------------------------------------------------- attributes


def test_env_attr_lookup_env_then_optimizer_then_problem(mode):
    callers_envs = pbo_envs()
    with ParallelEnv(callers_envs, mode) as env:
        env.seed(2)
        env.reset()
        while not env.all_done():
            env.step(np.full(3, 0.3))
        # after the episode the state lives in the workers (copies, outside dummy mode)
        assert env.get_env_attr("fes") == [40, 40, 40]  # on env.optimizer
        assert env.get_env_attr("dim") == [3, 3, 3]  # on env.problem
        assert [type(p).__name__ for p in env.get_env_attr("problem")] == ["SphereProblem"] * 3  # on the env
        with pytest.raises(EnvAttributeError, match=r"environment 0: no attribute 'nope' on the env, env.optimizer") as info:
            env.get_env_attr("nope")
        assert isinstance(info.value, AttributeError) and info.value.env_index == 0
        env.set_env_attr("max_fes", [100, 200, 300])  # exists on the optimizer: set there
        env.set_env_attr("shift", [0.0, 0.1, 0.2])  # on the problem
        env.set_env_attr("tag", ["a", "b", "c"])  # exists nowhere: set on the env
        objs = env.get_env_obj()
        assert [o.optimizer.max_fes for o in objs] == [100, 200, 300]
        assert [o.problem.shift for o in objs] == [0.0, 0.1, 0.2]
        assert [o.tag for o in objs] == ["a", "b", "c"] and env.get_env_attr("tag") == ["a", "b", "c"]
        assert (objs[0] is callers_envs[0]) == (mode == "dummy")
        with pytest.raises(ValueError, match=r"values has 2 entries; expected 3"):
            env.set_env_attr("tag", ["a", "b"])
        env.reset()  # still usable after a missing attribute
        assert env.get_env_attr("max_fes") == [100, 200, 300]


def test_gymnasium_attr_is_found_and_set_through_wrappers():
    with ParallelEnv([gym.make("CartPole-v1") for _ in range(2)], "dummy") as env:
        assert env.get_env_attr("gravity") == [9.8, 9.8]
        env.set_env_attr("gravity", [1.0, 2.0])
        assert [e.unwrapped.gravity for e in env.envs] == [1.0, 2.0]


def test_customized_method_and_rollout_run_in_the_workers():
    with ParallelEnv([ProbeEnv() for _ in range(2)], "subproc") as env:
        env.seed(4)
        results = env.rollout()
        pids = env.get_env_attr("worker_pid")
        assert [r["pid"] for r in results] == pids and os.getpid() not in pids
        assert [r["fes"] for r in results] == [40, 40]
        short = env.customized_method("run_batch_episode", [{"step_size": 0.1}, {"step_size": 0.9}])
    ref = ProbeEnv()
    ref.seed(4)
    assert results[0]["cost"] == ref.run_batch_episode()["cost"]
    assert short[0]["cost"] != short[1]["cost"]


# --------------------------------------------------------------------------- failures


def test_worker_exception_names_env_and_carries_traceback(mode):
    start = time.monotonic()
    envs = [ProbeEnv(), FailingEnv(fail_at=2), ProbeEnv()]
    env = ParallelEnv(envs, mode, timeout=60)
    pids = env.get_env_attr("worker_pid")
    env.reset()
    env.step(np.full(3, 0.5))
    with pytest.raises(WorkerError, match=r"(?s)environment 1 failed in step in its worker.*Traceback.*"
                                          r"ValueError: boom at step 2") as info:
        env.step(np.full(3, 0.5))
    assert info.value.env_index == 1 and "boom at step 2" in info.value.worker_traceback
    assert "all workers were shut down" in str(info.value)
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()
    env.close()  # a no-op now
    if mode == "subproc":
        assert not any(pid_alive(p) for p in pids)
    assert time.monotonic() - start < 30


def test_dead_worker_is_reported_not_waited_for():
    start = time.monotonic()
    env = ParallelEnv([ProbeEnv(), CrashingEnv()], "subproc")
    pids = env.get_env_attr("worker_pid")
    env.reset()
    with pytest.raises(WorkerError, match=r"environment 1 failed in step: its worker process exited with code 3"):
        env.step(np.full(2, 0.5))
    assert not any(pid_alive(p) for p in pids)
    assert time.monotonic() - start < 20


@pytest.mark.parametrize("ray_mode", RAY_MODES)
def test_dead_ray_actor_is_reported_with_its_envs(ray_cluster, ray_mode):
    start = time.monotonic()
    env = ParallelEnv([ProbeEnv(), CrashingEnv(), ProbeEnv()], ray_mode)  # ray-subproc: actors [0, 1], [2]
    env.reset()
    who = "environment 1" if ray_mode == "ray" else r"environments \[0, 1\] \(one worker\)"
    with pytest.raises(WorkerError, match=who + " failed in step: its Ray actor died"):
        env.step(np.full(3, 0.5))
    with pytest.raises(RuntimeError, match="closed"):
        env.get_env_attr("fes")
    assert time.monotonic() - start < 30


def test_timeout_stops_a_worker_that_does_not_answer():
    start = time.monotonic()
    env = ParallelEnv([ProbeEnv(), SlowEnv(delay=60)], "subproc", timeout=1.0)
    pids = env.get_env_attr("worker_pid")
    env.reset()
    with pytest.raises(WorkerError, match=r"environment 1 failed in step: its worker did not answer in time"):
        env.step(np.full(2, 0.5))
    assert time.monotonic() - start < 15
    assert not any(pid_alive(p) for p in pids)


def test_env_that_cannot_be_loaded_in_the_worker_is_named():
    with pytest.raises(WorkerError, match=r"(?s)environment 0 failed in ready.*Traceback.*cannot load me"):
        ParallelEnv([UnloadableEnv()], "subproc", timeout=30)


# --------------------------------------------------------------------------- processes


def test_subproc_workers_are_fresh_interpreters_not_forks(monkeypatch):
    jnp.zeros(3).block_until_ready()  # JAX is initialised here, in the parent
    monkeypatch.setattr(test_envs, "MODULE_MARKER", "changed in the parent")
    with ParallelEnv([ProbeEnv(), ProbeEnv()], "subproc") as env:
        assert env.start_method != "fork"
        assert env.get_env_attr("module_marker") == ["as imported"] * 2  # a fork would see the change
        assert env.get_env_attr("jax_imported") == [False, False]
        pids = env.get_env_attr("worker_pid")
    assert os.getpid() not in pids and len(set(pids)) == 2
    assert jax.devices()  # the parent's JAX still works


def test_multiprocessing_spawn_start_gives_the_same_episode(monkeypatch):
    monkeypatch.setattr(pe_module, "SUBPROC_START", "spawn")
    with ParallelEnv(pbo_envs(), "subproc") as env:
        assert env.start_method == "spawn"
        obs, rewards, dones, _ = play(env, step_size_policy)
    ref_obs, ref_rewards, ref_dones, _, _ = reference("pbo")
    np.testing.assert_array_equal(obs, ref_obs)
    np.testing.assert_array_equal(rewards, ref_rewards)
    monkeypatch.setattr(pe_module, "SUBPROC_START", "fork")
    with pytest.raises(ValueError, match="never 'fork'"):
        ParallelEnv(pbo_envs(), "subproc")


def test_context_manager_closes_envs_and_workers():
    envs = [ProbeEnv(), ProbeEnv()]
    with ParallelEnv(envs, "dummy") as env:
        env.reset()
    assert [e.close_calls for e in envs] == [1, 1]
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()
    with ParallelEnv([ProbeEnv(), ProbeEnv()], "subproc") as env:
        pids = env.get_env_attr("worker_pid")
        assert all(pid_alive(p) for p in pids)
    assert not any(pid_alive(p) for p in pids)
    with pytest.raises(RuntimeError, match="closed"):
        env.get_env_attr("fes")


# --------------------------------------------------------------------------- Ray specifics


def test_ray_groups_and_shares():
    assert plan_ray_groups(3, "ray", 2) == [[0], [1], [2]]
    assert plan_ray_groups(5, "ray-subproc", 4) == [[0, 1], [2, 3], [4]]
    assert plan_ray_groups(3, "ray-subproc", 8) == [[0], [1], [2]]
    assert plan_ray_groups(3, "ray-subproc", 0.5) == [[0, 1, 2]]
    share = worker_groups.resource_share
    assert share(2, 3) == 0.6666 and share(8, 3) == 2.0 and share(1, 1) == 1.0


def test_ray_actors_get_their_share_of_cpus(ray_cluster):
    with ParallelEnv([ProbeEnv() for _ in range(3)], "ray", num_cpus=1) as env:
        assert [r.get("CPU") for r in env.get_env_attr("ray_resources")] == [0.3333] * 3
        pids = env.get_env_attr("worker_pid")
        assert len(set(pids)) == 3 and os.getpid() not in pids
    with ParallelEnv([ProbeEnv() for _ in range(3)], "ray-subproc") as env:  # 2 CPUs: 2 actors
        pids = env.get_env_attr("worker_pid")
        assert pids[0] == pids[1] != pids[2]
        assert [r.get("CPU") for r in env.get_env_attr("ray_resources")] == [1.0] * 3
    with pytest.raises(ValueError, match=r"num_gpus=1 but the Ray cluster has 0.0 GPU"):
        ParallelEnv([ProbeEnv()], "ray", num_gpus=1)


def test_ray_is_started_with_num_cpus_and_num_gpus(monkeypatch):
    ray = pytest.importorskip("ray")
    calls = []

    class Stop(Exception):
        pass

    def fake_init(**kwargs):
        calls.append(kwargs)
        raise Stop

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    with pytest.raises(Stop):
        ParallelEnv([ProbeEnv()], "ray-subproc", num_cpus=3, num_gpus=1)
    assert calls[0]["num_cpus"] == 3 and calls[0]["num_gpus"] == 1
