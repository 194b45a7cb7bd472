"""Several devices, several processes, the compilation cache, and the device benchmark's smallest
setting. JAX fixes its devices when it starts, so the runs over 2 CPU devices (and 2 processes)
happen in subprocesses."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jppo import cli, compile_cache

ROOT = Path(__file__).parent.parent
TINY = ["--total-steps", "2048", "--num-envs", "4", "--num-steps", "64", "--learning-rate", "1e-3", "--no-anneal-lr",
        "--quiet"]


def _env(devices: int = 1, xla_flags: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    flags = os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    return env


def _python(args, env, timeout=600):
    return subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_devices_give_the_results_of_one_and_checkpoints_move_between_them(tmp_path, xla_flags_default_emitters):
    # XLA's default emitters, as the `xla_defaults` tests: under the suite's, CartPole's rollouts in the 1- and
    # 2-device programs round differently (2e-7) and 8 updates of the pole's dynamics make that 8e-4.
    proc = _python(["-m", "tests.device_runs", str(tmp_path)], _env(2, xla_flags_default_emitters))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["devices"] == 2
    for name in ("ppo_seeds_split", "ppo_envs_split", "nstep_seeds_split", "nstep_envs_split", "resume_2_to_1_devices"):
        assert result[name] < 1e-4, result  # float32: XLA may order a sharded program's sums differently
    errors = result["errors"]
    assert errors["too_many_devices"][0] == 2 and "this process has 2 cpu device(s)" in errors["too_many_devices"][1]
    assert errors["seeds_not_divisible"][0] == 2 and "must be a multiple of 2" in errors["seeds_not_divisible"][1]
    assert errors["envs_not_divisible"][0] == 2 and "num_envs=3" in errors["envs_not_divisible"][1]
    assert "num_envs must be a multiple of 2" in errors["envs_not_divisible"][1]


def _saved(ckpt_dir: Path):
    manager = ocp.CheckpointManager(ckpt_dir.absolute())
    state = manager.restore(manager.latest_step(), args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
    return jax.tree.leaves((state["params"], state["opt_state"]))


def _two_processes(args, tmp_path):
    """`jppo train ARGS` as processes 0 and 1 of one run; their (stdout, stderr)."""
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, *args, "--ckpt-dir", str(tmp_path / f"ckpt{i}"),
                               "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i),
                               "--coordinator-timeout", "120"],
                              env=_env(1), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return outs


@pytest.mark.slow
def test_two_processes_train_and_resume_one_run_like_one_process_with_two_devices(tmp_path):
    train = ["-m", "jppo.cli", "train", *TINY, "--seeds", "2"]  # with the suite's compilation cache
    outs = _two_processes([*train, "--total-steps", "1024"], tmp_path)  # half the run, then resumed
    assert "PPO on CartPole-v1" in outs[0][0] and "PPO on CartPole-v1" not in outs[1][0]  # process 0 alone reports
    assert (tmp_path / "ckpt0").is_dir() and not (tmp_path / "ckpt1").exists()  # and alone checkpoints
    _two_processes([*train, "--resume"], tmp_path)  # process 0 reads the checkpoint and sends it to process 1
    single = _python([*train, "--ckpt-dir", str(tmp_path / "single")], _env(2))
    assert single.returncode == 0, single.stderr[-3000:]
    for a, b in zip(_saved(tmp_path / "ckpt0"), _saved(tmp_path / "single")):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_an_unreachable_coordinator_times_out_naming_its_address(capsys):
    address = f"127.0.0.1:{_free_port()}"  # nobody listens there
    code = cli.main(["train", *TINY, "--coordinator", address, "--num-processes", "2", "--process-id", "1",
                     "--coordinator-timeout", "1"])
    assert code == 2
    assert f"could not reach the coordinator at {address} within 1 s" in capsys.readouterr().err


def test_incomplete_multi_process_flags_are_refused(capsys):
    assert cli.main(["train", *TINY, "--num-processes", "2"]) == 2
    assert "needs --coordinator, --num-processes and --process-id" in capsys.readouterr().err


@pytest.fixture
def restore_cache_config():
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    saved = {n: getattr(jax.config, n) for n in names}
    yield
    for n, v in saved.items():
        jax.config.update(n, v)


def test_compile_cache_settings_and_an_unwritable_directory(tmp_path, monkeypatch, restore_cache_config):
    assert compile_cache.enable(tmp_path / "c") == tmp_path / "c"
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "c")
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0
    assert jax.config.jax_persistent_cache_min_entry_size_bytes == -1
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.warns(UserWarning, match=rf"compilation cache {blocker / 'sub'} is not writable"):
        assert compile_cache.enable(blocker / "sub") is None
    monkeypatch.delenv("JPPO_COMPILE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.default_dir() == tmp_path / "xdg" / "jppo" / "jax"
    monkeypatch.setenv("JPPO_COMPILE_CACHE", str(tmp_path / "mine"))
    assert compile_cache.default_dir() == tmp_path / "mine"


@pytest.mark.slow
def test_a_second_identical_run_finds_its_programs_in_the_cache(tmp_path):
    cache = tmp_path / "cache"
    train = ["-m", "jppo.cli", "train", *TINY[:6], "--quiet", "--compile-cache", str(cache)]
    first = _python(train, _env(1))
    assert first.returncode == 0, first.stderr[-3000:]
    entries = {p.name for p in cache.iterdir()}
    assert len(entries) >= 2  # at least init and the training chunk
    second = _python(train, _env(1))
    assert second.returncode == 0, second.stderr[-3000:]
    assert {p.name for p in cache.iterdir()} == entries  # every program was found, none compiled anew


@pytest.mark.parametrize("flags, enabled_with", [([], [None]), (["--compile-cache", "DIR"], ["DIR"]),
                                                 (["--no-compile-cache"], [])])
def test_compile_cache_flags(flags, enabled_with, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(compile_cache, "enable", calls.append)
    assert cli.main(["train", *TINY, *flags, "--devices", "99"]) == 2  # stops before training
    assert "--devices 99: this process has" in capsys.readouterr().err
    assert calls == enabled_with


BLOCK_OPTIONAL = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorboardX", "gymnasium", "dill"):
            raise ImportError(f"{name} is blocked: the device machine does not have it")
sys.meta_path.insert(0, Block())
sys.argv = ["benchmarks.run", "device", "--quick", "--out", sys.argv[1]]
import runpy
runpy.run_module("benchmarks.run", run_name="__main__")
"""


@pytest.mark.slow
def test_device_benchmark_smallest_setting_runs_without_tensorboardx_gymnasium_dill(tmp_path):
    proc = _python(["-c", BLOCK_OPTIONAL, str(tmp_path)], _env(1))
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (tmp_path / "device.md").read_text()
    assert (tmp_path / "device.png").is_file()
    assert "| 4 | 1 |" in text and "PPO update over samples" in text and "| RLEPSO | 4 |" in text
    assert "GLEET" in text  # a row: timed, or saying its module is missing
    assert "failed" not in text  # a program that fails is its row's text, not an error: none may
    assert "seeds x MetaBox's whole RLEPSO budget" in text
