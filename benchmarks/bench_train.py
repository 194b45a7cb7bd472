"""Training throughput on CartPole-v1: jppo's fully jitted trainer vs its host trainer (gymnasium
vector envs: sync, async, Ray) vs stable-baselines3's PPO (if installed), one config for all
(`TrainConfig()`: 4 envs x 128 steps, K=4 x M=4, MLP 64-64), alternated in one run; then the
jitted trainer's steps/s over num_envs x vmapped seeds; then a sweep (3 learning rates x 8 seeds,
`jppo.sweep`) as one program vs the same 24 runs one after another.

    python -m benchmarks.run train [--quick]            # everything, into results/train.md
    python -m benchmarks.bench_train sweep [--quick]    # the sweep section alone, spliced into results/train.md

Steps/s count environment steps of whole updates (rollout + GAE + K-epoch update). Compile is the
first call's time less a steady call of the same size (XLA compilation and, for the host trainer,
tracing of `act` and `learn`); the host trainer's worker start-up is reported apart.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from benchmarks import report
from jppo import host
from jppo.config import TrainConfig
from jppo.host import HostTrainer
from jppo.sweep import Grid
from jppo.train import Trainer

BASE = TrainConfig(total_steps=10_000_000)  # 4 envs x 128 steps per update; total only sets the lr schedule


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    jax.block_until_ready(out)
    return time.perf_counter() - start, out


class Jitted:
    label = "jppo jitted (JAX CartPole-v1)"

    def __init__(self, config: TrainConfig, updates: int):
        self.trainer, self.updates, self.steps = Trainer(config), updates, updates * config.batch_size
        self.state = self.trainer.init(jax.random.key(0))
        first, (self.state, _) = _timed(lambda: self.trainer.run(self.state, updates))
        steady = self.step()
        self.compile_s, self.startup_s = max(first - steady, 0.0), 0.0

    def step(self) -> float:
        seconds, (self.state, _) = _timed(lambda: self.trainer.run(self.state, self.updates))
        return seconds


class Hosted:
    def __init__(self, config: TrainConfig, updates: int, mode: str, num_workers=None):
        self.label = f"jppo host, {mode} (gymnasium CartPole-v1)"
        host.program.cache_clear()  # every mode pays its own compilation
        self.trainer = HostTrainer(dataclasses.replace(config, env_id="gym:CartPole-v1"), mode, num_workers)
        self.updates, self.steps = updates, updates * config.batch_size
        self.startup_s, _ = _timed(self.trainer.start)
        self.state = self.trainer.init(jax.random.key(0))
        first, (self.state, _) = _timed(lambda: self.trainer.run(self.state, 1))
        per_update = self.step() / updates
        self.compile_s = max(first - per_update, 0.0)

    def step(self) -> float:
        seconds, (self.state, _) = _timed(lambda: self.trainer.run(self.state, self.updates))
        return seconds

    def close(self):
        self.trainer.close()


class SB3:
    def __init__(self, config: TrainConfig, updates: int):
        import stable_baselines3
        import torch
        from stable_baselines3.common.env_util import make_vec_env

        # one torch thread: on a small shared machine, torch's intra-op threads stall whenever another
        # process holds a core (16x slower in our runs); one thread is also the fastest for these sizes
        torch.set_num_threads(1)
        self.label = f"stable-baselines3 {stable_baselines3.__version__} PPO (torch {torch.__version__}, 1 thread)"
        c = config
        start = time.perf_counter()
        env = make_vec_env("CartPole-v1", n_envs=c.num_envs, seed=0)
        self.model = stable_baselines3.PPO(
            "MlpPolicy", env, n_steps=c.num_steps, batch_size=c.batch_size // c.num_minibatches, n_epochs=c.num_epochs,
            learning_rate=c.learning_rate, gamma=c.gamma, gae_lambda=c.gae_lambda, clip_range=c.clip_eps,
            ent_coef=c.ent_coef, vf_coef=c.vf_coef, max_grad_norm=c.max_grad_norm, seed=0, device="cpu",
            policy_kwargs=dict(net_arch=list(c.hidden)),
        )
        self.startup_s, self.compile_s = time.perf_counter() - start, 0.0
        self.steps = updates * c.batch_size
        self.step()  # warm-up

    def step(self) -> float:
        start = time.perf_counter()
        self.model.learn(total_timesteps=self.steps, reset_num_timesteps=False)
        return time.perf_counter() - start


def scaling(quick: bool):
    """Jitted trainer steps/s over num_envs x vmapped seeds: rows of (envs, seeds, compile s, steps/s)."""
    envs_grid, seeds_grid = ([4, 64, 1024], [1, 8]) if quick else ([4, 16, 64, 256, 1024], [1, 4, 16, 64])
    target = 2**17 if quick else 2**19  # env steps per timed call (at least one update)
    rows = []
    for num_envs in envs_grid:
        for seeds in seeds_grid:
            per_update = num_envs * BASE.num_steps * seeds
            n = max(1, target // per_update)
            trainer = Trainer(dataclasses.replace(BASE, num_envs=num_envs))
            state = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.key(0), seeds))
            run = jax.jit(jax.vmap(lambda s: trainer.run(s, n)))
            first, (state, _) = _timed(lambda: run(state))
            times = []
            for _ in range(2):
                seconds, (state, _) = _timed(lambda: run(state))
                times.append(seconds)
            steady = min(times)
            rows.append((num_envs, seeds, max(first - steady, 0.0), n * per_update / steady))
            print(f"  scaling: {num_envs} envs x {seeds} seeds: {rows[-1][3]:,.0f} steps/s", flush=True)
    return rows


SWEEP = Grid((("learning_rate", (1e-4, 3e-4, 1e-3)),))
SWEEP_SEEDS = 8
SWEEP_HEADING = f"Sweep: {SWEEP.describe(SWEEP_SEEDS)} as one program vs one run after another"


def sweep_vs_sequential(quick: bool):
    """`(rows, notes)`: the 3 x 8 runs of `SWEEP` as one vmapped program (`jppo.sweep`'s layout) vs the same
    24 runs one after another through one compiled single-run program (compiled once: the sequential side's
    best case), alternated `reps` times; the first call of each side is its compile + one pass."""
    updates, reps = (20, 3) if quick else (100, 5)
    config = dataclasses.replace(BASE, total_steps=updates * BASE.batch_size, anneal_lr=False)
    trainer = Trainer(config)
    sweep = jax.tree.map(lambda x: np.repeat(x, SWEEP_SEEDS, axis=0), SWEEP.params(config))  # [24], grid-major
    keys = jax.random.split(jax.random.key(0), SWEEP_SEEDS)[np.arange(SWEEP.num_points * SWEEP_SEEDS) % SWEEP_SEEDS]
    runs = [(keys[i], jax.tree.map(lambda x, i=i: x[i], sweep)) for i in range(len(keys))]
    together = jax.jit(jax.vmap(trainer.train))
    alone = jax.jit(trainer.train)
    first_together, _ = _timed(lambda: together(keys, sweep))
    first_alone, _ = _timed(lambda: alone(*runs[0]))
    times = {"one program": [], "one after another": []}
    for _ in range(reps):  # alternated, so that load on the machine hits both alike
        times["one program"].append(_timed(lambda: together(keys, sweep))[0])
        times["one after another"].append(sum(_timed(lambda run=run: alone(*run))[0] for run in runs))
    steps = len(runs) * updates * config.batch_size
    program, sequence = np.median(times["one program"]), np.median(times["one after another"])
    compile_program, compile_alone = max(first_together - program, 0.0), max(first_alone - sequence / len(runs), 0.0)
    rows = [("one program (vmapped over the 24 runs)", f"{program:.2f}", f"{steps / program:,.0f}",
             f"{compile_program:.1f}", "1.0x"),
            ("one after another (one compiled run, called 24 times)", f"{sequence:.2f}", f"{steps / sequence:,.0f}",
             f"{compile_alone:.1f}", f"{sequence / program:.1f}x")]
    notes = [f"The sweep as one program trains the 24 runs **{sequence / program:.1f}x** faster than the same runs "
             f"one after another (median of {reps} alternated rounds; compile excluded, each side compiles once: "
             f"{(sequence + compile_alone) / (program + compile_program):.1f}x with it).",
             f"Each run: CartPole-v1, {config.num_envs} envs x {config.num_steps} steps per update, {updates} updates "
             f"({updates * config.batch_size:,} env steps), constant learning rate; 24 runs = 3 learning rates x 8 "
             f"seeds, run (point, seed) with the same key on both sides.",
             "This section alone: `python -m benchmarks.bench_train sweep" + (" --quick`" if quick else "`"),
             report.machine()]
    return rows, notes


SWEEP_HEADER = ("24 runs", "seconds (median)", "env steps/s", "compile s", "one program / this")


def splice_sweep(out_dir: Path, quick: bool) -> None:
    """Run the sweep section alone and put it into `out_dir/train.md` in place of its earlier version (or before
    the figure), saying that it was measured apart from the rest of the file."""
    rows, notes = sweep_vs_sequential(quick)
    notes = notes + ["Measured apart from the rest of this file and spliced in (the other sections come from the "
                     "run named at the top)."]
    report.splice_section(out_dir / "train.md", SWEEP_HEADING, SWEEP_HEADER, rows, notes)


def compile_probe(cache_dir: str) -> float:
    """In a fresh process: the seconds `jppo train`'s first chunk spends compiling (first call less a
    steady one, init included) with the persistent compilation cache in `cache_dir`."""
    from jppo import compile_cache, devices
    from jppo.fit import make_trainer

    compile_cache.enable(cache_dir)
    trainer = make_trainer(BASE)
    start = time.perf_counter()
    init, run = devices.seed_batched(trainer, 1, devices.plan(1, BASE.num_envs, devices.select_devices()))
    state, _ = jax.block_until_ready(run(init(0), 10))
    first = time.perf_counter() - start
    steady, _ = _timed(lambda: run(state, 10))
    return max(first - steady, 0.0)


def warm_start(repeats: int = 2):
    """`(cold s, warm s)`: compile seconds of a process with an empty cache, then of identical
    processes finding it filled (median over `repeats`)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")])}

    def probe(cache):
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_train", "compile-probe", cache], env=env,
                             capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])

    with tempfile.TemporaryDirectory(prefix="jppo-cache-") as cache:
        cold = probe(cache)
        warm = float(np.median([probe(cache) for _ in range(repeats)]))
    return cold, warm


