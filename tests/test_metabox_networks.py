"""jppo.metabbo.networks against torch: MetaBox's modules and the GLEET / RLEPSO / RLDAS / L2T actors and
critics. Each NNX module gets the weights of a torch twin (references/torch_twins.py, written
from the definitions) through `load_state_dict`; in float64 outputs and gradients (inputs and
parameters) agree to 1e-10. With JPPO_METABOX_SRC set, MetaBox's own torch networks too, and the
checkpoints shipped in metaevobox (those need an importable metaevobox to unpickle)."""

from __future__ import annotations

import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch")

from jppo.metabbo import networks as N  # noqa: E402
from references import torch_twins as T  # noqa: E402
from references.metabox_source import ENV, SKIP_REASON, metabbo_agent_module  # noqa: E402
from references.twin_check import TOL, NetworkPair, TorchPair, check_against_twin, max_diff, randomise_affine  # noqa: E402,E501

@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def seeded(twin_factory, seed=0):
    torch.manual_seed(seed)
    return twin_factory().double()


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


# --------------------------------------------------------------------------- shared modules


def test_mlp_matches_torch():
    """One layer per activation (one compiled check): Linear → Dropout(0) → activation, 'None' last."""
    acts = ["ReLU", "LeakyReLU", "Tanh", "Sigmoid", "GELU", "ELU", "Softplus", "None"]
    sizes = [5, 7, 6, 7, 6, 7, 6, 5, 3]
    config = [{"in": a, "out": b, "drop_out": 0.0 if i % 2 else 0, "activation": f}
              for i, (a, b, f) in enumerate(zip(sizes[:-1], sizes[1:], acts))]
    check_against_twin(N.MLP.from_config(config, rngs=nnx.Rngs(0)), seeded(lambda: T.TMLP(config)),
                       lambda m, x: m(x), lambda m, x: m(x), [rand(4, 5) * 3])
    assert list(N.torch_layout(N.MLP.from_config(config[:2], rngs=nnx.Rngs(0)))) == [
        "net.layer0-linear.weight", "net.layer0-linear.bias", "net.layer1-linear.weight", "net.layer1-linear.bias"]


def test_embedding_matches_torch():
    check_against_twin(N.EmbeddingNet(9, 16, rngs=nnx.Rngs(0)), seeded(lambda: T.TEmbedding(9, 16)),
                       lambda m, x: m(x), lambda m, x: m(x), [rand(2, 5, 9)])


@pytest.mark.parametrize("mode", ["layer", "batch", "instance"])
def test_normalization_matches_torch(mode):
    twin = seeded(lambda: T.TNorm(6, mode))
    randomise_affine(twin)
    check_against_twin(N.Normalization(6, mode), twin, lambda m, x: m(x), lambda m, x: m(x), [rand(3, 5, 6) * 2 + 1])


def test_layer_normalization_is_joint_unbiased_and_plain():
    """'layer': per sample over population × features jointly, ddof = 1, eps inside the sqrt, no affine."""
    x = rand(2, 4, 3)
    y = np.asarray(N.Normalization(3, "layer")(jnp.asarray(x)))
    flat = x.reshape(2, -1)
    expected = (x - flat.mean(1)[:, None, None]) / np.sqrt(flat.var(1, ddof=1)[:, None, None] + 1e-5)
    assert max_diff(y, expected) < 1e-14
    assert N.torch_layout(N.Normalization(3, "layer")) == {}


def test_batch_norm_running_statistics_and_eval_mode():
    twin = seeded(lambda: T.TNorm(4, "batch"))
    randomise_affine(twin)
    mine = N.Normalization(4, "batch")
    N.load_state_dict(mine, twin.state_dict())
    for seed in range(3):  # training mode: batch statistics, running statistics updated
        x = rand(3, 5, 4, seed=seed) * 2 + 1
        assert max_diff(mine(jnp.asarray(x)), twin(torch.tensor(x)).detach().numpy()) < TOL
    for name, value in twin.state_dict().items():
        assert max_diff(N.state_dict(mine)[name], value.numpy()) < TOL, name
    mine.eval(), twin.eval()
    x = rand(2, 3, 4, seed=9)
    assert max_diff(mine(jnp.asarray(x)), twin(torch.tensor(x)).detach().numpy()) < TOL


def test_unknown_normalization_is_refused():
    with pytest.raises(ValueError, match="normalization must be"):
        N.Normalization(4, "group")


@pytest.mark.parametrize("cross", [False, True])
def test_attention_matches_torch(cross):
    inputs = [rand(2, 5, 8), rand(2, 3, 8, seed=1)] if cross else [rand(2, 5, 8)]
    check_against_twin(N.MultiHeadAttention(2, 8, 8, rngs=nnx.Rngs(0)), seeded(lambda: T.TMHA(2, 8, 8)),
                       lambda m, *x: m(*x), lambda m, *x: m(*x), inputs)


