"""A worker process killed in the middle of an episode (issue 24.5): one `WorkerError` naming the env,
the operation and the signal, every worker shut down, nothing waits; under MetaBox's Trainer
(`metabox` marker) the port's checkpoints written before the kill stay intact and load.
"""

from __future__ import annotations

import glob
import os
import pickle
import signal
import threading
import time

import numpy as np
import pytest

from compat.parallelenv import ParallelEnv, WorkerError
from references.envs import ProbeEnv, SelfKillingOptimizer, SlowEnv


def _children():
    """Pids of this process's living children (Linux: /proc/self/task/*/children)."""
    pids = set()
    for path in glob.glob("/proc/self/task/*/children"):
        with open(path) as f:
            pids.update(int(p) for p in f.read().split())
    return {p for p in pids if _alive(p)}


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _killed_message(env_index, pid, when):
    return (rf"environment {env_index} failed in step: its worker process was killed by SIGKILL \(signal 9\) "
            rf"{when} \(pid {pid}\); all workers were shut down")


@pytest.mark.parametrize("when", ["between steps", "during a step"])
def test_a_killed_subproc_worker_is_one_error_naming_env_and_signal(when):
    start = time.monotonic()
    envs = [ProbeEnv(), SlowEnv(delay=60) if when == "during a step" else ProbeEnv(), ProbeEnv()]
    env = ParallelEnv(envs, "subproc")  # no timeout: the death itself must end the wait
    pids = env.get_env_attr("worker_pid")
    assert set(pids) <= _children()
    env.reset()
    if when == "between steps":
        env.step(np.full(3, 0.5))
        os.kill(pids[1], signal.SIGKILL)
        expected = _killed_message(1, pids[1], "(before answering|before the request reached it)")
    else:
        threading.Timer(0.5, os.kill, (pids[1], signal.SIGKILL)).start()
        expected = _killed_message(1, pids[1], "before answering")
    with pytest.raises(WorkerError, match=expected) as info:
        env.step(np.full(3, 0.5))
    assert info.value.env_index == 1 and info.value.method == "step" and info.value.__cause__ is None
    assert not set(pids) & _children()  # the other workers were shut down too
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()
    env.close()  # a no-op now
    assert time.monotonic() - start < 20


@pytest.fixture
def metabox(tmp_path, monkeypatch):
    """metaevobox importable; MetaBox's outputs under tmp_path; torch's default dtype restored."""
    pytest.importorskip("metaevobox", reason="MetaBox's Trainer and optimizer envs need metaevobox")
    import torch

    monkeypatch.chdir(tmp_path)  # MetaBox writes agent_model/ and output/ under the current directory
    saved = torch.get_default_dtype()
    yield
    torch.set_default_dtype(saved)


@pytest.mark.metabox
def test_a_worker_killed_mid_epoch_under_metabox_trainer_leaves_the_last_checkpoint_loadable(metabox):
    """MetaBox's Trainer, the RLEPSO port, 'subproc' mode, 2 envs, a checkpoint every window (3 learning
    steps): env 1's worker is killed by SIGKILL at its 25th step (window 3). Trainer.train raises one
    WorkerError naming env 1 and the signal; no worker is left; checkpoints 0-2 load, and the last holds
    exactly the parameters the agent had when the kill came (window 3 had not updated them)."""
    import jax
    from metaevobox import Trainer
    from metaevobox.environment.optimizer.rlepso_optimizer import RLEPSO_Optimizer
    from metaevobox.environment.problem.utils import construct_problem_set

    from benchmarks.metabox_agents import _config
    from compat.agents import RLEPSO

    config = _config(train_parallel_mode="subproc", train_batch_size=2, end_mode="step", max_learning_step=300,
                     n_checkpoint=100, no_tb=True)
    config, datasets = construct_problem_set(config)
    agent = RLEPSO(config)
    assert config.save_interval == agent.K_epochs == 3 and agent.n_step == 10
    # the Trainer seeds a batch's envs epoch * 100 + 5 * (index + batch size * problem id) + seed: env 1 -> 12
    killer = SelfKillingOptimizer(RLEPSO_Optimizer(config), kill_seed=config.seed + 5, at_update=25)
    trainer = Trainer(config, agent, killer, datasets)
    start = time.monotonic()
    with pytest.raises(WorkerError, match=r"environment 1 failed in step: its worker process was killed by SIGKILL "
                                          r"\(signal 9\) before answering \(pid \d+\); all workers were shut down") as info:
        trainer.train()
    assert info.value.env_index == 1 and info.value.__cause__ is None
    assert time.monotonic() - start < 120
    assert not _children()
    assert agent.learning_time == 6
    names = sorted(f for f in os.listdir(config.agent_save_dir) if f.endswith(".pkl"))
    assert names == ["checkpoint-0.pkl", "checkpoint-1.pkl", "checkpoint-2.pkl"]
    loaded = []
    for name in names:
        with open(os.path.join(config.agent_save_dir, name), "rb") as f:
            loaded.append(pickle.load(f))
    assert [type(a) for a in loaded] == [RLEPSO] * 3 and [a.learning_time for a in loaded] == [0, 3, 6]
    for mine, theirs in zip(jax.tree.leaves(agent._params()), jax.tree.leaves(loaded[-1]._params())):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    state = np.zeros((1, loaded[-1].config.feature_dim))
    assert np.all(np.isfinite(np.asarray(loaded[-1]._get_action(state)[0])))
