"""compat, further: torch weights into the NNX networks, learning through `train_episode`, and MetaBox's
own Trainer driving a compat agent."""

import importlib.util
import json
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from compat.networks import MLP, RLEPSOActor, RLEPSOCritic, StateDictError, load_state_dict
from compat.ppo import PPO_Agent
from references.envs import TargetEnv

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- torch weights -> NNX


def torch_rlepso_networks(feature_dim, action_dim, seed=0):
    """Torch actor and critic laid out as MetaBox's RLEPSO networks (so their state_dict keys are
    MetaBox's): MLPs as an `nn.Sequential` named `net` holding `layer{i}-linear`, `layer{i}-drop_out` and,
    but for the last layer, `layer{i}-activation` (ReLU); the actor keeps a mu and a sigma MLP
    (feature -> 64 -> 32 -> action) as private attributes, the critic a value head (feature -> 16 -> 8 -> 1).
    Float64. Returns `(actor, critic)`; `actor(x, a)` -> (mu, sigma, log_prob(a) summed, entropy summed)."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class MetaBoxStyleMLP(nn.Module):
        def __init__(self, sizes):
            super().__init__()
            self.net = nn.Sequential()
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
                self.net.add_module(f"layer{i}-linear", nn.Linear(a, b))
                self.net.add_module(f"layer{i}-drop_out", nn.Dropout(0.0))
                if i < len(sizes) - 2:
                    self.net.add_module(f"layer{i}-activation", nn.ReLU())

        def forward(self, x):
            return self.net(x)

    class Actor(nn.Module):
        def __init__(self, min_sigma=0.01, max_sigma=0.7):
            super().__init__()
            self.__mu_net = MetaBoxStyleMLP([feature_dim, 64, 32, action_dim])
            self.__sigma_net = MetaBoxStyleMLP([feature_dim, 64, 32, action_dim])
            self.lo, self.hi = min_sigma, max_sigma

        def forward(self, x, action):
            mu = (torch.tanh(self.__mu_net(x)) + 1.0) / 2.0
            sigma = (torch.tanh(self.__sigma_net(x)) + 1.0) / 2.0 * (self.hi - self.lo) + self.lo
            policy = torch.distributions.Normal(mu, sigma)
            return mu, sigma, policy.log_prob(action).sum(-1), policy.entropy().sum(-1)

    class Critic(nn.Module):
        def __init__(self):
            super().__init__()
            self.__value_head = MetaBoxStyleMLP([feature_dim, 16, 8, 1])

        def forward(self, x):
            return self.__value_head(x)[..., 0]

    torch.manual_seed(seed)
    return Actor().double().eval(), Critic().double().eval()


@pytest.mark.parametrize("feature_dim, action_dim", [(1, 35), (9, 4)])  # RLEPSO's shapes, and a wider input
def test_torch_state_dict_loads_into_nnx_networks(feature_dim, action_dim):
    torch = pytest.importorskip("torch")
    t_actor, t_critic = torch_rlepso_networks(feature_dim, action_dim)
    sd_actor, sd_critic = t_actor.state_dict(), t_critic.state_dict()
    assert "_Actor__mu_net.net.layer0-linear.weight" in sd_actor  # MetaBox's key names
    assert "_Critic__value_head.net.layer2-linear.bias" in sd_critic
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 2.0, (64, feature_dim))
    a = rng.uniform(0.0, 1.0, (64, action_dim))
    with jax.enable_x64(True):
        actor = RLEPSOActor(feature_dim, action_dim, rngs=nnx.Rngs(5))
        critic = RLEPSOCritic(feature_dim, rngs=nnx.Rngs(6))
        load_state_dict(actor.mean, sd_actor, "_Actor__mu_net")  # one MLP out of the actor's state_dict
        load_state_dict(actor.spread, sd_actor, "_Actor__sigma_net.")  # trailing dot: same thing
        load_state_dict(critic.value_head, sd_critic, "_Critic__value_head")
        assert actor.mean.layers[0].kernel[...].dtype == np.float64
        policy = actor.distribution(x)
        action, logp, entropy = actor(x, a, True)
        entropy = entropy.sum(-1)  # RLEPSO's entropy is per dimension [B, A]; the twin sums it
        detached, value = critic(x)
        mine = [np.asarray(v) for v in (policy.loc, policy.scale, logp, entropy, value, detached)]
    with torch.no_grad():
        mu, sigma, t_logp, t_entropy = t_actor(torch.from_numpy(x), torch.from_numpy(a))
        t_value = t_critic(torch.from_numpy(x))
    theirs = [v.numpy() for v in (mu, sigma, t_logp, t_entropy, t_value, t_value)]
    np.testing.assert_array_equal(np.asarray(action), a)
    for name, m, t in zip(["mu", "sigma", "log_prob", "entropy", "value", "value (detached)"], mine, theirs):
        assert m.shape == t.shape, name
        np.testing.assert_allclose(m, t, rtol=0, atol=1e-10, err_msg=name)
    assert np.ptp(theirs[0]) > 0.01 and np.ptp(theirs[4]) > 0.01  # the inputs really exercise the networks


def relu_mlp(sizes):
    return MLP(sizes, activation="ReLU", init="torch", rngs=nnx.Rngs(0))


def _loaded(mlp):
    return [np.array(layer.kernel[...]) for layer in mlp.layers]


class TestLoadStateDictErrors:
    def setup_method(self):
        self.sd = torch_rlepso_networks(1, 35)[0].state_dict()

    def test_layer_shape_mismatch_names_the_layer_and_changes_nothing(self):
        mlp = relu_mlp([1, 64, 16, 35])  # torch has 64 -> 32
        before = _loaded(mlp)
        with pytest.raises(StateDictError, match=r"_Actor__mu_net\.net\.layer1-linear\.weight: expected \(16, 64\), "
                                                 r"got \(32, 64\); _Actor__mu_net\.net\.layer1-linear\.bias: "
                                                 r"expected \(16,\), got \(32,\)"):
            load_state_dict(mlp, self.sd, "_Actor__mu_net")
        for b, a in zip(before, _loaded(mlp)):  # layer 0 fitted, but nothing was written
            np.testing.assert_array_equal(b, a)

    def test_missing_bias(self):
        del self.sd["_Actor__mu_net.net.layer2-linear.bias"]
        with pytest.raises(StateDictError, match=r"missing: _Actor__mu_net\.net\.layer2-linear\.bias"):
            load_state_dict(relu_mlp([1, 64, 32, 35]), self.sd, "_Actor__mu_net")

    def test_missing_weight(self):
        del self.sd["_Actor__sigma_net.net.layer0-linear.weight"]
        with pytest.raises(StateDictError, match=r"missing: _Actor__sigma_net\.net\.layer0-linear\.weight"):
            load_state_dict(relu_mlp([1, 64, 32, 35]), self.sd, "_Actor__sigma_net")

    def test_unknown_prefix_lists_what_exists(self):
        # "_Actor__mu" is a string prefix of "_Actor__mu_net" but no module path: nothing matches
        with pytest.raises(StateDictError, match=r"no tensors under prefix '_Actor__mu\.'.*"
                                                 r"\['_Actor__mu_net', '_Actor__sigma_net'\]"):
            load_state_dict(relu_mlp([1, 64, 32, 35]), self.sd, "_Actor__mu")

    def test_layer_count_mismatch(self):
        with pytest.raises(StateDictError, match=r"(?s)unexpected: _Actor__mu_net\.net\.layer2-linear\.weight, "
                                                 r"_Actor__mu_net\.net\.layer2-linear\.bias\n"):
            load_state_dict(relu_mlp([1, 64, 35]), self.sd, "_Actor__mu_net")  # 2 layers, torch's 3

    def test_whole_actor_without_prefix_is_six_layers(self):
        with pytest.raises(StateDictError, match=r"(?s)missing: net\.layer0-linear\.weight.*unexpected: "
                                                 r"_Actor__mu_net\.net\.layer0-linear\.weight") as err:
            load_state_dict(relu_mlp([1, 64, 32, 35]), self.sd)
        unexpected = next(line for line in str(err.value).splitlines() if "unexpected:" in line)
        assert len(unexpected.split(", ")) == 12  # 6 Linear layers, a weight and a bias each

    def test_non_linear_entries(self):
        sd = {"net.layer0-linear.weight": np.zeros((4, 2)), "net.layer0-linear.bias": np.zeros(4),
              "net.layer1.running_mean": np.zeros(4)}
        with pytest.raises(StateDictError, match=r"unexpected: net\.layer1\.running_mean"):
            load_state_dict(relu_mlp([2, 4]), sd)
        sd = {"norm.weight": np.ones(4), "norm.bias": np.zeros(4)}  # a LayerNorm: 1-D weight
        with pytest.raises(StateDictError, match=r"(?s)missing: net\.layer0-linear\.weight, "
                                                 r"net\.layer0-linear\.bias.*unexpected: norm\.weight, norm\.bias"):
            load_state_dict(relu_mlp([2, 4]), sd)

    def test_numpy_arrays_load_too(self):
        mlp = relu_mlp([1, 64, 32, 35])
        sd = {k: v.numpy() for k, v in self.sd.items()}
        load_state_dict(mlp, sd, "_Actor__mu_net")
        np.testing.assert_allclose(np.asarray(mlp.layers[2].bias[...]), sd["_Actor__mu_net.net.layer2-linear.bias"],
                                   rtol=1e-6)


# --------------------------------------------------------------------------- learning


class TargetAgent(PPO_Agent):
    """A user's subclass, as MetaBox's agents are: networks and learning rates chosen in __init__."""

    def __init__(self, config, seed):
        nets = {"actor": RLEPSOActor(3, 2, rngs=nnx.Rngs(seed)), "critic": RLEPSOCritic(3, rngs=nnx.Rngs(seed + 100))}
        super().__init__(config, nets, [1e-3, 1e-2])

    def __str__(self):
        return "TargetAgent"


@pytest.mark.slow
def test_train_episode_learns_a_target_task(tmp_path):
    """A compat PPO_Agent (RLEPSO-shaped networks) trained with `train_episode` for 20 episodes of 16
    TargetEnvs x 10 steps (120 optimizer steps) beats its untrained self on `rollout_episode` return,
    for each of three seeds. The untrained actor earns about -5.5 per 20-step episode; a policy that
    ignores the state (a = 0.5) about -2.1, so clearing -1.5 needs a policy that reads the target."""

    def evaluate(agent):
        return float(np.mean([agent.rollout_episode(TargetEnv(), seed=1000 + i)["return"] for i in range(6)]))

    results = []
    for seed in range(3):
        config = types.SimpleNamespace(gamma=0.5, n_step=5, K_epochs=3, eps_clip=0.1, max_grad_norm=1.0,
                                       device="cpu", optimizer="Adam", agent_save_dir=str(tmp_path / str(seed)),
                                       save_interval=10**6, end_mode="step", max_learning_step=10**6, no_tb=True,
                                       seed=seed)
        agent = TargetAgent(config, seed)
        before = evaluate(agent)
        for episode in range(20):
            agent.train_episode([TargetEnv(max_steps=10) for _ in range(16)],
                                seeds=[seed * 10_000 + episode * 16 + i for i in range(16)])
        results.append((before, evaluate(agent)))
    assert agent.learning_time == 120
    for before, after in results:
        assert before < -3.0 and after > -1.5, results
    assert np.mean([after - before for before, after in results]) > 3.0, results


# --------------------------------------------------------------------------- MetaBox itself


@pytest.mark.metabox
@pytest.mark.skipif(importlib.util.find_spec("metaevobox") is None, reason="metaevobox is not importable here")
def test_metabox_trainer_runs_rlepso_on_compat(tmp_path):
    """MetaBox's RLEPSO class, rebased on compat.ppo.PPO_Agent with NNX networks, trained by MetaBox's
    Trainer on bbob-10D (6 learning steps) and rolled out on a test problem (references/metabox_dropin.py).

    metaevobox 2.0.2 cannot be installed next to jppo by pip: through tianshou 1.1.0 it requires
    gymnasium<0.29 and numpy<2, while jppo requires gymnasium>=1.0 and jax 0.10 numpy>=2.0. It does
    import and run with numpy 2 when its packages are installed with --no-deps; see metabox_dropin.py."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-m", "references.metabox_dropin", "6"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[len("RESULT "):])
    assert result["mro"][:2] == ["metaevobox.baseline.metabbo.rlepso.RLEPSO", "compat.ppo.PPO_Agent"]
    assert "metaevobox.rl.ppo.PPO_Agent" not in result["mro"]
    # MetaBox's RLEPSO.__init__ set the hyper-parameters; the Trainer stopped at max_learning_step
    assert (result["n_step"], result["K_epochs"], result["gamma"], result["lr"]) == (10, 3, 0.999, 1e-5)
    assert result["learning_time"] == 6
    assert result["checkpoints"] == ["checkpoint-0.pkl", "checkpoint-1.pkl", "checkpoint-2.pkl"]  # save_interval 3
    assert result["tb_files"] >= 1
    assert result["rollout_fes"] >= 20_000 and math.isfinite(result["rollout_return"])
    first, last = result["rollout_cost_first_last"]
    assert last < first