def main(out_dir: Path, quick: bool):
    reps = 3 if quick else 7
    updates_jit, updates_host = (20, 8) if quick else (100, 30)
    runners = [Jitted(BASE, updates_jit), Hosted(BASE, updates_host, "sync"), Hosted(BASE, updates_host, "async"),
               Hosted(BASE, updates_host, "ray", num_workers=2)]
    try:
        import stable_baselines3  # noqa: F401

        runners.append(SB3(BASE, updates_host))
    except ImportError:
        print("  stable-baselines3 is not installed (pip install -e '.[bench]'): no reference row", flush=True)
    samples = {r.label: [] for r in runners}
    try:
        for _ in range(reps):  # alternated, so that load on the machine hits every runner alike
            for r in runners:
                samples[r.label].append(r.steps / r.step())
    finally:
        for r in runners:
            if hasattr(r, "close"):
                r.close()
    jit_sps = np.array(samples[runners[0].label])
    rows = []
    for r in runners:
        sps = np.array(samples[r.label])
        rows.append((r.label, f"{np.median(sps):,.0f}", f"{np.median(jit_sps / sps):.1f}x",
                     "-" if isinstance(r, SB3) else f"{r.compile_s:.2f}",
                     f"{r.startup_s:.2f}" if not isinstance(r, Jitted) else "-"))
    cold, warm = warm_start()
    print(f"  compile: cold {cold:.2f} s, warm (persistent cache) {warm:.2f} s", flush=True)
    grid = scaling(quick)
    sweep_rows, sweep_notes = sweep_vs_sequential(quick)
    best = max(grid, key=lambda row: row[3])
    sync_ratio = np.median(jit_sps / np.array(samples[runners[1].label]))
    summary = (f"The jitted trainer runs the same config **{sync_ratio:.0f}x** "
               f"faster than the host trainer with sync gymnasium envs (median of {reps} alternated rounds); "
               f"with many envs and seeds it reaches {best[3]:,.0f} steps/s ({best[0]} envs x {best[1]} seeds).")
    notes = [summary,
             f"Config: CartPole-v1, {BASE.num_envs} envs x {BASE.num_steps} steps per update, K={BASE.num_epochs} x "
             f"M={BASE.num_minibatches}, MLP {'-'.join(map(str, BASE.hidden))}; jitted: {updates_jit} updates per "
             f"call, host and SB3: {updates_host}. Ray: 2 actors. Mode: {'quick' if quick else 'full'}.",
             f"Warm start: the jitted trainer's first chunk compiles in **{cold:.2f} s** in a fresh process with an "
             f"empty compilation cache and **{warm:.2f} s** in the next identical process (JAX's persistent cache, "
             f"on by default in `jppo train`; tracing remains).",
             "Command: `python -m benchmarks.run train" + (" --quick`" if quick else "`"), report.machine()]
    grid_rows = [(e, s, f"{c:.1f}", f"{sps:,.0f}") for e, s, c, sps in grid]
    report.write(
        out_dir, "train",
        title="PPO training throughput on CartPole-v1: jitted vs host trainer vs stable-baselines3",
        header=("trainer", "steps/s (median)", "jitted / this", "compile s", "env start-up s"), rows=rows,
        notes=notes,
        sections=[("Jitted trainer: num_envs x vmapped seeds",
                   ("num_envs", "seeds", "compile s", "steps/s"), grid_rows,
                   [f"{BASE.num_steps} steps per env per update; steps/s over all seeds; the fastest of 2 calls.",
                    "On a CPU the update's arithmetic per env step is fixed, so steps/s stays about flat over "
                    "num_envs x seeds; differences of tens of percent are load from other processes on a shared "
                    "machine. The grid shows its worth on an accelerator."]),
                  (SWEEP_HEADING, SWEEP_HEADER, sweep_rows, sweep_notes)],
        figure=_figure(samples, grid),
    )
    print(summary)


