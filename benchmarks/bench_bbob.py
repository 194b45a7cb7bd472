"""BBOB over a batch of problems: each strategy of `jppo.metabbo.bbob.evaluate` (`STRATEGIES`) on this backend.

    python -m benchmarks.run bbob            # 16, 256 and 1024 problems
    python -m benchmarks.run bbob --quick    # 16 problems

One evaluation is what an RLEPSO step asks of its problems: 200 points in 10-D (100 particles and
their 100 re-initialisation candidates) for each of B problems, float32, `jax.vmap(evaluate)` over
the batch, jitted. Two batches: 'one function' is MetaBox's 'single' batching (B copies of one
problem; the time is the mean over the 16 problems of the bbob-10D easy train split), 'mixed' puts
problem i mod 16 on env i (16 functions in one batch). The 'select' row is a plain vmap of the
24-way switch (every point through all 24 functions), what vmap does without a batching rule.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np

from benchmarks import report
from jppo.metabbo import bbob

POINTS, DIM = 200, 10


def _seconds(ways: dict, args_list, reps: int) -> dict:
    """{way: median over `reps` rounds of the mean seconds of one call over `args_list`}; the ways run in
    turn within a round (the machine's speed drifts; this way it slows every way alike)."""
    for fn in ways.values():
        for args in args_list:
            jax.block_until_ready(fn(*args))  # compiled
    rounds = {way: [] for way in ways}
    for _ in range(reps):
        for way, fn in ways.items():
            start = time.perf_counter()
            for args in args_list:
                jax.block_until_ready(fn(*args))
            rounds[way].append((time.perf_counter() - start) / len(args_list))
    return {way: float(np.median(r)) for way, r in rounds.items()}


def timings(batches, reps: int):
    """{(composition, B, way): seconds per evaluation}; ways are the strategies and 'select'."""
    suite, _ = bbob.bbob_suite(DIM, "easy", "train")
    n = len(suite.fid)
    ways = {s: jax.jit(jax.vmap(lambda p, x, s=s: bbob.evaluate(p, x, strategy=s))) for s in bbob.STRATEGIES}
    ways["select"] = jax.jit(jax.vmap(bbob._evaluate))
    out = {}
    for batch in batches:
        x = jax.numpy.asarray(np.random.default_rng(batch).uniform(-5, 5, (batch, POINTS, DIM)), np.float32)
        pick = lambda index: jax.tree.map(lambda leaf: leaf[index], suite)  # noqa: E731
        compositions = {"one function": [(pick(np.full(batch, i)), x) for i in range(n)],
                        "mixed": [(pick(np.arange(batch) % n), x)]}
        for name, args_list in compositions.items():
            for way, seconds in _seconds(ways, args_list, reps).items():
                out[name, batch, way] = seconds
                print(f"  bbob: {name}, {batch} problems, {way}: {1e3 * seconds:.2f} ms", flush=True)
    return out


def main(out_dir: Path, quick: bool):
    batches = (16,) if quick else (16, 256, 1024)
    found = timings(batches, reps=3 if quick else 5)
    ways = (*bbob.STRATEGIES, "select")
    rows = [(name, batch, *(f"{1e3 * found[name, batch, way]:.2f}" for way in ways),
             f"{found[name, batch, 'dense'] / found[name, batch, 'loop']:.1f}x")
            for name in ("one function", "mixed") for batch in batches]
    backend = jax.default_backend()
    notes = [f"Milliseconds per evaluation of {POINTS} points in {DIM}-D per problem (float32), median of rounds. "
             f"'auto' is what `evaluate` does by default on this backend ({backend}: "
             f"{'loop' if backend == 'cpu' else 'dense'}: the same operations once compiled, so the two columns differ "
             f"by the machine's noise alone). The ways run in turn within each round.",
             f"Command: `python -m benchmarks.run bbob{' --quick' if quick else ''}`. {report.machine()}"]
    report.write(out_dir, "bbob", title=f"BBOB over a batch of problems: strategies on {backend}",
                 header=("batch", "problems", *(f"{w} ms" for w in ways), "dense / loop"), rows=rows, notes=notes)
