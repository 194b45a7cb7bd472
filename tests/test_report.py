"""The MetaBBO report pieces: plain PSO baseline, batched runs, ranks, the table and the plot."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jppo.metabbo import report
from jppo.metabbo.rlepso import PlainPSO, RLEPSOEnv, RLEPSOParams, rollout
from references.stand_ins import make_stand_in, stand_in_evaluate


def suite_params(max_fes=2000):
    problems = [make_stand_in(1, 0), make_stand_in(3, 1)]
    return RLEPSOParams(problem=jax.tree.map(lambda *x: jnp.stack(x), *problems), max_fes=max_fes)


def test_ranks_average_ties():
    means = np.array([[1.0, 5.0, 2.0], [2.0, 5.0, 1.0], [3.0, 1.0, 2.0]])  # [methods, problems]
    np.testing.assert_array_equal(report.ranks(means), [[1, 2.5, 2.5], [2, 2.5, 1], [3, 1, 2.5]])


def test_plain_pso_ignores_its_action_and_converges_on_the_sphere():
    env, params = PlainPSO(evaluate_fn=stand_in_evaluate), suite_params().replace(problem=make_stand_in(1, 0))
    run = jax.jit(lambda key, value: rollout(env, params, key, lambda k, obs: jnp.full(35, value, obs.dtype))[0])
    a, b = run(jax.random.key(0), 0.0), run(jax.random.key(0), 1.0)
    np.testing.assert_array_equal(a.gbest_cost, b.gbest_cost)
    assert float(a.cost_log[0]) > 10 * float(a.gbest_cost)  # 19 generations of PSO shrink the sphere's cost


def test_run_method_shapes_and_histories():
    params = suite_params()
    env = RLEPSOEnv(evaluate_fn=stand_in_evaluate)
    final, history = report.run_method(env, params, lambda k, obs: jax.random.uniform(k, (35,), obs.dtype),
                                       jax.random.key(0), runs=3)
    assert final.shape == (2, 3) and history.shape == (2, 3, 51)
    assert (np.diff(history, axis=-1) <= 0).all()
    np.testing.assert_array_equal(history[..., -1], final)
    assert len({float(v) for v in final[1]}) == 3  # runs differ


def test_table_and_plot(tmp_path):
    rng = np.random.default_rng(0)
    results = [report.MethodResult(name, rng.random((3, 2, 4)) * scale, rng.random((3, 2, 4, 51)) + 1e-3)
               for name, scale in [("a", 1.0), ("b", 10.0)]]
    text = report.markdown_table(results, ["F1", "F3"], "demo")
    assert "| F1 |" in text and "| **average rank** | **1.00** | **2.00** |" in text
    report.plot_histories(results, ["F1", "F3"], 2000, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000


@pytest.mark.slow
def test_metabbo_report_writes_the_files_with_paired_runs(tmp_path):
    """End to end on the bbob-10D test split: the files, the npz layout, and pairing (the same
    policy as 'trained' and 'untrained' gives the same final costs run by run)."""
    def policy(key, obs, value):
        return jnp.clip(value + 0.2 * jax.random.normal(key, (35,), obs.dtype), 0.0, 1.0)

    seeds = jnp.array([0.5, 0.2])  # two runs (a seed axis), as a checkpoint holds them
    text, results = report.metabbo_report("rlepso-bbob10d", policy, seeds, seeds, num_seeds=2, runs=2, max_fes=2000,
                                          out_dir=tmp_path)
    assert "rlepso-bbob10d: test split (easy), 2 runs per problem, 2 seeds trained" in text and "| F21 |" in text
    assert results[0].history.shape == (2, 8, 2, 51)  # MetaBox's 51 log points, over the 2000 evaluations given
    saved = np.load(tmp_path / "final_costs.npz")
    assert list(saved["problems"]) == ["F1", "F2", "F3", "F5", "F15", "F16", "F17", "F21"]
    assert saved["trained"].shape == (2, 8, 2) and saved["plain_PSO"].shape == (1, 8, 2)
    np.testing.assert_array_equal(saved["trained"], saved["untrained"])
    assert not np.array_equal(saved["trained"][0], saved["trained"][1])  # each seed's own policy
    assert (tmp_path / "cost_curves.png").stat().st_size > 1000 and (tmp_path / "report.md").exists()


def test_run_policies_matches_run_method_and_pairs_runs():
    params = suite_params()
    env = RLEPSOEnv(evaluate_fn=stand_in_evaluate)
    policy = lambda p, k, obs: jnp.clip(p + 0.2 * jax.random.normal(k, (35,), obs.dtype), 0.0, 1.0)  # noqa: E731
    final, history = report.run_policies(env, params, policy, jnp.array([0.3, 0.7, 0.3]), jax.random.key(0), runs=2)
    assert final.shape == (3, 2, 2) and history.shape == (3, 2, 2, 51)
    np.testing.assert_array_equal(final[0], final[2])  # the same parameters, the same runs
    single, _ = report.run_method(env, params, lambda k, obs: policy(0.7, k, obs), jax.random.key(0), runs=2)
    np.testing.assert_allclose(final[1], single, rtol=1e-5)


def test_log_cost_stats():
    mean, se = report.log_cost_stats(np.array([[1e-12, 1e-8, 10.0, 1000.0]]))
    np.testing.assert_allclose(mean, [(-8 - 8 + 1 + 3) / 4])
    np.testing.assert_allclose(se, [np.std([-8, -8, 1, 3], ddof=1) / 2])


def test_suite_module_names_the_known_ids():
    from jppo.metabbo import gleet, rlepso

    assert report.suite_module("gleet-bbob30d") is gleet and report.suite_module("rlepso-bbob10d-log") is rlepso
    import pytest

    with pytest.raises(ValueError, match="known: rlepso-bbob10d, .*gleet-bbob10d, gleet-bbob30d"):
        report.suite_module("CartPole-v1")


def test_across_seeds_ranks_within_each_seed_and_keeps_a_seeds_policies_paired():
    """Seeds differ by orders of magnitude, and within each seed the trained policy beats its own untrained
    start: ranked within each seed and resampled alike (paired), it is better in every resample."""
    rng = np.random.default_rng(0)
    untrained = (rng.random((4, 3, 5)) + 0.5) * 10.0 ** np.arange(4)[:, None, None]  # [seeds, problems, runs]
    history = np.ones((4, 3, 5, 51))
    results = [report.MethodResult("trained", untrained * 0.5, history),
               report.MethodResult("untrained", untrained, history),
               report.MethodResult("plain PSO", np.full((1, 3, 5), 1e6), history[:1])]
    text = report.across_seeds(results, ["F1", "F2", "F3"], 4, per_seed=True)
    assert "| trained | 1.00 [1.00, 1.00] | 1.00 [1.00, 1.00] |" in text
    assert "| plain PSO | 3.00 [3.00, 3.00] | 3.00 [3.00, 3.00] | 6.00 [6.00, 6.00] | 6.00 [6.00, 6.00] |" in text
    assert "P(trained ranks better than untrained) = 1.00" in text
    f2 = np.log10(untrained[:, 1]).mean(axis=-1)  # each seed's mean log10 cost on F2
    assert f"| F2 | {np.log10(0.5 * untrained[:, 1]).mean():.2f} [" in text and f"| {f2.mean():.2f} [" in text
    assert f"| 3 | 1.00 / {np.log10(0.5 * untrained[3]).mean():.2f} | 2.00 / " in text  # per-seed rows
    one = [dataclasses.replace(r, final_cost=r.final_cost[:1]) for r in results]
    assert "evaluation runs (one training seed: the interval is evaluation noise alone)" in report.across_seeds(
        one, ["F1", "F2", "F3"], 1)
