"""BBOB in JAX: every function vs an independent numpy reference (and MetaBox's own code when its
source is available), optima, batching, MetaBox's suites, and bad input."""

from __future__ import annotations


import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from jppo.metabbo import bbob
from references import bbob_numpy, metabox_source

FIDS = list(range(1, 25))


@pytest.fixture(scope="module", params=[10, 30])
def suite64(request):
    """All 24 functions of MetaBox's bbob-<dim>D (instance seed 3849), in float64."""
    with jax.enable_x64(True):
        problems, fids = bbob.bbob_suite(request.param, "all", "train")
    return request.param, problems, fids


def _one(problems, i):
    return jax.tree.map(lambda leaf: leaf[i], problems)


def test_every_function_matches_the_numpy_reference(suite64):
    dim, problems, fids = suite64
    points = np.random.default_rng(dim).uniform(-6.0, 6.0, (8, dim))  # inside and outside [-5, 5]
    with jax.enable_x64(True):
        values = np.asarray(jax.jit(jax.vmap(bbob.evaluate, in_axes=(0, None)))(problems, points))
    for i, fid in enumerate(fids):
        expected = [bbob_numpy.value(_one(problems, i), x) for x in points]
        np.testing.assert_allclose(values[i], expected, rtol=1e-6, err_msg=f"F{fid}, {dim}-D")


def test_optimum_costs_exactly_the_bias(suite64):
    dim, problems, fids = suite64
    with jax.enable_x64(True):
        at_optimum = np.asarray(jax.vmap(lambda p: bbob.evaluate(p, p.shift))(problems))
    np.testing.assert_allclose(at_optimum, np.asarray(problems.bias), rtol=0, atol=1e-9)
    with jax.enable_x64(True):
        unbiased = np.asarray(jax.vmap(lambda p: bbob.evaluate(p, p.shift, bias=False))(problems))
    np.testing.assert_allclose(unbiased, 0.0, atol=1e-9)  # the cost f(x) - f(x*) without the bias


def test_costs_without_the_bias_keep_float32_precision():
    problems, _ = bbob.bbob_suite(10, "easy", "test")
    sphere = _one(problems, 0)  # F1, bias 100-2500
    near = np.asarray(sphere.shift) + 1e-4
    assert float(bbob.evaluate(sphere, near, bias=False)) == pytest.approx(10 * 1e-8, rel=1e-2)  # x* + 1e-4 rounds
    assert float(bbob.evaluate(sphere, near)) - float(sphere.bias) != pytest.approx(1e-7, rel=1e-2)  # lost in f32
    assert set(np.asarray(problems.bias) / 100) <= set(range(1, 26))


def test_float32_by_default_and_close_to_float64():
    problems, fids = bbob.bbob_suite(10, "all", "train")
    assert problems.shift.dtype == jnp.float32
    x = np.random.default_rng(0).uniform(-5, 5, (16, 10))
    low = np.asarray(jax.vmap(bbob.evaluate, in_axes=(0, None))(problems, x))
    with jax.enable_x64(True):
        high = np.asarray(jax.vmap(bbob.evaluate, in_axes=(0, None))(bbob.bbob_suite(10, "all", "train")[0], x))
    np.testing.assert_allclose(low, high, rtol=1e-3)  # F19's cos of large arguments is the worst, ~2e-4


def test_mixed_batch_equals_one_by_one_and_compiles_once():
    problems, fids = bbob.bbob_suite(10, "easy", "test")
    x = np.random.default_rng(1).uniform(-5, 5, (5, 10)).astype(np.float32)
    traces = []

    def counted(p, x):
        traces.append(1)
        return bbob.evaluate(p, x)

    single = jax.jit(counted)
    one_by_one = np.stack([np.asarray(single(_one(problems, i), x)) for i in range(len(fids))])
    batched = np.asarray(jax.jit(jax.vmap(bbob.evaluate, in_axes=(0, None)))(problems, x))
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-6)
    assert len(traces) == 1  # eight functions, one program


