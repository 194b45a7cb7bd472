"""MetaBox checkpoints: `python -m compat.convert_checkpoint` on a pickled torch agent, jppo reading
the arrays, MetaBox's RLEPSO weights in jppo's RLEPSO networks, and `jppo import-metabox`.

The agents pickled here are torch modules laid out as MetaBox's RLEPSO (same state_dict names), so
the tests need torch but not metaevobox; the shipped checkpoints are checked where metaevobox imports.
"""

from __future__ import annotations

import os
import pickle
import types
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from compat import convert_checkpoint
from jppo.metabbo import metabox_checkpoint as mc

torch = pytest.importorskip("torch")


class TorchMLP(torch.nn.Module):
    """MetaBox's config-driven MLP: `net` is a Sequential of 'layer{i}-linear' / 'layer{i}-relu'."""

    def __init__(self, sizes):
        super().__init__()
        layers = OrderedDict()
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers[f"layer{i}-linear"] = torch.nn.Linear(a, b, dtype=torch.float64)
            if i < len(sizes) - 2:
                layers[f"layer{i}-relu"] = torch.nn.ReLU()
        self.net = torch.nn.Sequential(layers)

    def forward(self, x):
        return self.net(x)


class Actor(torch.nn.Module):
    def __init__(self, feature_dim, action_dim):
        super().__init__()
        self.__mu_net = TorchMLP([feature_dim, 64, 32, action_dim])
        self.__sigma_net = TorchMLP([feature_dim, 64, 32, action_dim])

    def forward(self, x, min_sigma=0.01, max_sigma=0.7):
        mu = (torch.tanh(self.__mu_net(x)) + 1) / 2
        sigma = (torch.tanh(self.__sigma_net(x)) + 1) / 2 * (max_sigma - min_sigma) + min_sigma
        return mu, sigma


class Critic(torch.nn.Module):
    def __init__(self, feature_dim):
        super().__init__()
        self.__value_head = TorchMLP([feature_dim, 16, 8, 1])

    def forward(self, x):
        value = self.__value_head(x)[..., 0]
        return value.detach(), value


class RLEPSO:
    """A stand-in for MetaBox's pickled RLEPSO agent: networks, config, learning steps."""

    def __init__(self, action_dim=35):
        torch.manual_seed(0)
        self.actor, self.critic = Actor(1, action_dim), Critic(1)
        self.network = ["actor", "critic"]
        self.config = types.SimpleNamespace(lr=1e-5, min_sigma=0.01, max_sigma=0.7, gamma=0.999, eps_clip=0.1,
                                            K_epochs=3, n_step=10, train_difficulty="difficult",
                                            device=torch.device("cpu"))
        self.learning_time = 14400


class GLEET(RLEPSO):
    pass


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("metabox")
    agent = RLEPSO()
    with open(folder / "RLEPSO.pkl", "wb") as f:
        pickle.dump(agent, f, -1)
    assert convert_checkpoint.main([str(folder / "RLEPSO.pkl"), str(folder / "RLEPSO.npz")]) == 0
    return agent, folder


def test_converter_writes_every_tensor_and_the_config(converted):
    agent, folder = converted
    weights = mc.read_weights(folder / "RLEPSO.npz")
    assert weights.agent == "RLEPSO" and weights.learning_time == 14400
    for name in ("actor", "critic"):
        sd = getattr(agent, name).state_dict()
        assert sorted(weights.networks[name]) == sorted(sd)
        for key, value in sd.items():
            np.testing.assert_array_equal(weights.networks[name][key], value.numpy())
    assert weights.config["lr"] == 1e-5 and weights.config["train_difficulty"] == "difficult"
    assert "device" not in weights.config  # not a plain value


def test_rlepso_weights_give_metabox_outputs_in_jppo_networks(converted):
    from flax import nnx

    from jppo.networks import BoundedGaussianActor, Critic as JCritic

    agent, folder = converted
    weights = mc.read_weights(folder / "RLEPSO.npz")
    with jax.enable_x64(True):
        actor = BoundedGaussianActor(1, 35, (64, 32), rngs=nnx.Rngs(1), activation=jax.nn.relu)
        critic = JCritic(1, (16, 8), rngs=nnx.Rngs(2), activation=jax.nn.relu)
        mc.rlepso_params(weights, actor, critic)
        x = np.linspace(0.0, 1.0, 51)[:, None]
        dist, value = actor(x), critic(x)
        mu, sigma = agent.actor(torch.tensor(x))
        np.testing.assert_allclose(np.asarray(dist.loc), mu.detach().numpy(), atol=1e-12, rtol=0)
        np.testing.assert_allclose(np.asarray(dist.scale), sigma.detach().numpy(), atol=1e-12, rtol=0)
        np.testing.assert_allclose(np.asarray(value), agent.critic(torch.tensor(x))[1].detach().numpy(), atol=1e-12,
                                   rtol=0)


