"""The GLEET, RLEPSO and RLDAS ports (compat.agents) under MetaBox's own Trainer and Tester.

Needs an environment where `metaevobox` 2.0.2 imports next to jppo (see references/metabox_dropin.py).
Run from a scratch directory (MetaBox writes agent_model/ and output/ under the current one):

    cd $(mktemp -d) && PYTHONPATH=<repo> python -m benchmarks.metabox_agents all --epochs 1 --out r.json
    python -m benchmarks.metabox_agents markdown r.json "<the command>" > benchmarks/results/metabox_agents.md

For each port and each of MetaBox's parallel modes 'dummy' and 'subproc': MetaBox's `Trainer` trains
it on bbob-10D (difficult split, MetaBox's optimizer env for the agent, train_batch_size 2) for
`--epochs` whole epochs (one batch episode per train problem), or `--windows` windows (end_mode
'step', `max_learning_step` = windows · K) for a smoke run; then the last checkpoint of the dummy run
is rolled out on the first test problem in a fresh process (`rollout`), and MetaBox's `Tester`
('Serial' mode, test_run runs, the first test problems) tests the three checkpoints together, next to its own
CMAES and Random_search baselines. float64 throughout (MetaBox's Config makes torch float64).
Prints `RESULT {json}` lines; `--out` writes all of them to one JSON file.

L2T (`--agents L2T`, or `train L2T dummy --epochs 1` / `rollout L2T CKPT`) trains and rolls out on its
multi-task suite cec2017mto (difficult split: 3 train problems) with MetaBox's `L2T_Optimizer`, and
is left out of the Tester run (the Tester takes one suite for all its agents).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import pickle
import subprocess
import sys
import time

AGENTS = ("GLEET", "RLEPSO", "RLDAS")
# the suite each port trains and rolls out on (L2T, a multi-task agent: `--agents L2T`; not in the Tester run)
SUITES = {"L2T": "cec2017mto"}


def _setup():
    import jax

    jax.config.update("jax_enable_x64", True)


def _optimizer_class(name):
    from metaevobox.environment.optimizer.gleet_optimizer import GLEET_Optimizer
    from metaevobox.environment.optimizer.rldas_optimizer import RLDAS_Optimizer
    from metaevobox.environment.optimizer.l2t_optimizer import L2T_Optimizer
    from metaevobox.environment.optimizer.rlepso_optimizer import RLEPSO_Optimizer

    return {"GLEET": GLEET_Optimizer, "RLEPSO": RLEPSO_Optimizer, "RLDAS": RLDAS_Optimizer,
            "L2T": L2T_Optimizer}[name]


def _config(suite="bbob-10D", **values):
    from metaevobox import Config

    saved, sys.argv = sys.argv, sys.argv[:1]  # MetaBox's Config parses the command line
    try:
        return Config({"train_problem": suite, "train_difficulty": "difficult", "test_problem": suite,
                       "test_difficulty": "difficult", "device": "cpu", "seed": 7, **values})
    finally:
        sys.argv = saved


def _windows_to_steps(name, windows):
    from jppo.metabbo.metabox_settings import SETTINGS

    k = SETTINGS[name]["K_epochs"] or 2  # RLDAS sets None and takes int(0.3 · (20000 // 2500)) on bbob-10D
    return windows * k


def train(name, mode, windows, epochs=None, batch_size=2):
    """MetaBox's Trainer on the port `name` in `mode`; returns the figures and the last checkpoint.

    `epochs`: train that many whole epochs (end_mode 'epoch'); otherwise `windows` windows (end_mode 'step').
    """
    from metaevobox import Trainer
    from metaevobox.environment.problem.utils import construct_problem_set

    from compat.agents import PORTS

    if epochs:
        steps = None
        budget = dict(end_mode="epoch", max_epoch=epochs)
    else:
        steps = _windows_to_steps(name, windows)
        budget = dict(end_mode="step", max_learning_step=steps)
    config = _config(SUITES.get(name, "bbob-10D"), train_parallel_mode=mode, n_checkpoint=1,
                     train_batch_size=batch_size, no_tb=True, **budget)
    config, datasets = construct_problem_set(config)
    agent = PORTS[name](config)
    trainer = Trainer(config, agent, _optimizer_class(name)(config), datasets)
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    with open(os.path.join("output/train_log", config.run_time, "train_log.pkl"), "rb") as f:
        log = pickle.load(f)
    checkpoints = sorted((f for f in os.listdir(config.agent_save_dir) if f.endswith(".pkl")), key=lambda s: (len(s), s))
    return {"agent": name, "mode": mode, "epochs": epochs, "batch_size": batch_size, "max_learning_step": steps,
            "learning_time": agent.learning_time, "problems": [str(p) for p in datasets[0].data],
            "K_epochs": agent.K_epochs, "train_s": round(wall, 1), "episodes": len(log["return"]),
            "episode_returns": [[round(float(r), 4) for r in rs] for rs in log["return"]],
            "mean_loss": [float(sum(ls) / len(ls)) for ls in log["loss"] if ls],
            "checkpoints": checkpoints,
            "last_checkpoint": os.path.abspath(os.path.join(config.agent_save_dir, checkpoints[-1]))}


def rollout(name, checkpoint):
    """Unpickle `checkpoint` (this process has never built the agent) and roll it out once."""
    import numpy as np
    from metaevobox.environment.basic_environment import PBO_Env
    from metaevobox.environment.problem.utils import construct_problem_set

    with open(checkpoint, "rb") as f:
        agent = pickle.load(f)
    config, datasets = construct_problem_set(_config(SUITES.get(name, "bbob-10D")))
    problem = datasets[1].data[0]
    start = time.perf_counter()
    out = agent.rollout_episode(PBO_Env(copy.deepcopy(problem), _optimizer_class(name)(config)), seed=1)
    return {"agent": name, "str": str(agent), "class": f"{type(agent).__module__}.{type(agent).__qualname__}",
            "problem": str(problem), "rollout_s": round(time.perf_counter() - start, 1),
            "return": float(out["return"]), "fes": int(out["fes"]),
            "cost_first_last": [np.asarray(out["cost"][i], float).tolist() for i in (0, -1)]}  # L2T: one per task


def test(checkpoints, test_run, n_problems):
    """MetaBox's Tester ('Serial') on the ports' checkpoints {name: path}; final costs per problem."""
    import numpy as np
    from metaevobox import Tester, get_baseline
    from metaevobox.environment.problem.utils import construct_problem_set

    config = _config(test_run=test_run, test_parallel_mode="Serial", full_meta_data=False)
    config, (train_set, test_set) = construct_problem_set(config)
    test_set.data = test_set.data[:n_problems]
    test_set.N = len(test_set.data)
    config.baselines = {f"{n}-compat": {"agent": n, "optimizer": _optimizer_class(n), "model_load_path": path}
                        for n, path in checkpoints.items()}
    baselines, config = get_baseline(config)
    tester = Tester(config, baselines, (train_set, test_set))
    start = time.perf_counter()
    tester.test(log=False)
    wall = time.perf_counter() - start
    costs = {p: {a: [float(np.asarray(run)[-1]) for run in runs] for a, runs in by_agent.items()}
             for p, by_agent in tester.test_results["cost"].items()}
    t2 = {p: {a: [round(float(t) / 1e3, 2) for t in ts] for a, ts in by_agent.items()}
          for p, by_agent in tester.test_results["T2"].items()}
    return {"test_s": round(wall, 1), "test_run": test_run, "problems": [str(p) for p in test_set.data],
            "final_cost": costs, "rollout_s": t2}


def _fmt(x) -> str:
    return "[" + ", ".join(map(_fmt, x)) + "]" if isinstance(x, list) else f"{x:.4g}"


def markdown(results: list[dict], command: str) -> str:
    """benchmarks/results/metabox_agents.md from the RESULT records of one `all` run."""
    trains = [r for r in results if "mode" in r]
    rollouts = [r for r in results if "rollout_s" in r and "mode" not in r and "final_cost" not in r]
    tests = [r for r in results if "final_cost" in r]
    lines = ["# The GLEET, RLEPSO and RLDAS ports under MetaBox's own Trainer and Tester", "",
             "Command (a scratch directory; `/work/mbvenv` is the venv where metaevobox 2.0.2 imports beside jppo):",
             "", f"    {command}", ""]
    t = trains[0]
    budget = (f"{t['epochs']} epoch (end_mode 'epoch')" if t.get("epochs")
              else f"max_learning_step = {t['max_learning_step']} (end_mode 'step')")
    lines += [f"MetaBox's `Trainer` on bbob-10D, difficult split ({len(t['problems'])} train problems: "
              f"{', '.join(t['problems'])}), MetaBox's optimizer env of each agent, train_mode 'single', "
              f"train_batch_size {t['batch_size']}, {budget}: one batch episode per train problem; float64 "
              "(MetaBox's Config makes torch float64). Wall time is the Trainer's, on a 2-core machine with "
              "other jobs running.", "", "## Training", "",
              "| agent | mode | batch episodes | learning steps | K | wall s | mean return per batch episode | "
              "mean loss per batch episode |", "|---|---|---|---|---|---|---|---|"]
    for r in trains:
        returns = ", ".join(_fmt(sum(x) / len(x)) for x in r["episode_returns"])
        losses = ", ".join(_fmt(x) for x in r["mean_loss"])
        lines.append(f"| {r['agent']} | {r['mode']} | {r['episodes']} | {r['learning_time']} | {r['K_epochs']} | "
                     f"{r['train_s']} | {returns} | {losses} |")
    same = [a for a in AGENTS if len({json.dumps([x["episode_returns"], x["mean_loss"]]) for x in trains
                                      if x["agent"] == a}) == 1]
    lines += ["", f"Identical returns and losses in 'dummy' and 'subproc' (same seeds): {', '.join(same) or 'none'}."]
    if "RLDAS" not in same:
        lines.append("RLDAS's differ because MetaBox's `RLDAS_Optimizer` is not reproducible by itself (one env, "
                     "seed 11, reset then actions 0, 1, 2, run twice in one process, gave rewards 0.731, 0.218, "
                     "0.051 and 0.553, 0.410, 0.037).")
    if rollouts:
        lines += ["", "## The dummy run's last checkpoint, rolled out in a fresh process", "",
                  "| agent | class after unpickling | problem | return | FEs | first / final cost | rollout s |",
                  "|---|---|---|---|---|---|---|"]
        for r in rollouts:
            first, last = r["cost_first_last"]
            lines.append(f"| {r['agent']} | `{r['class']}` | {r['problem']} | {_fmt(r['return'])} | {r['fes']} | "
                         f"{_fmt(first)} / {_fmt(last)} | {r['rollout_s']} |")
    for r in tests:
        agents = list(next(iter(r["final_cost"].values())))
        lines += ["", f"## MetaBox's Tester ('Serial', test_run {r['test_run']}, the first {len(r['problems'])} test "
                      "problems)", "",
                  f"Mean final cost over the runs (MetaBox's own CMAES and Random_search alongside); Tester wall time "
                  f"{r['test_s']} s; in brackets MetaBox's T2 (rollout seconds), mean over runs.", "",
                  "| problem | " + " | ".join(agents) + " |", "|---|" + "---|" * len(agents)]
        for p, by_agent in r["final_cost"].items():
            cells = [f"{_fmt(sum(by_agent[a]) / len(by_agent[a]))} ({sum(r['rollout_s'][p][a]) / len(r['rollout_s'][p][a]):.2f} s)"
                     for a in agents]
            lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _emit(result, results):
    print("RESULT " + json.dumps(result), flush=True)
    results.append(result)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metabox_agents", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["all", "train", "rollout", "test", "markdown"])
    parser.add_argument("args", nargs="*", help="train: AGENT MODE; rollout: AGENT CHECKPOINT; test: AGENT=CKPT ...; "
                                                "markdown: RESULTS.json COMMAND (prints the report)")
    parser.add_argument("--windows", type=int, default=2, help="training budget in windows of K learning steps")
    parser.add_argument("--epochs", type=int, help="training budget in whole epochs (overrides --windows)")
    parser.add_argument("--batch-size", type=int, default=2, help="MetaBox's train_batch_size")
    parser.add_argument("--agents", default=",".join(AGENTS))
    parser.add_argument("--modes", default="dummy,subproc")
    parser.add_argument("--test-run", type=int, default=1)
    parser.add_argument("--test-problems", type=int, default=2)
    parser.add_argument("--out")
    a = parser.parse_args(argv)
    if a.what == "markdown":
        with open(a.args[0]) as f:
            print(markdown(json.load(f), a.args[1]), end="")
        return 0
    _setup()
    results = []
    if a.what == "train":
        _emit(train(a.args[0], a.args[1], a.windows, a.epochs, a.batch_size), results)
    elif a.what == "rollout":
        _emit(rollout(a.args[0], a.args[1]), results)
    elif a.what == "test":
        _emit(test(dict(s.split("=", 1) for s in a.args), a.test_run, a.test_problems), results)
    else:
        last = {}
        for name in a.agents.split(","):
            for mode in a.modes.split(","):
                r = train(name, mode, a.windows, a.epochs, a.batch_size)
                _emit(r, results)
                if mode == "dummy" or name not in last:
                    last[name] = r["last_checkpoint"]
        for name, path in last.items():  # a fresh process: nothing of this one carries over
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "benchmarks.metabox_agents", "rollout", name, path],
                                 capture_output=True, text=True)
            lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
            if out.returncode or not lines:
                raise RuntimeError(f"rollout of {name} failed:\n{out.stderr[-3000:]}")
            r = json.loads(lines[-1][7:])
            r["process_s"] = round(time.perf_counter() - start, 1)
            _emit(r, results)
        _emit(test({n: p for n, p in last.items() if n not in SUITES}, a.test_run, a.test_problems), results)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
