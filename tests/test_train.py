"""The jitted trainer: learning, vmapped seeds and sweeps, checkpoints and exact resume, faults."""

import dataclasses
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jppo.checkpoint import CheckpointError, Checkpointer
from jppo.config import TrainConfig
from jppo.fit import TrainingDiverged, fit
from jppo.train import SweepParams, Trainer, evaluate_policy

SMALL = TrainConfig(total_steps=40_960, num_envs=8, num_steps=64, learning_rate=1e-3, anneal_lr=False)


def test_cartpole_learns_on_two_vmapped_seeds():
    trainer = Trainer(SMALL)
    _, metrics = jax.jit(jax.vmap(trainer.train))(jax.random.split(jax.random.key(0), 2))
    ret = np.asarray(metrics["episodic_return"])  # [2, updates]
    first, last = np.nanmean(ret[:, :5], axis=1), np.nanmean(ret[:, -10:], axis=1)
    assert np.all(first < 40), first  # random play lasts ~20 steps
    assert np.all(last > 150), last  # well beyond random


def test_pendulum_improves_over_random():
    config = TrainConfig(env_id="Pendulum-v1", total_steps=98_304, num_envs=16, num_steps=128, num_epochs=10,
                         num_minibatches=16, learning_rate=3e-3, anneal_lr=False, gamma=0.95, ent_coef=0.0)
    trainer = Trainer(config)
    state, metrics = jax.jit(trainer.train)(jax.random.key(1))
    ret = np.asarray(metrics["episodic_return"])
    random_return = np.nanmean(ret[:3])
    trained = float(np.mean(evaluate_policy(trainer, state.params, jax.random.key(2), 16)))
    assert trained > random_return + 200, (random_return, trained)


def test_seed_and_hyperparameter_sweep_in_one_compile():
    config = dataclasses.replace(SMALL, total_steps=2048)
    trainer = Trainer(config)
    traces = []

    def counted(key, sweep):
        traces.append(1)
        return trainer.train(key, sweep)

    train = jax.jit(jax.vmap(counted))
    sweep = jax.tree.map(lambda x: jnp.repeat(x[None], 3), SweepParams.from_config(config)).replace(
        learning_rate=jnp.array([1e-4, 1e-3, 3e-3]), ent_coef=jnp.array([0.0, 0.01, 0.1]),
        clip_eps=jnp.array([0.1, 0.2, 0.3]), vf_coef=jnp.array([0.25, 0.5, 1.0]), gamma=jnp.array([0.9, 0.95, 0.99]),
        gae_lambda=jnp.array([0.8, 0.9, 0.95]), max_grad_norm=jnp.array([0.5, 1.0, jnp.inf]))
    _, m = train(jax.random.split(jax.random.key(0), 3), sweep)
    assert m["learning_rate"].shape == (3, config.num_updates)
    np.testing.assert_allclose(np.asarray(m["learning_rate"][:, 0]), [1e-4, 1e-3, 3e-3], rtol=1e-6)
    sweep2 = sweep.replace(learning_rate=jnp.array([5e-4, 2e-4, 1e-5]))
    train(jax.random.split(jax.random.key(1), 3), sweep2)
    assert len(traces) == 1


