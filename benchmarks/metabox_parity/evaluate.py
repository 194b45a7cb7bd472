"""Policies on the test problems: final costs of several parameter sets from paired runs, and how likely one
policy is the better."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.cache import Cache, Code
from benchmarks.metabox_parity.policies import sampler
from benchmarks.metabox_parity.setting import Scale, settings, test_suite
from jppo.metabbo import report as mreport


def evaluate_many(cache: Cache, label: str, sources: dict, code: Code, policy, params_list, scale: Scale,
                  seed: int = 0) -> dict:
    """`{'final': [M, P, runs], 'seconds'}`: M parameter sets on the test problems, float64, run r of every set
    from the same key (paired runs), one compile. `sources` names what the sets are (the cache entries or
    choices they come from), for the entry's key."""

    def run():
        env, suite, _ = test_suite(scale)
        stacked = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x, jnp.float64) for x in xs]), *params_list)
        start = time.perf_counter()
        final, _ = mreport.run_policies(env, suite, sampler(policy), stacked, jax.random.key(seed), scale.runs)
        return {"final": final, "seconds": time.perf_counter() - start}

    with jax.enable_x64(True):
        return cache.arrays(label, settings(scale, "runs", "max_fes", "problems", "evaluate_fn", seed=seed, **sources),
                            code, run)


def paired_bootstrap(a_log, b_log, resamples: int = 2000, seed: int = 0) -> float:
    """P(a better than b): the share of bootstrap resamples (runs resampled per problem, the same indices for
    both: runs are paired) in which a's mean log10 cost, averaged over problems, is lower than b's."""
    rng = np.random.default_rng(seed)
    problems, runs = a_log.shape
    idx = rng.integers(0, runs, (resamples, problems, runs))
    diff = np.take_along_axis(a_log[None] - b_log[None], idx, axis=2).mean(axis=(1, 2))
    return float((diff < 0).mean())