def test_compat_matches_torch():
    check_against_twin(N.MultiHeadCompat(2, 8, 8, rngs=nnx.Rngs(0)), seeded(lambda: T.TCompat(2, 8, 8)),
                       lambda m, q, h: m(q, h), lambda m, q, h: m(q, h), [rand(2, 3, 8), rand(2, 5, 8, seed=1)])


@pytest.mark.parametrize("mode,hidden,cross", [("layer", 16, False), ("layer", 16, True), ("instance", 0, True),
                                               ("batch", 12, False)])
def test_encoder_matches_torch(mode, hidden, cross):
    twin = seeded(lambda: T.TEncoder(4, 16, hidden, mode))
    randomise_affine(twin)
    inputs = [rand(2, 6, 16), rand(2, 6, 16, seed=1)] if cross else [rand(2, 6, 16)]
    check_against_twin(N.MultiHeadEncoder(4, 16, hidden, mode, rngs=nnx.Rngs(0)), twin,
                       lambda m, *x: m(*x), lambda m, *x: m(*x), inputs)


@pytest.mark.parametrize("mode,hidden", [("layer", 16), ("instance", 0)])
def test_critic_attention_layer_matches_torch(mode, hidden):
    twin = seeded(lambda: T.t_critic_layer(4, 16, hidden, mode))
    randomise_affine(twin)
    check_against_twin(N.MultiHeadAttentionLayerforCritic(4, 16, hidden, mode, rngs=nnx.Rngs(0)), twin,
                       lambda m, x: m(x), lambda m, x: m(x), [rand(2, 6, 16)])


def test_positional_encoding_matches_torch_float32_table():
    """MetaBox computes the table in float32; agreement to float32 rounding (sin/cos may differ by an ulp)."""
    d, n = 8, 50
    pos = torch.arange(0, n).float().unsqueeze(1)
    two_i = torch.arange(0, d, step=2).float()
    table = torch.zeros(n, d)
    table[:, 0::2], table[:, 1::2] = torch.sin(pos / 10000 ** (two_i / d)), torch.cos(pos / 10000 ** (two_i / d))
    pe = N.PositionalEncoding(d, n)
    assert pe.encoding.dtype == jnp.float64 and pe.get_PE(7).shape == (7, d)
    assert max_diff(pe.get_PE(n), table.numpy()) < 1e-6
    with pytest.raises(ValueError, match="d_model must be even"):
        N.PositionalEncoding(7, 3)


# --------------------------------------------------------------------------- agents' networks


def gleet_state(b=2, n=6, seed=0):
    return np.random.default_rng(seed).uniform(-1, 2, size=(b, n, 27))


def test_gleet_actor_and_critic_match_torch_with_fixed_action():
    """log π(a) [B, 1] (MetaBox's shape), entropy, and the critic's value through to_critic; gradients of
    both reach the actor's trunk (no detach)."""
    actor, critic = N.gleet_networks(rngs=nnx.Rngs(0))
    torch.manual_seed(0)
    twin = TorchPair(T.TGLEETActor(), T.TGLEETCritic()).double()
    x, a = gleet_state(), np.random.default_rng(1).uniform(0, 1, size=(2, 6, 1))

    def mine(m, x, a):
        _, logp, ent, f = m.actor(x, a, require_entropy=True, to_critic=True)
        assert logp.shape == (2, 1) and ent.shape == (2, 6, 1) and f.shape == (2, 6, 16)
        return jnp.concatenate([logp[:, 0], m.critic(f), ent.reshape(-1)])

    def theirs(m, x, a):
        _, _, logp, ent, f = m.actor(x, a)
        return torch.cat([logp[:, 0], m.critic(f), ent.reshape(-1)])

    check_against_twin(NetworkPair(actor, critic), twin, mine, theirs, [x, a])


def test_gleet_actor_samples_clamped_actions_and_its_views_agree():
    actor, critic = N.gleet_networks(rngs=nnx.Rngs(3))
    x = jnp.asarray(gleet_state(3, 5))
    action, logp, f = actor(x, key=jax.random.key(0))
    assert action.shape == (3, 5, 1) and bool(jnp.all((action >= 0) & (action <= 1)))
    assert max_diff(actor(x, fixed_action=action)[1], logp) < 1e-12  # evaluating the sample gives its log-prob
    assert f is None and actor(x, to_critic=True, key=jax.random.key(0))[2].shape == (3, 5, 16)
    dist, feats = actor.distribution(x)
    assert max_diff(dist.log_prob(action[..., 0]), logp[:, 0]) < 1e-12
    assert max_diff(feats, actor(x, only_critic=True)) == 0.0
    assert critic(feats[:1]).shape == ()  # torch's squeeze(): a scalar for one state
    other = actor(x, key=jax.random.key(1))[0]
    assert not bool(jnp.all(other == action))
    with pytest.raises(ValueError, match="key="):
        actor(x)
    with pytest.raises(ValueError, match=r"fixed_action must have shape \(3, 5, 1\)"):
        actor(x, fixed_action=action[..., 0])
    with pytest.raises(ValueError, match=r"x must have shape \[batch, population, 3 \* node_dim\]"):
        actor(x[..., :18])


