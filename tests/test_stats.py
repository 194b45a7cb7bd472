"""rliable's estimators (jppo.stats) against direct computations: the IQM, the stratified bootstrap, pairing."""

import numpy as np
import pytest

from jppo import stats


@pytest.mark.parametrize("shape", [(8, 1), (10, 1), (13, 3), (2, 5, 4)])
def test_iqm_is_the_mean_of_the_middle_half(shape):
    x = np.random.default_rng(0).normal(size=shape)
    flat = np.sort(x.reshape(*shape[:-2], -1), axis=-1)
    cut = flat.shape[-1] // 4  # rliable: scipy's trim_mean(x, 0.25) over runs × tasks
    np.testing.assert_allclose(stats.iqm(x), flat[..., cut:flat.shape[-1] - cut].mean(axis=-1), rtol=1e-12)
    np.testing.assert_allclose(stats.iqm(np.arange(8.0)[:, None]), np.mean([2, 3, 4, 5]))


def test_stratified_bootstrap_resamples_runs_within_each_task_and_keeps_methods_paired():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(2, 5, 3))  # [methods, runs, tasks]
    scores[1] = scores[0] + 1.0  # method 1 is method 0 shifted: paired resamples keep the shift exactly
    reps = 300
    got = stats.replicates(scores, stats.iqm, reps=reps, seed=7, block=64)
    indices = stats.stratified_indices(np.random.default_rng(7), 5, 3, reps)
    for b in (0, 1, reps - 1):  # one replicate from its definition: x^b_nm = x[i(b, n, m), m]
        direct = np.stack([[scores[k, indices[b, n, m], m] for m in range(3)] for k in range(2) for n in range(5)])
        np.testing.assert_allclose(got[b], stats.iqm(direct.reshape(2, 5, 3)), rtol=1e-12)
    assert np.all(np.isin(indices, np.arange(5)))
    np.testing.assert_allclose(got[:, 1] - got[:, 0], 1.0, rtol=1e-12)
    e = stats.interval(scores, stats.iqm, reps=reps, seed=7)
    np.testing.assert_allclose(e.low, np.percentile(got, 2.5, axis=0))
    np.testing.assert_allclose(e.high, np.percentile(got, 97.5, axis=0))
    np.testing.assert_allclose(e.point, stats.iqm(scores))


def test_mean_interval_covers_like_a_normal_one():
    """For many runs the percentile bootstrap's 95% interval of a mean is close to mean ± 1.96 s / √N."""
    x = np.random.default_rng(2).normal(3.0, 2.0, size=(400, 1))
    e = stats.interval(x, stats.mean, reps=4000)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.shape[0])
    np.testing.assert_allclose([e.low, e.high], [x.mean() - half, x.mean() + half], atol=0.05)


def test_seed_scores_average_each_seeds_samples_or_take_the_samples_of_one_seed():
    samples = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)  # [methods, seeds, tasks, samples]
    np.testing.assert_array_equal(stats.seed_scores(samples), samples.mean(axis=-1))
    one = samples[:, :1]
    np.testing.assert_array_equal(stats.seed_scores(one), np.swapaxes(one[:, 0], -1, -2))  # [methods, 5, 4]