@pytest.mark.xla_defaults
def test_same_seed_same_result_and_chunks_change_nothing():
    trainer = Trainer(dataclasses.replace(SMALL, total_steps=4096))
    whole, _ = jax.jit(trainer.train)(jax.random.key(3))
    state = trainer.init(jax.random.key(3))
    state, _ = trainer.run(state, 3)
    state, _ = trainer.run(state, 5)
    for a, b in zip(jax.tree.leaves(whole.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_interrupted_and_resumed_run_ends_identical(tmp_path):
    config = dataclasses.replace(SMALL, total_steps=8192, num_envs=4, num_steps=64)  # 32 updates
    full = fit(config, show_progress=False)
    # stop half-way: train a run that only goes to 16 updates (checkpointed at its end), then resume it to 32
    half = dataclasses.replace(config, total_steps=4096)
    fit(half, ckpt_dir=tmp_path / "resumed", show_progress=False)
    resumed = fit(config, ckpt_dir=tmp_path / "resumed", resume=True, show_progress=False)
    for a, b in zip(jax.tree.leaves(full.state.params), jax.tree.leaves(resumed.state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(jax.tree.leaves(full.state.opt_state), jax.tree.leaves(resumed.state.opt_state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_resume_with_shape_changing_config_is_refused(tmp_path):
    config = dataclasses.replace(SMALL, total_steps=1024, num_envs=4, num_steps=64)
    fit(config, ckpt_dir=tmp_path, show_progress=False)
    with pytest.raises(CheckpointError, match=r"num_envs: saved 4 vs now 8"):
        fit(dataclasses.replace(config, num_envs=8, total_steps=2048), ckpt_dir=tmp_path, resume=True,
            show_progress=False)


def test_cli_refuses_a_checkpoint_of_another_format_version_with_a_clear_error(tmp_path, capsys, monkeypatch):
    from jppo import checkpoint, cli

    config = dataclasses.replace(SMALL, total_steps=512, num_envs=4, num_steps=64)
    monkeypatch.setattr(checkpoint, "FORMAT_VERSION", 0)  # as an older jppo wrote it
    fit(config, ckpt_dir=tmp_path, show_progress=False)
    monkeypatch.undo()
    assert cli.main(["eval", "--ckpt", str(tmp_path)]) == 2
    assert f"has format version 0, this jppo reads version {checkpoint.FORMAT_VERSION}" in capsys.readouterr().err
    assert cli.main(["train", "--total-steps", "1024", "--num-envs", "4", "--num-steps", "64", "--quiet",
                     "--ckpt-dir", str(tmp_path), "--resume"]) == 2
    assert "jppo train: error: checkpoint" in capsys.readouterr().err


def _truncate_files(paths):
    """Cut every non-empty file among `paths` to half its size."""
    for f in paths:
        if f.is_file() and f.stat().st_size > 0:
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def test_corrupt_checkpoint_is_reported_and_an_earlier_one_used(tmp_path):
    config = dataclasses.replace(SMALL, total_steps=2048, num_envs=4, num_steps=64)  # 8 updates
    fit(config, ckpt_dir=tmp_path, ckpt_every=1, keep=3, show_progress=False)
    ckpt = Checkpointer(tmp_path)
    steps = ckpt.steps()
    _truncate_files((tmp_path / str(steps[-1]) / "state").rglob("*"))
    template = jax.vmap(Trainer(config).init)(jax.random.split(jax.random.key(0), 1))  # fit saves [seeds, ...]
    with pytest.warns(UserWarning, match=rf"checkpoint .*{steps[-1]} is corrupt or truncated"):
        state, _ = ckpt.restore(template)
    assert int(state.update[0]) == steps[-2]


def test_cli_eval_reports_a_checkpoint_whose_state_cannot_be_read(tmp_path, capsys):
    from jppo import cli

    config = dataclasses.replace(SMALL, total_steps=512, num_envs=4, num_steps=64)
    fit(config, ckpt_dir=tmp_path, show_progress=False)
    _truncate_files(tmp_path.glob("*/state/**/*"))  # the meta stays readable, every saved state does not
    with pytest.warns(UserWarning, match="corrupt or truncated"):
        assert cli.main(["eval", "--ckpt", str(tmp_path)]) == 2
    assert f"jppo eval: error: no readable checkpoint in {tmp_path}" in capsys.readouterr().err


def test_nan_loss_stops_training_with_the_update_index():
    config = dataclasses.replace(SMALL, total_steps=2048, num_envs=4, num_steps=64, learning_rate=1e30)
    with pytest.raises(TrainingDiverged, match=r"NaN or inf at update \d+"):
        fit(config, show_progress=False)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(num_envs=3, num_steps=10, num_minibatches=4), "not divisible by num_minibatches=4"),
        (dict(learning_rate=-1e-3), "learning_rate must be a finite number >= 0"),
        (dict(total_steps=100), r"total_steps=100 is smaller than one update \(num_envs × num_steps = 512\)"),
        (dict(gamma=1.5), r"gamma must lie in \[0, 1\]"),
    ],
)
def test_bad_config_is_rejected_before_compiling(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TrainConfig(), **changes)


def test_config_file_round_trip(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('env_id = "Pendulum-v1"\nnum_envs = 16\nhidden = [32, 32]\n')
    c = TrainConfig.load(path)
    assert c.env_id == "Pendulum-v1" and c.num_envs == 16 and c.hidden == (32, 32)
    path.write_text("nmu_envs = 3\n")
    with pytest.raises(ValueError, match=r"unknown config keys \['nmu_envs'\]"):
        TrainConfig.load(path)
