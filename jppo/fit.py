"""Drive a training run on the host: compiled chunks of updates, progress, TensorBoard,
checkpoints, resume, Ctrl-C and divergence handling. The numeric work stays in the trainers.

A trainer is anything with `config`, `init(key) -> state` and `run(state, n) -> (state, metrics
[n])` over a `TrainState`-like state (`update`, `key` fields): `jppo.train.Trainer` and
`jppo.nstep.NStepTrainer` (vmapped over seeds) or `jppo.host.HostTrainer` (`jittable = False`:
one seed, env workers closed at the end). `make_trainer` picks one for a config.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np

from jppo.checkpoint import Checkpointer
from jppo.config import TrainConfig
from jppo.logging import RunLogger
from jppo.host import HostTrainer, is_host_env
from jppo.nstep import NStepTrainer
from jppo.train import Trainer


class TrainingDiverged(RuntimeError):
    pass


@dataclasses.dataclass
class FitResult:
    state: object
    metrics: dict  # arrays [updates] (or [seeds, updates])
    seconds: float
    compile_seconds: float
    interrupted: bool = False


def chunk_size(num_updates: int, target_chunks: int = 50) -> int:
    """The largest divisor of `num_updates` not above num_updates / target_chunks (at least 1),
    so every chunk has the same length and compiles once."""
    limit = max(1, num_updates // target_chunks)
    return max(d for d in range(1, limit + 1) if num_updates % d == 0)


def make_trainer(config: TrainConfig, *, vector_mode: str | None = None, num_workers: int | None = None):
    """The trainer for `config`: the host trainer for `gym:` ids (`vector_mode` 'sync' by default,
    'async' or 'ray' with `num_workers` actors), else the jitted one of `config.algorithm`."""
    if is_host_env(config.env_id):
        return HostTrainer(config, mode=vector_mode or "sync", num_workers=num_workers)
    if vector_mode is not None or num_workers is not None:
        raise ValueError(f"vector_mode / num_workers apply to gymnasium environments ('gym:<id>') only; "
                         f"{config.env_id!r} is a JAX environment, trained fully jitted")
    return NStepTrainer(config) if config.algorithm == "nstep" else Trainer(config)


def seed_batched(trainer, num_seeds: int):
    """`(init(keys), run(state, n))` over a leading seed axis: vmapped and jitted for a jittable
    trainer; a host trainer's `run` is host code and trains one seed (a seed axis of 1)."""
    if getattr(trainer, "jittable", True):
        return (jax.jit(jax.vmap(trainer.init)),
                jax.jit(lambda state, n: jax.vmap(lambda s: trainer.run(s, n))(state), static_argnums=1))
    if num_seeds != 1:
        raise ValueError(f"the host trainer ({trainer.config.env_id}) trains one seed per run, got "
                         f"num_seeds={num_seeds}; start one run per seed")
    add, drop = (lambda tree: jax.tree.map(lambda x: x[None], tree)), (lambda tree: jax.tree.map(lambda x: x[0], tree))
    return (lambda keys: add(trainer.init(keys[0]))), (lambda state, n: add(trainer.run(drop(state), n)))


def fit(
    config: TrainConfig,
    *,
    num_seeds: int = 1,
    logdir: str | Path | None = None,
    ckpt_dir: str | Path | None = None,
    ckpt_every: int = 100,
    keep: int = 3,
    resume: bool = False,
    show_progress: bool = True,
    vector_mode: str | None = None,
    num_workers: int | None = None,
    trainer=None,
) -> FitResult:
    """Train `config` (over `num_seeds` vmapped seeds) with logging and checkpoints.

    Checkpoints land in `ckpt_dir` every `ckpt_every` updates (rounded up to whole chunks) and at
    the end. With `resume`, training continues from the newest readable checkpoint there.
    `gym:` environments run on the host trainer (`vector_mode`, `num_workers`: see `make_trainer`).
    `trainer`, if given, is one `make_trainer` already built for `config` (the command line builds it
    first, to report a bad setting before anything else).
    """
    trainer = make_trainer(config, vector_mode=vector_mode, num_workers=num_workers) if trainer is None else trainer
    try:
        return _drive(trainer, config, num_seeds, logdir, ckpt_dir, ckpt_every, keep, resume, show_progress)
    finally:
        close = getattr(trainer, "close", None)
        if close is not None:
            close()


def _drive(trainer, config, num_seeds, logdir, ckpt_dir, ckpt_every, keep, resume, show_progress) -> FitResult:
    keys = jax.random.split(jax.random.key(config.seed), num_seeds)
    init, run = seed_batched(trainer, num_seeds)
    state = init(keys)
    ckpt = Checkpointer(ckpt_dir, keep=keep) if ckpt_dir is not None else None
    if resume:
        if ckpt is None:
            raise ValueError("resume needs ckpt_dir")
        state, _ = ckpt.restore(state, config)
    start = int(np.asarray(state.update).reshape(-1)[0])
    total = config.num_updates
    chunk = chunk_size(total)
    logger = RunLogger(config, logdir, total=total, start=start, num_seeds=num_seeds, show_progress=show_progress)
    history: list[dict] = []
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
            metrics = jax.tree.map(np.asarray, metrics)
            loss = metrics["loss"].reshape(num_seeds, n)
            if not np.all(np.isfinite(loss)):
                bad = int(np.argwhere(~np.isfinite(loss))[:, 1].min()) + done
                raise TrainingDiverged(
                    f"the loss became NaN or inf at update {bad}; training stopped "
                    f"(the last good state is in the newest checkpoint, if any)"
                )
            state = new_state
            done += n
            since_ckpt += n
            history.append(metrics)
            logger.log_chunk(done, n, metrics, seconds=time.perf_counter() - tick)
            if ckpt is not None and (since_ckpt >= ckpt_every or done == total):
                ckpt.save(state, config, num_seeds)
                since_ckpt = 0
    except KeyboardInterrupt:
        interrupted = True
        if ckpt is not None:
            ckpt.save(state, config, num_seeds)
            logger.message(f"Interrupted: saved a checkpoint at update {int(np.asarray(state.update).reshape(-1)[0])} "
                           f"in {ckpt.directory}; continue with --resume.")
        else:
            logger.message("Interrupted: no --ckpt-dir was given, nothing saved.")
    finally:
        logger.close()
        if ckpt is not None:
            ckpt.close()
    # history holds [seeds, n] chunks; join along updates
    metrics = {k: np.concatenate([h[k] for h in history], axis=-1) for k in history[0]} if history else {}
    if num_seeds == 1:
        state = jax.tree.map(lambda x: x[0], state)
        metrics = {k: v[0] for k, v in metrics.items()}
    return FitResult(state, metrics, time.perf_counter() - t0, compile_seconds, interrupted)
