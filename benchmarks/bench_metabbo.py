"""MetaBBO training: RLEPSO on 4 BBOB-10D problems, the whole episode compiled vs MetaBox's numpy loop.

One training episode: 4 envs (problems F4, F6, F7, F8 of MetaBox's bbob-10D, instance seed 3849),
100 particles, 20000 evaluations (199 generations), windows of n_step = 10 with K = 3 epochs each
(60 optimizer steps), RLEPSO's networks (actor: mu and sigma MLPs 64-32 -> 35; critic 16-8).

* jppo: `NStepTrainer` with the JAX RLEPSO environment and JAX BBOB: rollout and update of the
  whole episode run as one compiled program (float32, and float64 as MetaBox).
* MetaBox's structure, numpy optimizer: MetaBox's own `RLEPSO_Optimizer` and `bbob_numpy`
  problems, stepped one Python call per generation, with (a) the torch agent
  (`tests/torch_ppo.torch_train_episode`, MetaBox's loop in torch, float64) and (b) jppo's compat
  `PPO_Agent` (float64). These rows need MetaBox's source (JPPO_METABOX_SRC=…/src/metaevobox);
  without it they are left out.

Episodes are alternated after one warm-up each; figures are medians.
"""

from __future__ import annotations

import math
import tempfile
import time
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import report
from jppo.config import preset
from jppo.envs import bbob
from jppo.envs.rlepso import RLEPSOEnv, RLEPSOParams
from jppo.nstep import NStepTrainer
from tests import metabox_source
from tests.envs_for_tests import ToyPBOEnv

DIM, FIDS, NUM_ENVS = 10, (4, 6, 7, 8), 4


def _metabox_envs(optimizer_class, module):
    np.random.seed(bbob.INSTANCE_SEED)  # MetaBox's get_datasets, drawing all 24 in order
    problems = {}
    for fid in range(1, 25):
        shift = 0.8 * (np.random.random(DIM) * 10 - 5)
        rotation, bias = module.rotate_gen(DIM), np.random.randint(1, 26) * 100
        problems[fid] = getattr(module, f"F{fid}")(dim=DIM, shift=shift, rotate=rotation, bias=bias, lb=-5, ub=5)
    config = types.SimpleNamespace(maxFEs=20000, n_logpoint=50, log_interval=400, full_meta_data=False, device="cpu")
    return [ToyPBOEnv(problems[f], optimizer_class(config)) for f in FIDS]  # MetaBox's PBO_Env shape


def _jppo_episode_seconds(x64: bool, reps: int, num_envs: int = NUM_ENVS):
    """Seconds per training episode (and the first, compiling one); env i works on problem i mod 4."""
    with jax.enable_x64(x64):
        problems, fids = bbob.bbob_suite(DIM, "all", "train")
        suite = jax.tree.map(lambda leaf: leaf[np.array(FIDS) - 1], problems)
        config = preset("rlepso-bbob10d", num_envs=num_envs, total_steps=num_envs * 10 * 20)
        trainer = NStepTrainer(config, env=RLEPSOEnv(), env_params=RLEPSOParams(problem=suite))
        state = jax.jit(trainer.init)(jax.random.key(0))
        start = time.perf_counter()
        state, _ = jax.block_until_ready(trainer.run(state, 20))
        first = time.perf_counter() - start
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            state, _ = jax.block_until_ready(trainer.run(state, 20))
            times.append(time.perf_counter() - start)
    return np.array(times), first


