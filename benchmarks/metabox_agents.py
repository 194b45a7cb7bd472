"""MetaBox's own PPO agents, ported (compat.agents), under MetaBox's own Trainer and Tester.

Needs an environment where `metaevobox` 2.0.2 imports next to jppo (see references/metabox_dropin.py).
Run from a scratch directory (MetaBox writes agent_model/ and output/ under the current one); a run
may cover any subset of the agents, and its records merge into one results file, from which the
report is written (a record replaces the stored one with the same key: agent and mode, agent's
rollout, suite and agents of a Tester run):

    cd $(mktemp -d) && PYTHONPATH=<repo> python -m benchmarks.metabox_agents all --agents RLDEAFL --epochs 1 \
        --merge-into <repo>/benchmarks/results/metabox_agents.json
    python -m benchmarks.metabox_agents markdown benchmarks/results/metabox_agents.json > benchmarks/results/metabox_agents.md

For each port and each of MetaBox's parallel modes 'dummy' and 'subproc': MetaBox's `Trainer` trains
it on its suite (SUITES; bbob-10D unless named there; difficult split, MetaBox's optimizer env for the
agent, train_batch_size 2) for `--epochs` whole epochs (one batch episode per train problem), or
`--windows` windows (end_mode 'step', `max_learning_step` = windows · K); then the last checkpoint of
the dummy run is rolled out on the first test problem in a fresh process (`rollout`, one process for
all the agents of a run), and MetaBox's `Tester` ('Serial' mode, test_run runs, the first test
problems) tests the checkpoints of one suite together, next to MetaBox's baselines for that suite
(BASELINES: on bbob the Tester adds its own CMAES and Random_search; on the multi-task suites and mmo
it adds none, so MFEA, MetaBox's multi-task baseline, and on mmo CMAES and Random_search are named). float64 throughout (MetaBox's Config makes
torch float64). Every record carries the command that made it; prints `RESULT {json}` lines; `--out`
writes this run's records to one JSON file, `--merge-into` merges them into the results file.

RLDEAFL's env and the MFEA baseline are MetaBox's, mended for numpy 2 in whichever process runs them
(references/metabox_mended_optimizers.py; MetaBox pins numpy < 2, jppo needs numpy 2).
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

AGENTS = ("GLEET", "RLEPSO", "RLDAS", "RLDEAFL", "L2T", "SYMBOL", "RLEMMO")
# the suite each port trains, rolls out and is tested on, where it is not bbob-10D
SUITES = {"L2T": "cec2017mto", "RLEMMO": "mmo"}
# MetaBox's baselines run beside the ports in the Tester, per suite, where the Tester adds none itself
# (on bbob it adds CMAES and Random_search; on mmo and the multi-task suites, none): MFEA is MetaBox's
# multi-task evolutionary baseline; on mmo, the same two as on bbob (both run there as they are)
BASELINES = {"cec2017mto": ("MFEA",), "wcci2020": ("MFEA",), "augmented-wcci2020": ("MFEA",),
             "mmo": ("CMAES", "Random_search")}


def _setup():
    import jax

    jax.config.update("jax_enable_x64", True)


def _optimizer_class(name):
    from metaevobox.environment.optimizer.gleet_optimizer import GLEET_Optimizer
    from metaevobox.environment.optimizer.rldas_optimizer import RLDAS_Optimizer
    from metaevobox.environment.optimizer.l2t_optimizer import L2T_Optimizer
    from metaevobox.environment.optimizer.rlepso_optimizer import RLEPSO_Optimizer
    from metaevobox.environment.optimizer.symbol_optimizer import SYMBOL_Optimizer
    from metaevobox.environment.optimizer.rlemmo_optimizer import RLEMMO_Optimizer  # runs under numpy 2 as it is

    from references.metabox_mended_optimizers import RLDEAFL_Optimizer  # MetaBox's, mended for numpy 2

    return {"GLEET": GLEET_Optimizer, "RLEPSO": RLEPSO_Optimizer, "RLDAS": RLDAS_Optimizer,
            "L2T": L2T_Optimizer, "RLDEAFL": RLDEAFL_Optimizer, "SYMBOL": SYMBOL_Optimizer,
            "RLEMMO": RLEMMO_Optimizer}[name]


def _config(suite="bbob-10D", max_fes=None, **values):
    """MetaBox's Config for `suite`; `max_fes` replaces the episode length MetaBox sets for the suite
    (20000 evaluations on bbob-10D and the multi-task suites), for smoke runs."""
    from metaevobox import Config

    saved, sys.argv = sys.argv, sys.argv[:1]  # MetaBox's Config parses the command line
    try:
        config = Config({"train_problem": suite, "train_difficulty": "difficult", "test_problem": suite,
                         "test_difficulty": "difficult", "device": "cpu", "seed": 7, **values})
    finally:
        sys.argv = saved
    if max_fes:
        config.maxFEs = max_fes
        config.log_interval = max_fes // config.n_logpoint  # as MetaBox's Config derives it
    return config


def _windows_to_steps(name, windows):
    from jppo.metabbo.metabox_settings import SETTINGS

    k = SETTINGS[name]["K_epochs"] or 2  # RLDAS sets None and takes int(0.3 · (20000 // 2500)) on bbob-10D
    return windows * k


def train(name, mode, windows, epochs=None, batch_size=2, max_fes=None):
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
    config = _config(SUITES.get(name, "bbob-10D"), max_fes, train_parallel_mode=mode, n_checkpoint=1,
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
    return {"kind": "train", "agent": name, "suite": config.train_problem, "mode": mode, "epochs": epochs,
            "batch_size": batch_size, "max_learning_step": steps, "max_fes": config.maxFEs,
            "learning_time": agent.learning_time, "problems": [str(p) for p in datasets[0].data],
            "K_epochs": agent.K_epochs, "train_s": round(wall, 1), "episodes": len(log["return"]),
            "episode_returns": [[round(float(r), 4) for r in rs] for rs in log["return"]],
            "mean_loss": [float(sum(ls) / len(ls)) for ls in log["loss"] if ls],
            "checkpoints": checkpoints,
            "last_checkpoint": os.path.abspath(os.path.join(config.agent_save_dir, checkpoints[-1]))}


def rollout(name, checkpoint, max_fes=None):
    """Unpickle `checkpoint` (this process has never built the agent) and roll it out once."""
    import numpy as np
    from metaevobox.environment.basic_environment import PBO_Env
    from metaevobox.environment.problem.utils import construct_problem_set

    with open(checkpoint, "rb") as f:
        agent = pickle.load(f)
    config, datasets = construct_problem_set(_config(SUITES.get(name, "bbob-10D"), max_fes))
    problem = datasets[1].data[0]
    start = time.perf_counter()
    out = agent.rollout_episode(PBO_Env(copy.deepcopy(problem), _optimizer_class(name)(config)), seed=1)
    return {"kind": "rollout", "agent": name, "suite": config.test_problem, "str": str(agent), "class": f"{type(agent).__module__}.{type(agent).__qualname__}",
            "problem": str(problem), "max_fes": config.maxFEs, "rollout_s": round(time.perf_counter() - start, 1),
            "return": float(out["return"]), "fes": int(out["fes"]),
            "cost_first_last": [np.asarray(out["cost"][i], float).tolist() for i in (0, -1)]}  # L2T: one per task


def _baseline_class(name):
    """MetaBox's baseline `name` (MFEA: mended for numpy 2, references/metabox_mended_optimizers.py)."""
    import metaevobox.baseline.bbo as bbo

    from references import metabox_mended_optimizers as mended

    return getattr(mended, name) if name == "MFEA" else getattr(bbo, name)


