"""GLEET on the n-step trainer: the shared-trunk policy, training, checkpoints and exact resume,
on a tiny swarm (8 particles, 3 dimensions, 4 steps per episode) over two toy problems."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jppo import policy as policies
from jppo.checkpoint import Checkpointer
from jppo.config import preset
from jppo.fit import fit
from jppo.metabbo.gleet import GLEETEnv, GLEETParams
from jppo.metabbo.networks import gleet_networks
from jppo.nstep import NStepTrainer
from jppo.learner import make_networks
from references.stand_ins import make_toy, toy_evaluate

NP = 8
CONFIG = preset("gleet-bbob10d", num_envs=2, num_steps=2, total_steps=2 * 2 * 4)  # 4 windows = 2 episodes


def toy_trainer(config=CONFIG):
    problems = jax.tree.map(lambda *x: jnp.stack(x), make_toy(1, 0, dim=3), make_toy(2, 1, dim=3))
    params = GLEETParams(problem=problems, max_fes=NP * 5, population_size=NP, n_logpoint=5)  # reset + 4 steps
    return NStepTrainer(config, env=GLEETEnv(evaluate_fn=toy_evaluate, population_size=NP), env_params=params)


@pytest.fixture(scope="module")
def trainer():
    return toy_trainer()


def test_preset_is_metaboxs_gleet():
    c = preset("gleet-bbob10d")
    assert (c.num_steps, c.num_epochs, c.clip_eps, c.gamma, c.learning_rate, c.anneal_lr, c.max_grad_norm,
            c.num_envs, c.batching, c.actor, c.ent_coef) == (10, 3, 0.1, 0.999, 1e-4, False, 0.1, 16, "single",
                                                             "gleet", 0.0)
    assert preset("gleet-bbob30d").total_steps == 16 * 10 * 50 * 120  # 499 steps: 50 windows


def test_shared_trunk_policy_agrees_with_the_networks_and_trains_the_trunk_through_the_value():
    actor, critic = gleet_networks(rngs=nnx.Rngs(0))
    policy, params = policies.split(actor, critic)
    assert isinstance(policy, policies.SharedTrunkActorCritic)
    obs = jax.random.uniform(jax.random.key(1), (3, NP, 27))
    action, logp, value = policy.act(params, obs, jax.random.key(2))
    dist, f = actor.distribution(obs)
    np.testing.assert_allclose(logp, dist.log_prob(action), rtol=1e-6)
    np.testing.assert_allclose(value, critic(f), rtol=1e-6)
    np.testing.assert_allclose(policy.value(params, obs), value, rtol=1e-6)
    logp2, entropy, value2 = policy.evaluate(params, obs, action)
    np.testing.assert_allclose(logp2, logp, rtol=1e-6)
    assert action.shape == (3, NP) and logp.shape == entropy.shape == value2.shape == (3,)
    assert float(action.min()) >= 0.0 and float(action.max()) <= 1.0
    grads = jax.grad(lambda p: policy.value(p, obs).sum())(params)  # the value alone moves the actor's trunk
    assert sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(grads["actor"]["encoder"])) > 0
    heads = sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(grads["actor"]["mu_net"]))
    assert heads == 0.0


def test_gleet_actor_needs_a_gleet_env():
    from jppo import envs

    env, _ = envs.make("rlepso-bbob10d")
    with pytest.raises(ValueError, match=r"actor='gleet' needs observations \[N, 27\]"):
        make_networks(env, dataclasses.replace(CONFIG, env_id="rlepso-bbob10d"), jax.random.key(0))


def plain(leaf) -> np.ndarray:
    """A state leaf as numpy (a PRNG key as its raw data)."""
    return np.asarray(jax.random.key_data(leaf) if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key) else leaf)


@pytest.mark.slow
def test_training_and_exact_resume_from_a_checkpoint(trainer, tmp_path):
    """Two windows, a checkpoint written and read back into a fresh template, two more windows: the same
    parameters, optimizer state and swarms as four windows without a stop."""
    init = jax.jit(trainer.init)
    start = init(jax.random.key(0))
    half, metrics = trainer.run(start, 2)
    whole, _ = trainer.run(half, 2)
    ckpt = Checkpointer(tmp_path)
    ckpt.save(jax.tree.map(lambda x: x[None], half), CONFIG)
    restored, _ = ckpt.restore(jax.tree.map(lambda x: x[None], init(jax.random.key(5))))
    ckpt.close()
    resumed, later = trainer.run(jax.tree.map(lambda x: x[0], restored), 2)
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(plain(a), plain(b))
    assert np.isfinite(np.asarray(metrics["loss"])).all() and int(whole.update) == 4
    assert np.isfinite(float(later["final_cost"][-1]))  # the second episode ended in the last window
    changed = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(start.params), jax.tree.leaves(whole.params))]
    assert all(changed)  # every parameter learns, the critic's gradient included


@pytest.mark.slow
def test_fit_writes_tensorboard_and_checkpoints_and_eval_refuses_another_env(trainer, tmp_path, capsys):
    result = fit(CONFIG, logdir=tmp_path / "tb", ckpt_dir=tmp_path / "ck", ckpt_every=2, show_progress=False,
                 trainer=trainer)
    assert int(result.state.update) == CONFIG.num_updates and "final_cost" in result.metrics
    assert list((tmp_path / "tb").rglob("events.out.tfevents*"))
    assert Checkpointer(tmp_path / "ck").steps()[-1] == CONFIG.num_updates
    from jppo import cli

    code = cli.main(["eval", "--ckpt", str(tmp_path / "ck"), "--env", "rlepso-bbob10d"])
    err = capsys.readouterr().err
    assert code == 2 and "'gleet-bbob10d'" in err and "'rlepso-bbob10d'" in err