def test_gleet_parameter_counts():
    actor, critic = N.gleet_networks(rngs=nnx.Rngs(0))
    count = lambda m: sum(int(np.prod(s)) for s in N.torch_layout(m).values())  # noqa: E731
    assert (count(actor), count(critic)) == (5426, 1089)


def test_rlepso_actor_and_critic_match_torch():
    actor, critic = N.RLEPSOActor(3, 5, rngs=nnx.Rngs(0)), N.RLEPSOCritic(3, rngs=nnx.Rngs(1))
    torch.manual_seed(0)
    twin = TorchPair(T.Actor(3, 5), T.Critic(3)).double()
    x, a = rand(4, 3), np.random.default_rng(1).uniform(0, 1, size=(4, 5))

    def mine(m, x, a):
        _, logp, ent = m.actor(x, a, require_entropy=True)
        detached, v = m.critic(x)
        assert logp.shape == (4,) and ent.shape == (4, 5) and detached.shape == v.shape == (4,)
        return jnp.concatenate([logp, v, ent.reshape(-1)])

    def theirs(m, x, a):
        _, _, logp, ent = m.actor(x, a)
        return torch.cat([logp, m.critic(x), ent.reshape(-1)])

    check_against_twin(NetworkPair(actor, critic), twin, mine, theirs, [x, a])
    action, logp = actor(jnp.asarray(x), key=jax.random.key(0))
    assert action.shape == (4, 5) and bool(jnp.all((action >= 0) & (action <= 1)))
    graphdef, params = nnx.split(critic)
    grads = jax.grad(lambda p: nnx.merge(graphdef, p)(jnp.asarray(x))[0].sum())(params)  # the detached value
    assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(grads))


def rldeafl_state(b, n, d, seed):
    """MetaBox's RLDEAFL state [B, NP, d + 2]: positions, costs over nine decades (one 0, one exact
    power of ten), the evaluations used (the same for every individual). ∂/∂y of the encoded cost is
    10^-(e+1), so costs stay ≥ 0.1 for gradients of order one (the 1e-10 check is absolute)."""
    rng = np.random.default_rng(seed)
    cost = rng.choice([-1.0, 1.0], size=(b, n)) * 10.0 ** rng.uniform(-1, 8, size=(b, n))
    cost[0, 0], cost[-1, -1] = 0.0, 1000.0
    fes = np.repeat(rng.uniform(0, 1, size=(b, 1)), n, axis=1)
    return np.concatenate([rng.uniform(-5, 5, size=(b, n, d)), cost[..., None], fes[..., None]], axis=-1)


def rldeafl_actions(b, n, seed, mu_operator=14, cr_operator=3):
    """Stored actions [B, NP, 7]: operator indices (floats), then F (3) and CR (2) in [0, 1], some clamped to 0 or 1."""
    rng = np.random.default_rng(seed)
    params = np.clip(rng.uniform(-0.2, 1.2, size=(b, n, 5)), 0, 1)
    return np.concatenate([rng.integers(0, mu_operator, (b, n, 1)), rng.integers(0, cr_operator, (b, n, 1)), params],
                          axis=-1).astype(float)


class _Triple(NetworkPair):
    def __init__(self, fe, actor, critic):
        super().__init__(actor, critic)
        self.fe = fe

    def _torch_layout(self):
        return [("fe", self.fe), *super()._torch_layout()]


