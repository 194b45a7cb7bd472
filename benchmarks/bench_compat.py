"""One MetaBox `train_episode`, compat.PPO_Agent vs the same algorithm in torch.

Both sides: RLEPSO-shaped networks (actor: mu and sigma MLPs 64-32, sampled clamped Gaussian actions;
critic 16-8) with identical initial weights, Adam, MetaBox's loop (windows of n_step = 10, K = 3
epochs per window, per-network clipping), on the same numpy env (`ToyOptimizerEnv`, 35-dimensional
actions, 50 steps per episode, so 15 optimizer steps per episode whatever the actions). The torch side
is `tests/torch_ppo.torch_train_episode`, the loop the parity test checks compat against; it steps the
envs in a list where compat goes through its `ParallelEnv` in dummy mode. Settings: a batch of 1 env
(MetaBox's default `train_batch_size`) and of 16, in float64 (MetaBox's Config makes torch float64) and
float32. Episodes are alternated compat/torch after one warm-up each; the figure is the median of
per-pair ratios.

Torch runs with one intra-op thread: these networks are far too small to gain from more, and on a
machine whose cores are busy with other work its thread pool stalls (on the 2-core machine of the
committed results, shared with other jobs, an episode of 16 envs took 0.8-19 s with 2 threads
against 0.2 s with 1).
"""

from __future__ import annotations

import math
import tempfile
import time
import types
from pathlib import Path

import jax
import numpy as np
import torch
from flax import nnx

from benchmarks import report
from compat.networks import ClampedGaussianActor, Critic
from compat.ppo import PPO_Agent
from tests.envs_for_tests import ToyOptimizerEnv
from tests.torch_ppo import TorchClampedActor, TorchValueCritic, torch_train_episode

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
        actor = ClampedGaussianActor(FEATURES, ACTIONS, (64, 32), rngs=nnx.Rngs(0))
        critic = Critic(FEATURES, (16, 8), rngs=nnx.Rngs(1))
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


def main(out_dir: Path, quick: bool):
    reps = 3 if quick else 20
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
    notes.append(report.machine())
    report.write(
        out_dir, "compat",
        title=f"train_episode, compat.PPO_Agent vs torch: {STEPS} steps, n_step {N_STEP}, K {K}",
        header=("setting", "compat ms / episode", "torch ms / episode", "torch / compat", "compat warm-up s"),
        rows=rows, notes=notes, plot=plot, ylabel="seconds per train_episode",
    )
