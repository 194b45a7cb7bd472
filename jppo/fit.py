"""Drive a training run on the host: compiled chunks of updates, progress, TensorBoard,
checkpoints, resume, Ctrl-C and divergence handling. The numeric work stays in the trainers.

A trainer is anything with `config`, `init(key) -> state` and `run(state, n) -> (state, metrics
[n])` over a `TrainState`-like state (`update`, `key` fields): `jppo.train.Trainer` and
`jppo.nstep.NStepTrainer` (vmapped over seeds) or `jppo.host.HostTrainer` (`jittable = False`:
one seed, env workers closed at the end). `make_trainer` picks one for a config.

A jittable trainer's seeds (and env batch) are laid out over the local devices, or those of every
process of a `jax.distributed` run (`jppo.devices`); then process 0 alone logs and checkpoints.
Checkpoints hold gathered host arrays, so a run resumes on any number of devices. A hyperparameter grid
(`jppo.sweep.Grid`) multiplies the seeds: grid points × seeds runs, one program, one checkpoint; beside
the checkpoints, `jppo.history` keeps every run's metrics update by update.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np

from jppo import devices, history
from jppo.checkpoint import CheckpointError, Checkpointer
from jppo.config import TrainConfig
from jppo.envs import is_host_env
from jppo.logging import RunLogger
from jppo.nstep import NStepTrainer
from jppo.sweep import Grid
from jppo.train import Trainer


class TrainingDiverged(RuntimeError):
    pass


@dataclasses.dataclass
class FitResult:
    state: object
    metrics: dict  # arrays [updates] (or [runs, updates]: grid points × seeds, `jppo.sweep`)
    seconds: float
    compile_seconds: float
    interrupted: bool = False
    grid: Grid = Grid()
    num_seeds: int = 1  # per grid point


def chunk_size(num_updates: int, target_chunks: int = 50) -> int:
    """The largest divisor of `num_updates` not above num_updates / target_chunks (at least 1),
    so every chunk has the same length and compiles once."""
    limit = max(1, num_updates // target_chunks)
    return max(d for d in range(1, limit + 1) if num_updates % d == 0)


def make_trainer(config: TrainConfig, *, vector_mode: str | None = None, num_workers: int | None = None):
    """The trainer for `config`: the host trainer for `gym:` ids (`vector_mode` 'sync' by default,
    'async' or 'ray' with `num_workers` actors), else the jitted one of `config.algorithm`."""
    if is_host_env(config.env_id):
        from jppo.host import HostTrainer  # gymnasium: imported only for its envs

        return HostTrainer(config, mode=vector_mode or "sync", num_workers=num_workers)
    if vector_mode is not None or num_workers is not None:
        raise ValueError(f"vector_mode / num_workers apply to gymnasium environments ('gym:<id>') only; "
                         f"{config.env_id!r} is a JAX environment, trained fully jitted")
    return NStepTrainer(config) if config.algorithm == "nstep" else Trainer(config)


def seed_batched(trainer, num_seeds: int, placement: devices.Placement | None = None, grid: Grid = Grid()):
    """`(init(seed), run(state, n))` over a leading run axis (`grid`'s points × `num_seeds`, `jppo.sweep`):
    vmapped, jitted and laid out on `placement` (default: this process's first device) for a jittable
    trainer (`devices.seed_batched`); a host trainer's `run` is host code and trains one seed (an axis of 1)."""
    if getattr(trainer, "jittable", True):
        runs = grid.num_points * num_seeds
        placement = placement or devices.plan(runs, trainer.config.num_envs, devices.select_devices(1), grid.num_points)
        return devices.seed_batched(trainer, num_seeds, placement, grid.params(trainer.config))
    if num_seeds != 1 or grid.axes:
        raise ValueError(f"the host trainer ({trainer.config.env_id}) trains one seed per run, got "
                         f"{grid.describe(num_seeds)}; start one run per seed and setting")
    return devices.one_seed(trainer)


def fit(
    config: TrainConfig,
    *,
    num_seeds: int = 1,
    grid: Grid = Grid(),
    logdir: str | Path | None = None,
    ckpt_dir: str | Path | None = None,
    ckpt_every: int = 100,
    keep: int = 3,
    resume: bool = False,
    show_progress: bool = True,
    vector_mode: str | None = None,
    num_workers: int | None = None,
    num_devices: int | None = None,
    trainer=None,
) -> FitResult:
    """Train `config` (over `num_seeds` vmapped seeds, at every point of the hyperparameter `grid`) with
    logging and checkpoints.

    Checkpoints land in `ckpt_dir` every `ckpt_every` updates (rounded up to whole chunks) and at
    the end. With `resume`, training continues from the newest readable checkpoint there.
    `gym:` environments run on the host trainer (`vector_mode`, `num_workers`: see `make_trainer`).
    A jitted run uses the first `num_devices` local devices of every process (default: all).
    The returned state holds host (numpy) arrays. `trainer`, if given, is one `make_trainer` already
    built for `config` (the command line builds it first, to report a bad setting before anything else).
    A run that does not fit the devices' memory raises `devices.DoesNotFit` (a ValueError) saying what would.
    """
    trainer = make_trainer(config, vector_mode=vector_mode, num_workers=num_workers) if trainer is None else trainer
    try:
        placement = None
        if getattr(trainer, "jittable", True):
            placement = devices.plan(grid.num_points * num_seeds, config.num_envs,
                                     devices.select_devices(num_devices), grid.num_points)
        return _drive(trainer, placement, config, num_seeds, grid, logdir, ckpt_dir, ckpt_every, keep, resume,
                      show_progress)
    except Exception as err:
        if placement is None or not devices.out_of_memory(err):
            raise
        raise devices.does_not_fit(trainer, num_seeds, placement, grid.num_points) from err
    finally:
        close = getattr(trainer, "close", None)
        if close is not None:
            close()


def _check_same_runs(ckpt: Checkpointer, grid: Grid, num_seeds: int) -> None:
    """A CheckpointError unless the newest checkpoint in `ckpt` holds the runs of `grid` × `num_seeds`."""
    steps = ckpt.steps()
    if not steps:
        return  # restore says there is nothing
    meta = ckpt.read_meta(steps[-1])
    saved, saved_seeds = Grid.from_json(meta.get("grid", [])), meta.get("num_seeds", 1)
    if (saved, saved_seeds) != (grid, num_seeds):
        raise CheckpointError(f"cannot resume from {ckpt.directory}: it holds runs of {saved.describe(saved_seeds)}, "
                              f"this run asks for {grid.describe(num_seeds)}")


def _drive(trainer, placement, config, num_seeds, grid, logdir, ckpt_dir, ckpt_every, keep, resume,
           show_progress) -> FitResult:
    init, run = seed_batched(trainer, num_seeds, placement, grid)
    runs = grid.num_points * num_seeds
    state = init(config.seed)
    primary = jax.process_index() == 0  # alone logs and writes checkpoints
    ckpt = Checkpointer(ckpt_dir, keep=keep) if ckpt_dir is not None and primary else None
    if resume:
        if ckpt_dir is None:
            raise ValueError("resume needs ckpt_dir")
        template = devices.gather(state)

        def restore():
            _check_same_runs(ckpt, grid, num_seeds)
            return ckpt.restore(template, config)[0]

        state = devices.from_process_0(restore, template)
        state = placement.put(state) if placement is not None else state
    start = int(np.asarray(devices.gather(state.update)).reshape(-1)[0])
    total = config.num_updates
    chunk = chunk_size(total)
    logger = RunLogger(config, logdir if primary else None, total=total, start=start, num_seeds=num_seeds,
                       grid=grid, show_progress=show_progress and primary)
    earlier = history.read(ckpt_dir, start) if resume and ckpt is not None else {}  # the updates before `start`

    def save():
        host = devices.gather(state)  # every process takes part; process 0 writes
        if primary:
            ckpt.save(host, config, num_seeds, grid=grid.to_json())
            history.write(ckpt_dir, history.extend(earlier, _joined(chunks), start))

    chunks: list[dict] = []
    since_ckpt = 0
    compile_seconds = 0.0
    t0 = time.perf_counter()
    interrupted = False
    try:
        done = start
        while done < total:
            n = min(chunk, total - done)
            tick = time.perf_counter()
            new_state, metrics = jax.block_until_ready(run(state, n))
            if done == start:
                compile_seconds = time.perf_counter() - tick  # first call includes compilation
            metrics = devices.gather(metrics)
            loss = metrics["loss"].reshape(runs, n)
            if not np.all(np.isfinite(loss)):
                bad = int(np.argwhere(~np.isfinite(loss))[:, 1].min()) + done
                raise TrainingDiverged(
                    f"the loss became NaN or inf at update {bad}; training stopped "
                    f"(the last good state is in the newest checkpoint, if any)"
                )
            state = new_state
            done += n
            since_ckpt += n
            chunks.append(metrics)
            logger.log_chunk(done, n, metrics, seconds=time.perf_counter() - tick)
            if ckpt_dir is not None and (since_ckpt >= ckpt_every or done == total):
                save()
                since_ckpt = 0
    except KeyboardInterrupt:
        interrupted = True
        if ckpt is not None and jax.process_count() == 1:  # several processes: the others may be gone
            save()
            logger.message(f"Interrupted: saved a checkpoint at update {int(np.asarray(state.update).reshape(-1)[0])} "
                           f"in {ckpt.directory}; continue with --resume.")
        else:
            logger.message("Interrupted: nothing saved (no --ckpt-dir, or a run of several processes).")
    finally:
        logger.close()
        if ckpt is not None:
            ckpt.close()
    state = devices.gather(state)
    metrics = _joined(chunks)
    if runs == 1:
        state = devices.drop_seed_axis(state)
        metrics = {k: v[0] for k, v in metrics.items()}
    return FitResult(state, metrics, time.perf_counter() - t0, compile_seconds, interrupted, grid, num_seeds)


def _joined(chunks: list[dict]) -> dict:
    """Chunks of metrics `[runs, n]`, joined along updates."""
    return {k: np.concatenate([c[k] for c in chunks], axis=-1) for k in chunks[0]} if chunks else {}