def test_rldeafl_extractor_actor_and_critic_match_torch():
    """features → log π(a) [B] (summed over individuals), entropy [B, NP, 7], value [B]; gradients of
    every parameter and of the state, through the cost encoding (zero cost, exact power of ten)."""
    b, n, d, hidden = 3, 6, 4, 8
    fe = N.RLDEAFLFeatureExtractor(hidden_dim=hidden, n_heads=2, ffh=16, n_layers=2, rngs=nnx.Rngs(0))
    actor, critic = N.RLDEAFLActor(hidden + 16, 14, 3, 3, 2, rngs=nnx.Rngs(1)), N.RLDEAFLCritic(hidden + 16,
                                                                                                 rngs=nnx.Rngs(2))
    torch.manual_seed(0)
    twin = TorchPair(T.TRLDEAFLActor(hidden + 16), T.TRLDEAFLCritic(hidden + 16))
    twin.fe = T.TRLDEAFLExtractor(hidden, heads=2, ffh=16, n_layers=2)
    twin = twin.double()
    state, actions = rldeafl_state(b, n, d, seed=1), rldeafl_actions(b, n, seed=2)

    def mine(m, s):
        f = m.fe(s)
        _, logp, ent = m.actor(f, actions, require_entropy=True)
        return jnp.concatenate([logp, ent.reshape(-1), m.critic(f)[1]])

    def theirs(m, s):
        mo, co, m_mu, m_sigma, c_mu, c_sigma = m.actor(m.fe(s))
        a = torch.tensor(actions)
        cats = [torch.distributions.Categorical(p) for p in (mo, co)]
        gauss = [torch.distributions.Normal(mu, sigma) for mu, sigma in ((m_mu, m_sigma), (c_mu, c_sigma))]
        logp = (cats[0].log_prob(a[..., 0]) + cats[1].log_prob(a[..., 1]) + gauss[0].log_prob(a[..., 2:5]).sum(-1)
                + gauss[1].log_prob(a[..., 5:]).sum(-1)).sum(1)
        ent = torch.cat([cats[0].entropy()[..., None], cats[1].entropy()[..., None], gauss[0].entropy(),
                         gauss[1].entropy()], -1)
        return torch.cat([logp, ent.reshape(-1), m.critic(m.fe(s))])

    worst = check_against_twin(_Triple(fe, actor, critic), twin, mine, theirs, [state])
    print(f"RLDEAFL vs torch twin: max |diff| {worst:.3g}")
    f = fe(state)
    action, logp, ent = actor(f, require_entropy=True, key=jax.random.key(0))
    assert action.shape == (b, n, 7) and logp.shape == (b,) and ent.shape == (b, n, 7)
    assert set(np.unique(action[..., 0])) <= set(range(14)) and set(np.unique(action[..., 1])) <= set(range(3))
    assert float(action[..., 2:].min()) >= 0 and float(action[..., 2:].max()) <= 1
    assert max_diff(actor(f, action)[1], logp) == 0.0
    detached, value = critic(f)
    assert detached.shape == value.shape == (b,) and critic(f[:1])[1].shape == ()
    with pytest.raises(ValueError, match=r"fixed_action must have shape \(3, 6, 7\)"):
        actor(f, actions[:, :, :6])
    with pytest.raises(ValueError, match=r"state must have shape \[batch, population, dim \+ 2\]"):
        fe(state[0])


def test_rldeafl_cost_encoding_takes_exact_powers_of_ten_as_torch_does():
    y = np.array([0.0, 1.0, 10.0, 1000.0, 1e-3, -1e5, 999.9999999, 0.5, -3.7e-12, 1e15])
    e = torch.floor(torch.log10(torch.tensor(np.where(y == 0, 1, y)).abs()))
    mine_y, mine_e = N.encode_cost(jnp.asarray(y))
    assert max_diff(mine_e, np.where(y == 0, 0, (e + 1) / 32)) == 0.0
    assert max_diff(mine_y, np.where(y == 0, 0, y / 10.0 ** e.numpy() / 10)) < 1e-15


def test_rldas_actor_and_critic_match_torch():
    dim, k, fd, b = 4, 3, 9, 5
    actor, critic = N.RLDASActor(dim, k, fd, rngs=nnx.Rngs(0)), N.RLDASCritic(dim, k, fd, rngs=nnx.Rngs(1))
    torch.manual_seed(0)
    twin = TorchPair(T.TRLDAS(dim, k, fd, critic=False), T.TRLDAS(dim, k, fd, critic=True)).double()
    feature, moves = rand(b, fd), rand(b, 2 * k, dim, seed=1)
    actions = np.array([0, 2, 1, 1, 0])

    def mine(m, f, mv):
        _, logp, ent = m.actor((f, mv), fix_action=actions, require_entropy=True)
        return jnp.concatenate([logp, ent, m.critic((f, mv))[1]])

    def theirs(m, f, mv):
        dist = torch.distributions.Categorical(m.actor(f, mv))
        return torch.cat([dist.log_prob(torch.tensor(actions)), dist.entropy(), m.critic(f, mv)[:, 0]])

    check_against_twin(NetworkPair(actor, critic), twin, mine, theirs, [feature, moves])
    obs = np.empty((b, 1 + 2 * k), dtype=object)  # MetaBox's observation: lists in an object array
    for i in range(b):
        obs[i, 0] = feature[i].tolist()
        for j in range(2 * k):
            obs[i, j + 1] = moves[i, j].tolist()
    assert max_diff(actor(obs, actions)[1], actor((feature, moves), actions)[1]) == 0.0
    action, logp, ent = actor(obs, require_entropy=True, key=jax.random.key(0))
    assert action.shape == (b,) and ent.shape == (b,) and set(np.asarray(action)) <= {0, 1, 2}
    detached, value = critic(obs)
    assert detached.shape == value.shape == (b,)
    with pytest.raises(ValueError, match=r"obs must be an object array \[batch, 7\]"):
        actor(obs[:, :4], actions)


