"""The ports under MetaBox's own Trainer and Tester (benchmarks/metabox_agents.py).

Without metaevobox: the results file's merge and the report built from merged records. With it
(`metabox` marker; `python -m references.metabox_venv --test`): MetaBox's optimizer envs mended for
numpy 2 (RLDEAFL's in a fresh worker process, MFEA), and short Trainer runs whose last checkpoints
roll out in a fresh process. The whole epochs and the Tester runs are the benchmark's
(benchmarks/results/metabox_agents.md).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import metabox_agents as mba

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------- records and the report


def _train(agent, mode, returns, suite="bbob-10D", command="c1"):
    return {"kind": "train", "agent": agent, "suite": suite, "mode": mode, "epochs": 1, "batch_size": 2,
            "max_learning_step": None, "max_fes": 20000, "learning_time": 60, "problems": ["P1", "P2"],
            "K_epochs": 3, "train_s": 1.5, "episodes": 1, "episode_returns": [returns], "mean_loss": [0.5],
            "checkpoints": ["checkpoint-0.pkl", "checkpoint-1.pkl"], "last_checkpoint": "/x", "command": command}


def _test(ports, costs, suite="bbob-10D", command="c1"):
    """A Tester record on problems A and B, one run; `costs`: {agent: (cost on A, cost on B)}."""
    return {"kind": "test", "suite": suite, "ports": ports, "test_s": 9.0, "test_run": 1, "max_fes": 20000,
            "problems": ["A", "B"], "command": command,
            "final_cost": {p: {a: [c[i]] for a, c in costs.items()} for i, p in enumerate("AB")},
            "rollout_s": {p: {a: [1.0] for a in costs} for p in "AB"}}


def test_merge_replaces_records_by_key_and_keeps_the_rest():
    old = [_train("GLEET", "dummy", [1.0, 2.0]), _train("GLEET", "subproc", [1.0, 2.0]),
           _test(["GLEET"], {"GLEET": (1.0, 2.0), "CMAES": (0.5, 0.25)})]
    new = [_train("GLEET", "subproc", [3.0, 4.0], command="c2"), _train("RLDEAFL", "dummy", [5.0, 6.0], command="c2"),
           _test(["RLDEAFL"], {"RLDEAFL": (3.0, 4.0), "CMAES": (0.5, 0.25)}, command="c2")]
    merged = mba.merge(old, new)
    assert len(merged) == 5
    assert [r["episode_returns"] for r in merged if r.get("agent") == "GLEET"] == [[[1.0, 2.0]], [[3.0, 4.0]]]
    assert sum(r["kind"] == "test" for r in merged) == 2  # Tester runs of other ports are kept side by side
    # a record written before records had a kind, suite or ports still finds its key
    bare = {k: v for k, v in old[2].items() if k not in ("kind", "suite", "ports")}
    assert mba._key(bare) == mba._key(old[2]) == ("test", "bbob-10D", ("GLEET",))
    assert mba.merge([bare], [old[2]]) == [old[2]]


def test_the_report_joins_tester_runs_per_suite_and_names_missing_agents():
    records = [_train("RLDEAFL", "dummy", [1.0, 3.0], command="c2"), _train("GLEET", "dummy", [1.0, 2.0]),
               _train("GLEET", "subproc", [1.0, 2.0]), _train("RLDEAFL", "subproc", [1.0, 5.0], command="c2"),
               _train("L2T", "dummy", [0.5, 0.5], suite="cec2017mto", command="c3"),
               {"kind": "rollout", "agent": "L2T", "suite": "cec2017mto", "str": "L2T", "class": "compat.agents.l2t.L2T",
                "problem": "A", "max_fes": 20000, "rollout_s": 2.0, "return": 0.5, "fes": 20000,
                "cost_first_last": [[10.0, 20.0], [1.0, 2.0]], "command": "c3"},
               _test(["GLEET"], {"GLEET": (1.0, 2.0), "CMAES": (0.5, 0.25)}),
               _test(["RLDEAFL"], {"RLDEAFL": (3.0, 4.0), "CMAES": (0.5, 0.25)}, command="c2"),
               _test(["L2T"], {"L2T": ([1.0, 2.0], [3.0, 4.0]), "MFEA": ([5.0, 6.0], [7.0, 8.0])},
                     suite="cec2017mto", command="c3")]
    md = mba.markdown(records)
    assert "Agents with rows: GLEET, RLDEAFL, L2T." in md
    assert "No rows yet: RLEPSO, RLDAS, SYMBOL, RLEMMO." in md
    assert [ln.strip() for ln in md.splitlines() if ln.strip() in ("c1", "c2", "c3")] == ["c2", "c1", "c3"]
    rows = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert [r.split(" | ")[0:3] for r in rows if r.split(" | ")[2] in ("dummy", "subproc")] == [
        ["| GLEET", "bbob-10D", "dummy"], ["| GLEET", "bbob-10D", "subproc"], ["| RLDEAFL", "bbob-10D", "dummy"],
        ["| RLDEAFL", "bbob-10D", "subproc"], ["| L2T", "cec2017mto", "dummy"]]
    assert "Identical returns and losses in 'dummy' and 'subproc' (same seeds): GLEET." in md
    assert "Different: RLDEAFL." in md
    # one table per suite; the two bbob Tester runs share a column for the baseline they both ran
    assert "| problem | GLEET | RLDEAFL | CMAES |" in md
    assert "| A | 1 (1.00 s) | 3 (1.00 s) | 0.5 (1.00 s) |" in md
    assert "The baselines (CMAES) ran in each Tester run with the same seeds (1 .. test_run): the same final costs" in md
    assert "| problem | L2T | MFEA |" in md and "| B | 3 / 4 (1.00 s) | 7 / 8 (1.00 s) |" in md
    assert "| L2T | cec2017mto | `compat.agents.l2t.L2T` | A | 0.5 | 20000 | [10, 20] / [1, 2] | 2.0 |" in md


def test_the_results_file_merges_on_disk(tmp_path, capsys):
    store, new = tmp_path / "store.json", tmp_path / "new.json"
    new.write_text(json.dumps([_train("GLEET", "dummy", [1.0, 2.0])]))
    assert mba.main(["merge", str(store), str(new)]) == 0  # created
    new.write_text(json.dumps([_train("GLEET", "dummy", [7.0, 8.0]), _train("RLEPSO", "dummy", [1.0, 1.0])]))
    assert mba.main(["merge", str(store), str(new)]) == 0
    assert [r["episode_returns"] for r in json.loads(store.read_text())] == [[[7.0, 8.0]], [[1.0, 1.0]]]
    assert mba.main(["markdown", str(store)]) == 0
    assert "Agents with rows: GLEET, RLEPSO." in capsys.readouterr().out
    # the report's commands leave out where records went and show checkpoints as CKPT
    assert mba._command(["test", "RLDEAFL=/tmp/x/checkpoint-1.pkl", "--out", "r.json", "--merge-into=s.json",
                         "--test-run", "3"]) == "python -m benchmarks.metabox_agents test RLDEAFL=CKPT --test-run 3"
    with pytest.raises(SystemExit):
        mba.main(["markdown"])


# --------------------------------------------------------------------------- with MetaBox


@pytest.fixture
def metabox():
    """metaevobox importable; torch's default dtype restored after MetaBox's Config sets float64."""
    pytest.importorskip("metaevobox", reason="MetaBox's optimizer envs, Trainer and Tester need metaevobox")
    import torch

    saved = torch.get_default_dtype()
    yield
    torch.set_default_dtype(saved)


@pytest.mark.metabox
def test_rldeafl_env_steps_mended_in_a_fresh_worker_and_mfea_runs(metabox):
    """MetaBox's RLDEAFL env, mended for numpy 2, steps alike in 'dummy' and in a 'subproc' worker (a
    process that imported MetaBox afresh, so it mended itself); the mended index draws are MetaBox's
    own (`rng.choice(..., 1)`'s element), where MetaBox's method, unmended, fails under numpy 2.
    MetaBox's MFEA (mended) runs a short episode on cec2017mto, one final cost per task."""
    from metaevobox.environment.basic_environment import PBO_Env
    from metaevobox.environment.optimizer import rldeafl_optimizer
    from metaevobox.environment.problem.utils import construct_problem_set

    from compat.parallelenv import ParallelEnv

    cfg, (train_set, _) = construct_problem_set(mba._config(max_fes=2000))
    rng = np.random.default_rng(0)
    actions = np.concatenate([rng.integers(0, 14, (1, 100, 1)), rng.integers(0, 3, (1, 100, 1)),
                              rng.uniform(0, 1, (1, 100, 5))], -1).astype(float)
    mended = mba._optimizer_class("RLDEAFL")(cfg)
    assert str(mended) == "RLDEAFL_Optimizer" and isinstance(mended, rldeafl_optimizer.RLDEAFL_Optimizer)

    def run(mode):
        with ParallelEnv([PBO_Env(copy.deepcopy(train_set.data[0]), copy.deepcopy(mended))], mode) as env:
            env.seed([3])
            first = env.reset()
            return first, *env.step(actions)[:2]

    dummy, subproc = run("dummy"), run("subproc")
    for a, b in zip(dummy, subproc):
        np.testing.assert_array_equal(a, b)
    assert dummy[1].shape == (1, 100, cfg.dim + 2) and np.all(np.isfinite(dummy[2]))

    op = rldeafl_optimizer.Basic_mutation(np.random.default_rng(1))
    twin = np.random.default_rng(1)
    assert op.construct_random_indices(10, np.arange(3), 1).tolist() == \
        [twin.choice(np.delete(np.arange(10), i), 1)[0] for i in range(3)]
    if int(np.__version__.split(".")[0]) >= 2:
        with pytest.raises((ValueError, TypeError)):
            rldeafl_optimizer.Basic_mutation.construct_random_indices.__wrapped__(op, 10, np.arange(3), 1)

    mto, (_, mto_test) = construct_problem_set(mba._config("cec2017mto", max_fes=2000))
    mfea = mba._baseline_class("MFEA")(mto)
    mfea.seed(1)
    problem = copy.deepcopy(mto_test.data[0])
    problem.reset()
    out = mfea.run_episode(problem)
    assert str(mfea) == "MFEA" and np.shape(out["cost"][-1]) == (2,) and np.all(np.isfinite(out["cost"][-1]))


@pytest.mark.metabox
def test_rldeafl_and_l2t_under_metabox_trainer_roll_out_in_a_fresh_process(metabox, tmp_path):
    """MetaBox's Trainer trains the RLDEAFL port on bbob-10D with MetaBox's RLDEAFL_Optimizer (mended
    for numpy 2) and the L2T port on cec2017mto with MetaBox's L2T_Optimizer (dummy mode, one window
    each: 3 learning steps; 2000-evaluation episodes); both last checkpoints roll out in one fresh
    process. On bbob-10D, a single-task suite, the L2T port refuses,
    listing the suites it takes. (Whole epochs, subproc mode and the Tester:
    `python -m benchmarks.metabox_agents all --agents RLDEAFL,L2T --epochs 1`.)"""
    from compat.agents import L2T

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-m", "benchmarks.metabox_agents", "all", "--agents", "RLDEAFL,L2T",
                          "--modes", "dummy", "--windows", "1", "--max-fes", "2000", "--no-test",
                          "--out", str(tmp_path / "r.json")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    records = {(r["kind"], r["agent"]): r for r in json.loads((tmp_path / "r.json").read_text())}
    assert sorted(records) == [("rollout", "L2T"), ("rollout", "RLDEAFL"), ("train", "L2T"), ("train", "RLDEAFL")]
    for name, suite in (("RLDEAFL", "bbob-10D"), ("L2T", "cec2017mto")):
        trained, rolled = records["train", name], records["rollout", name]
        assert trained["suite"] == rolled["suite"] == suite and trained["mode"] == "dummy"
        assert trained["learning_time"] == 3 and trained["K_epochs"] == 3
        assert trained["checkpoints"][-1] == "checkpoint-1.pkl"
        assert rolled["class"] == f"compat.agents.{name.lower()}.{name}" and rolled["str"] == name
        assert rolled["fes"] >= 2000 and np.isfinite(rolled["return"])
    assert len(records["rollout", "L2T"]["cost_first_last"][0]) == 2  # one cost per task
    with pytest.raises(ValueError, match=r"multi-task suites only, \['augmented-wcci2020', 'cec2017mto', "
                                         r"'wcci2020'\]; the config names train_problem='bbob-10D'"):
        L2T(mba._config())