def _switches(jaxpr) -> list[int]:
    """Branch counts of every `cond` in a jaxpr, nested ones included."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "cond":
            found.append(len(eqn.params["branches"]))
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            found += _switches(sub)
    return found


def test_nested_vmap_over_problems_keeps_one_function_per_problem():
    """Seeds x problems (what a trainer's seed vmap over a batch of RLEPSO envs does): each problem still
    runs only its own function (a 24-way switch survives; a vmapped index would compute all 24)."""
    problems, fids = bbob.bbob_suite(10, "easy", "test")
    seeds_problems = jax.tree.map(lambda leaf: jnp.stack([leaf, leaf]), problems)
    x = np.random.default_rng(2).uniform(-5, 5, (2, len(fids), 5, 10)).astype(np.float32)
    nested = jax.vmap(jax.vmap(bbob.evaluate))
    assert 24 in _switches(jax.make_jaxpr(nested)(seeds_problems, x).jaxpr)
    one_by_one = np.stack([np.stack([np.asarray(bbob.evaluate(_one(problems, i), x[s, i])) for i in range(len(fids))])
                           for s in range(2)])
    np.testing.assert_allclose(np.asarray(jax.jit(nested)(seeds_problems, x)), one_by_one, rtol=1e-6)


def test_suites_follow_metabox_splits_and_are_deterministic():
    easy_train, easy_test = bbob.split_ids("easy", "train"), bbob.split_ids("easy", "test")
    assert easy_test == [1, 2, 3, 5, 15, 16, 17, 21]
    assert easy_train == [4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 18, 19, 20, 22, 23, 24]
    assert bbob.split_ids("difficult", "train") == easy_test and bbob.split_ids("difficult", "test") == easy_train
    assert bbob.split_ids("all", "train") == bbob.split_ids("all", "test") == FIDS
    a, fids = bbob.bbob_suite(30, "easy", "train")
    b, _ = bbob.bbob_suite(30, "easy", "train")
    assert a.shift.shape == (16, 30) and fids == easy_train
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    # a test problem is the same instance whichever split it is drawn in (all 24 are drawn in order)
    every, _ = bbob.bbob_suite(10, "all", "train")
    test, _ = bbob.bbob_suite(10, "easy", "test")
    np.testing.assert_array_equal(np.asarray(test.shift[1]), np.asarray(every.shift[1]))
    other, _ = bbob.bbob_suite(10, "easy", "test", instance_seed=7)
    assert not np.allclose(other.shift, test.shift)


def test_rotations_are_orthogonal():
    rng = np.random.RandomState(0)
    for dim in (2, 3, 10):
        r = bbob.random_rotation(rng, dim)
        np.testing.assert_allclose(r @ r.T, np.eye(dim), atol=1e-12)


def test_bad_input_is_named():
    eye = np.eye(3)
    with pytest.raises(ValueError, match="fid must be a BBOB function id"):
        bbob.make_problem(25, 10)
    with pytest.raises(ValueError, match="fid must be a BBOB function id"):
        bbob.Problem.from_arrays(0, np.zeros(3), eye, 100.0)
    with pytest.raises(ValueError, match=r"rotate must have shape \(3, 3\)"):
        bbob.Problem.from_arrays(1, np.zeros(3), np.eye(4), 100.0)
    with pytest.raises(ValueError, match="shift must be finite"):
        bbob.Problem.from_arrays(1, [0.0, np.nan, 0.0], eye, 100.0)
    with pytest.raises(ValueError, match="rotate must be finite"):
        bbob.Problem.from_arrays(1, np.zeros(3), eye * np.inf, 100.0)
    with pytest.raises(ValueError, match="rotate must be orthogonal"):
        bbob.Problem.from_arrays(2, np.zeros(3), eye * 2.0, 100.0)
    with pytest.raises(ValueError, match="needs peaks"):
        bbob.Problem.from_arrays(21, np.zeros(3), eye, 100.0)
    problem = bbob.Problem.from_arrays(1, np.zeros(3), eye, 100.0)
    with pytest.raises(ValueError, match=r"x must have shape \[..., 3\]"):
        bbob.evaluate(problem, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="difficulty must be"):
        bbob.bbob_suite(10, "medium", "train")
    with pytest.raises(ValueError, match="split must be"):
        bbob.bbob_suite(10, "easy", "validation")
    with pytest.raises(ValueError, match="share a dimension"):
        bbob.stack([problem, bbob.make_problem(1, 4, 0)])
    np.testing.assert_allclose(bbob.evaluate(problem, np.ones(3)), 103.0)


# ---------------------------------------------------------------- MetaBox's own code, when available


@pytest.mark.metabox
def test_same_instances_and_values_as_metabox(suite64):
    """MetaBox's get_datasets draws (seed 3849, shift, rotation, bias, then each constructor's own
    draws) rebuilt here give the same functions: values agree on random points."""
    module = metabox_source.bbob_numpy()
    if module is None:
        pytest.skip(metabox_source.SKIP_REASON)
    dim, problems, fids = suite64
    np.random.seed(bbob.INSTANCE_SEED)  # MetaBox draws from numpy's global state
    theirs = []
    for fid in FIDS:
        shift = 0.8 * (np.random.random(dim) * 10 - 5)
        rotation = module.rotate_gen(dim)
        bias = np.random.randint(1, 26) * 100
        theirs.append(getattr(module, f"F{fid}")(dim=dim, shift=shift, rotate=rotation, bias=bias, lb=-5, ub=5))
    points = np.random.default_rng(0).uniform(-6.0, 6.0, (32, dim))
    with jax.enable_x64(True):
        ours = np.asarray(jax.vmap(bbob.evaluate, in_axes=(0, None))(problems, points))
    for i, fid in enumerate(fids):
        np.testing.assert_allclose(ours[i], theirs[fid - 1].func(points.copy()), rtol=1e-9, err_msg=f"F{fid}")
        assert theirs[fid - 1].optimum == pytest.approx(float(problems.bias[i]), abs=1e-9)