def _figure(samples, grid):
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    labels = list(samples)
    medians = [np.median(samples[k]) for k in labels]
    left.barh(range(len(labels)), medians, color=["C0"] + ["C1"] * 3 + ["C2"] * (len(labels) - 4))
    left.set_yticks(range(len(labels)), [k.replace(" (", "\n(") for k in labels], fontsize=7)
    left.set_xscale("log")
    left.set_xlabel("env steps per second (log)")
    left.set_title(f"same config ({BASE.num_envs} envs x {BASE.num_steps} steps)", fontsize=9)
    left.invert_yaxis()
    for seeds in sorted({s for _, s, _, _ in grid}):
        pts = [(e, sps) for e, s, _, sps in grid if s == seeds]
        right.plot(*zip(*pts), marker="o", label=f"{seeds} seed(s)")
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xlabel("num_envs")
    right.set_ylabel("env steps per second (all seeds)")
    right.set_title("jitted trainer: num_envs x vmapped seeds", fontsize=9)
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


if __name__ == "__main__" and sys.argv[1:2] == ["compile-probe"]:
    print(compile_probe(sys.argv[2]))
elif __name__ == "__main__" and sys.argv[1:2] == ["sweep"]:
    splice_sweep(Path(__file__).parent / "results", quick="--quick" in sys.argv[2:])
