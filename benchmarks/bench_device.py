"""What an accelerator gives: jppo's compiled programs over sizes, on whatever devices JAX sees.

    python -m benchmarks.run device            # sized for about 8 minutes on one GPU
    python -m benchmarks.run device --quick    # the smallest setting (a CPU smoke check, seconds)

Three sections, each with a time budget (rows past it are reported as skipped, so the run ends):

* CartPole-v1, the jitted trainer: num_envs x vmapped seeds, env steps/s and compile seconds
  (seeds, or the env batch, laid out over every local device: `jppo.devices`);
* the PPO update (K=4 x M=4, MLP 64-64, obs 8, action 2) over the number of samples, jppo vs torch
  on the same device where torch sees one (the same algorithm: references/torch_ppo.py);
* one MetaBBO training run (n-step PPO, the optimizer env vmapped over a batch of problems) over
  the batch size: RLEPSO, and GLEET once `jppo.metabbo.gleet` exists.

Runs from a plain checkout (`python -m benchmarks.run device` in the repo root) with jax, flax,
optax, orbax-checkpoint, matplotlib and tqdm; torch is optional (its rows are left out without it).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from pathlib import Path

import jax
import numpy as np

from benchmarks import report
from jppo import devices, envs
from jppo.config import TrainConfig, preset
from jppo.fit import make_trainer


@dataclasses.dataclass(frozen=True)
class Sizes:
    num_envs: tuple[int, ...]
    seeds: tuple[int, ...]
    samples: tuple[int, ...]
    batches: tuple[int, ...]
    steps_per_call: int  # CartPole: env steps per timed call (at least one update)
    num_steps: int  # CartPole: steps per env per update
    windows: int  # MetaBBO: windows per timed call
    reps: int  # update: timed repetitions
    budget_s: tuple[float, float, float]  # per section


FULL = Sizes(num_envs=(4, 16, 64, 256, 1024, 4096), seeds=(1, 4, 16, 64),
             samples=(2048, 8192, 32768, 131072, 524288, 1048576), batches=(4, 16, 64, 256, 1024, 4096),
             steps_per_call=2**22, num_steps=128, windows=20, reps=5, budget_s=(240, 90, 150))
QUICK = Sizes(num_envs=(4,), seeds=(1,), samples=(2048,), batches=(4,), steps_per_call=256, num_steps=16,
              windows=1, reps=2, budget_s=(60, 60, 60))
METABBO_ENVS = {"RLEPSO": ("jppo.metabbo.rlepso", "rlepso-bbob10d"), "GLEET": ("jppo.metabbo.gleet", "gleet-bbob10d")}


def _first_and_steady(call):
    """Seconds of a first call (compilation included) and of a second one."""
    times = []
    for _ in range(2):
        start = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - start)
    return times[0], times[1]


class Budget:
    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def spent(self) -> bool:
        return time.perf_counter() > self.end


def _placed(trainer, seeds: int):
    placement = devices.plan(seeds, trainer.config.num_envs, devices.select_devices())
    return devices.seed_batched(trainer, seeds, placement)


def cartpole_grid(sizes: Sizes):
    """Rows (num_envs, seeds, compile s, steps/s or a reason it was skipped)."""
    budget, rows = Budget(sizes.budget_s[0]), []
    for seeds in sizes.seeds:
        for num_envs in sizes.num_envs:
            per_update = num_envs * sizes.num_steps * seeds
            n = max(1, sizes.steps_per_call // per_update)
            config = TrainConfig(num_envs=num_envs, num_steps=sizes.num_steps, total_steps=num_envs * sizes.num_steps * n)
            if budget.spent():
                rows.append((num_envs, seeds, None, "skipped (time budget)"))
                continue
            try:
                init, run = _placed(make_trainer(config), seeds)
            except ValueError as err:  # does not split over the devices
                rows.append((num_envs, seeds, None, f"skipped ({err})"))
                continue
            state = [init(0)]

            def call():
                state[0], metrics = run(state[0], n)
                return metrics

            first, steady = _first_and_steady(call)
            rows.append((num_envs, seeds, max(first - steady, 0.0), n * per_update / steady))
            print(f"  cartpole: {num_envs} envs x {seeds} seeds: {rows[-1][3]:,.0f} steps/s", flush=True)
    return rows


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
    budget, rows = Budget(sizes.budget_s[1]), []
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
            return update(params, opt_state, jax_batch, jax.random.key(key[0]), hp)

        first, _ = _first_and_steady(run_jppo)
        jppo_s = [_first_and_steady(run_jppo)[1] for _ in range(sizes.reps)]
        torch_ms = _torch_update_ms(torch, device, actor, critic, batch, epochs, minibatches, sizes.reps)
        rows.append((n, 1e3 * np.median(jppo_s), torch_ms, max(first - np.median(jppo_s), 0.0)))
        print(f"  update: {n} samples: jppo {rows[-1][1]:.2f} ms, torch {torch_ms} ms", flush=True)
    return rows, note


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


def metabbo_batches(sizes: Sizes):
    """Rows (method, batch, compile s, s per window, env steps/s) or with a reason in place of the
    timings; a method whose module is missing is one row saying so."""
    rows = []
    for name, (module, env_id) in METABBO_ENVS.items():
        if importlib.util.find_spec(module) is None or env_id not in envs.available():
            rows.append((name, "-", None, None, f"skipped ({module} is not in this jppo)"))
            continue
        budget = Budget(sizes.budget_s[2] / len(METABBO_ENVS))
        for batch in sizes.batches:
            if budget.spent():
                rows.append((name, batch, None, None, "skipped (time budget)"))
                continue
            config = preset(env_id, num_envs=batch)
            config = dataclasses.replace(config, total_steps=batch * config.num_steps * sizes.windows)
            try:
                init, run = _placed(make_trainer(config), 1)
            except (ValueError, ImportError) as err:
                rows.append((name, batch, None, None, f"skipped ({err})"))
                continue
            state = [init(0)]

            def call():
                state[0], metrics = run(state[0], sizes.windows)
                return metrics

            first, steady = _first_and_steady(call)
            steps = batch * config.num_steps * sizes.windows
            rows.append((name, batch, max(first - steady, 0.0), steady / sizes.windows, steps / steady))
            print(f"  metabbo: {name} batch {batch}: {rows[-1][4]:,.0f} env steps/s", flush=True)
    return rows


def _fmt(x, spec):
    return "-" if x is None else x if isinstance(x, str) else format(x, spec)


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
        pts = [(b, sps) for m, b, _, _, sps in metabbo if m == name and not isinstance(sps, str)]
        if pts:
            axes[2].plot(*zip(*pts), marker="o", label=name)
    axes[2].set(xscale="log", yscale="log", xlabel="batch (envs)", ylabel="env steps / s",
                title="MetaBBO training (n-step PPO)")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(_device_name(), fontsize=9)
    fig.tight_layout()
    return fig


def _device_name() -> str:
    local = jax.local_devices()
    return f"{len(local)} x {local[0].device_kind} ({jax.default_backend()})"


def main(out_dir: Path, quick: bool):
    sizes = QUICK if quick else FULL
    grid = cartpole_grid(sizes)
    update, torch_note = update_kernel(sizes)
    metabbo = metabbo_batches(sizes)
    fastest = max((r for r in grid if not isinstance(r[3], str)), key=lambda r: r[3])
    summary = (f"On {_device_name()}: CartPole up to **{fastest[3]:,.0f} env steps/s** "
               f"({fastest[0]} envs x {fastest[1]} seeds).")
    notes = [summary,
             f"{sizes.num_steps} steps per env per update, K=4 x M=4, MLP 64-64; at least "
             f"{sizes.steps_per_call:,} env steps per timed call. Compile: the first call less a second one. "
             f"Seeds, or with fewer seeds than devices the env batch, are split over all local devices.",
             f"Command: `python -m benchmarks.run device{' --quick' if quick else ''}`. {report.machine()}"]
    grid_rows = [(e, s, _fmt(c, ".1f"), _fmt(sps, ",.0f")) for e, s, c, sps in grid]
    update_rows = [(n, _fmt(j, ".2f"), _fmt(t, ".2f"), "-" if j is None or t is None else f"{t / j:.1f}x",
                    _fmt(c, ".1f")) for n, j, t, c in update]
    metabbo_rows = [(m, b, _fmt(c, ".1f"), _fmt(w, ".3f"), _fmt(sps, ",.0f")) for m, b, c, w, sps in metabbo]
    sections = [
        ("PPO update over samples (obs 8, action 2, MLP 64-64, K=4 x M=4)",
         ("samples", "jppo ms", "torch ms", "torch / jppo", "jppo compile s"), update_rows,
         [f"Median of {sizes.reps} calls each; {torch_note}; '-': skipped (time budget or no torch)."]),
        ("MetaBBO training: the optimizer env vmapped over a batch of BBOB-10D problems",
         ("method", "batch", "compile s", "s per window", "env steps / s"), metabbo_rows,
         [f"MetaBox's presets (RLEPSO: 100 particles, windows of 10 generations, K=3); {sizes.windows} windows per "
          f"timed call; env i works on problem i mod 16 of the bbob-10D train split."]),
    ]
    report.write(out_dir, "device", title=f"jppo on {_device_name()}",
                 header=("num_envs", "seeds", "compile s", "env steps / s"), rows=grid_rows, notes=notes,
                 sections=sections, figure=_figure(grid, update, metabbo))
    print(summary)