def test_import_metabox_writes_a_checkpoint_jppo_restores(converted, tmp_path):
    from jppo.checkpoint import Checkpointer
    from jppo.cli import main

    agent, folder = converted
    assert main(["import-metabox", str(folder / "RLEPSO.npz"), "--ckpt-dir", str(tmp_path / "ck")]) == 0
    ckpt = Checkpointer(tmp_path / "ck")
    meta = ckpt.read_meta(ckpt.steps()[-1])
    assert meta["update"] == 14400 // 3
    assert meta["config"]["bootstrap_terminal"] and meta["config"]["learning_rate"] == 1e-5
    ckpt.close()


def test_bad_checkpoints_are_named(converted, tmp_path, capsys):
    agent, folder = converted
    with open(tmp_path / "dict.pkl", "wb") as f:
        pickle.dump({"actor": 1}, f)
    assert convert_checkpoint.main([str(tmp_path / "dict.pkl"), str(tmp_path / "x.npz")]) == 2
    assert "not a MetaBox PPO agent" in capsys.readouterr().err
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    assert convert_checkpoint.main([str(tmp_path / "junk.pkl"), str(tmp_path / "x.npz")]) == 2
    assert "not a pickled MetaBox agent" in capsys.readouterr().err
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="__meta__"):
        mc.read_weights(tmp_path / "plain.npz")

    weights = mc.read_weights(folder / "RLEPSO.npz")
    from flax import nnx

    from jppo.networks import BoundedGaussianActor, Critic as JCritic

    actor = BoundedGaussianActor(1, 35, (64, 32), rngs=nnx.Rngs(1))
    critic = JCritic(1, (16, 8), rngs=nnx.Rngs(2))
    with pytest.raises(ValueError, match="GLEET agent, not RLEPSO"):
        mc.rlepso_params(mc.MetaBoxWeights("GLEET", weights.networks, {}), actor, critic)
    narrow = BoundedGaussianActor(1, 10, (64, 32), rngs=nnx.Rngs(1))
    with pytest.raises(ValueError, match=r"(?s)jppo's actor\.mean: .*_Actor__mu_net\.net\.layer2-linear\.weight: "
                                         r"expected \(10, 32\), got \(35, 32\)"):
        mc.rlepso_params(weights, narrow, critic)


SHIPPED = os.path.join(os.environ.get("JPPO_METABOX_SRC", ""), "model", "bbob-10D", "difficult")


@pytest.mark.metabox
@pytest.mark.skipif(not os.path.isdir(SHIPPED), reason="JPPO_METABOX_SRC not set (MetaBox's shipped checkpoints)")
def test_shipped_rlepso_checkpoint_in_jppo_networks(tmp_path):
    pytest.importorskip("metaevobox")  # unpickling MetaBox's agents needs its classes
    from flax import nnx

    from jppo.networks import BoundedGaussianActor, Critic as JCritic

    path = os.path.join(SHIPPED, "RLEPSO.pkl")
    weights = convert_checkpoint.convert(path, tmp_path / "RLEPSO.npz")
    agent = convert_checkpoint.load_agent(path)
    with jax.enable_x64(True):
        actor = BoundedGaussianActor(1, 35, (64, 32), rngs=nnx.Rngs(1), activation=jax.nn.relu)
        critic = JCritic(1, (16, 8), rngs=nnx.Rngs(2), activation=jax.nn.relu)
        mc.rlepso_params(mc.read_weights(tmp_path / "RLEPSO.npz"), actor, critic)
        x = np.random.default_rng(0).uniform(0, 1, (64, 1))
        action, logp = agent.actor(torch.tensor(x), fixed_action=torch.full((64, 35), 0.5, dtype=torch.float64))[:2]
        jlogp = actor(x).log_prob(np.full((64, 35), 0.5))
        np.testing.assert_allclose(np.asarray(jlogp), logp.detach().numpy().reshape(-1), atol=1e-10, rtol=0)
        np.testing.assert_allclose(np.asarray(critic(x)), agent.critic(torch.tensor(x))[1].detach().numpy().reshape(-1),
                                   atol=1e-10, rtol=0)
    assert weights.learning_time == 14400


