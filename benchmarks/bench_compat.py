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

With metaevobox importable (see references/metabox_dropin.py), a second table: MetaBox's own torch GLEET agent
(`metaevobox.baseline.metabbo.gleet.GLEET`, its own `train_episode`) against the compat port
(`compat.agents.GLEET`) on MetaBox's `GLEET_Optimizer` env, the same bbob-10D problem and seeds, float64,
whole episodes (199 steps, 20 windows, 60 optimizer steps), alternated. The figure is the agent's time:
episode time less the time spent inside the env's own `reset` / `step` (timed around each call).

Torch runs with one intra-op thread: these networks are far too small to gain from more, and on a
machine whose cores are busy with other work its thread pool stalls (on the 2-core machine of the
committed results, shared with other jobs, an episode of 16 envs took 0.8-19 s with 2 threads
against 0.2 s with 1).
"""

from __future__ import annotations

import math
import os
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
    """Seconds spent inside the envs' reset/step (a class attribute: copies of the env add to it too)."""

    seconds = 0.0


def _clocked(method):
    """`method` with its time added to `_EnvClock.seconds`."""
    def timed(self, *a, **k):
        start = time.perf_counter()
        try:
            return method(self, *a, **k)
        finally:
            _EnvClock.seconds += time.perf_counter() - start

    return timed


def _timed_env_class(base):
    """`base` whose reset and step are clocked (the env's own share of an episode)."""
    return type("TimedEnv", (base,), {"reset": _clocked(base.reset), "step": _clocked(base.step)})


def _gleet_vs_metabox(reps, save_dir):
    """MetaBox's torch GLEET vs compat.agents.GLEET on GLEET_Optimizer: (rows, notes), or None without metaevobox."""
    import copy
    import sys

    try:
        from metaevobox import Config
        from metaevobox.baseline.metabbo.gleet import GLEET as TorchGLEET
        from metaevobox.environment.basic_environment import PBO_Env
        from metaevobox.environment.optimizer.gleet_optimizer import GLEET_Optimizer
        from metaevobox.environment.problem.utils import construct_problem_set
    except Exception as err:  # noqa: BLE001  (metaevobox pulls in many packages)
        print(f"GLEET vs MetaBox skipped: metaevobox does not import ({type(err).__name__}: {err})", flush=True)
        return None
    from compat.agents import GLEET

    dtype = torch.get_default_dtype()
    saved, sys.argv = sys.argv, sys.argv[:1]  # MetaBox's Config parses the command line (and makes torch float64)
    try:
        configs = [Config({"train_problem": "bbob-10D", "train_difficulty": "difficult", "device": "cpu", "seed": 0,
                           "no_tb": True, "end_mode": "epoch", "max_learning_step": 10**9,
                           "agent_save_dir": f"{save_dir}/{side}/"}) for side in ("torch", "compat")]
    finally:
        sys.argv = saved
    try:
        configs = [construct_problem_set(c)[0] for c in configs]
        _, datasets = construct_problem_set(copy.copy(configs[0]))
        problem = datasets[0].data[0]
        env_class = _timed_env_class(PBO_Env)
        with jax.enable_x64(True):
            torch.manual_seed(0)
            agents = {"torch": TorchGLEET(configs[0]), "compat": GLEET(configs[1])}

            def episode(side, seed):
                env = env_class(copy.deepcopy(problem), GLEET_Optimizer(configs[0]))
                _EnvClock.seconds = 0.0
                start = time.perf_counter()
                _, info = agents[side].train_episode(envs=[env], seeds=[seed])
                total = time.perf_counter() - start
                assert info["learn_steps"] > 0
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
    rows = [(f"GLEET, 1 env, float64, {problem}", f"{1e3 * np.median(agent['compat']):.0f}",
             f"{1e3 * np.median(agent['torch']):.0f}",
             f"**{np.median(ratio):.2f}x** ({np.percentile(ratio, 25):.2f}-{np.percentile(ratio, 75):.2f})",
             f"{np.median(whole):.2f}x", f"{1e3 * np.median(t['compat'][:, 1]):.0f} / {1e3 * np.median(t['torch'][:, 1]):.0f}",
             f"{first:.1f}")]
    print(f"GLEET: agent time compat {1e3 * np.median(agent['compat']):.0f} ms, torch {1e3 * np.median(agent['torch']):.0f} ms, "
          f"torch/compat {np.median(ratio):.2f}x (whole episode {np.median(whole):.2f}x)", flush=True)
    notes = [f"{reps} alternated pairs after one warm-up episode each. Agent time = episode time less the time inside "
             f"the env's reset/step; ratio = torch agent time / compat agent time, median (IQR) of per-pair ratios; "
             f"'whole' = the same ratio for whole episodes, env included. One episode: 199 env steps (100 particles), "
             f"20 windows, 60 optimizer steps, MetaBox's GLEET settings (float64, n_step 10, K 3). "
             f"torch side: metaevobox 2.0.2's own GLEET.train_episode with its ParallelEnv (dummy); compat side: "
             f"compat.agents.GLEET with compat's ParallelEnv (dummy)."]
    return rows, notes


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
        gleet = _gleet_vs_metabox(3 if quick else 5, save_dir)
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
        sections=[] if gleet is None else [(
            "GLEET: MetaBox's torch agent vs compat.agents.GLEET on MetaBox's GLEET_Optimizer",
            ("setting", "compat agent ms / episode", "torch agent ms / episode", "torch / compat (agent)",
             "torch / compat (whole)", "env ms compat / torch", "compat warm-up s"), *gleet)],
    )