def test_l2t_actor_and_critic_match_torch():
    n_state, n_action, b = 15, 6, 5  # cec2017mto: 2 tasks
    actor, critic = N.L2TActor(n_state, n_action, rngs=nnx.Rngs(0)), N.L2TCritic(n_state, rngs=nnx.Rngs(1))
    torch.manual_seed(0)
    twin = TorchPair(T.TL2TActor(n_state, n_action), T.TL2TCritic(n_state)).double()
    x = rand(b, n_state)
    draw = np.random.default_rng(1).uniform(-0.2, 1.2, size=(b, n_action))  # some outside [0, 1]

    def mine(m, x, a):
        action, logp, ent = m.actor(x, a)
        detached, v = m.critic(x)
        assert logp.shape == (b,) and ent.shape == (b, n_action) and detached.shape == v.shape == (b, 1)
        return jnp.concatenate([logp, v[:, 0], ent.reshape(-1), action.reshape(-1)])

    def theirs(m, x, a):
        _, _, logp, ent = m.actor(x, a)
        return torch.cat([logp, m.critic(x)[:, 0], ent.reshape(-1), torch.clamp(a, 0, 1).reshape(-1)])

    worst = check_against_twin(NetworkPair(actor, critic), twin, mine, theirs, [x, draw])
    print(f"L2T vs torch twin: max |diff| {worst:.3g}")
    action, logp, ent = actor(jnp.asarray(x), key=jax.random.key(0))
    assert action.shape == (b, n_action) and bool(jnp.all((action >= 0) & (action <= 1)))
    dist = actor.distribution(jnp.asarray(x))
    assert bool(jnp.all((dist.scale >= 0.05) & (dist.scale <= 0.15)))
    clamped = dist.sample(jax.random.key(1))
    assert bool(jnp.all((clamped >= 0) & (clamped <= 1)))
    graphdef, params = nnx.split(critic)
    grads = jax.grad(lambda p: nnx.merge(graphdef, p)(jnp.asarray(x))[0].sum())(params)  # the detached value
    assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(grads))
    assert sorted(N.torch_layout(critic)) == ["linear1.bias", "linear1.weight", "linear2.bias", "linear2.weight",
                                              "linear3.bias", "linear3.weight"]


# --------------------------------------------------------------------------- initialisation, loader


def test_initial_distributions_are_torchs():
    lin = N.torch_linear(400, 300, rngs=nnx.Rngs(0))
    bound = 1 / np.sqrt(400)
    for w in (np.asarray(lin.kernel[...]), np.asarray(lin.bias[...])):
        assert w.min() >= -bound and w.max() <= bound and w.max() > 0.95 * bound and w.min() < -0.95 * bound
    w = np.asarray(lin.kernel[...]).ravel()  # U(±b): mean 0, variance b²/3
    assert abs(w.mean()) < 5 * bound / np.sqrt(3 * w.size) and abs(w.var() / (bound**2 / 3) - 1) < 0.02
    mha = N.MultiHeadAttention(8, 64, 64, rngs=nnx.Rngs(1))
    for name in ("W_query", "W_key", "W_val", "W_out"):
        v = np.asarray(getattr(mha, name)[...]).ravel()  # U[0, 1): mean ½, variance 1/12
        assert v.min() >= 0 and v.max() < 1 and abs(v.mean() - 0.5) < 5 * np.sqrt(1 / 12 / v.size)
        assert abs(v.var() * 12 - 1) < 0.05
    norm = N.Normalization(5, "batch")
    assert np.all(np.asarray(norm.normalizer.weight[...]) == 1) and np.all(np.asarray(norm.normalizer.bias[...]) == 0)
    actor, _ = N.gleet_networks(rngs=nnx.Rngs(2))
    assert actor.embedder.embedder.bias is None and actor.embedder.embedder.kernel[...].dtype == jnp.float64
    assert abs(np.asarray(actor.embedder.embedder.kernel[...])).max() <= 1 / 3  # fan_in 9


def test_float32_without_x64():
    with jax.enable_x64(False):
        encoder, actor = N.MultiHeadEncoder(2, 4, 4, rngs=nnx.Rngs(0)), N.RLEPSOActor(2, 3, rngs=nnx.Rngs(0))
        assert all(v.dtype == np.float32 for m in (encoder, actor) for v in N.state_dict(m).values())
        assert encoder(jnp.ones((1, 3, 4))).dtype == jnp.float32
        assert actor(jnp.ones((2, 2)), key=jax.random.key(0))[1].dtype == jnp.float32