def test(checkpoints, test_run, n_problems, suite="bbob-10D", max_fes=None):
    """MetaBox's Tester ('Serial') on the ports' checkpoints {name: path}, all of `suite`, beside the
    suite's MetaBox baselines; final costs per problem (per task on a multi-task suite)."""
    import numpy as np
    from metaevobox import Tester, get_baseline
    from metaevobox.environment.problem.utils import construct_problem_set

    config = _config(suite, max_fes, test_run=test_run, test_parallel_mode="Serial", full_meta_data=False)
    config, (train_set, test_set) = construct_problem_set(config)
    test_set.data = test_set.data[:n_problems]
    test_set.N = len(test_set.data)
    config.baselines = {f"{n}-compat": {"agent": n, "optimizer": _optimizer_class(n), "model_load_path": path}
                        for n, path in checkpoints.items()}
    config.baselines.update({b: {"optimizer": _baseline_class(b)} for b in BASELINES.get(suite, ())})
    baselines, config = get_baseline(config)
    tester = Tester(config, baselines, (train_set, test_set))
    start = time.perf_counter()
    tester.test(log=False)
    wall = time.perf_counter() - start

    def final(run):  # the last log point: a number, or one per task
        last = np.asarray(run[-1] if isinstance(run, list) else np.asarray(run)[-1], float)
        return float(last) if last.ndim == 0 else last.tolist()

    costs = {p: {a: [final(run) for run in runs] for a, runs in by_agent.items()}
             for p, by_agent in tester.test_results["cost"].items()}
    t2 = {p: {a: [round(float(t) / 1e3, 2) for t in ts] for a, ts in by_agent.items()}
          for p, by_agent in tester.test_results["T2"].items()}
    return {"kind": "test", "suite": suite, "ports": sorted(checkpoints), "test_s": round(wall, 1),
            "test_run": test_run, "max_fes": config.maxFEs, "problems": [str(p) for p in test_set.data], "final_cost": costs, "rollout_s": t2}


