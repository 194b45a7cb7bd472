"""Sweeps: a hyperparameter grid × seeds as one program (jitted and n-step trainers), exact resume, every run
evaluated and reported, and one clear error for each bad input."""

import dataclasses
import re

import jax
import numpy as np
import pytest

from jppo import cli, devices, history
from jppo.checkpoint import CheckpointError
from jppo.config import TrainConfig
from jppo.fit import fit
from jppo.logging import summary
from jppo.sweep import Grid

SMALL = TrainConfig(total_steps=2048, num_envs=4, num_steps=64, learning_rate=1e-3, anneal_lr=False)  # 8 updates
QUIET = dict(show_progress=False)


def assert_same(a, b):
    def data(x):  # typed PRNG keys compare by their bits
        return np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)

    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(data(x), data(y))


@pytest.mark.slow
def test_interrupted_sweep_resumes_exactly_and_eval_reports_every_run(tmp_path, capsys):
    grid = Grid.parse(["learning_rate=1e-3,3e-3", "gamma=0.9"], SMALL)
    full = fit(SMALL, num_seeds=2, grid=grid, ckpt_dir=tmp_path / "full", logdir=tmp_path / "tb", **QUIET)
    # stop half-way: a run of 4 updates (checkpointed at its end), then resume it to 8
    fit(dataclasses.replace(SMALL, total_steps=1024), num_seeds=2, grid=grid, ckpt_dir=tmp_path / "resumed", **QUIET)
    resumed = fit(SMALL, num_seeds=2, grid=grid, ckpt_dir=tmp_path / "resumed", resume=True, **QUIET)
    assert_same(full.state, resumed.state)  # every run: params, optimizer, envs, keys, swept values
    assert_same(history.read(tmp_path / "full"), history.read(tmp_path / "resumed"))
    np.testing.assert_allclose(full.state.sweep.learning_rate, [1e-3, 1e-3, 3e-3, 3e-3])
    np.testing.assert_allclose(full.metrics["learning_rate"][:, -1], [1e-3, 1e-3, 3e-3, 3e-3])
    assert history.read(tmp_path / "full")["loss"].shape == (4, 8)
    assert sorted(str(p.relative_to(tmp_path / "tb")) for p in (tmp_path / "tb").glob("*/*")) == [
        "lr=0.001,gamma=0.9/seed=0", "lr=0.001,gamma=0.9/seed=1", "lr=0.003,gamma=0.9/seed=0",
        "lr=0.003,gamma=0.9/seed=1"]
    text = summary(SMALL, full)
    assert "per grid point (mean ± std over 2 seeds)" in text and "    lr=0.003,gamma=0.9: " in text

    other = Grid.parse(["learning_rate=1e-3,1e-2", "gamma=0.9"], SMALL)
    with pytest.raises(CheckpointError, match=r"holds runs of learning_rate ∈ \{0.001, 0.003\} × gamma ∈ \{0.9\} × "
                                              r"2 seeds, this run asks for learning_rate ∈ \{0.001, 0.01\}"):
        fit(SMALL, num_seeds=2, grid=other, ckpt_dir=tmp_path / "resumed", resume=True, **QUIET)

    assert cli.main(["eval", "--ckpt", str(tmp_path / "full"), "--episodes", "3", "--per-seed"]) == 0
    out = capsys.readouterr().out
    assert "× 2 seeds, checkpoint at update 8" in out
    for point in ("lr=0.001,gamma=0.9", "lr=0.003,gamma=0.9"):
        assert f"| {point} | 2 | " in out
        assert f"| {point}/seed=0 | " in out and f"| {point}/seed=1 | " in out
    report = tmp_path / "full" / "report"
    assert all((report / name).stat().st_size > 0 for name in ("report.md", "returns.png", "curves.png"))


@pytest.mark.slow
def test_nstep_sweep_is_one_program_whose_points_train_as_their_own_configs():
    config = dataclasses.replace(SMALL, algorithm="nstep", num_minibatches=1, total_steps=512, num_steps=32)
    grid = Grid.parse(["clip_eps=0.1,0.3", "vf_coef=0.5,2"], config)
    swept = fit(config, num_seeds=2, grid=grid, **QUIET)
    assert swept.metrics["loss"].shape == (8, 4)
    point = 3  # clip_eps=0.3, vf_coef=2: runs 6 and 7
    alone = fit(dataclasses.replace(config, clip_eps=0.3, vf_coef=2.0), num_seeds=2, **QUIET)
    for a, b in zip(jax.tree.leaves(swept.state.params), jax.tree.leaves(alone.state.params)):
        np.testing.assert_allclose(np.asarray(a)[2 * point:2 * point + 2], np.asarray(b), rtol=1e-5, atol=1e-7)
    first = jax.tree.leaves(swept.state.params)[0]
    assert not np.allclose(first[0], first[6])  # the grid points did train differently