def test_loader_takes_numpy_and_round_trips():
    from compat.networks import GLEETActor, load_state_dict  # compat re-exports them

    assert GLEETActor is N.GLEETActor and load_state_dict is N.load_state_dict
    actor, _ = N.gleet_networks(rngs=nnx.Rngs(0))
    other, _ = N.gleet_networks(rngs=nnx.Rngs(1))
    sd = N.state_dict(actor)
    assert list(sd)[:2] == ["embedder.embedder.weight", "encoder.0.MHA_sublayer.MHA.W_query"]
    assert sd["mu_net.net.layer0-linear.weight"].shape == (32, 16)  # torch's [out, in]
    N.load_state_dict(other, {k: v.tolist() for k, v in sd.items()})  # anything np.asarray takes
    x = jnp.asarray(gleet_state())
    assert max_diff(other(x, only_critic=True), actor(x, only_critic=True)) == 0.0


def test_bad_state_dict_is_one_error_naming_everything_and_changes_nothing():
    critic = N.GLEETCritic(16, 32, 16, rngs=nnx.Rngs(0))
    before = N.state_dict(critic)
    sd = dict(before)
    del sd["value_head.net.layer2-linear.bias"]
    sd["value_head.net.layer0-linear.weight"] = np.zeros((16, 32))
    sd["value_head.net.layer9-linear.weight"] = np.zeros(3)
    with pytest.raises(N.StateDictError) as err:
        N.load_state_dict(critic, sd)
    message = str(err.value)
    assert "missing: value_head.net.layer2-linear.bias" in message
    assert "unexpected: value_head.net.layer9-linear.weight" in message
    assert "value_head.net.layer0-linear.weight: expected (32, 16), got (16, 32)" in message
    assert isinstance(err.value, ValueError)
    assert all(np.array_equal(v, before[k]) for k, v in N.state_dict(critic).items())


def test_input_shape_errors_name_the_argument():
    mha = N.MultiHeadAttention(2, 8, 8, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"q must have shape \[batch, n_query, input_dim\] with last axis 8"):
        mha(jnp.zeros((1, 3, 8)), jnp.zeros((1, 3, 7)))
    with pytest.raises(ValueError, match="Normalization input must be"):
        N.Normalization(4, "layer")(jnp.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"config\[0\]\['activation'\] = 'Swish'"):
        N.MLP.from_config([{"in": 1, "out": 1, "drop_out": 0, "activation": "Swish"}], rngs=nnx.Rngs(0))


# --------------------------------------------------------------------------- MetaBox's own networks

needs_metabox = pytest.mark.skipif(not os.environ.get(ENV), reason=SKIP_REASON)


@pytest.mark.metabox
@needs_metabox
@pytest.mark.parametrize("n_layers,normalization", [(1, "layer"), (2, "instance")])
def test_metabox_gleet_networks_load_and_agree(torch_float64, n_layers, normalization):
    gleet = metabbo_agent_module("gleet")
    torch.manual_seed(5)
    args = dict(embedding_dim=16, hidden_dim=16, n_heads_actor=4, n_heads_decoder=4, n_layers=n_layers,
                normalization=normalization, v_range=6, node_dim=9, hidden_dim1=32, hidden_dim2=8,
                max_sigma=0.7, min_sigma=0.01)
    theirs_actor, theirs_critic = gleet.Actor(**args), gleet.Critic(16, 32, 16)
    actor = N.GLEETActor(**args, rngs=nnx.Rngs(0))
    critic = N.GLEETCritic(16, 32, 16, rngs=nnx.Rngs(1))
    N.load_state_dict(actor, theirs_actor.state_dict())
    N.load_state_dict(critic, theirs_critic.state_dict())
    x = gleet_state(3, 10, seed=7)
    t_action, t_logp, t_ent, t_f = theirs_actor(torch.tensor(x), require_entropy=True, to_critic=True)
    action, logp, ent, f = actor(jnp.asarray(x), t_action.numpy(), require_entropy=True, to_critic=True)
    diffs = [max_diff(logp, t_logp.detach()), max_diff(ent, t_ent.detach()), max_diff(f, t_f.detach()),
             max_diff(critic(f), theirs_critic(t_f).detach()),
             max_diff(actor(jnp.asarray(x), only_critic=True), theirs_actor(torch.tensor(x), only_critic=True).detach())]
    print(f"MetaBox GLEET ({n_layers} layer(s), {normalization}): max |diff| {max(diffs):.3g}")
    assert max(diffs) < TOL