# --------------------------------------------------------------------------- records and the report


def _kind(r) -> str:
    return r.get("kind") or ("train" if "mode" in r else "test" if "final_cost" in r else "rollout")


def _key(r) -> tuple:
    """Records with the same key replace each other when merged."""
    kind = _kind(r)
    if kind == "train":
        return kind, r["agent"], r["mode"]
    if kind == "rollout":
        return kind, r["agent"]
    return kind, r.get("suite", "bbob-10D"), tuple(sorted(r.get("ports") or _test_ports(r)))


def _test_ports(r):
    agents = next(iter(r["final_cost"].values()))
    return [a for a in agents if a in AGENTS]


def merge(stored: list[dict], new: list[dict]) -> list[dict]:
    """`stored` with each record of `new` replacing the one of the same key (or appended)."""
    out = {_key(r): r for r in stored}
    for r in new:
        out[_key(r)] = r
    return list(out.values())


# why an agent's 'dummy' and 'subproc' runs differ with the same seeds (MetaBox's env, not the port)
_GLOBAL_RNG = ("numpy's global random state, which `env.seed` does not seed: in 'dummy' the envs draw from "
               "the Trainer process's, in 'subproc' each worker process from its own")
WHY_MODES_DIFFER = {
    "RLDAS": "MetaBox's `RLDAS_Optimizer` is not reproducible by itself (one env, seed 11, reset then actions "
             "0, 1, 2, run twice in one process, gave rewards 0.731, 0.218, 0.051 and 0.553, 0.410, 0.037)",
    "L2T": "MetaBox's `L2T_Optimizer` draws its DE operators' indices and crossover points (`DE_mutation`, "
           "`DE_crossover`, `DE_rand_1`, `mixed_DE`: `np.random.randint`, `np.random.rand`) from " + _GLOBAL_RNG,
    "RLEMMO": "MetaBox's `RLEMMO_Optimizer` draws its operators' random indices and perturbations "
              "(`np.random.choice`, `np.random.randint`, `np.random.normal`) from " + _GLOBAL_RNG,
    "SYMBOL": "MetaBox's `SYMBOL_Optimizer`'s teacher (its `MadDE`, whose moves the reward imitates) draws its "
              "mutation indices (`np.random.randint`) from " + _GLOBAL_RNG,
}


def _fmt(x) -> str:
    return "[" + ", ".join(map(_fmt, x)) + "]" if isinstance(x, list) else f"{x:.4g}"


def _mean(values):
    """The mean over runs of numbers or of per-task lists."""
    if isinstance(values[0], list):
        return [sum(v[i] for v in values) / len(values) for i in range(len(values[0]))]
    return sum(values) / len(values)


def _slash(x) -> str:
    return " / ".join(map(_fmt, x)) if isinstance(x, list) else _fmt(x)


