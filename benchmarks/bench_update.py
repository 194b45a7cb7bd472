"""The PPO update, jppo vs torch: 2048 samples, obs 8, action 2, MLP 64-64, K=4 × M=4.

Both sides run the same algorithm (references/torch_ppo.py is the torch side) on the same initial
weights and data, in float32, alternated in one run; the figure is the median of per-pair ratios.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np
import torch
from flax import nnx

import jppo
from benchmarks import report
from references.torch_ppo import TorchGaussianActorCritic, torch_update

N, OBS, ACT, K, M = 2048, 8, 2, 4, 4


def main(out_dir: Path, quick: bool):
    reps = 5 if quick else 30
    actor = jppo.GaussianActor(OBS, ACT, (64, 64), rngs=nnx.Rngs(0))
    critic = jppo.Critic(OBS, (64, 64), rngs=nnx.Rngs(1))
    ac, params = jppo.ActorCritic.split(actor, critic)
    rng = np.random.default_rng(0)
    batch = {
        "obs": rng.normal(size=(N, OBS)), "actions": rng.normal(size=(N, ACT)), "logp": rng.normal(-3, 0.3, N),
        "values": rng.normal(size=N), "advantages": rng.normal(size=N), "returns": rng.normal(size=N),
    }
    batch = {k: v.astype(np.float32) for k, v in batch.items()}
    hp = jppo.Hyperparams(clip_eps=0.2, ent_coef=0.0, max_grad_norm=0.5)
    opt = jppo.make_optimizer("Adam", {"actor": 3e-4, "critic": 3e-4})
    update = jax.jit(jppo.make_update(ac.evaluate, opt, jppo.UpdateConfig(K, M, "global")))
    opt_state = opt.init(params)
    jax_batch = jax.tree.map(jax.numpy.asarray, batch)

    model = TorchGaussianActorCritic(actor, critic)
    t_opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    t_batch = {k: torch.from_numpy(v) for k, v in batch.items()}
    loss_kw = dict(clip_eps=0.2, ent_coef=0.0, value_loss_factor=0.5, vf_coef=0.5, value_clip=True,
                   value_clip_eps=None, normalize_advantages=True)

    def run_jppo(seed):
        out = update(params, opt_state, jax_batch, jax.random.key(seed), hp)
        jax.block_until_ready(out)

    def run_torch(seed):
        perms = np.stack([np.random.default_rng(seed + k).permutation(N) for k in range(K)])
        torch_update(model, t_opt, t_batch, perms, M, clipping="global", max_grad_norm=0.5, **loss_kw)

    compile_start = time.perf_counter()
    run_jppo(0)
    compile_s = time.perf_counter() - compile_start
    run_torch(0)
    jppo_s, torch_s = [], []
    for i in range(reps):
        for fn, times in ((run_jppo, jppo_s), (run_torch, torch_s)):
            start = time.perf_counter()
            fn(i)
            times.append(time.perf_counter() - start)
    ratios = np.array(torch_s) / np.array(jppo_s)
    rows = [
        ("jppo (jit, XLA CPU)", f"{1e3 * np.median(jppo_s):.2f}"),
        (f"torch {torch.__version__} ({torch.get_num_threads()} threads)", f"{1e3 * np.median(torch_s):.2f}"),
    ]
    summary = (
        f"Median ratio torch/jppo over {reps} alternated pairs: **{np.median(ratios):.1f}x** "
        f"(IQR {np.percentile(ratios, 25):.1f}-{np.percentile(ratios, 75):.1f}); jppo compile {compile_s:.2f} s."
    )
    report.write(
        out_dir, "update",
        title=f"PPO update: {N} samples, obs {OBS}, action {ACT}, MLP 64-64, K={K} x M={M}",
        header=("implementation", "median ms per update"), rows=rows, notes=[summary, report.machine()],
        plot={"jppo": jppo_s, "torch": torch_s}, ylabel="seconds per update",
    )
    print(summary)