@pytest.mark.parametrize("args, message", [
    (["--sweep", "lr=1e-3"], r"--sweep lr: TrainConfig has no field 'lr'; sweepable: learning_rate, ent_coef, "
                             r"clip_eps, vf_coef, max_grad_norm, gamma, gae_lambda"),
    (["--sweep", "num_envs=2,4"], r"num_envs cannot be swept \(.*\); sweepable: learning_rate, "),
    (["--sweep", "learning_rate=1e-3,fast"], r"--sweep learning_rate: 'fast' is not a number"),
    (["--sweep", "gamma=0.9,1.5"], r"--sweep gamma=1.5: gamma must lie in \[0, 1\], got 1.5"),
    (["--sweep", "gae_lambda=0.9,0.95", "--algorithm", "nstep", "--num-minibatches", "1"],
     r"algorithm 'nstep' has no GAE"),
    (["--env", "gym:CartPole-v1", "--sweep", "learning_rate=1e-3,3e-3"],
     r"trains one seed per run: --seeds 1, no --sweep"),
])
def test_bad_sweeps_get_one_clear_error(args, message, capsys):
    assert cli.main(["train", "--quiet", "--total-steps", "512", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jppo train: error: --sweep" if "--env" not in args else "jppo train: error: ")
    assert len(err.strip().splitlines()) == 1
    assert re.search(message, err), err


def test_a_grid_that_does_not_split_over_the_devices_names_the_divisor():
    cpu = jax.devices("cpu")[0]
    with pytest.raises(ValueError, match=r"3 grid points × 2 seeds = 6 runs cannot be split evenly over 4 devices: the "
                                         r"number of runs \(grid points × seeds\) must be a multiple of 4, e\.g\. --seeds "
                                         r"a multiple of 4"):
        devices.plan(6, 4, [cpu] * 4, grid_points=3)
    with pytest.raises(ValueError, match=r"2 grid points × 3 seeds = 6 runs .* --seeds a multiple of 2"):
        devices.plan(6, 4, [cpu] * 4, grid_points=2)
    with pytest.raises(ValueError, match=r"3 grid points × 1 seed = 3 runs cannot share 8 devices evenly"):
        devices.plan(3, 4, [cpu] * 8, grid_points=3)


def test_eval_of_a_metabbo_checkpoint_evaluates_every_run(tmp_path, monkeypatch):
    """`jppo eval` hands the MetaBBO report every run of a sweep's checkpoint and each seed's start. (The
    saved state is CartPole's, and eval rebuilds that trainer: compiling RLEPSO's is not what is tested.)"""
    from jppo import fit as fit_module
    from jppo.checkpoint import Checkpointer
    from jppo.config import preset
    from jppo.metabbo import report
    from jppo.train import Trainer

    def toy(config, **kw):
        return Trainer(SMALL)

    monkeypatch.setattr(fit_module, "make_trainer", toy)
    config, grid = preset("rlepso-bbob10d", num_envs=2, total_steps=20), Grid((("learning_rate", (1e-5, 1e-4)),))
    init, _ = fit_module.seed_batched(toy(config), 3, grid=grid)
    ckpt = Checkpointer(tmp_path)
    ckpt.save(init(config.seed), config, 3, grid=grid.to_json())
    ckpt.close()
    seen = {}
    monkeypatch.setattr(report, "metabbo_report", lambda env_id, policy, trained, untrained, **kw: (
        seen.update(trained=trained, untrained=untrained, **kw), ("", []))[1])
    assert cli.main(["eval", "--ckpt", str(tmp_path), "--per-seed"]) == 0
    assert seen["grid"] == grid and seen["num_seeds"] == 3 and seen["per_seed"]
    def per_run(params):  # [runs, every parameter]
        return np.concatenate([np.asarray(x).reshape(x.shape[0], -1) for x in jax.tree.leaves(params)], axis=1)

    trained, untrained = per_run(seen["trained"]), per_run(seen["untrained"])
    assert trained.shape[0] == 6 and untrained.shape[0] == 3  # every run; each seed's start
    np.testing.assert_array_equal(trained[3:], trained[:3])  # saved at the start: seed s alike at every point
    np.testing.assert_array_equal(untrained, trained[:3])
    assert not np.array_equal(trained[0], trained[1])
