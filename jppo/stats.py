r"""Results across runs, with rliable's estimators (Agarwal et al., "Deep reinforcement learning at the edge
of the statistical precipice", NeurIPS 2021), in numpy.

Scores are arrays `[..., N, M]`: run n (a training seed) on task m (an env, a problem). Leading axes
(methods, grid points) are resampled alike, so runs that belong together — the same seed's trained and
untrained policy, runs from the same keys — stay paired.

    mean(x) = (1 / NM) Σ_{n,m} x_nm
    IQM(x)  = the interquartile mean: the mean of the middle 50% of the NM scores, the ⌊NM/4⌋ lowest and
              ⌊NM/4⌋ highest cut (`scipy.stats.trim_mean(x, 0.25)` over all of them, as rliable computes it)

Stratified bootstrap: replicate b draws, for every task m on its own, N of its runs with replacement,

    x^b_nm = x_{i(b,n,m), m},    i(b,n,m) ~ Uniform{0, ..., N-1}   (the same i for every leading index)

and a 95% confidence interval is the 2.5th and 97.5th percentile of a statistic over B replicates
(the percentile bootstrap, rliable's default). NaN scores propagate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.stats import trim_mean

REPS = 2000  # bootstrap replicates (rliable defaults to 50,000; 2,000 puts a 95% bound within ~0.1 of a std)


class Estimate(NamedTuple):
    """A point estimate and its confidence interval, arrays of the scores' leading shape."""

    point: np.ndarray
    low: np.ndarray
    high: np.ndarray


def mean(scores) -> np.ndarray:
    """The mean over runs and tasks (the last two axes)."""
    return np.asarray(scores).mean(axis=(-2, -1))


def iqm(scores) -> np.ndarray:
    """The interquartile mean over runs and tasks (the last two axes): rliable's `aggregate_iqm`."""
    scores = np.asarray(scores)
    return trim_mean(scores.reshape(*scores.shape[:-2], -1), 0.25, axis=-1)


STATISTICS: dict[str, Callable] = {"mean": mean, "IQM": iqm}


def stratified_indices(rng: np.random.Generator, runs: int, tasks: int, reps: int) -> np.ndarray:
    """`[reps, runs, tasks]` run indices: each replicate draws each task's runs with replacement."""
    return rng.integers(0, runs, (reps, runs, tasks))


def resample(scores, indices) -> np.ndarray:
    """`scores [..., N, M]` resampled by `indices [B, N, M]` (`stratified_indices`): `[B, ..., N, M]`."""
    scores = np.asarray(scores)
    lead = scores.ndim - 2
    return np.take_along_axis(scores[None], indices.reshape(indices.shape[0], *(1,) * lead, *indices.shape[1:]),
                              axis=-2)


def replicates(scores, statistic: Callable, *, reps: int = REPS, seed: int = 0, block: int = 250) -> np.ndarray:
    """`[reps, ...]`: `statistic` of `reps` stratified bootstrap resamples of `scores [..., N, M]` (taken in
    blocks of `block` replicates, to bound memory)."""
    scores = np.asarray(scores, dtype=np.float64)
    indices = stratified_indices(np.random.default_rng(seed), *scores.shape[-2:], reps)
    return np.concatenate([statistic(resample(scores, indices[i:i + block])) for i in range(0, reps, block)])


def interval(scores, statistic: Callable, *, reps: int = REPS, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """`statistic(scores)` and its percentile-bootstrap confidence interval over stratified resamples."""
    scores = np.asarray(scores, dtype=np.float64)
    low, high = np.percentile(replicates(scores, statistic, reps=reps, seed=seed),
                              [50 * (1 - confidence), 50 * (1 + confidence)], axis=0)
    return Estimate(statistic(scores), low, high)


def estimates(scores, *, reps: int = REPS, seed: int = 0) -> dict[str, Estimate]:
    """The mean and the IQM of `scores [..., N, M]`, each with its 95% stratified-bootstrap interval."""
    return {name: interval(scores, statistic, reps=reps, seed=seed) for name, statistic in STATISTICS.items()}


def seed_scores(samples) -> np.ndarray:
    """The runs of the estimators from evaluation samples `[..., S, M, R]` (R episodes or optimisation runs of
    training seed s on task m): with several seeds, each seed's mean over its R samples, `[..., S, M]`; with
    one seed, the samples themselves, `[..., R, M]` (an interval then shows evaluation noise alone, not how
    training varies from seed to seed: `unit` says which)."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.shape[-3] > 1:
        return samples.mean(axis=-1)
    return np.swapaxes(samples[..., 0, :, :], -1, -2)


def unit(num_seeds: int, samples: str) -> str:
    """What a resampled run is, for a report: 'seeds' or, with one seed, its `samples` (e.g. 'episodes')."""
    return "seeds" if num_seeds > 1 else f"{samples} (one training seed: the interval is evaluation noise alone)"


def format_estimate(e: Estimate, index=(), digits: str = ".3g") -> str:
    """'1.23 [0.98, 1.40]' for entry `index` of an `Estimate`."""
    return f"{e.point[index]:{digits}} [{e.low[index]:{digits}}, {e.high[index]:{digits}}]"
