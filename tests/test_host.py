"""The host trainer (gymnasium envs by `gym:` id): learning, sync == async == ray, the jitted
trainer's config and networks, resume through fit, worker shutdown, bad input."""

import dataclasses
import multiprocessing

import jax
import numpy as np
import pytest

from jppo import cli, worker_groups
from jppo.config import TrainConfig
from jppo.fit import fit, make_trainer
from jppo.host import HostTrainer
from jppo.train import Trainer

SMALL = TrainConfig(env_id="gym:CartPole-v1", total_steps=24_576, num_envs=8, num_steps=64, learning_rate=1e-3,
                    anneal_lr=False)
TINY = dataclasses.replace(SMALL, total_steps=768, num_envs=4, num_steps=64)  # 3 updates


@pytest.fixture(scope="module", autouse=True)
def _shutdown_ray():
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()


def assert_same_tree(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_cartpole_on_the_host_trainer_learns_beyond_random_through_fit():
    result = fit(SMALL, show_progress=False)  # 48 updates
    ret = result.metrics["episodic_return"]
    assert ret.shape == (SMALL.num_updates,) and int(result.state.update) == SMALL.num_updates
    first, last = np.nanmean(ret[:5]), np.nanmean(ret[-10:])
    assert first < 40, first  # random play lasts ~20 steps
    assert last > 150, last


@pytest.mark.slow
def test_sync_async_and_ray_give_identical_parameters():
    results = {}
    for mode, workers in (("sync", None), ("async", None), ("ray", 3)):  # 3 actors own slices of 2, 1, 1 envs
        with HostTrainer(TINY, mode=mode, num_workers=workers) as trainer:
            state, metrics = trainer.run(trainer.init(jax.random.key(7)), 2)
            state, more = trainer.run(state, 1)  # continues the running episodes
            results[mode] = state, {k: np.concatenate([metrics[k], more[k]]) for k in metrics}
    (ref_state, ref_metrics), *others = results.values()
    assert ref_metrics["episodes"].sum() > 0
    for state, metrics in others:
        assert_same_tree(ref_state.params, state.params)
        assert_same_tree(ref_state.opt_state, state.opt_state)
        np.testing.assert_array_equal(ref_metrics["episodic_return"], metrics["episodic_return"])


def test_same_config_on_both_trainers_same_networks_and_metrics():
    jitted, hosted = Trainer(dataclasses.replace(TINY, env_id="CartPole-v1")), HostTrainer(TINY)
    key = jax.random.key(3)
    s_jit, s_host = jitted.init(key), hosted.init(key)
    assert_same_tree(s_jit.params, s_host.params)  # the same networks from the same seed
    assert_same_tree(s_jit.opt_state, s_host.opt_state)
    s_jit, m_jit = jitted.run(s_jit, 2)
    with hosted:
        s_host, m_host = hosted.run(s_host, 2)
    assert set(m_jit) == set(m_host)
    for k in m_jit:
        assert np.shape(m_jit[k]) == np.shape(m_host[k]) == (2,), k
    assert jax.tree.structure(s_jit.params) == jax.tree.structure(s_host.params)
    # both learn the same way from similar data: similar losses at the start
    for k in ("value_loss", "entropy"):
        np.testing.assert_allclose(np.asarray(m_jit[k][0]), m_host[k][0], rtol=0.5)


def test_pendulum_continuous_actions_run():
    config = TrainConfig(env_id="gym:Pendulum-v1", total_steps=512, num_envs=2, num_steps=128, anneal_lr=False)
    with HostTrainer(config) as trainer:
        state, metrics = trainer.run(trainer.init(jax.random.key(0)), 2)
    assert np.all(np.isfinite(metrics["loss"]))
    np.testing.assert_array_equal(metrics["episodes"], [0, 2])  # both truncated at step 200
    assert np.all(metrics["episodic_length"][1:] == 200) and np.all(metrics["episodic_return"][1:] < 0)


def test_resume_through_fit_continues_from_the_checkpoint(tmp_path):
    config = dataclasses.replace(TINY, total_steps=1536)  # 6 updates
    half = dataclasses.replace(config, total_steps=768)
    first = fit(half, ckpt_dir=tmp_path, show_progress=False)
    again = fit(half, ckpt_dir=tmp_path, resume=True, show_progress=False)  # nothing left to do
    assert int(again.state.update) == 3 and again.metrics == {}
    assert_same_tree(first.state.params, again.state.params)
    resumed = fit(config, ckpt_dir=tmp_path, resume=True, show_progress=False)
    assert int(resumed.state.update) == 6 and resumed.metrics["loss"].shape == (3,)
    assert np.all(np.isfinite(resumed.metrics["loss"]))


def test_ctrl_c_saves_a_checkpoint_and_stops_the_workers(tmp_path, monkeypatch):
    children_before = set(multiprocessing.active_children())
    calls = {"n": 0}
    original_step = HostTrainer._rollout

    def interrupted(self, state):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original_step(self, state)

    monkeypatch.setattr(HostTrainer, "_rollout", interrupted)
    result = fit(dataclasses.replace(TINY, total_steps=1536), ckpt_dir=tmp_path, vector_mode="async",
                 show_progress=False)
    assert result.interrupted and int(result.state.update) == 2  # chunks of one update
    assert not (set(multiprocessing.active_children()) - children_before)


@pytest.mark.parametrize("mode", ["async", "ray"])
def test_an_env_failing_in_a_worker_reaches_the_caller_and_workers_stop(mode):
    config = dataclasses.replace(TINY, env_id="gym:references.host_envs:FaultyCartPole-v0")
    trainer = HostTrainer(config, mode=mode)
    with pytest.raises(Exception, match="FaultyCartPole broke at step 21"):
        with trainer:
            trainer.run(trainer.init(jax.random.key(0)), 1)
    assert trainer.envs is None
    if mode == "async":
        assert not multiprocessing.active_children()


def test_unknown_gym_id_is_a_clear_error(capsys):
    with pytest.raises(ValueError, match=r"unknown gymnasium environment 'gym:CartPoel-v1'.*doesn't exist"):
        HostTrainer(dataclasses.replace(TINY, env_id="gym:CartPoel-v1"))
    with pytest.raises(ValueError, match=r"unknown gymnasium environment 'gym:no_such_module:X-v0'"):
        fit(dataclasses.replace(TINY, env_id="gym:no_such_module:X-v0"), show_progress=False)
    assert cli.main(["train", "--env", "gym:CartPole-v7", "--quiet"]) == 2
    assert "unknown gymnasium environment 'gym:CartPole-v7'" in capsys.readouterr().err


def test_bad_vector_mode_and_workers_are_clear_errors(capsys):
    with pytest.raises(ValueError, match=r"vector mode must be one of \('sync', 'async', 'ray'\), got 'fork'"):
        HostTrainer(TINY, mode="fork")
    with pytest.raises(ValueError, match="num_workers must be a positive integer"):
        HostTrainer(TINY, mode="ray", num_workers=0)
    with pytest.raises(ValueError, match="applies to mode 'ray' only"):
        HostTrainer(TINY, mode="async", num_workers=2)
    with pytest.raises(ValueError, match="runs algorithm 'ppo'"):
        HostTrainer(dataclasses.replace(TINY, algorithm="nstep", num_minibatches=1))
    with pytest.raises(ValueError, match="apply to gymnasium environments"):
        make_trainer(dataclasses.replace(TINY, env_id="CartPole-v1"), vector_mode="async")
    with pytest.raises(ValueError, match="trains one seed per run"):
        fit(TINY, num_seeds=2, show_progress=False)
    assert cli.main(["train", "--env", "gym:CartPole-v1", "--vector-mode", "fork"]) == 2  # one line, as every error
    assert "invalid choice: 'fork'" in capsys.readouterr().err
    assert cli.main(["train", "--env", "CartPole-v1", "--vector-mode", "async"]) == 2
    assert "apply to gymnasium environments" in capsys.readouterr().err


def test_cli_trains_and_evaluates_a_gym_env(tmp_path, capsys):
    args = ["--env", "gym:CartPole-v1", "--total-steps", "512", "--num-envs", "4", "--num-steps", "64", "--quiet"]
    assert cli.main(["train", *args, "--ckpt-dir", str(tmp_path / "ckpt"), "--logdir", str(tmp_path / "tb")]) == 0
    out = capsys.readouterr().out
    assert "host trainer (sync envs)" in out and "PPO on gym:CartPole-v1: 2 updates" in out
    assert any((tmp_path / "tb").iterdir())
    assert cli.main(["eval", "--ckpt", str(tmp_path / "ckpt"), "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    assert "gym:CartPole-v1: 1 seed, checkpoint at update 2, 3 episodes per run (mode)" in out
    assert "| (the config) | 1 | " in out  # the one run's mean return [95% CI over its episodes]


def test_ray_slices_are_contiguous_and_at_most_one_per_worker():
    assert [list(s) for s in worker_groups.groups(5, 3)] == [[0, 1], [2, 3], [4]]
    assert [len(s) for s in worker_groups.groups(8, 8)] == [1] * 8
