"""What an accelerator gives: jppo's compiled programs over sizes, on whatever devices JAX sees.

    python -m benchmarks.run device            # sized for about 8 minutes on one GPU
    python -m benchmarks.run device --quick    # the smallest setting (a CPU smoke check)

Every program is compiled first, several at a time (`Sizes.workers` threads: XLA compiles in C++,
so they overlap), then the sections are timed one program after another, each against a time
budget (rows past it are reported as skipped, so the run ends):

* CartPole-v1, the jitted trainer: num_envs x vmapped seeds, env steps/s (seeds, or the env batch,
  laid out over every local device: `jppo.devices`);
* the PPO update (K=4 x M=4, MLP 64-64, obs 8, action 2) over the number of samples, jppo vs torch
  on the same device where torch sees one (the same algorithm: references/torch_ppo.py);
* MetaBBO training (n-step PPO with MetaBox's settings, the optimizer env vmapped over a batch of
  BBOB-10D problems, seeds vmapped over that): RLEPSO and GLEET over envs x seeds, and at one size
  with BBOB forced to 'loop' (one problem after another; 'auto' is 'dense' on an accelerator), side
  by side;
* 64 seeds x MetaBox's whole RLEPSO budget (240 batch episodes of 16 envs, n_step 10, K 3) as one
  program, timed in chunks; past its time budget the rest is projected from the chunks done.

A program the device's memory cannot hold (XLA's memory analysis of the compiled program against
the device's limit, or XLA's RESOURCE_EXHAUSTED when it runs) is a row saying so.

Runs from a plain checkout (`python -m benchmarks.run device` in the repo root) with jax, flax,
optax, orbax-checkpoint, matplotlib and tqdm; torch is optional (its rows are left out without it).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from pathlib import Path

import jax
import numpy as np

from benchmarks import report
from jppo import devices
from jppo.config import TrainConfig, preset
from jppo.fit import make_trainer

METABBO_ENVS = {"RLEPSO": "rlepso-bbob10d", "GLEET": "gleet-bbob10d"}


@dataclasses.dataclass(frozen=True)
class Sizes:
    num_envs: tuple[int, ...]  # CartPole
    seeds: tuple[int, ...]  # CartPole
    samples: tuple[int, ...]  # the update
    batches: tuple[int, ...]  # MetaBBO envs
    metabbo_seeds: tuple[int, ...]
    loop_batch: int | None  # MetaBBO: the size timed with BBOB forced to 'loop' as well (None: no such rows)
    num_steps: int  # CartPole: steps per env per update
    cartpole_steps: int  # CartPole: env steps per timed call (whole updates, at most 64 of them)
    metabbo_steps: int  # MetaBBO: env steps per timed call (whole windows, at most one episode of 20)
    whole: tuple[int, int, int, int]  # MetaBox's budget row: (seeds, envs, batch episodes, windows per call)
    reps: int  # update: timed repetitions
    workers: int  # programs compiled at once
    budget_s: dict  # per phase


FULL = Sizes(num_envs=(4, 16, 64, 256, 1024, 4096), seeds=(1, 4, 16, 64),
             samples=(2048, 8192, 32768, 131072, 524288, 1048576), batches=(16, 64, 256, 1024, 4096),
             metabbo_seeds=(1, 16, 64), loop_batch=1024, num_steps=128, cartpole_steps=2**21, metabbo_steps=2**19,
             whole=(64, 16, 240, 240), reps=3, workers=12,
             budget_s=dict(compile=150, cartpole=50, update=30, metabbo=130, whole=110))
QUICK = Sizes(num_envs=(4,), seeds=(1,), samples=(2048,), batches=(4,), metabbo_seeds=(1,), loop_batch=None,
              num_steps=16, cartpole_steps=256, metabbo_steps=40, whole=(2, 4, 1, 10), reps=2, workers=2,
              budget_s=dict(compile=600, cartpole=60, update=60, metabbo=120, whole=60))
WINDOWS_PER_EPISODE = 20  # MetaBox's RLEPSO and GLEET in 10-D: 199 generations in windows of 10


class Budget:
    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def spent(self) -> bool:
        return time.perf_counter() > self.end


def _device_memory() -> int | None:
    """Bytes XLA may use on the first device (None where the backend does not say: CPU)."""
    stats = jax.local_devices()[0].memory_stats() or {}
    return stats.get("bytes_limit")


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GiB"


@dataclasses.dataclass
class Program:
    """One row's trainer, seed-batched over every local device, compiled ahead (`compile`)."""

    config: TrainConfig
    seeds: int
    updates: int  # per call (static)
    init: object = None
    run: object = None
    compile_s: float = 0.0
    problem: str | None = None  # why it cannot be timed

    def compile(self):
        """Lower and compile init and run (in a worker thread: the fields are set together at the end)."""
        start = time.perf_counter()
        try:
            placement = devices.plan(self.seeds, self.config.num_envs, devices.select_devices())
            init, run = devices.seed_batched(make_trainer(self.config), self.seeds, placement)
            init_compiled = init.lower(0).compile()
            run_compiled = run.lower(jax.eval_shape(init, 0), self.updates).compile()
        except ValueError as err:  # does not split over the devices
            self.problem = f"skipped ({err})"
            return self
        except Exception as err:  # one program's failure is its row's, not the whole run's
            self.problem = _failure(err)
            return self
        limit, stats = _device_memory(), run_compiled.memory_analysis()
        need = stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
        if limit is not None and need > limit:
            self.problem = f"does not fit (needs {_gib(need)}, the device has {_gib(limit)})"
        self.compile_s, self.init, self.run = time.perf_counter() - start, init_compiled, run_compiled
        return self

    def time(self, calls: int = 2) -> float:
        """Seconds of the last of `calls` calls back to back (the first warms up: allocations, caches)."""
        state = self.init(0)
        for _ in range(calls):
            start = time.perf_counter()
            state, metrics = self.run(state)  # the compiled program: `updates` is part of it
            jax.block_until_ready((state, metrics))
            seconds = time.perf_counter() - start
        return seconds


