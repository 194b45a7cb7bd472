"""The loss, the clipping, the optimizers and the whole update against torch, in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jppo

torch = pytest.importorskip("torch")
from references.torch_ppo import TorchGaussianActorCritic, clip_groups, torch_loss, torch_update  # noqa: E402

OBS, ACT, N = 4, 2, 32


def make_models(seed=0, hidden=(8, 8)):
    actor = jppo.GaussianActor(OBS, ACT, hidden, rngs=nnx.Rngs(seed), init_log_std=-0.3)
    critic = jppo.Critic(OBS, hidden, rngs=nnx.Rngs(seed + 1))
    return actor, critic


def make_batch(seed=0, n=N):
    rng = np.random.default_rng(seed)
    return {
        "obs": rng.normal(size=(n, OBS)),
        "actions": rng.normal(size=(n, ACT)),
        "logp": rng.normal(-2.5, 0.3, size=n),
        "values": rng.normal(size=n),
        "advantages": rng.normal(size=n),
        "returns": rng.normal(size=n),
    }


def to_torch(batch):
    return {k: torch.from_numpy(np.asarray(v)) for k, v in batch.items()}


def flat_jax_params(params):
    actor = params["actor"]
    leaves = []
    for lin in ("mean",):
        for layer in actor[lin]["layers"].values():
            leaves += [np.asarray(layer["kernel"][...]).T, np.asarray(layer["bias"][...])]
    leaves.append(np.asarray(actor["log_std"][...]))
    for layer in params["critic"]["value"]["layers"].values():
        leaves += [np.asarray(layer["kernel"][...]).T, np.asarray(layer["bias"][...])]
    return leaves


def flat_torch_params(model):
    return [p.detach().numpy() for p in [*model.mean.parameters(), model.log_std, *model.value.parameters()]]


LOSS_CONFIGS = [  # (switches, vf_coef)
    (jppo.LossConfig(), 0.5),
    (jppo.METABOX, 1.0),
    (jppo.LossConfig(value_loss_factor=1.0, value_clip=True, value_clip_eps=0.5, normalize_advantages=True), 0.25),
    (jppo.LossConfig(value_clip=False, normalize_advantages=False), 0.5),
]


def loss_kwargs(config, vf_coef, clip_eps, ent_coef):
    return dict(clip_eps=clip_eps, ent_coef=ent_coef, value_loss_factor=config.value_loss_factor,
                vf_coef=vf_coef, value_clip=config.value_clip, value_clip_eps=config.value_clip_eps,
                normalize_advantages=config.normalize_advantages)


@pytest.mark.parametrize("config, vf_coef", LOSS_CONFIGS)
def test_loss_value_and_gradients_match_torch(config, vf_coef):
    with jax.enable_x64(True):
        actor, critic = make_models()
        ac, params = jppo.ActorCritic.split(actor, critic)
        batch = make_batch()
        model = TorchGaussianActorCritic(actor, critic)

        def loss_fn(params):
            logp, ent, v = ac.evaluate(params, batch["obs"], batch["actions"])
            return jppo.ppo_loss(logp, batch["logp"], batch["advantages"], v, batch["values"], batch["returns"], ent,
                                 clip_eps=0.2, ent_coef=0.01, vf_coef=vf_coef, config=config)

        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        tb = to_torch(batch)
        logp, ent, v = model.evaluate(tb["obs"], tb["actions"])
        t_loss = torch_loss(logp, tb["logp"], tb["advantages"], v, tb["values"], tb["returns"], ent,
                            **loss_kwargs(config, vf_coef, 0.2, 0.01))
        t_loss.backward()
        np.testing.assert_allclose(float(loss), t_loss.item(), rtol=1e-10)
        for g_jax, p in zip(flat_jax_params(grads), [*model.mean.parameters(), model.log_std, *model.value.parameters()]):
            np.testing.assert_allclose(g_jax, p.grad.numpy(), rtol=1e-10, atol=1e-14)

        # metrics from their definitions
        lr = np.asarray(logp.detach().numpy()) - batch["logp"]
        ratio = np.exp(lr)
        assert np.isclose(float(metrics["approx_kl_k1"]), np.mean(-lr), rtol=1e-10)
        assert np.isclose(float(metrics["approx_kl_k3"]), np.mean(ratio - 1 - lr), rtol=1e-10)
        assert np.isclose(float(metrics["approx_kl_metabox"]), np.mean(0.5 * lr**2), rtol=1e-10)
        assert np.isclose(float(metrics["clip_fraction"]), np.mean(np.abs(ratio - 1) > 0.2))
        vv = v.detach().numpy()
        ev = 1 - np.var(batch["returns"] - vv) / np.var(batch["returns"])
        assert np.isclose(float(metrics["explained_variance"]), ev, rtol=1e-10)


@pytest.mark.parametrize("max_norm", [0.05, 1e6, 0.0, float("inf")])
def test_per_network_clipping_matches_torch_clip_grad_norm(max_norm):
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        grads = {"actor": {"w": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}, "critic": {"w": rng.normal(size=5)}}
        clipped, norms, clipped_norms = jppo.clip_per_network(jax.tree.map(jnp.asarray, grads), max_norm)
        groups = []
        for net in ("actor", "critic"):
            group = []
            for name in sorted(grads[net]):
                p = torch.zeros(grads[net][name].shape, dtype=torch.float64, requires_grad=True)
                p.grad = torch.from_numpy(grads[net][name].copy())
                group.append((name, p))
            groups.append(group)
        t_norms = clip_groups([[p for _, p in g] for g in groups], max_norm)
        for (net, group), t_norm in zip(zip(("actor", "critic"), groups), t_norms):
            assert np.isclose(float(norms[net]), t_norm, rtol=1e-12)
            expected_clipped = min(t_norm, max_norm) if max_norm > 0 else t_norm
            assert np.isclose(float(clipped_norms[net]), expected_clipped, rtol=1e-12)
            for name, p in group:
                np.testing.assert_allclose(np.asarray(clipped[net][name]), p.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD", "RMSprop"])
def test_optimizer_steps_with_per_network_learning_rates_match_torch(name):
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        init = {"actor": {"w": rng.normal(size=(3, 4))}, "critic": {"w": rng.normal(size=6)}}
        lrs = {"actor": 1e-2, "critic": 3e-3}
        opt = jppo.make_optimizer(name, lrs)
        params = jax.tree.map(jnp.asarray, init)
        state = opt.init(params)
        t_params = {net: torch.tensor(init[net]["w"], requires_grad=True) for net in init}
        t_opt = getattr(torch.optim, name)([{"params": [t_params[n]], "lr": lrs[n]} for n in lrs])
        for step in range(5):
            grads = {net: {"w": rng.normal(size=init[net]["w"].shape)} for net in init}
            updates, state = opt.update(jax.tree.map(jnp.asarray, grads), state, params)
            params = jax.tree.map(lambda p, u: p + u, params, updates)
            for net in init:
                t_params[net].grad = torch.from_numpy(grads[net]["w"])
            t_opt.step()
        for net in init:
            np.testing.assert_allclose(np.asarray(params[net]["w"]), t_params[net].detach().numpy(), rtol=1e-10, atol=1e-12)


def test_unknown_optimizer_and_bad_learning_rate():
    with pytest.raises(ValueError, match=r"optimizer must be one of \['Adam', 'AdamW', 'RMSprop', 'SGD'\], got 'Adamax'"):
        jppo.make_optimizer("Adamax", {"actor": 1e-3})
    with pytest.raises(ValueError, match="learning rate of 'critic' must be a finite number >= 0"):
        jppo.make_optimizer("Adam", {"actor": 1e-3, "critic": -1.0})


@pytest.mark.parametrize("clipping", ["per_network", "global"])
@pytest.mark.parametrize("config, vf_coef", LOSS_CONFIGS[:2])
def test_whole_update_with_given_permutations_matches_torch(clipping, config, vf_coef):
    K, M = 3, 4
    with jax.enable_x64(True):
        actor, critic = make_models(seed=3)
        ac, params = jppo.ActorCritic.split(actor, critic)
        model = TorchGaussianActorCritic(actor, critic)
        lrs = {"actor": 3e-3, "critic": 1e-2}
        opt = jppo.make_optimizer("Adam", lrs)
        t_opt = torch.optim.Adam([{"params": g, "lr": lr} for g, lr in zip(model.groups(), lrs.values())])
        batch = make_batch(seed=4)
        perms = np.stack([np.random.default_rng(10 + k).permutation(N) for k in range(K)])
        hp = jppo.Hyperparams(clip_eps=0.2, ent_coef=0.01, max_grad_norm=0.3, vf_coef=vf_coef)
        update = jax.jit(jppo.make_update(ac.evaluate, opt, jppo.UpdateConfig(K, M, clipping, config)))
        new_params, _, metrics = update(params, opt.init(params), batch, jax.random.key(0), hp, perms)
        t_losses = torch_update(model, t_opt, to_torch(batch), perms, M, clipping=clipping, max_grad_norm=0.3,
                                **loss_kwargs(config, vf_coef, 0.2, 0.01))
        np.testing.assert_allclose(np.asarray(metrics["loss"]).ravel(), t_losses, rtol=1e-10)
        for a, b in zip(flat_jax_params(new_params), flat_torch_params(model)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        # clipping was active: some pre-clip norm exceeded max_grad_norm
        assert float(np.max(np.asarray(metrics["grad_norm/actor"]))) > 0.3 or float(
            np.max(np.asarray(metrics["grad_norm/critic"]))) > 0.3


def test_sweepable_hyperparameters_do_not_recompile():
    actor, critic = make_models()
    ac, params = jppo.ActorCritic.split(actor, critic)
    opt = jppo.make_optimizer("Adam", {"actor": 1e-3, "critic": 1e-3})
    batch = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), make_batch())
    traces = []

    def counted(*args):
        traces.append(1)
        return jppo.make_update(ac.evaluate, opt, jppo.UpdateConfig(2, 2))(*args)

    update = jax.jit(counted)
    state = opt.init(params)
    for lr, eps, ent, vf in [(1e-3, 0.2, 0.0, 0.5), (5e-4, 0.1, 0.01, 1.0), (1e-4, 0.3, 0.05, 0.25)]:
        state = jppo.set_learning_rates(state, {"actor": lr, "critic": 2 * lr})
        params, state, _ = update(params, state, batch, jax.random.key(0), jppo.Hyperparams(eps, ent, 0.5, vf))
        assert np.isclose(float(jppo.learning_rates(state)["critic"]), 2 * lr)
    assert len(traces) == 1
    assert update._cache_size() == 1


def test_learning_rate_change_takes_effect():
    params = {"actor": {"w": jnp.ones(3)}, "critic": {"w": jnp.ones(2)}}
    opt = jppo.make_optimizer("SGD", {"actor": 0.1, "critic": 0.1})
    state = jppo.set_learning_rates(opt.init(params), {"critic": 0.5})
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = opt.update(grads, state, params)
    np.testing.assert_allclose(updates["actor"]["w"], -0.1)
    np.testing.assert_allclose(updates["critic"]["w"], -0.5)


class TestBadBatch:
    def test_minibatch_count_must_divide_batch(self):
        batch = make_batch(n=30)
        with pytest.raises(ValueError, match="num_minibatches=4 must divide the batch size 30"):
            jppo.check_batch(batch, jppo.UpdateConfig(num_minibatches=4))

    def test_mismatched_shapes_and_dtypes(self):
        batch = make_batch()
        with pytest.raises(ValueError, match=r"batch\['returns'\] must have shape \(32,\), got \(31,\)"):
            jppo.check_batch({**batch, "returns": np.zeros(31)}, jppo.UpdateConfig())
        with pytest.raises(TypeError, match=r"batch\['advantages'\] must be a floating-point array"):
            jppo.check_batch({**batch, "advantages": np.zeros(32, int)}, jppo.UpdateConfig())
        with pytest.raises(ValueError, match=r"batch\['values'\] contains NaN or inf"):
            jppo.check_batch({**batch, "values": np.full(32, np.nan)}, jppo.UpdateConfig())
        with pytest.raises(ValueError, match="batch is missing"):
            jppo.check_batch({"obs": batch["obs"]}, jppo.UpdateConfig())

    def test_bad_update_config(self):
        with pytest.raises(ValueError, match="num_epochs must be a positive integer"):
            jppo.UpdateConfig(num_epochs=0)
        with pytest.raises(ValueError, match="clipping must be one of"):
            jppo.UpdateConfig(clipping="l1")


def test_float32_by_default_and_float64_with_x64():
    actor, _ = make_models()
    assert actor.log_std[...].dtype == jnp.float32
    with jax.enable_x64(True):
        actor, _ = make_models()
        assert actor.log_std[...].dtype == jnp.float64


def test_entropy_of_any_shape_is_the_mean_of_its_entries():
    """An entropy per dimension [N, A] or per particle [N, P, 1] (MetaBox's RLEPSO, GLEET actors) is
    averaged over all entries of the samples the mask keeps, in the metric and in the bonus."""
    rng = np.random.default_rng(0)
    n = 6
    args = [jnp.asarray(rng.normal(size=n)) for _ in range(6)]  # logp, old_logp, adv, values, old_values, returns
    mask = jnp.asarray([1, 1, 0, 1, 0, 1], bool)
    per_dim = jnp.asarray(rng.uniform(size=(n, 4)))
    flat_loss, flat = jppo.ppo_loss(*args, per_dim.mean(1), clip_eps=0.2, ent_coef=0.1, mask=mask)
    for entropy in (per_dim, per_dim[..., None]):
        loss, metrics = jppo.ppo_loss(*args, entropy, clip_eps=0.2, ent_coef=0.1, mask=mask)
        np.testing.assert_allclose(metrics["entropy"], per_dim[np.asarray(mask)].mean(), rtol=1e-6)
        np.testing.assert_allclose(loss, flat_loss, rtol=1e-6)
