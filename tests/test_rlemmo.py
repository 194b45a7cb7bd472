"""RLEMMO: its networks (jppo.metabbo.networks.rlemmo) against torch twins (references/torch_twins_rlemmo.py)
and, with JPPO_METABOX_SRC set, against MetaBox's own `rlemmo.Actor` / `rlemmo.Critic`, outputs and
gradients to 1e-10 in float64; the port compat.agents.RLEMMO (MetaBox's config values and name, weights
saved from the twins through compat.convert_checkpoint, bad weights and inputs named, compat's loop on a
stand-in env, greedy rollouts); under MetaBox's own Trainer (metabox marker): one window on the `mmo`
suite with MetaBox's RLEMMO_Optimizer, the checkpoint rolled out in a fresh process.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch")

from jppo.metabbo import networks as N  # noqa: E402
from references import torch_twins_rlemmo as TR  # noqa: E402
from references.metabox_source import ENV, SKIP_REASON, metabbo_agent_module  # noqa: E402
from tests.test_metabox_networks import _Pair, _TPair, check_against_twin, max_diff  # noqa: E402

TOL = 1e-10
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def rlemmo_state(b, n, seed, width=22):
    """States as RLEMMO_Optimizer writes them: ratios, mostly in [0, 1], some beyond."""
    return np.random.default_rng(seed).uniform(-0.5, 1.5, size=(b, n, width))


def rlemmo_actions(b, n, seed, k=5):
    return np.random.default_rng(seed).integers(0, k, size=(b, n))


def small_networks(rngs_seed=0, layers=2, normalization="instance"):
    """A smaller RLEMMO (embedding 16, 2 heads, 2 layers, instance norm) for the gradient check: every code path."""
    actor = N.RLEMMOActor(16, 12, 2, layers, normalization, 16, 8, 5, 5, 5, 12, rngs=nnx.Rngs(rngs_seed))
    critic = N.RLEMMOCritic(16, 16, 8, rngs=nnx.Rngs(rngs_seed + 1))
    torch.manual_seed(rngs_seed)
    twin = _TPair(TR.TRLEMMOActor(16, 12, 2, layers, normalization), TR.t_rlemmo_critic(16)).double()
    with torch.no_grad():  # the norms start at weight 1, bias 0: give them values the check sees
        for name, p in twin.named_parameters():
            if "normalizer" in name:
                p.copy_(torch.rand(p.shape, dtype=p.dtype) + 0.5)
    return actor, critic, twin


# --------------------------------------------------------------------------- networks vs the torch twins


@pytest.mark.parametrize("sizes", ["metabox", "small"])
def test_actor_and_critic_match_the_torch_twins(sizes):
    """log π(a) [B] (summed over the population), entropy [B, NP], value [B] through to_critic; the
    gradients of every parameter and of the state (the value loss reaches the actor's trunk)."""
    if sizes == "metabox":
        actor, critic = N.rlemmo_networks(rngs=nnx.Rngs(0))
        torch.manual_seed(0)
        twin = _TPair(TR.TRLEMMOActor(), TR.t_rlemmo_critic()).double()
    else:
        actor, critic, twin = small_networks()
    b, n = 3, 7
    x, a = rlemmo_state(b, n, seed=1), rlemmo_actions(b, n, seed=2)

    def mine(m, x):
        _, logp, ent, f = m.actor(x, a, require_entropy=True, to_critic=True)
        assert logp.shape == (b,) and ent.shape == (b, n) and f.shape == (b, n, m.actor.embedding_dim)
        return jnp.concatenate([logp, m.critic(f), ent.reshape(-1)])

    def theirs(m, x):
        logp, ent, value = TR.t_rlemmo_outputs(m.actor, m.critic, x, a)
        return torch.cat([logp, value, ent.reshape(-1)])

    worst = check_against_twin(_Pair(actor, critic), twin, mine, theirs, [x])
    print(f"RLEMMO ({sizes}) vs torch twin: max |diff| {worst:.3g}")


def test_sampling_greedy_and_shared_trunk_views():
    actor, critic = N.rlemmo_networks(rngs=nnx.Rngs(3))
    x = jnp.asarray(rlemmo_state(2, 9, seed=4))
    action, logp, f = actor(x, key=jax.random.key(0))
    assert action.shape == (2, 9) and f is None and set(np.unique(action)) <= set(range(5))
    assert max_diff(actor(x, fixed_action=action)[1], logp) == 0.0  # evaluating the sample gives its log-prob
    dist, feats = actor.distribution(x)
    assert max_diff(dist.log_prob(action).sum(1), logp) == 0.0
    assert max_diff(feats, actor(x, only_critic=True)) == 0.0
    assert max_diff(actor(x, to_critic=True, key=jax.random.key(0))[2], feats) == 0.0
    greedy = actor(x, sampling=False)[0]  # MetaBox's rollout: argmax, no key needed
    assert np.array_equal(greedy, np.argmax(np.asarray(dist.probs), -1))
    assert critic(feats).shape == (2,) and critic(feats[:1]).shape == ()  # torch's squeeze()
    assert not bool(jnp.all(actor(x, key=jax.random.key(1))[0] == action))


def test_bad_inputs_name_the_argument_and_shape():
    actor, _ = N.rlemmo_networks(rngs=nnx.Rngs(0))
    x = jnp.asarray(rlemmo_state(2, 4, seed=0))
    with pytest.raises(ValueError, match="RLEMMOActor: sampling needs key="):
        actor(x)
    with pytest.raises(ValueError, match=r"fixed_action must have shape \(2, 4\), got \(2, 4, 1\)"):
        actor(x, fixed_action=jnp.zeros((2, 4, 1), int))
    with pytest.raises(ValueError, match=r"x must have shape \[batch, population, global_dim \+ local_dim \+ "
                                         r"ind_dim\] with last axis 22, got \(2, 4, 21\)"):
        actor(x[..., :21], key=jax.random.key(0))
    with pytest.raises(ValueError, match="embedding_dim must be even"):
        N.RLEMMOActor(15, 16, 1, 1, "layer", 16, 8, 5, 5, 5, 12, rngs=nnx.Rngs(0))


def test_parameter_names_and_counts_are_metaboxs():
    actor, critic = N.rlemmo_networks(rngs=nnx.Rngs(0))
    torch.manual_seed(0)
    t_actor, t_critic = TR.TRLEMMOActor(), TR.t_rlemmo_critic()
    for mine, theirs in ((actor, t_actor), (critic, t_critic)):
        assert N.torch_layout(mine) == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    count = lambda m: sum(int(np.prod(s)) for s in N.torch_layout(m).values())  # noqa: E731
    assert (count(actor), count(critic)) == (26629, 1185)


# --------------------------------------------------------------------------- MetaBox's own networks

needs_metabox = pytest.mark.skipif(not os.environ.get(ENV), reason=SKIP_REASON)


@pytest.mark.metabox
@needs_metabox
@pytest.mark.parametrize("n_layers,normalization", [(1, "layer"), (2, "instance")])
def test_metabox_rlemmo_networks_load_and_agree(n_layers, normalization):
    rlemmo = metabbo_agent_module("rlemmo")
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # MetaBox's Config() does this
    try:
        torch.manual_seed(9)
        args = dict(embedding_dim=64, hidden_dim=64, n_heads_actor=4, n_layers=n_layers, normalization=normalization,
                    hidden_dim1=16, hidden_dim2=8, output_dim=5, global_dim=5, local_dim=5, ind_dim=12)
        theirs_actor, theirs_critic = rlemmo.Actor(**args), rlemmo.Critic(64, 16, 8)
        actor, critic = N.RLEMMOActor(**args, rngs=nnx.Rngs(0)), N.RLEMMOCritic(64, 16, 8, rngs=nnx.Rngs(1))
        N.load_state_dict(actor, theirs_actor.state_dict())
        N.load_state_dict(critic, theirs_critic.state_dict())
        x = rlemmo_state(3, 20, seed=11)
        with torch.no_grad():
            t_action, t_logp, t_ent, t_f = theirs_actor(torch.tensor(x), require_entropy=True, to_critic=True)
            t_greedy = theirs_actor(torch.tensor(x), sampling=False)[0]
            t_value = theirs_critic(t_f)
        action, logp, ent, f = actor(jnp.asarray(x), t_action.numpy(), require_entropy=True, to_critic=True)
    finally:
        torch.set_default_dtype(saved)
    diffs = [max_diff(logp, t_logp), max_diff(ent, t_ent), max_diff(f, t_f), max_diff(critic(f), t_value)]
    print(f"MetaBox RLEMMO ({n_layers} layer(s), {normalization}): max |diff| {max(diffs):.3g}")
    assert max(diffs) < TOL
    assert np.array_equal(actor(jnp.asarray(x), sampling=False)[0], t_greedy.numpy())