@pytest.mark.metabox
@pytest.mark.skipif(not os.path.isdir(SHIPPED), reason="JPPO_METABOX_SRC not set (MetaBox's shipped checkpoints)")
def test_shipped_gleet_checkpoint_converts_loads_and_imports(tmp_path):
    """GLEET.pkl -> .npz -> jppo's GLEET networks: log-probs, entropies, features and values equal torch's
    (float64, 1e-10) on states recorded from GLEET's env on a bbob problem; import-metabox writes it."""
    pytest.importorskip("metaevobox")
    from flax import nnx

    from jppo.checkpoint import Checkpointer
    from jppo.metabbo import bbob, gleet
    from jppo.metabbo.networks import gleet_networks

    path = os.path.join(SHIPPED, "GLEET.pkl")
    weights = convert_checkpoint.convert(path, tmp_path / "GLEET.npz")
    agent = convert_checkpoint.load_agent(path)
    with jax.enable_x64(True):
        actor, critic = gleet_networks(rngs=nnx.Rngs(0))
        mc.gleet_params(mc.read_weights(tmp_path / "GLEET.npz"), actor, critic)
        env = gleet.GLEETEnv()
        params = gleet.GLEETParams(problem=bbob.make_problem(10, 10), max_fes=2000)
        obs, state = env.reset(jax.random.key(1), params)
        states = [np.asarray(obs)]
        for k in range(3):  # a few recorded states along an episode
            obs, state, *_ = env.step(jax.random.key(k), state, jnp.full(100, 0.3), params)
            states.append(np.asarray(obs))
        x = np.stack(states)  # [4, 100, 27]
        with torch.no_grad():
            t_action, t_logp, t_ent, t_f = agent.actor(torch.tensor(x), require_entropy=True, to_critic=True)
            t_v = agent.critic(t_f)
        _, logp, ent, f = actor(jnp.asarray(x), t_action.numpy(), require_entropy=True, to_critic=True)
        for mine, theirs in ((logp, t_logp), (ent, t_ent), (f, t_f), (critic(f), t_v)):
            np.testing.assert_allclose(np.asarray(mine), theirs.numpy(), atol=1e-10, rtol=0)
    assert weights.agent == "GLEET" and weights.learning_time == 7200
    config = mc.import_metabox(mc.read_weights(tmp_path / "GLEET.npz"), tmp_path / "ck")
    assert config.env_id == "gleet-bbob10d" and config.difficulty == "difficult" and config.actor == "gleet"
    ckpt = Checkpointer(tmp_path / "ck")
    assert ckpt.read_meta(ckpt.steps()[-1])["update"] == 7200 // 3
    ckpt.close()
    with pytest.raises(ValueError, match="fits the gleet-\\* envs, not 'rlepso-bbob10d'"):
        mc.import_metabox(mc.read_weights(tmp_path / "GLEET.npz"), tmp_path / "ck2", env_id="rlepso-bbob10d")


RLDEAFL_STATES = os.path.join(os.path.dirname(__file__), os.pardir, "references", "rldeafl_states.npz")


@pytest.mark.metabox
@pytest.mark.skipif(not os.path.isdir(SHIPPED), reason="JPPO_METABOX_SRC not set (MetaBox's shipped checkpoints)")
def test_shipped_rldeafl_checkpoint_converts_loads_and_gives_metabox_outputs(tmp_path):
    """RLDEAFL.pkl converts (`python -m compat.convert_checkpoint`, with fe's float32 sinusoid table),
    loads into `compat.agents.RLDEAFL` (`from_metabox`), and gives MetaBox's torch agent's log-probs of
    its own sampled actions, entropies and values (float64, 1e-10) on 6 states recorded from MetaBox's
    RLDEAFL_Optimizer on bbob-10D F10 and F15 (references/rldeafl_states.npz, written by
    references/make_rldeafl_states.py where numpy < 2: MetaBox's RLDEAFL env does not step under numpy 2)."""
    pytest.importorskip("metaevobox")
    from compat.agents import RLDEAFL

    pkl, npz = os.path.join(SHIPPED, "RLDEAFL.pkl"), tmp_path / "RLDEAFL.npz"
    assert convert_checkpoint.main([pkl, str(npz)]) == 0
    assert mc.read_weights(npz).networks["fe"]["position_encoder.encoding"].shape == (512, 64)
    data = np.load(RLDEAFL_STATES)
    states, actions = data["states"], data["actions"]
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with open(pkl, "rb") as f:
            theirs = pickle.load(f)
        with torch.no_grad():  # a fresh tensor per call: MetaBox's encode_y writes to the state it reads
            _, t_logp, t_ent = theirs.actor(theirs.fe(torch.tensor(states)), fixed_action=torch.tensor(actions),
                                            require_entropy=True)
            t_value = theirs.critic(theirs.fe(torch.tensor(states)))[1]
    finally:
        torch.set_default_dtype(saved)
    config = types.SimpleNamespace(device="cpu", agent_save_dir=str(tmp_path / "agents"), train_name="run", seed=0,
                                   end_mode="step", save_interval=10**9, max_learning_step=10**9, no_tb=True)
    with jax.enable_x64(True):
        agent = RLDEAFL.from_metabox(npz, config)
        nets = {name: getattr(agent, name) for name in agent.network}
        logp, ent, value = agent._evaluate(nets, jnp.asarray(states), jnp.asarray(actions))
        diffs = {"log_prob": float(np.max(np.abs(np.asarray(logp) - t_logp.numpy()))),
                 "entropy": float(np.max(np.abs(np.asarray(ent) - t_ent.numpy()))),
                 "value": float(np.max(np.abs(np.asarray(value) - t_value.numpy())))}
    print(f"shipped RLDEAFL.pkl in compat.agents.RLDEAFL on {len(states)} states of MetaBox's env: "
          + ", ".join(f"{k} {v:.3g}" for k, v in diffs.items()))
    assert max(diffs.values()) < 1e-10, diffs