def _order(name):
    return (AGENTS.index(name), "") if name in AGENTS else (len(AGENTS), name)


def markdown(results: list[dict]) -> str:
    """benchmarks/results/metabox_agents.md from merged records (see `merge`)."""
    results = [dict(r, suite=r.get("suite", "bbob-10D")) for r in results]
    trains = sorted((r for r in results if _kind(r) == "train"),
                    key=lambda r: (_order(r["agent"]), r["mode"] != "dummy", r["mode"]))
    rollouts = sorted((r for r in results if _kind(r) == "rollout"), key=lambda r: _order(r["agent"]))
    tests = [r for r in results if _kind(r) == "test"]
    have = {r["agent"] for r in trains}
    lines = ["# MetaBox's PPO agents, ported (compat.agents), under MetaBox's own Trainer and Tester", "",
             f"Agents with rows: {', '.join(a for a in AGENTS if a in have) or 'none'}."]
    missing = [a for a in AGENTS if a not in have]
    if missing:
        lines.append(f"No rows yet: {', '.join(missing)}.")
    lines += ["", "Commands (each from a scratch directory, `PYTHONPATH=<repo>`, with `/work/mbvenv/bin/python`, "
                  "the venv where metaevobox 2.0.2 imports beside jppo; each run's records merged into "
                  "`benchmarks/results/metabox_agents.json` with `--merge-into`, this report written by "
                  "`python -m benchmarks.metabox_agents markdown benchmarks/results/metabox_agents.json`):", ""]
    commands = []
    for r in results:
        c = r.get("command")
        prefix = "python -m benchmarks.metabox_agents "
        if c and c.startswith(prefix):  # records written before commands were cleaned
            c = _command(c[len(prefix):].split())
        if c and c not in commands:
            commands.append(c)
    lines += [f"    {c}" for c in commands] + [""]
    if any("CKPT" in c for c in commands):
        lines += ["CKPT: the last checkpoint of that agent's 'dummy' run above.", ""]
    suites = {}
    for r in trains:
        suites.setdefault(r["suite"], r["problems"])
    lines.append("MetaBox's `Trainer`, difficult split, MetaBox's optimizer env of each agent, train_mode 'single', "
                 "one batch episode (train_batch_size envs) per train problem per epoch; float64 (MetaBox's Config "
                 "makes torch float64). Wall time is the Trainer's, on a 2-core machine shared with other jobs. "
                 "Train problems: " + "; ".join(f"{s} ({len(ps)}): {', '.join(ps)}" for s, ps in suites.items()) + ".")
    lines += ["", "## Training", "",
              "| agent | suite | mode | budget | batch episodes | learning steps | K | wall s | "
              "mean return per batch episode | mean loss per batch episode |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in trains:
        budget = (f"{r['epochs']} epoch{'s' if r['epochs'] > 1 else ''}" if r.get("epochs")
                  else f"{r['max_learning_step']} steps")
        if r.get("max_fes") not in (None, 20000):
            budget += f", maxFEs {r['max_fes']}"
        returns = ", ".join(_fmt(sum(x) / len(x)) for x in r["episode_returns"])
        losses = ", ".join(_fmt(x) for x in r["mean_loss"])
        lines.append(f"| {r['agent']} | {r['suite']} | {r['mode']} | {budget}, batch {r['batch_size']} | {r['episodes']} "
                     f"| {r['learning_time']} | {r['K_epochs']} | {r['train_s']} | {returns} | {losses} |")
    both = [a for a in AGENTS if {"dummy", "subproc"} <= {r["mode"] for r in trains if r["agent"] == a}]
    same = [a for a in both if len({json.dumps([x["episode_returns"], x["mean_loss"]]) for x in trains
                                    if x["agent"] == a and x["mode"] in ("dummy", "subproc")}) == 1]
    lines += ["", f"Identical returns and losses in 'dummy' and 'subproc' (same seeds): {', '.join(same) or 'none'}."]
    differ = [a for a in both if a not in same]
    if differ:
        lines.append(f"Different: {', '.join(differ)}.")
    lines += [f"{a}'s differ because {WHY_MODES_DIFFER[a]}." for a in differ if a in WHY_MODES_DIFFER]
    if "RLDEAFL" in have:
        lines.append("RLDEAFL's env is MetaBox's `RLDEAFL_Optimizer` with its mutation operators' index draws mended "
                     "for numpy 2 in every process that steps it (references/metabox_mended_optimizers.py: MetaBox's "
                     "own draws, so the results are those of numpy < 2).")
    if rollouts:
        lines += ["", "## The dummy run's last checkpoint, rolled out in a fresh process", "",
                  "First / final cost: one number, or one per task on a multi-task suite.", "",
                  "| agent | suite | class after unpickling | problem | return | FEs | first / final cost | rollout s |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rollouts:
            first, last = r["cost_first_last"]
            lines.append(f"| {r['agent']} | {r['suite']} | `{r['class']}` | {r['problem']} | {_fmt(r['return'])} | "
                         f"{r['fes']} | {_fmt(first)} / {_fmt(last)} | {r['rollout_s']} |")
    by_suite = {}
    for r in tests:
        by_suite.setdefault((r["suite"], r["test_run"], tuple(r["problems"])), []).append(r)
    for (suite, test_run, problems), runs in by_suite.items():
        columns, note = {}, []
        for r in runs:
            for a in next(iter(r["final_cost"].values())):
                if a in columns:
                    theirs = [columns[a]["final_cost"][p][a] for p in problems]
                    ours = [r["final_cost"][p][a] for p in problems]
                    if theirs != ours and a not in note:
                        note.append(a)
                else:
                    columns[a] = r
        agents = sorted(columns, key=_order)
        lines += ["", f"## MetaBox's Tester on {suite} ('Serial', test_run {test_run}, the first {len(problems)} test "
                      "problems)", "",
                  "Mean final cost over the runs (one per task on a multi-task suite), MetaBox's baselines alongside; "
                  "in brackets MetaBox's T2 (rollout seconds), mean over runs. "
                  + ("Tester runs (wall s): " + "; ".join(f"{', '.join(r['ports'] if 'ports' in r else _test_ports(r))}"
                                                          f" with the baselines, {r['test_s']}" for r in runs) + "."
                     if len(runs) > 1 else f"Tester wall time {runs[0]['test_s']} s."), ""]
        shared = [a for a in agents if a not in AGENTS and sum(a in next(iter(r["final_cost"].values())) for r in runs) > 1]
        if shared:
            lines += [f"The baselines ({', '.join(shared)}) ran in each Tester run with the same seeds (1 .. test_run): "
                      + ("the same final costs in each." if not note else f"{', '.join(note)} differ between runs; "
                         "the first run's are shown."), ""]
        lines += ["| problem | " + " | ".join(agents) + " |", "|---|" + "---|" * len(agents)]
        for p in problems:
            cells = []
            for a in agents:
                r = columns[a]
                t = r["rollout_s"][p][a]
                cells.append(f"{_slash(_mean(r['final_cost'][p][a]))} ({sum(t) / len(t):.2f} s)")
            lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _command(argv) -> str:
    """The command line that made a record, as the report lists it: without where its records were
    written (`--out`, `--merge-into`), a checkpoint's path shown as CKPT."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--out", "--merge-into"):
            skip = True
        elif not arg.startswith(("--out=", "--merge-into=")):
            name, sep, value = arg.rpartition("=")
            out.append(f"{name}{sep}CKPT" if value.endswith(".pkl") else arg)
    return " ".join(["python -m benchmarks.metabox_agents", *out])


def _emit(result, results, argv):
    result.setdefault("command", _command(argv))
    print("RESULT " + json.dumps(result), flush=True)
    results.append(result)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metabox_agents", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["all", "train", "rollout", "test", "merge", "markdown"])
    parser.add_argument("args", nargs="*", help="train: AGENT MODE; rollout: AGENT CHECKPOINT ...; test: AGENT=CKPT ... "
                                                "(one suite); merge: STORE.json NEW.json ... (merges into STORE); "
                                                "markdown: STORE.json (prints the report)")
    parser.add_argument("--windows", type=int, default=2, help="training budget in windows of K learning steps")
    parser.add_argument("--epochs", type=int, help="training budget in whole epochs (overrides --windows)")
    parser.add_argument("--batch-size", type=int, default=2, help="MetaBox's train_batch_size")
    parser.add_argument("--agents", help="comma-separated (default: every port in compat.agents, in the order "
                                         + ", ".join(AGENTS) + ")")
    parser.add_argument("--modes", default="dummy,subproc")
    parser.add_argument("--test-run", type=int, default=1)
    parser.add_argument("--test-problems", type=int, default=2)
    parser.add_argument("--no-test", action="store_true", help="all: skip the Tester run")
    parser.add_argument("--max-fes", type=int, help="episode length in evaluations (default: MetaBox's for the "
                                                    "suite, 20000 on bbob-10D and the multi-task suites); smoke runs")
    parser.add_argument("--out", help="write this run's records to this JSON file")
    parser.add_argument("--merge-into", help="merge this run's records into this JSON file (created if missing)")
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parser.parse_args(argv)
    if a.what in ("merge", "markdown"):
        if not a.args or (a.what == "markdown" and len(a.args) != 1):
            parser.error(f"{a.what} takes {'STORE.json NEW.json ...' if a.what == 'merge' else 'STORE.json'}")
        if a.what == "markdown":
            print(markdown(_load(a.args[0])), end="")
        else:
            _store(a.args[0], [r for path in a.args[1:] for r in _load(path)])
        return 0
    _setup()
    results = []
    if a.what == "train":
        _emit(train(a.args[0], a.args[1], a.windows, a.epochs, a.batch_size, a.max_fes), results, argv)
    elif a.what == "rollout":
        if not a.args or len(a.args) % 2:
            parser.error("rollout takes AGENT CHECKPOINT [AGENT CHECKPOINT ...]")
        for name, path in zip(a.args[::2], a.args[1::2]):
            _emit(rollout(name, path, a.max_fes), results, argv)
    elif a.what == "test":
        checkpoints = dict(s.split("=", 1) for s in a.args)
        suites = {SUITES.get(n, "bbob-10D") for n in checkpoints}
        if len(suites) != 1:
            parser.error(f"the Tester takes one suite for all its agents; these run on {sorted(suites)}")
        _emit(test(checkpoints, a.test_run, a.test_problems, suites.pop(), a.max_fes), results, argv)
    else:
        from compat.agents import PORTS

        names = a.agents.split(",") if a.agents else [n for n in AGENTS if n in PORTS]
        unknown = [n for n in names if n not in PORTS]
        if unknown:
            parser.error(f"no port for {unknown} in compat.agents (ports: {sorted(PORTS)})")
        last = {}
        for name in names:
            for mode in a.modes.split(","):
                r = train(name, mode, a.windows, a.epochs, a.batch_size, a.max_fes)
                _emit(r, results, argv)
                if mode == "dummy" or name not in last:
                    last[name] = r["last_checkpoint"]
        # one fresh process rolls out every agent's checkpoint: nothing of this one carries over
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "benchmarks.metabox_agents", "rollout",
                              *[x for item in last.items() for x in item],
                              *(["--max-fes", str(a.max_fes)] if a.max_fes else [])], capture_output=True, text=True)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode or len(lines) != len(last):
            raise RuntimeError(f"rolling out {', '.join(last)} in a fresh process failed:\n{out.stderr[-3000:]}")
        for line in lines:
            r = json.loads(line[len("RESULT "):])
            r["process_s"] = round(time.perf_counter() - start, 1)  # the whole process, all its rollouts
            r["command"] = _command(argv)
            _emit(r, results, argv)
        if not a.no_test:
            for suite in dict.fromkeys(SUITES.get(n, "bbob-10D") for n in last):  # one Tester run per suite
                _emit(test({n: p for n, p in last.items() if SUITES.get(n, "bbob-10D") == suite}, a.test_run,
                           a.test_problems, suite, a.max_fes), results, argv)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)
    if a.merge_into:
        _store(a.merge_into, results)
    return 0


def _load(path):
    with open(path) as f:
        return json.load(f)


def _store(path, records):
    """Merge `records` into the JSON file `path` (written whole, atomically)."""
    stored = _load(path) if os.path.exists(path) else []
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(merge(stored, records), f, indent=1)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