@pytest.mark.metabox
@needs_metabox
def test_metabox_rlepso_networks_load_and_agree(torch_float64):
    rlepso = metabbo_agent_module("rlepso")
    torch.manual_seed(6)
    config = types.SimpleNamespace(feature_dim=1, action_dim=35, max_sigma=0.7, min_sigma=0.01)
    theirs_actor, theirs_critic = rlepso.Actor(config), rlepso.Critic(config)
    actor, critic = N.RLEPSOActor(1, 35, 0.7, 0.01, rngs=nnx.Rngs(0)), N.RLEPSOCritic(1, rngs=nnx.Rngs(1))
    N.load_state_dict(actor, theirs_actor.state_dict())
    N.load_state_dict(critic, theirs_critic.state_dict())
    x = np.random.default_rng(8).uniform(0, 1, size=(6, 1))
    t_action, t_logp, t_ent = theirs_actor(torch.tensor(x), require_entropy=True)
    _, logp, ent = actor(jnp.asarray(x), t_action.numpy(), require_entropy=True)
    t_det, t_v = theirs_critic(torch.tensor(x))
    det, v = critic(jnp.asarray(x))
    diffs = [max_diff(logp, t_logp.detach()), max_diff(ent, t_ent.detach()), max_diff(v, t_v.detach()),
             max_diff(det, t_det)]
    print(f"MetaBox RLEPSO: max |diff| {max(diffs):.3g}")
    assert max(diffs) < TOL


def rldas_obs(b, k, dim, fd, seed):
    rng = np.random.default_rng(seed)
    obs = np.empty((b, 1 + 2 * k), dtype=object)
    for i in range(b):
        obs[i, 0] = rng.normal(size=fd).tolist()
        for j in range(2 * k):
            obs[i, j + 1] = rng.normal(size=dim).tolist()
    return obs


@pytest.mark.metabox
@needs_metabox
def test_metabox_rldas_networks_load_and_agree(torch_float64):
    rldas = metabbo_agent_module("rldas")
    torch.manual_seed(7)
    theirs_actor, theirs_critic = rldas.Actor(10, 3, 9, "cpu"), rldas.Critic(10, 3, 9, "cpu")
    actor, critic = N.RLDASActor(10, 3, 9, "cpu", rngs=nnx.Rngs(0)), N.RLDASCritic(10, 3, 9, rngs=nnx.Rngs(1))
    N.load_state_dict(actor, theirs_actor.state_dict())
    N.load_state_dict(critic, theirs_critic.state_dict())
    obs = rldas_obs(6, 3, 10, 9, seed=9)
    t_action, t_logp, t_ent = theirs_actor(obs, require_entropy=True)
    _, logp, ent = actor(obs, fix_action=t_action.numpy(), require_entropy=True)
    t_det, t_v = theirs_critic(obs)
    det, v = critic(obs)
    diffs = [max_diff(logp, t_logp.detach()), max_diff(ent, t_ent.detach()), max_diff(v, t_v.detach()),
             max_diff(det, t_det)]
    print(f"MetaBox RLDAS: max |diff| {max(diffs):.3g}")
    assert max(diffs) < TOL


@pytest.mark.metabox
@needs_metabox
def test_metabox_l2t_networks_load_and_agree(torch_float64):
    l2t = metabbo_agent_module("l2t")
    torch.manual_seed(8)
    theirs_actor, theirs_critic = l2t.Actor(15, 6), l2t.Critic(15)
    actor, critic = N.L2TActor(15, 6, rngs=nnx.Rngs(0)), N.L2TCritic(15, rngs=nnx.Rngs(1))
    N.load_state_dict(actor, theirs_actor.state_dict())
    N.load_state_dict(critic, theirs_critic.state_dict())
    x = np.random.default_rng(10).normal(size=(6, 15))
    draw = np.random.default_rng(11).uniform(-0.2, 1.2, size=(6, 6))
    t_action, t_logp, t_ent = theirs_actor(torch.tensor(x), fixed_action=torch.tensor(draw))
    action, logp, ent = actor(jnp.asarray(x), draw)
    t_det, t_v = theirs_critic(torch.tensor(x))
    det, v = critic(jnp.asarray(x))
    diffs = [max_diff(action, t_action.detach()), max_diff(logp, t_logp.detach()), max_diff(ent, t_ent.detach()),
             max_diff(v, t_v.detach()), max_diff(det, t_det)]
    print(f"MetaBox L2T: max |diff| {max(diffs):.3g}")
    assert max(diffs) < TOL


@pytest.mark.metabox
@needs_metabox
def test_metabox_l2t_loop_unpacking_gives_its_value_loss_no_gradient(torch_float64):
    """MetaBox's L2T.train_episode reads `baseline_val, baseline_val_detached = self.critic(state)` and
    builds its value loss from `baseline_val`; the critic returns `(value.detach(), value)`, so that
    loss reaches no critic parameter (compat.agents.L2T takes the value with its gradient)."""
    l2t = metabbo_agent_module("l2t")
    critic = l2t.Critic(15)
    state = torch.tensor(np.random.default_rng(12).normal(size=(4, 15)))
    baseline_val, baseline_val_detached = critic(state)  # as MetaBox's loop unpacks it
    assert not baseline_val.requires_grad and baseline_val_detached.requires_grad
    assert ((baseline_val.view(-1) - torch.ones(4)) ** 2).mean().grad_fn is None