def _timed(program: Program, budget: Budget):
    """(compile s, seconds of one call) or (None, a reason it was not timed)."""
    if program.problem is not None:
        return None, program.problem
    if program.run is None:
        return None, "skipped (compile budget)"
    if budget.spent():
        return None, "skipped (time budget)"
    try:
        return program.compile_s, program.time()
    except Exception as err:
        return None, _failure(err)


def _failure(err: Exception) -> str:
    """A row's text for a program that could not run."""
    if devices.out_of_memory(err):
        return "does not fit (XLA: RESOURCE_EXHAUSTED)"
    return f"failed ({type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]})"


def cartpole_programs(sizes: Sizes) -> dict:
    programs = {}
    for seeds in sizes.seeds:
        for num_envs in sizes.num_envs:
            per_update = num_envs * sizes.num_steps * seeds
            n = max(1, min(64, sizes.cartpole_steps // per_update))
            config = TrainConfig(num_envs=num_envs, num_steps=sizes.num_steps,
                                 total_steps=num_envs * sizes.num_steps * n)
            programs[num_envs, seeds] = Program(config, seeds, n)
    return programs


def metabbo_programs(sizes: Sizes) -> dict:
    """{(method, envs, seeds, strategy): Program}: MetaBox's preset for the env, a timed call of whole
    windows (about `metabbo_steps` env steps, at most an episode)."""
    programs = {}
    for name, env_id in METABBO_ENVS.items():
        rows = [(envs, seeds, "auto") for seeds in sizes.metabbo_seeds for envs in sizes.batches]
        rows += [(sizes.loop_batch, 1, "loop")] if sizes.loop_batch else []
        for envs, seeds, strategy in rows:
            config = preset(env_id, num_envs=envs, bbob_strategy=strategy)
            windows = max(1, min(WINDOWS_PER_EPISODE, sizes.metabbo_steps // (envs * seeds * config.num_steps)))
            windows = min(windows, 2) if strategy == "loop" else windows  # the slow way: short calls
            config = dataclasses.replace(config, total_steps=envs * config.num_steps * windows)
            programs[name, envs, seeds, strategy] = Program(config, seeds, windows)
    return programs


def whole_budget_program(sizes: Sizes) -> Program:
    """MetaBox's RLEPSO budget: 240 batch episodes of 16 envs (20 windows of n_step 10 each, K 3), 64 seeds."""
    seeds, envs, episodes, per_call = sizes.whole
    config = preset("rlepso-bbob10d", num_envs=envs)
    config = dataclasses.replace(config, total_steps=envs * config.num_steps * WINDOWS_PER_EPISODE * episodes)
    return Program(config, seeds, per_call)


def compile_all(groups: list[dict], sizes: Sizes) -> None:
    """Compile every program, `sizes.workers` at a time, in the order given; those not done within the
    compile budget are left uncompiled (their rows say so)."""
    programs = [p for group in groups for p in group.values()]
    pool = concurrent.futures.ThreadPoolExecutor(sizes.workers)
    futures = [pool.submit(p.compile) for p in programs]
    concurrent.futures.wait(futures, timeout=sizes.budget_s["compile"])
    for f in futures:
        f.cancel()
    pool.shutdown(wait=False, cancel_futures=True)
    done = sum(f.done() and not f.cancelled() for f in futures)
    print(f"  compiled {done} of {len(programs)} programs", flush=True)


def cartpole_grid(programs: dict, sizes: Sizes):
    """Rows (num_envs, seeds, compile s, steps/s or a reason it was not timed)."""
    budget, rows = Budget(sizes.budget_s["cartpole"]), []
    for (num_envs, seeds), program in programs.items():
        compile_s, seconds = _timed(program, budget)
        steps = program.updates * program.config.batch_size * seeds
        rows.append((num_envs, seeds, compile_s, seconds if compile_s is None else steps / seconds))
        print(f"  cartpole: {num_envs} envs x {seeds} seeds: {_rate(rows[-1][3])}", flush=True)
    return rows


def metabbo_grid(programs: dict, sizes: Sizes):
    """Rows (method, envs, seeds, strategy, compile s, s per window, env steps/s) or a reason in place
    of the timings."""
    budget, rows = Budget(sizes.budget_s["metabbo"]), []
    for (name, envs, seeds, strategy), program in programs.items():
        compile_s, seconds = _timed(program, budget)
        if compile_s is None:
            rows.append((name, envs, seeds, strategy, None, None, seconds))
        else:
            steps = envs * seeds * program.config.num_steps * program.updates
            rows.append((name, envs, seeds, strategy, compile_s, seconds / program.updates, steps / seconds))
        print(f"  metabbo: {name} {envs} envs x {seeds} seeds ({strategy}): {_rate(rows[-1][-1])}", flush=True)
    return rows


def whole_budget(program: Program, sizes: Sizes):
    """(compile s, windows done, seconds for them, seconds for the whole budget, projected?) or a reason."""
    if program.problem is not None or program.run is None:
        return program.problem or "skipped (compile budget)"
    budget = Budget(sizes.budget_s["whole"])
    total = program.config.num_updates
    try:
        state = program.init(0)
        jax.block_until_ready(state)
        done, start = 0, time.perf_counter()
        while done < total and not budget.spent():
            state, metrics = program.run(state)
            jax.block_until_ready((state, metrics))
            done += program.updates
    except Exception as err:
        return _failure(err)
    seconds = time.perf_counter() - start
    return program.compile_s, done, seconds, seconds * total / done, done < total


def update_kernel(sizes: Sizes):
    """Rows (samples, jppo ms, torch ms or None, compile s) and a note on torch."""
    from flax import nnx

    import jppo

    obs_size, act_size, epochs, minibatches = 8, 2, 4, 4
    actor = jppo.GaussianActor(obs_size, act_size, (64, 64), rngs=nnx.Rngs(0))
    critic = jppo.Critic(obs_size, (64, 64), rngs=nnx.Rngs(1))
    ac, params = jppo.ActorCritic.split(actor, critic)
    opt = jppo.make_optimizer("Adam", {"actor": 3e-4, "critic": 3e-4})
    update = jax.jit(jppo.make_update(ac.evaluate, opt, jppo.UpdateConfig(epochs, minibatches, "global")))
    hp = jppo.Hyperparams(clip_eps=0.2, ent_coef=0.0, max_grad_norm=0.5)
    torch, device = _torch_device()
    note = f"torch {torch.__version__} on {device}" if torch is not None else f"no torch column: {device}"
    budget, rows = Budget(sizes.budget_s["update"]), []
    for n in sizes.samples:
        if budget.spent():
            rows.append((n, None, None, None))
            continue
        rng = np.random.default_rng(0)
        batch = {"obs": rng.normal(size=(n, obs_size)), "actions": rng.normal(size=(n, act_size)),
                 "logp": rng.normal(-3, 0.3, n), "values": rng.normal(size=n), "advantages": rng.normal(size=n),
                 "returns": rng.normal(size=n)}
        batch = {k: v.astype(np.float32) for k, v in batch.items()}
        jax_batch = jax.device_put(batch)
        opt_state = opt.init(params)
        key = [0]

        def run_jppo():
            key[0] += 1
            start = time.perf_counter()
            jax.block_until_ready(update(params, opt_state, jax_batch, jax.random.key(key[0]), hp))
            return time.perf_counter() - start

        first = run_jppo()  # compilation included
        jppo_s = float(np.median([run_jppo() for _ in range(sizes.reps)]))
        torch_ms = _torch_update_ms(torch, device, actor, critic, batch, epochs, minibatches, sizes.reps)
        rows.append((n, 1e3 * jppo_s, torch_ms, max(first - jppo_s, 0.0)))
        print(f"  update: {n} samples: jppo {rows[-1][1]:.2f} ms, torch {torch_ms} ms", flush=True)
    return rows, note


def _torch_device():
    """`(torch module, device)` where torch can run beside JAX's backend, else `(None, reason)`."""
    try:
        import torch
    except ImportError:
        return None, "torch is not installed"
    if torch.cuda.is_available():
        return torch, "cuda"
    if jax.default_backend() == "cpu":
        torch.set_num_threads(1)  # small batches; torch's thread pool stalls on a shared machine (bench_train.py)
        return torch, "cpu"
    return None, f"torch sees no GPU (JAX runs on {jax.default_backend()})"


def _torch_update_ms(torch, device, actor, critic, batch, epochs, minibatches, reps):
    if torch is None:
        return None
    from references.torch_ppo import TorchGaussianActorCritic, torch_update

    model = TorchGaussianActorCritic(actor, critic).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    t_batch = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
    n = len(batch["obs"])
    loss_kw = dict(clip_eps=0.2, ent_coef=0.0, value_loss_factor=0.5, vf_coef=0.5, value_clip=True,
                   value_clip_eps=None, normalize_advantages=True)

    def once(seed):
        perms = np.stack([np.random.default_rng(seed + k).permutation(n) for k in range(epochs)])
        start = time.perf_counter()
        torch_update(model, optimizer, t_batch, perms, minibatches, clipping="global", max_grad_norm=0.5, **loss_kw)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    once(0)  # warm-up
    return 1e3 * float(np.median([once(i + 1) for i in range(reps)]))


def _fmt(x, spec):
    return "-" if x is None else x if isinstance(x, str) else format(x, spec)


def _rate(x) -> str:
    return x if isinstance(x, str) else f"{x:,.0f} env steps/s"


def _figure(grid, update, metabbo):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for seeds in sorted({s for _, s, _, _ in grid}):
        pts = [(e, sps) for e, s, _, sps in grid if s == seeds and not isinstance(sps, str)]
        if pts:
            axes[0].plot(*zip(*pts), marker="o", label=f"{seeds} seed(s)")
    axes[0].set(xscale="log", yscale="log", xlabel="num_envs", ylabel="env steps / s (all seeds)",
                title="CartPole-v1, jitted trainer")
    for col, label in ((1, "jppo"), (2, "torch")):
        pts = [(row[0], row[col]) for row in update if row[col] is not None]
        if pts:
            axes[1].plot(*zip(*pts), marker="o", label=label)
    axes[1].set(xscale="log", yscale="log", xlabel="samples", ylabel="ms per update", title="PPO update, K=4 x M=4")
    for name in METABBO_ENVS:
        for seeds in sorted({s for m, _, s, _, _, _, _ in metabbo if m == name}):
            pts = [(e, sps) for m, e, s, st, _, _, sps in metabbo
                   if m == name and s == seeds and st == "auto" and not isinstance(sps, str)]
            if pts:
                axes[2].plot(*zip(*pts), marker="o", label=f"{name}, {seeds} seed(s)")
    axes[2].set(xscale="log", yscale="log", xlabel="envs per seed", ylabel="env steps / s (all seeds)",
                title="MetaBBO training (n-step PPO, MetaBox's settings)")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(_device_name(), fontsize=9)
    fig.tight_layout()
    return fig


def _device_name() -> str:
    local = jax.local_devices()
    return f"{len(local)} x {local[0].device_kind} ({jax.default_backend()})"


def _whole_budget_text(result, sizes: Sizes) -> str:
    seeds, envs, episodes, _ = sizes.whole
    what = (f"{seeds} seeds x MetaBox's whole RLEPSO budget ({episodes} batch episodes x {envs} envs, n_step 10, "
            f"K 3; {episodes * WINDOWS_PER_EPISODE:,} windows) as one program")
    if isinstance(result, str):
        return f"{what}: {result}."
    compile_s, done, seconds, total_s, projected = result
    env_steps = seeds * envs * 10 * done / seconds
    projection = f", projected from {done:,} windows in {seconds:.1f} s" if projected else ""
    return (f"{what}: **{total_s:.0f} s** ({total_s / 60:.1f} min{projection}); {env_steps:,.0f} env steps/s over "
            f"all seeds; compile {compile_s:.0f} s.")


def main(out_dir: Path, quick: bool):
    sizes = QUICK if quick else FULL
    metabbo, cartpole, whole = metabbo_programs(sizes), cartpole_programs(sizes), whole_budget_program(sizes)
    compile_all([metabbo, {"whole": whole}, cartpole], sizes)  # the MetaBBO rows first: they are the point
    grid = cartpole_grid(cartpole, sizes)
    update, torch_note = update_kernel(sizes)
    metabbo_rows = metabbo_grid(metabbo, sizes)
    whole_text = _whole_budget_text(whole_budget(whole, sizes), sizes)
    print(f"  {whole_text}", flush=True)
    timed = [r for r in grid if not isinstance(r[3], str)]
    fastest = max(timed, key=lambda r: r[3]) if timed else None
    summary = (f"On {_device_name()}: CartPole up to **{fastest[3]:,.0f} env steps/s** ({fastest[0]} envs x "
               f"{fastest[1]} seeds)." if fastest else f"On {_device_name()}.")
    notes = [summary,
             f"{sizes.num_steps} steps per env per update, K=4 x M=4, MLP 64-64; about {sizes.cartpole_steps:,} env "
             f"steps (at most 64 updates) per timed call, the second of two back to back. Compile: seconds to lower "
             f"and compile the program, {sizes.workers} programs at a time. Seeds, or with fewer seeds than devices "
             f"the env batch, are split over all local devices.",
             f"Command: `python -m benchmarks.run device{' --quick' if quick else ''}`. {report.machine()}"]
    grid_rows = [(e, s, _fmt(c, ".1f"), _fmt(sps, ",.0f")) for e, s, c, sps in grid]
    update_rows = [(n, _fmt(j, ".2f"), _fmt(t, ".2f"), "-" if j is None or t is None else f"{t / j:.1f}x",
                    _fmt(c, ".1f")) for n, j, t, c in update]
    rates = {(m, e, s, st): sps for m, e, s, st, _, _, sps in metabbo_rows if not isinstance(sps, str)}
    loop_vs_auto = [f"{m} at {e} envs, 1 seed: BBOB 'auto' gives {rates[m, e, 1, 'auto'] / sps:.1f}x the env steps/s "
                    f"of 'loop'" for (m, e, s, st), sps in rates.items() if st == "loop" and (m, e, 1, "auto") in rates]
    metabbo_table = [(m, e, s, st, _fmt(c, ".1f"), _fmt(w, ".4f"), _fmt(sps, ",.0f"))
                     for m, e, s, st, c, w, sps in metabbo_rows]
    sections = [
        ("PPO update over samples (obs 8, action 2, MLP 64-64, K=4 x M=4)",
         ("samples", "jppo ms", "torch ms", "torch / jppo", "jppo compile s"), update_rows,
         [f"Median of {sizes.reps} calls each; {torch_note}; '-': skipped (time budget or no torch)."]),
        ("MetaBBO training: MetaBox's settings, the optimizer env vmapped over a batch of BBOB-10D problems, seeds "
         "vmapped over that", ("method", "envs per seed", "seeds", "BBOB strategy", "compile s", "s per window",
                               "env steps / s"), metabbo_table,
         [f"MetaBox's presets (100 particles, windows of 10 steps, K=3, batching 'single': each batch episode is one "
          f"problem of the train split, per seed); about {sizes.metabbo_steps:,} env steps (whole windows, at most "
          f"an episode) per timed call, the second of two. Env steps / s count every seed's envs. 'auto' is what "
          f"`jppo train` runs ('dense' on an accelerator, 'loop' on CPU: `--bbob-strategy`).", *loop_vs_auto,
          whole_text]),
    ]
    report.write(out_dir, "device", title=f"jppo on {_device_name()}",
                 header=("num_envs", "seeds", "compile s", "env steps / s"), rows=grid_rows, notes=notes,
                 sections=sections, figure=_figure(grid, update, metabbo_rows))
    print(summary)
