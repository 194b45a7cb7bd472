"""One MetaBox `train_episode`, compat.PPO_Agent vs the same algorithm in torch.

Both sides: RLEPSO-shaped networks (actor: mu and sigma MLPs 64-32, sampled clamped Gaussian actions;
critic 16-8) with identical initial weights, Adam, MetaBox's loop (windows of n_step = 10, K = 3
epochs per window, per-network clipping), on the same numpy env (`ToyOptimizerEnv`, 35-dimensional
actions, 50 steps per episode, so 15 optimizer steps per episode whatever the actions). The torch side
is `references/torch_ppo.torch_train_episode`, the loop the parity test checks compat against; it steps the
envs in a list where compat goes through its `ParallelEnv` in dummy mode. Settings: a batch of 1 env
(MetaBox's default `train_batch_size`) and of 16, in float64 (MetaBox's Config makes torch float64) and
float32. Episodes are alternated compat/torch after one warm-up each; the figure is the median of
per-pair ratios.

With metaevobox importable (see references/metabox_dropin.py), a second table: MetaBox's own torch agents
(GLEET, RLDEAFL, SYMBOL from `metaevobox.baseline.metabbo`, their own `train_episode`) against the compat
ports (`compat.agents`) on MetaBox's own optimizer envs (`GLEET_Optimizer`, ...), the same bbob-10D problem
and seeds, float64, whole episodes, alternated. The figure is the agent's time: episode time less the time
spent inside the env's own `reset` / `step` (timed around each call). That table alone, spliced into
results/compat.md: `python -m benchmarks.bench_compat metabox [--quick]`.

Torch runs with one intra-op thread: these networks are far too small to gain from more, and on a
machine whose cores are busy with other work its thread pool stalls (on the 2-core machine of the
committed results, shared with other jobs, an episode of 16 envs took 0.8-19 s with 2 threads
against 0.2 s with 1).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
import types
from pathlib import Path

import jax
import numpy as np
import torch
from flax import nnx

from benchmarks import report
from compat.networks import RLEPSOActor, RLEPSOCritic
from compat.ppo import PPO_Agent
from references.envs import ToyOptimizerEnv
from references.torch_ppo import TorchClampedActor, TorchValueCritic, torch_train_episode

FEATURES, ACTIONS, STEPS, N_STEP, K = 3, 35, 50, 10, 3
LRS = [1e-4, 1e-4]
SETTINGS = [(1, "float64"), (16, "float64"), (16, "float32")]


def _config(save_dir):
    return types.SimpleNamespace(gamma=0.999, n_step=N_STEP, K_epochs=K, eps_clip=0.1, max_grad_norm=math.inf,
                                 device="cpu", optimizer="Adam", agent_save_dir=save_dir, save_interval=10**9,
                                 end_mode="epoch", max_learning_step=10**9, no_tb=True, seed=0)


def _envs(n):
    return [ToyOptimizerEnv(action_dim=ACTIONS, max_steps=STEPS, feature_dim=FEATURES) for _ in range(n)]


def _one_setting(batch, dtype, reps, save_dir):
    """(compat seconds per episode, torch seconds per episode, compat first-episode seconds)."""
    with jax.enable_x64(dtype == "float64"):
        actor = RLEPSOActor(FEATURES, ACTIONS, rngs=nnx.Rngs(0))
        critic = RLEPSOCritic(FEATURES, rngs=nnx.Rngs(1))
        t_actor, t_critic = TorchClampedActor(actor, sample=True), TorchValueCritic(critic)
        t_opt = torch.optim.Adam([{"params": t_actor.params(), "lr": LRS[0]}, {"params": t_critic.params(), "lr": LRS[1]}])
        agent = PPO_Agent(_config(save_dir), {"actor": actor, "critic": critic}, LRS)
        cfg = _config(save_dir)
        torch.manual_seed(0)

        def run_compat(seed):
            _, info = agent.train_episode(_envs(batch), seeds=[seed * batch + i for i in range(batch)])
            assert len(info["loss"]) == K * math.ceil(STEPS / N_STEP)

        def run_torch(seed):
            losses, _, _ = torch_train_episode(t_actor, t_critic, t_opt, _envs(batch), seed * batch, cfg)
            assert len(losses) == K * math.ceil(STEPS / N_STEP)

        start = time.perf_counter()
        run_compat(0)
        first = time.perf_counter() - start
        run_torch(0)
        compat_s, torch_s = [], []
        for i in range(1, reps + 1):
            for fn, times in ((run_compat, compat_s), (run_torch, torch_s)):
                start = time.perf_counter()
                fn(i)
                times.append(time.perf_counter() - start)
    return np.array(compat_s), np.array(torch_s), first


class _EnvClock:
    """Seconds spent inside the envs' reset/step, and the steps taken (class attributes: copies of the env add to
    them too)."""

    seconds = 0.0
    steps = 0


def _clocked(method):
    """`method` with its time added to `_EnvClock.seconds` (and its calls, for `step`, to `_EnvClock.steps`)."""
    def timed(self, *a, **k):
        start = time.perf_counter()
        try:
            return method(self, *a, **k)
        finally:
            _EnvClock.seconds += time.perf_counter() - start
            _EnvClock.steps += method.__name__ == "step"

    return timed


def _timed_env_class(base):
    """`base` whose reset and step are clocked (the env's own share of an episode)."""
    return type("TimedEnv", (base,), {"reset": _clocked(base.reset), "step": _clocked(base.step)})


# MetaBox's agents measured against their ports: name -> (its module in baseline/metabbo, its optimizer env's
# module in environment/optimizer and class). A port not (yet) in compat.agents.PORTS is a row saying so.
METABOX_AGENTS = {"GLEET": ("gleet", "gleet_optimizer", "GLEET_Optimizer"),
                  "RLDEAFL": ("rldeafl", "rldeafl_optimizer", "RLDEAFL_Optimizer"),
                  "SYMBOL": ("symbol", "symbol_optimizer", "SYMBOL_Optimizer")}
METABOX_HEADER = ("agent, setting", "compat agent ms / episode", "torch agent ms / episode", "torch / compat (agent)",
                  "torch / compat (whole)", "env ms compat / torch", "compat warm-up s")
METABOX_HEADING = "MetaBox's torch agents vs the compat ports on MetaBox's own optimizer envs"


def _metabox_configs(save_dir):
    """MetaBox Configs (bbob-10D, difficult split, float64) for the torch and the compat side, and the first train
    problem; None (and a line printed) without metaevobox."""
    import copy
    import sys

    try:
        from metaevobox import Config
        from metaevobox.environment.problem.utils import construct_problem_set
    except Exception as err:  # noqa: BLE001  (metaevobox pulls in many packages)
        print(f"MetaBox agents skipped: metaevobox does not import ({type(err).__name__}: {err})", flush=True)
        return None
    saved, sys.argv = sys.argv, sys.argv[:1]  # MetaBox's Config parses the command line (and makes torch float64)
    try:
        configs = [Config({"train_problem": "bbob-10D", "train_difficulty": "difficult", "device": "cpu", "seed": 0,
                           "no_tb": True, "end_mode": "epoch", "max_learning_step": 10**9,
                           "agent_save_dir": f"{save_dir}/{side}/"}) for side in ("torch", "compat")]
    finally:
        sys.argv = saved
    configs = [construct_problem_set(c)[0] for c in configs]
    _, datasets = construct_problem_set(copy.copy(configs[0]))
    return configs, datasets[0].data[0]


def _port_vs_metabox(name, reps, save_dir):
    """MetaBox's torch agent `name` vs compat's port on its own optimizer env: `(row, note)`; None without
    metaevobox; a row that says so when compat has no port of it yet.

    Both sides train whole episodes on the same bbob-10D problem with the same seeds, alternated after one
    warm-up episode each, float64. Agent time = episode time less the time inside the env's reset/step.
    """
    import copy
    import importlib

    from compat.agents import PORTS
    from references.metabox_mends import mend_rldeafl_for_numpy2

    if name not in PORTS:
        return (f"{name}: not measured (no port in compat.agents yet)", *["-"] * 6), None
    dtype = torch.get_default_dtype()
    made = _metabox_configs(save_dir)
    if made is None:
        return None
    configs, problem = made
    agent_module, optimizer_module, optimizer_class = METABOX_AGENTS[name]
    try:
        torch_class = getattr(importlib.import_module(f"metaevobox.baseline.metabbo.{agent_module}"), name)
        optimizer = getattr(importlib.import_module(f"metaevobox.environment.optimizer.{optimizer_module}"),
                            optimizer_class)
        from metaevobox.environment.basic_environment import PBO_Env

        mend_rldeafl_for_numpy2()  # MetaBox's RLDEAFL env under numpy 2 (references/metabox_mends.py)
        env_class = _timed_env_class(PBO_Env)
        with jax.enable_x64(True):
            torch.manual_seed(0)
            agents = {"torch": torch_class(configs[0]), "compat": PORTS[name](configs[1])}
            shape = {}

            def episode(side, seed):
                env = env_class(copy.deepcopy(problem), optimizer(configs[0]))
                _EnvClock.seconds, _EnvClock.steps = 0.0, 0
                before = agents[side].learning_time
                start = time.perf_counter()
                _, info = agents[side].train_episode(envs=[env], seeds=[seed])
                total = time.perf_counter() - start
                assert info["learn_steps"] > before
                shape[side] = (_EnvClock.steps, info["learn_steps"] - before)
                return total, _EnvClock.seconds

            first = episode("compat", 0)[0]
            episode("torch", 0)
            times = {"torch": [], "compat": []}
            for i in range(1, reps + 1):
                for side in ("compat", "torch"):
                    times[side].append(episode(side, i))
    finally:
        torch.set_default_dtype(dtype)
    t = {side: np.array(v) for side, v in times.items()}  # [reps, (episode, env)]
    agent = {side: v[:, 0] - v[:, 1] for side, v in t.items()}
    ratio = agent["torch"] / agent["compat"]
    whole = t["torch"][:, 0] / t["compat"][:, 0]
    row = (f"{name}, 1 env, float64, {problem}", f"{1e3 * np.median(agent['compat']):.0f}",
           f"{1e3 * np.median(agent['torch']):.0f}",
           f"**{np.median(ratio):.2f}x** ({np.percentile(ratio, 25):.2f}-{np.percentile(ratio, 75):.2f})",
           f"{np.median(whole):.2f}x", f"{1e3 * np.median(t['compat'][:, 1]):.0f} / {1e3 * np.median(t['torch'][:, 1]):.0f}",
           f"{first:.1f}")
    print(f"{name}: agent time compat {1e3 * np.median(agent['compat']):.0f} ms, torch {1e3 * np.median(agent['torch']):.0f} ms, "
          f"torch/compat {np.median(ratio):.2f}x (whole episode {np.median(whole):.2f}x)", flush=True)
    note = (f"{name}: {reps} alternated pairs; one episode of MetaBox's {optimizer_class}: env steps / optimizer steps "
            f"torch {shape['torch'][0]} / {shape['torch'][1]}, compat {shape['compat'][0]} / {shape['compat'][1]}; "
            f"torch side metaevobox 2.0.2's own {name}.train_episode with its ParallelEnv (dummy), compat side "
            f"compat.agents.{name} with compat's ParallelEnv (dummy).")
    return row, note


# Why RLDEAFL's ratio stays near 1 (a profile of the port's compiled calls when its row was added: XLA's cost analysis
# of `act` and of one window's `epochs`, and a trace of `epochs`)
RLDEAFL_PROFILE = (
    "RLDEAFL is arithmetic-bound on both sides: XLA's cost analysis of the port's compiled calls gives 0.11 GFLOP "
    "per acting step and 3.4 GFLOP per window epoch (10 states of 100 individuals x 10 dimensions through two "
    "64-wide attention encoders, forward and gradient), ~227 GFLOP per episode; MetaBox's torch loop does about "
    "the same (~200: at k = 0 it reuses the acting graph). At the times above that is ~11 GFLOP/s float64 for "
    "compat and ~9 for torch (1 thread); 5x would need compat at ~50 GFLOP/s sustained on these 2 shared cores, "
    "above what one lone [10000, 64] x [64, 64] float64 product reaches here (~40). A trace of one window's epochs: "
    "the [10000, 64] projections and the [100, 100, 100] attention products, forward and gradient, are most of it. "
    "The port went from 0.60x (one pair) to this by computing the linear layers and the attention projections as "
    "2-D products (XLA's CPU gradients of the 3-D forms ran 2-3x slower); what is left is the products themselves.")


def metabox_section(quick: bool, save_dir):
    """`(heading, header, rows, notes)` of the MetaBox agents' table, or None without metaevobox."""
    rows, notes = [], []
    for name in METABOX_AGENTS:
        made = _port_vs_metabox(name, 3 if quick else 5, save_dir)
        if made is None:
            return None
        rows.append(made[0])
        notes += [made[1]] if made[1] else []
    if any(row[0].startswith("RLDEAFL, ") for row in rows):
        notes.append(RLDEAFL_PROFILE)
    notes.append("Agent time = episode time less the time inside the env's reset/step; ratio = torch agent time / "
                 "compat agent time, median (IQR) of per-pair ratios after one warm-up episode each; 'whole' = the same "
                 "ratio for whole episodes, env included. Same problem, seeds and float64 on both sides (MetaBox's "
                 "Config makes torch float64); MetaBox's RLDEAFL env steps under numpy 2 with "
                 "references/metabox_mends.py's mend.")
    return METABOX_HEADING, METABOX_HEADER, rows, notes


def main(out_dir: Path, quick: bool):
    reps = 3 if quick else 20
    load_start = os.getloadavg()
    rows, notes, plot = [], [], {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see the module docstring
    with tempfile.TemporaryDirectory() as save_dir:
        for batch, dtype in SETTINGS:
            compat_s, torch_s, first = _one_setting(batch, dtype, reps, save_dir)
            ratios = torch_s / compat_s
            rows.append((f"{batch} env(s), {dtype}", f"{1e3 * np.median(compat_s):.1f}", f"{1e3 * np.median(torch_s):.1f}",
                         f"**{np.median(ratios):.2f}x** ({np.percentile(ratios, 25):.2f}-{np.percentile(ratios, 75):.2f})",
                         f"{first:.1f}"))
            plot[f"compat\n{batch} env f{dtype[5:]}"] = compat_s
            plot[f"torch\n{batch} env f{dtype[5:]}"] = torch_s
            print(f"batch {batch} {dtype}: compat {1e3 * np.median(compat_s):.1f} ms, torch {1e3 * np.median(torch_s):.1f} ms, "
                  f"torch/compat {np.median(ratios):.2f}x", flush=True)
        metabox = metabox_section(quick, save_dir)
    torch.set_num_threads(threads)
    notes.append(f"{reps} alternated pairs per setting after one warm-up episode each; ratio = torch time / compat time "
                 f"(> 1: compat is faster), median and IQR of the per-pair ratios. The compat warm-up column is its "
                 f"first episode, compilation included.")
    notes.append(f"Per episode: {STEPS} env steps x batch, {math.ceil(STEPS / N_STEP)} windows, "
                 f"{K * math.ceil(STEPS / N_STEP)} optimizer steps; networks obs {FEATURES} -> actor 64-32 -> "
                 f"{ACTIONS} (x2: mu, sigma), critic 16-8; torch {torch.__version__} with 1 thread (its default here is {threads}; "
                 f"see bench_compat.py for why).")
    notes.append("Acting uses the episode's parameter pytree (kept current after every optimizer step), not a fresh read "
                 "of the NNX modules per call: that read cost 57-66% of an episode before it was removed.")
    notes.append(report.machine() + f" Load average (1, 5, 15 min) at the start {', '.join(f'{x:.1f}' for x in load_start)}, "
                 f"at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())}: the cores were shared with other jobs.")
    report.write(
        out_dir, "compat",
        title=f"train_episode, compat.PPO_Agent vs torch: {STEPS} steps, n_step {N_STEP}, K {K}",
        header=("setting", "compat ms / episode", "torch ms / episode", "torch / compat", "compat warm-up s"),
        rows=rows, notes=notes, plot=plot, ylabel="seconds per train_episode",
        sections=[] if metabox is None else [metabox],
    )


def splice_metabox(out_dir: Path, quick: bool) -> None:
    """Run the MetaBox agents' section alone (torch with one thread) and put it into `out_dir/compat.md`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see the module docstring
    with tempfile.TemporaryDirectory() as save_dir:
        section = metabox_section(quick, save_dir)
    torch.set_num_threads(threads)
    if section is None:
        raise SystemExit("metaevobox does not import: nothing measured")
    heading, header, rows, notes = section
    notes = notes + [report.machine(), "Measured apart from the rest of this file and spliced in: `python -m "
                     "benchmarks.bench_compat metabox" + (" --quick`" if quick else "`")]
    report.splice_section(out_dir / "compat.md", heading, header, rows, notes)


if __name__ == "__main__" and sys.argv[1:2] == ["metabox"]:
    splice_metabox(Path(__file__).parent / "results", quick="--quick" in sys.argv[2:])