def _metabox_rows(reps: int):
    import torch
    from flax import nnx

    from compat.networks import ClampedGaussianActor, Critic
    from compat.ppo import PPO_Agent
    from tests.torch_ppo import TorchClampedActor, TorchValueCritic, torch_train_episode

    optimizer_class, module = metabox_source.rlepso_optimizer_class(), metabox_source.bbob_numpy()
    if optimizer_class is None or module is None:
        return None
    torch.set_num_threads(1)  # tiny networks; see bench_compat.py
    cfg = types.SimpleNamespace(gamma=0.999, n_step=10, K_epochs=3, eps_clip=0.1, max_grad_norm=math.inf,
                                device="cpu", optimizer="Adam", save_interval=10**9, end_mode="epoch",
                                max_learning_step=10**9, no_tb=True, seed=0)
    out = {"torch agent": [], "compat agent": [], "numpy optimizer share (torch row)": []}
    with jax.enable_x64(True), tempfile.TemporaryDirectory() as save_dir:
        cfg.agent_save_dir = save_dir
        actor, critic = ClampedGaussianActor(1, 35, (64, 32), rngs=nnx.Rngs(0)), Critic(1, (16, 8), rngs=nnx.Rngs(1))
        t_actor, t_critic = TorchClampedActor(actor, sample=True), TorchValueCritic(critic)
        t_opt = torch.optim.Adam([{"params": t_actor.params(), "lr": 1e-5}, {"params": t_critic.params(), "lr": 1e-5}])
        agent = PPO_Agent(cfg, {"actor": actor, "critic": critic}, 1e-5)
        envs = _metabox_envs(optimizer_class, module)
        step_seconds = [0.0]
        for env in envs:  # time spent inside the numpy optimizer (and problem)
            inner = env.step

            def timed(action, inner=inner):
                start = time.perf_counter()
                result = inner(action)
                step_seconds[0] += time.perf_counter() - start
                return result

            env.step = timed
        for rep in range(reps + 1):
            step_seconds[0] = 0.0
            start = time.perf_counter()
            torch_train_episode(t_actor, t_critic, t_opt, envs, rep, cfg)
            torch_s = time.perf_counter() - start
            share = step_seconds[0] / torch_s
            start = time.perf_counter()
            agent.train_episode(envs, [rep] * len(envs))
            compat_s = time.perf_counter() - start
            if rep:  # the first pair warms up (compat compiles)
                out["torch agent"].append(torch_s)
                out["compat agent"].append(compat_s)
                out["numpy optimizer share (torch row)"].append(share)
    return {k: np.array(v) for k, v in out.items()}


def main(out_dir: Path, quick: bool):
    reps = 2 if quick else 5
    jppo32, first32 = _jppo_episode_seconds(False, reps)
    jppo64, first64 = _jppo_episode_seconds(True, reps)
    metabox = _metabox_rows(reps)
    base = np.median(jppo32)
    rows = [("jppo, whole episode compiled, float32", f"{np.median(jppo32):.2f}", "1.0x", f"{first32:.1f}"),
            ("jppo, whole episode compiled, float64", f"{np.median(jppo64):.2f}", f"{np.median(jppo64) / base:.1f}x",
             f"{first64:.1f}")]
    plot = {"jppo f32": jppo32, "jppo f64": jppo64}
    notes = []
    if metabox is None:
        notes.append(f"MetaBox rows left out: {metabox_source.SKIP_REASON}.")
    else:
        for name in ("torch agent", "compat agent"):
            seconds = metabox[name]
            rows.append((f"MetaBox's numpy RLEPSO + BBOB, {name}, float64", f"{np.median(seconds):.2f}",
                         f"**{np.median(seconds) / base:.1f}x**", "-"))
            plot[name.replace(" agent", "\n+ numpy env")] = seconds
        share = np.median(metabox["numpy optimizer share (torch row)"])
        notes.append(f"In the torch row {share:.0%} of the episode is spent inside MetaBox's numpy optimizer and "
                     f"problems (the rest: the agent, one call per generation and per re-evaluated step).")
    notes.append(f"{reps} timed episodes per row after one warm-up; 'slower' = row time / jppo float32 time. "
                 f"Compile: the first episode of the compiled trainer, compilation included.")
    notes.append(report.machine())
    scaling = []
    for batch in (4, 16, 64, 256):
        seconds, _ = _jppo_episode_seconds(False, 1 if batch >= 64 else reps, batch)
        scaling.append((batch, float(np.median(seconds))))
        print(f"batch {batch}: {scaling[-1][1]:.2f} s per episode", flush=True)
    scaling_rows = [(b, f"{t:.2f}", f"{t / scaling[0][1]:.1f}x", f"{b * 199 * 100 / t:,.0f}") for b, t in scaling]
    sections = [("Scaling: jppo float32, envs per batch (problems F4, F6, F7, F8 repeated)",
                 ("batch", "s / training episode", "vs batch 4", "function evaluations / s"), scaling_rows,
                 ["Each env runs 199 generations of 100 particles; the update's work grows with the batch too."])]
    report.write(out_dir, "metabbo", sections=sections,
                 title="MetaBBO training episode: RLEPSO, 4 BBOB-10D problems × 100 particles × 20000 evaluations",
                 header=("implementation", "s / training episode", "slower than jppo f32", "compile s"), rows=rows,
                 notes=notes, plot=plot, ylabel="seconds per training episode")
