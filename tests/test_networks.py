"""Network construction: the orthogonal initializer, no LAPACK call in vmapped initialisation, the
bounded actors."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jppo import envs
from jppo.config import TrainConfig
from jppo.networks import BoundedGaussianActor, orthogonal
from jppo.policy import ActorCritic
from jppo.learner import make_networks


@pytest.mark.parametrize("shape", [(4, 64), (64, 64), (64, 2), (1, 35)])
def test_orthogonal_initializer_is_orthogonal_with_gain(shape):
    w = np.asarray(orthogonal(np.sqrt(2))(jax.random.key(0), shape), np.float64)
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
    np.testing.assert_allclose(gram, 2 * np.eye(len(gram)), atol=1e-5)


def test_vmapped_initialisation_has_no_qr_custom_call():
    """jaxlib's batched QR can deadlock the 2-thread CPU pool when two run at once (seen in CI);
    initialising networks for many seeds must be plain XLA."""
    env, _ = envs.make("CartPole-v1")

    def init(key):
        return ActorCritic.split(*make_networks(env, TrainConfig(), key))[1]

    jaxpr = jax.make_jaxpr(jax.vmap(init))(jax.random.split(jax.random.key(0), 3)).jaxpr
    names = _primitives(jaxpr)
    assert "scan" in names  # the Gram-Schmidt loop is there ...
    assert not names & {"qr", "geqrf", "geqp3", "householder_product", "orgqr"}, names  # ... and no QR


def _primitives(jaxpr) -> set[str]:
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for param in eqn.params.values():
            inner = getattr(param, "jaxpr", param)
            if hasattr(inner, "eqns"):
                names |= _primitives(inner)
    return names


def test_different_keys_give_different_networks():
    env, _ = envs.make("CartPole-v1")
    a = ActorCritic.split(*make_networks(env, TrainConfig(), jax.random.key(0)))[1]
    b = ActorCritic.split(*make_networks(env, TrainConfig(), jax.random.key(1)))[1]
    assert not np.allclose(a["actor"]["logits"]["layers"][0]["kernel"][...], b["actor"]["logits"]["layers"][0]["kernel"][...])


def _sigma_score_mean(dist, key, n=200_000):
    """E[∂ log p(a) / ∂σ] over the actions `dist` samples, for one action dimension."""
    actions = jax.vmap(dist.sample)(jax.random.split(key, n))
    score = jax.vmap(jax.grad(lambda scale, a: dataclasses.replace(dist, scale=scale).log_prob(a)),
                     in_axes=(None, 0))(dist.scale, actions)
    return float(score.mean())


def test_bounded_actor_clamped_log_density_biases_sigma_and_unclamped_does_not():
    """MetaBox's clamped actions give the σ-score a negative mean (so the policy gradient moves σ with
    the mean advantage); the unclamped actor's raw samples have the exact density, score mean 0."""
    obs = jnp.zeros((1,))
    clamped = BoundedGaussianActor(1, 1, (8,), rngs=nnx.Rngs(0), max_sigma=0.7)(obs)
    unclamped = BoundedGaussianActor(1, 1, (8,), rngs=nnx.Rngs(0), max_sigma=0.7, clamp=False)(obs)
    np.testing.assert_allclose(clamped.loc, 0.5, atol=0.01)  # the head's small init: μ ≈ 0.5, σ ≈ 0.355
    key = jax.random.key(1)
    assert _sigma_score_mean(clamped, key) < -0.5
    assert abs(_sigma_score_mean(unclamped, key)) < 0.04  # score (z² - 1)/σ: standard error √2/σ/√n ≈ 0.009
    raw = jax.vmap(unclamped.sample)(jax.random.split(key, 10_000))
    assert float(raw.min()) < 0.0 and float(raw.max()) > 1.0  # the env, not the actor, clips


def test_bounded_actors_need_a_unit_box():
    env, _ = envs.make("Pendulum-v1")
    for actor in ("bounded", "bounded-unclamped"):
        with pytest.raises(ValueError, match=f"actor='{actor}' needs a Box action space on \\[0, 1\\]"):
            make_networks(env, TrainConfig(env_id="Pendulum-v1", actor=actor), jax.random.key(0))


def test_torch_init_draws_every_layer_as_torch_linear_does():
    """init='torch': W, b ~ U(±1/√fan_in) in every layer, the heads unscaled, so a bounded actor's
    start varies over states and seeds (MetaBox's agents start there); 'orthogonal' starts at μ = 0.5."""
    env, _ = envs.make("Pendulum-v1")
    config = TrainConfig(env_id="Pendulum-v1", init="torch")
    actor = BoundedGaussianActor(3, 35, (64, 32), rngs=nnx.Rngs(0), init="torch")
    for mlp in (actor.mean, actor.spread):
        for layer in mlp.layers:
            bound = 1 / np.sqrt(layer.kernel.shape[0])
            for w in (np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])):
                assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
                assert abs(w.std() - bound / np.sqrt(3)) < 0.2 * bound  # the spread of U(-b, b)
    mu = np.asarray(actor(jnp.linspace(-1, 1, 6).reshape(2, 3)).loc)
    assert mu.std() > 0.01 and abs(mu.mean() - 0.5) < 0.1
    critic = make_networks(env, config, jax.random.key(0))[1]
    first = critic.value.layers[0]
    assert np.abs(np.asarray(first.bias[...])).max() > 0  # biases drawn, not zero
    with pytest.raises(ValueError, match="init must be one of"):
        TrainConfig(init="xavier")
