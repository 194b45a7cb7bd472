"""Network construction: the orthogonal initializer, and no LAPACK call in vmapped initialisation."""

import jax
import numpy as np
import pytest
from flax import nnx

from jppo import envs
from jppo.config import TrainConfig
from jppo.networks import orthogonal
from jppo.policy import ActorCritic
from jppo.train import make_networks


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
