"""Runs for tests/test_devices.py, in a process whose CPU shows several devices:

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python -m tests.device_runs OUT_DIR

Prints one JSON object: for each comparison the largest absolute difference of the final
parameters (and optimizer state) between a run sharded over 2 devices and the same run on 1, and
the error messages of bad inputs.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import jax
import numpy as np

from jppo import cli, compile_cache
from jppo.config import TrainConfig
from jppo.fit import fit

PPO = TrainConfig(total_steps=2048, num_envs=4, num_steps=64, learning_rate=1e-3, anneal_lr=False)  # 8 updates
NSTEP = TrainConfig(algorithm="nstep", total_steps=512, num_envs=4, num_steps=16, num_minibatches=1,
                    learning_rate=1e-3, anneal_lr=False)  # 8 windows


def max_diff(a, b) -> float:
    pairs = zip(jax.tree.leaves((a.params, a.opt_state)), jax.tree.leaves((b.params, b.opt_state)))
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))) for x, y in pairs)


def errors(out: Path) -> dict:
    import contextlib
    import io

    def message(argv):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["train", "--quiet", "--no-compile-cache", "--total-steps", "512", "--num-steps", "64",
                             *argv])
        return code, err.getvalue().strip()

    return {"too_many_devices": message(["--devices", "3"]),
            "seeds_not_divisible": message(["--seeds", "3"]),
            "envs_not_divisible": message(["--num-envs", "3", "--num-minibatches", "1"])}


def main(out: Path) -> dict:
    compile_cache.enable(out / "compile-cache")  # fits of the same program compile it once
    quiet = dict(show_progress=False)
    result = {"devices": len(jax.devices())}
    one = fit(PPO, num_seeds=2, num_devices=1, **quiet)
    result["ppo_seeds_split"] = max_diff(one.state, fit(PPO, num_seeds=2, num_devices=2, **quiet).state)
    result["ppo_envs_split"] = max_diff(fit(PPO, num_devices=1, **quiet).state, fit(PPO, num_devices=2, **quiet).state)
    result["nstep_seeds_split"] = max_diff(fit(NSTEP, num_seeds=2, num_devices=1, **quiet).state,
                                           fit(NSTEP, num_seeds=2, num_devices=2, **quiet).state)
    result["nstep_envs_split"] = max_diff(fit(NSTEP, num_devices=1, **quiet).state,
                                          fit(NSTEP, num_devices=2, **quiet).state)
    # half the run on 2 devices, checkpointed; the rest resumed on 1 device
    half = dataclasses.replace(PPO, total_steps=PPO.total_steps // 2)
    fit(half, num_seeds=2, num_devices=2, ckpt_dir=out / "ckpt", ckpt_every=1, **quiet)
    resumed = fit(PPO, num_seeds=2, num_devices=1, ckpt_dir=out / "ckpt", resume=True, **quiet)
    result["resume_2_to_1_devices"] = max_diff(one.state, resumed.state)
    result["errors"] = errors(out)
    return result


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
