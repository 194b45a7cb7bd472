"""GAE and n-step returns against plain numpy loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jppo


def numpy_gae(rewards, values, last_value, terminated, truncated, final_values, gamma, lam):
    T = len(rewards)
    adv = np.zeros_like(rewards)
    next_adv = np.zeros_like(last_value)
    for t in reversed(range(T)):
        next_value = last_value if t == T - 1 else values[t + 1]
        next_value = np.where(truncated[t], final_values[t], next_value)
        delta = rewards[t] + gamma * (1 - terminated[t]) * next_value - values[t]
        done = np.logical_or(terminated[t], truncated[t])
        next_adv = delta + gamma * lam * (1 - done) * next_adv
        adv[t] = next_adv
    return adv, adv + values


# Shapes from a few values, the edges among them: every new shape compiles the ops afresh, and the
# arithmetic under test does not depend on the length or the batch.
LENGTHS, BATCHES = st.sampled_from([1, 2, 12]), st.sampled_from([1, 4])


@settings(max_examples=40, deadline=None)
@given(
    T=LENGTHS,
    B=BATCHES,
    gamma=st.floats(0, 1),
    lam=st.floats(0, 1),
    seed=st.integers(0, 2**31 - 1),
)
def test_gae_matches_numpy_loop(T, B, gamma, lam, seed):
    rng = np.random.default_rng(seed)
    r, v, fv = (rng.normal(size=(T, B)) for _ in range(3))
    last = rng.normal(size=B)
    term = rng.random((T, B)) < 0.2
    trunc = (rng.random((T, B)) < 0.2) & ~term
    with jax.enable_x64(True):
        adv, ret = jppo.gae(r, v, last, term, trunc, fv, gamma=gamma, lam=lam)
        adv, ret = np.asarray(adv), np.asarray(ret)
    ref_adv, ref_ret = numpy_gae(r, v, last, term, trunc, fv, gamma, lam)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ret, ref_ret, rtol=1e-12, atol=1e-12)


def test_truncation_bootstraps_from_final_value_and_termination_does_not():
    r = np.zeros((1, 2))
    v = np.zeros((1, 2))
    adv, _ = jppo.gae(r, v, np.full(2, 99.0), [[True, False]], [[False, True]], np.full((1, 2), 5.0), gamma=0.5, lam=1.0)
    np.testing.assert_allclose(np.asarray(adv), [[0.0, 2.5]])


@settings(max_examples=20, deadline=None)
@given(T=LENGTHS, B=BATCHES, gamma=st.floats(0, 1), seed=st.integers(0, 2**31 - 1))
def test_nstep_returns_is_gae_with_lambda_one_and_no_dones(T, B, gamma, seed):
    rng = np.random.default_rng(seed)
    r, v = rng.normal(size=(T, B)), rng.normal(size=(T, B))
    boot = rng.normal(size=B)
    with jax.enable_x64(True):
        nstep = np.asarray(jppo.nstep_returns(r, boot, gamma))
        _, ret = jppo.gae(r, v, boot, np.zeros((T, B), bool), gamma=gamma, lam=1.0)
    np.testing.assert_allclose(nstep, np.asarray(ret), rtol=1e-10, atol=1e-10)
    # and the definition, directly
    expected = np.zeros_like(r)
    acc = boot
    for t in reversed(range(T)):
        acc = r[t] + gamma * acc
        expected[t] = acc
    np.testing.assert_allclose(nstep, expected, rtol=1e-12, atol=1e-12)


def test_gae_runs_under_jit():
    f = jax.jit(lambda r, v, l, d: jppo.gae(r, v, l, d, gamma=0.99, lam=0.95))
    adv, ret = f(jnp.ones((5, 3)), jnp.zeros((5, 3)), jnp.zeros(3), jnp.zeros((5, 3), bool))
    assert adv.shape == ret.shape == (5, 3)


class TestBadInput:
    ok = dict(rewards=np.zeros((4, 2)), values=np.zeros((4, 2)), last_value=np.zeros(2), terminated=np.zeros((4, 2)))

    def call(self, **changes):
        kw = {**self.ok, **changes}
        return jppo.gae(kw.pop("rewards"), kw.pop("values"), kw.pop("last_value"), kw.pop("terminated"),
                        gamma=kw.pop("gamma", 0.9), lam=kw.pop("lam", 0.9), **kw)

    def test_mismatched_values_shape(self):
        with pytest.raises(ValueError, match=r"values must have shape \(4, 2\), got \(4, 3\)"):
            self.call(values=np.zeros((4, 3)))

    def test_mismatched_last_value(self):
        with pytest.raises(ValueError, match=r"last_value must have shape \(2,\)"):
            self.call(last_value=np.zeros(3))

    def test_integer_rewards(self):
        with pytest.raises(TypeError, match="rewards must be a floating-point array, got dtype int"):
            self.call(rewards=np.zeros((4, 2), int))

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_non_finite_rewards_and_values(self, bad):
        r = np.zeros((4, 2))
        r[1, 1] = bad
        with pytest.raises(ValueError, match="rewards contains NaN or inf"):
            self.call(rewards=r)
        with pytest.raises(ValueError, match="values contains NaN or inf"):
            self.call(values=r)

    @pytest.mark.parametrize("name", ["gamma", "lam"])
    @pytest.mark.parametrize("value", [-0.1, 1.5])
    def test_discounts_outside_unit_interval(self, name, value):
        with pytest.raises(ValueError, match=rf"{name} must lie in \[0, 1\]"):
            self.call(**{name: value})

    def test_truncated_needs_final_values(self):
        with pytest.raises(ValueError, match="final_values"):
            self.call(truncated=np.zeros((4, 2)))

    def test_nstep_bootstrap_shape(self):
        with pytest.raises(ValueError, match=r"bootstrap must have shape \(2,\)"):
            jppo.nstep_returns(np.zeros((4, 2)), np.zeros(4), 0.9)