# --------------------------------------------------------------------------- shipped checkpoints


def shipped_agent(name):
    """MetaBox's pretrained agent `model/bbob-10D/difficult/<name>.pkl`, or skip (unpickling needs metaevobox)."""
    src = os.environ.get(ENV)
    path = src and os.path.join(src, "model", "bbob-10D", "difficult", f"{name}.pkl")
    if not path or not os.path.isfile(path):
        pytest.skip(SKIP_REASON)
    pytest.importorskip("metaevobox", reason="unpickling MetaBox's agents needs an importable metaevobox")
    import pickle

    with open(path, "rb") as f:
        return pickle.load(f)


@pytest.mark.metabox
def test_shipped_gleet_checkpoint(torch_float64):
    agent = shipped_agent("GLEET")
    c = agent.config
    actor = N.GLEETActor(c.embedding_dim, c.hidden_dim, c.encoder_head_num, c.decoder_head_num, c.n_encode_layers,
                         c.normalization, c.v_range, c.node_dim, c.hidden_dim1_actor, c.hidden_dim2_actor,
                         c.max_sigma, c.min_sigma, rngs=nnx.Rngs(0))
    critic = N.GLEETCritic(c.embedding_dim, c.hidden_dim1_critic, c.hidden_dim2_critic, rngs=nnx.Rngs(1))
    N.load_state_dict(actor, agent.actor.state_dict())
    N.load_state_dict(critic, agent.critic.state_dict())
    x = np.random.default_rng(10).uniform(-1, 1, size=(4, 100, 27))
    with torch.no_grad():
        t_action, t_logp, t_ent, t_f = agent.actor(torch.tensor(x), require_entropy=True, to_critic=True)
        t_v = agent.critic(t_f)
    _, logp, ent, f = actor(jnp.asarray(x), t_action.numpy(), require_entropy=True, to_critic=True)
    diffs = [max_diff(logp, t_logp), max_diff(ent, t_ent), max_diff(f, t_f), max_diff(critic(f), t_v)]
    print(f"shipped GLEET.pkl: max |diff| {max(diffs):.3g} (log-prob {diffs[0]:.3g}, value {diffs[3]:.3g})")
    assert max(diffs) < TOL


@pytest.mark.metabox
def test_shipped_rlepso_checkpoint(torch_float64):
    agent = shipped_agent("RLEPSO")
    c = agent.config
    actor = N.RLEPSOActor(c.feature_dim, c.action_dim, c.max_sigma, c.min_sigma, rngs=nnx.Rngs(0))
    critic = N.RLEPSOCritic(c.feature_dim, rngs=nnx.Rngs(1))
    N.load_state_dict(actor, agent.actor.state_dict())
    N.load_state_dict(critic, agent.critic.state_dict())
    x = np.random.default_rng(11).uniform(0, 1, size=(8, 1))
    with torch.no_grad():
        t_action, t_logp, t_ent = agent.actor(torch.tensor(x), require_entropy=True)
        t_v = agent.critic(torch.tensor(x))[1]
    _, logp, ent = actor(jnp.asarray(x), t_action.numpy(), require_entropy=True)
    diffs = [max_diff(logp, t_logp), max_diff(ent, t_ent), max_diff(critic(jnp.asarray(x))[1], t_v)]
    print(f"shipped RLEPSO.pkl: max |diff| {max(diffs):.3g}")
    assert max(diffs) < TOL


@pytest.mark.metabox
def test_shipped_rldas_checkpoint(torch_float64):
    agent = shipped_agent("RLDAS")
    c = agent.config
    actor = N.RLDASActor(c.dim, c.optim_num, c.feature_dim, rngs=nnx.Rngs(0))
    critic = N.RLDASCritic(c.dim, c.optim_num, c.feature_dim, rngs=nnx.Rngs(1))
    N.load_state_dict(actor, agent.actor.state_dict())
    N.load_state_dict(critic, agent.critic.state_dict())
    obs = rldas_obs(8, c.optim_num, c.dim, c.feature_dim, seed=12)
    with torch.no_grad():
        t_action, t_logp, t_ent = agent.actor(obs, require_entropy=True)
        t_v = agent.critic(obs)[1]
    _, logp, ent = actor(obs, fix_action=t_action.numpy(), require_entropy=True)
    diffs = [max_diff(logp, t_logp), max_diff(ent, t_ent), max_diff(critic(obs)[1], t_v)]
    print(f"shipped RLDAS.pkl: max |diff| {max(diffs):.3g}")
    assert max(diffs) < TOL
