"""The metabox_parity benchmark at its smallest, jppo's parts only (a stand-in for BBOB, so nothing compiles
the 24 functions): it runs end to end, writes its summary, report and figure, a rerun reads its cache, and the
report is drawn again from the summary alone."""

import dataclasses

import jax
import numpy as np
import pytest

from benchmarks.metabox_parity import policies, runner, s1_pretrained, setting
from benchmarks.metabox_parity.evaluate import paired_bootstrap
from references.stand_ins import stand_in_evaluate

TINY = dataclasses.replace(setting.QUICK, runs=2, max_fes=300, train_windows=2, train_seeds=2, num_envs=2,
                           curve_epochs=1, curve_envs=2, curve_seeds=2, problems=2, evaluate_fn=stand_in_evaluate,
                           metabox=False, metabox_costs_way=False)


@pytest.mark.slow
def test_tiny_run_writes_the_report_and_reuses_its_cache(tmp_path):
    cache = tmp_path / "cache"
    runner.run(tmp_path, TINY, cache, "metabox_parity_quick")
    text = (tmp_path / "metabox_parity_quick.md").read_text()
    assert "Skipped: MetaBox's RLEPSO.pkl" in text and "MetaBox's two ways skipped" in text
    assert "jppo seed 1 vs jppo's start" in text and "| jppo seed 0 trained |" in text
    assert "training episode: jppo compiled, JAX env" in text
    assert "| jppo compiled, JAX env | " in text.split("## 5. The whole budget from one start")[1]  # section 5's row
    assert (tmp_path / "metabox_parity_quick.png").stat().st_size > 1000
    curve = np.load(next(cache.glob("curve_jppo_s0-*.npz")))  # named <label>-<key>
    assert curve["return"].shape == (8,) and curve["final_cost"].shape == (8, 2) and curve["sigma"].shape == (8, 21, 35)
    assert sorted(set(curve["problem"].tolist())) == [1, 2, 3, 5, 15, 16, 17, 21]  # one epoch: each train problem once
    assert any(k.startswith("end_") for k in curve)  # the final params, for section 5's test
    stamp = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.npz")}
    runner.run(tmp_path, TINY, cache, "metabox_parity_quick")  # from the cache: nothing recomputed
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.npz")} == stamp
    text = (tmp_path / "metabox_parity_quick.md").read_text()
    runner.redraw(tmp_path, quick=True)  # from the recorded summary alone
    assert (tmp_path / "metabox_parity_quick.md").read_text() == text


def test_metabox_cost_arithmetic_keeps_the_bias_in_both_terms():
    """The env of the 'MetaBox's cost arithmetic' way: cost = eval(x) - eval(x*), each with the bias, as MetaBox."""
    from jppo.metabbo import rlepso

    env, plain = setting.make_env(TINY, metabox_costs=True), setting.make_env(TINY)
    problem = jax.tree.map(lambda leaf: leaf[0], rlepso.train_suite(setting.ENV_ID, setting.DIFFICULTY)[1].problem)
    x = np.full((3, 10), 0.25)
    np.testing.assert_allclose(env.evaluate_fn(problem, x), plain.evaluate_fn(problem, x) + problem.bias, rtol=1e-6)
    np.testing.assert_allclose(env.optimum_fn(problem), plain.optimum_fn(problem) + problem.bias, rtol=1e-6)


def test_paired_bootstrap_and_agreement():
    rng = np.random.default_rng(0)
    b = rng.normal(size=(3, 40))
    assert paired_bootstrap(b - 1.0, b) == 1.0 and paired_bootstrap(b + 1.0, b) == 0.0
    _, rows, disagree = s1_pretrained.agreement([4, 6, 7], b, b + np.array([[0.0], [0.01], [5.0]]))
    assert disagree == ["F7"] and rows[0][-1] == "yes" and rows[2][-1] == "**no**"


def test_metabox_weights_load_into_the_networks_they_came_from(tmp_path):
    """The benchmark's path for RLEPSO.pkl (npz -> jppo params) on weights written from a jppo init."""
    import jax

    from jppo.metabbo.metabox_checkpoint import write_weights
    from jppo.metabbo.rlepso import RLEPSOEnv
    from jppo.policy import ActorCritic
    from jppo.learner import make_networks

    write_weights(tmp_path / "w.npz", policies.jppo_init_weights(0))
    _, policy, params = policies.pretrained_params(tmp_path / "w.npz")
    config = setting.train_config(setting.QUICK, 2, 1, init="orthogonal")
    expected = ActorCritic.split(*make_networks(RLEPSOEnv(), config, jax.random.split(jax.random.key(0), 3)[1]))[1]
    for got, want in zip(policies.mu_sigma(policy, params), policies.mu_sigma(policy, expected)):
        np.testing.assert_allclose(got, want, rtol=1e-6)
