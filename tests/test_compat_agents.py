"""compat.agents: MetaBox's GLEET, RLEPSO, RLDAS and L2T as compat.PPO_Agent subclasses.

MetaBox's config values; its trained weights loaded from converted checkpoints (made here from torch
twins with MetaBox's state_dict names, references/torch_twins.py) reproduce the torch networks
through the agents' compiled hooks to 1e-10 in float64; the agent name and every tensor are checked;
a short train_episode on stand-in envs, pickling and deepcopy. With JPPO_METABOX_SRC set and
metaevobox importable: MetaBox's shipped GLEET/RLEPSO/RLDAS.pkl on states of MetaBox's own envs.
"""

from __future__ import annotations

import copy
import os
import pickle
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from compat.agents import GLEET, L2T, PORTS, RLDAS, RLEPSO, WeightsMismatch  # noqa: E402
from compat.agents.rldas import epochs_for  # noqa: E402
from compat.convert_checkpoint import agent_weights  # noqa: E402
from jppo.metabbo.metabox_checkpoint import write_weights  # noqa: E402
from jppo.metabbo.networks import state_dict  # noqa: E402
from references import torch_twins as T  # noqa: E402
from references.envs import ToyOptimizerEnv  # noqa: E402

TOL = 1e-10
DIM = 4  # RLDAS's problem dimension in the small tests


def config(tmp_path, **changes):
    values = dict(device="cpu", agent_save_dir=str(tmp_path / "agents"), train_name="run", seed=0, end_mode="step",
                  save_interval=10**9, max_learning_step=10**9, no_tb=True, dim=DIM)
    values.update(changes)
    return types.SimpleNamespace(**values)


def twins(name, dim=DIM):
    """(actor, critic) torch twins of MetaBox's networks for `name`, float64, seeded."""
    torch.manual_seed(3)
    nets = {"GLEET": lambda: (T.TGLEETActor(), T.TGLEETCritic()),
            "RLEPSO": lambda: (T.Actor(1, 35), T.Critic(1)),
            "RLDAS": lambda: (T.TRLDAS(dim, 3, 9, critic=False), T.TRLDAS(dim, 3, 9, critic=True))}[name]()
    return tuple(n.double() for n in nets)


def converted(tmp_path, name, actor, critic, agent_name=None):
    """A .npz as `python -m compat.convert_checkpoint` writes it, from a stand-in agent class `agent_name`."""
    cls = type(agent_name or name, (), {})
    agent = cls()
    agent.network, agent.actor, agent.critic = ["actor", "critic"], actor, critic
    agent.config, agent.learning_time = types.SimpleNamespace(lr=1e-4, n_step=10), 42
    path = tmp_path / f"{name}.npz"
    write_weights(path, agent_weights(agent))
    return path


def rldas_obs(b, dim, seed):
    rng = np.random.default_rng(seed)
    obs = np.empty((b, 7), dtype=object)
    for i in range(b):
        obs[i, 0] = rng.normal(size=9).tolist()
        for j in range(6):
            obs[i, j + 1] = rng.normal(size=dim).tolist()
    return obs


def states(name, seed=0):
    rng = np.random.default_rng(seed)
    return {"GLEET": lambda: rng.uniform(-1, 1, (3, 6, 27)), "RLEPSO": lambda: rng.uniform(0, 1, (5, 1)),
            "RLDAS": lambda: rldas_obs(5, DIM, seed)}[name]()


def torch_outputs(name, actor, critic, x):
    """(action, log_prob [B], value [B]) of the twins on x (actions: clamped draws around μ)."""
    with torch.no_grad():
        if name == "RLDAS":
            feature = torch.tensor(np.array([np.asarray(f, float) for f in x[:, 0]]))
            moves = torch.tensor(np.stack([np.array([np.asarray(m, float) for m in x[:, j + 1]]) for j in range(6)], 1))
            p = actor(feature, moves)
            action = torch.arange(len(x)) % 3
            return action.numpy(), torch.log(p[torch.arange(len(x)), action]).numpy(), critic(feature, moves)[:, 0].numpy()
        t = torch.tensor(x)
        if name == "GLEET":
            mu, sigma, _, _, f = actor(t, torch.zeros(()))
            action = torch.clamp(mu + 0.3 * sigma, 0, 1)
            return action.numpy(), actor(t, action)[2][:, 0].numpy(), critic(f).numpy()
        mu, sigma, _, _ = actor(t, torch.zeros(()))
        action = torch.clamp(mu - 0.2 * sigma, 0, 1)
        return action.numpy(), actor(t, action)[2].numpy(), critic(t).numpy()


def agent_outputs(agent, x, action):
    """log_prob and value [B] through the agent's compiled hooks (`_get_action` with a fixed action, `_get_critic`)."""
    s = agent._trans_state(x)
    _, logp, _ = agent._get_action(s, fixed_action=jnp.asarray(action))
    return np.asarray(logp).reshape(-1), np.asarray(agent._get_critic(s)).reshape(-1)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


# --------------------------------------------------------------------------- config values


@pytest.mark.parametrize("name,values,lrs", [
    ("GLEET", dict(n_step=10, K_epochs=3, eps_clip=0.1, gamma=0.999, max_grad_norm=0.1), [1e-4, 1e-4]),
    ("RLEPSO", dict(n_step=10, K_epochs=3, eps_clip=0.1, gamma=0.999, max_grad_norm=float("inf")), [1e-5, 1e-5]),
    ("RLDAS", dict(n_step=10, K_epochs=None, eps_clip=0.1, gamma=0.99, max_grad_norm=0.1), [1e-5, 1e-5]),
])
def test_ports_set_metabox_config_values(tmp_path, name, values, lrs):
    cfg = config(tmp_path)
    agent = PORTS[name](cfg)
    assert str(agent) == name and agent.config is cfg and cfg.optimizer == "Adam"
    for key, value in values.items():
        assert getattr(agent, key) == value == getattr(cfg, key), key
    assert [g["lr"] for g in agent.optimizer.param_groups] == lrs
    assert cfg.agent_save_dir == os.path.join(str(tmp_path / "agents"), name, "run")
    assert os.path.isfile(os.path.join(cfg.agent_save_dir, "checkpoint-0.pkl"))
    if name == "GLEET":
        assert (cfg.embedding_dim, cfg.node_dim, cfg.hidden_dim1_critic, cfg.min_sigma) == (16, 9, 32, 0.01)
    if name == "RLEPSO":
        assert (cfg.feature_dim, cfg.action_dim, cfg.max_sigma) == (1, 35, 0.7)
    if name == "RLDAS":
        assert (cfg.feature_dim, cfg.optim_num) == (9, 3)


# --------------------------------------------------------------------------- MetaBox weights


@pytest.mark.parametrize("name", ["GLEET", "RLEPSO", "RLDAS"])
def test_from_metabox_reproduces_the_torch_networks(tmp_path, x64, name):
    actor, critic = twins(name)
    path = converted(tmp_path, name, actor, critic)
    agent = PORTS[name].from_metabox(str(path), config(tmp_path))
    x = states(name)
    action, t_logp, t_value = torch_outputs(name, actor, critic, x)
    logp, value = agent_outputs(agent, x, action)
    diff = max(np.max(np.abs(logp - t_logp)), np.max(np.abs(value - t_value)))
    assert diff < TOL, diff
    for clone in (pickle.loads(pickle.dumps(agent, -1)), copy.deepcopy(agent)):
        assert np.array_equal(agent_outputs(clone, x, action)[0], logp)
    assert agent.learning_time == 0


def test_weights_of_another_agent_are_refused_naming_both(tmp_path):
    path = converted(tmp_path, "GLEET", *twins("GLEET"))
    agent = RLDAS(config(tmp_path))
    before = state_dict(agent.actor)
    with pytest.raises(WeightsMismatch, match=r"MetaBox's GLEET weights; they do not load into the RLDAS port"):
        agent.load_metabox(path)
    assert all(np.array_equal(v, state_dict(agent.actor)[k]) for k, v in before.items())


def test_weights_that_do_not_fit_list_names_and_shapes_and_change_nothing(tmp_path):
    actor, critic = twins("RLDAS", dim=DIM + 2)
    path = converted(tmp_path, "RLDAS", actor, critic)
    agent = RLDAS(config(tmp_path))
    before = {n: state_dict(getattr(agent, n)) for n in agent.network}
    with pytest.raises(WeightsMismatch) as err:
        agent.load_metabox(path)
    msg = str(err.value)
    assert "network 'actor'" in msg and "network 'critic'" in msg
    assert f"embedders.0.0.weight: expected (64, {DIM}), got (64, {DIM + 2})" in msg
    for n in agent.network:
        assert all(np.array_equal(v, state_dict(getattr(agent, n))[k]) for k, v in before[n].items())


def test_missing_network_is_named(tmp_path):
    actor, _ = twins("RLEPSO")
    agent = type("RLEPSO", (), {})()
    agent.network, agent.actor, agent.config = ["actor"], actor, types.SimpleNamespace()
    write_weights(tmp_path / "a.npz", agent_weights(agent))
    with pytest.raises(WeightsMismatch, match=r"no network\(s\) \['critic'\]"):
        RLEPSO.from_metabox(tmp_path / "a.npz", config(tmp_path))


# --------------------------------------------------------------------------- training on stand-in envs


class SwarmEnv:
    """GLEET-shaped: state [N, 27], action [N] in [0, 1]."""

    def __init__(self, n=5, steps=3):
        self.n, self.steps = n, steps

    def seed(self, s):
        self.rng = np.random.default_rng(s)

    def reset(self):
        self.t, self.cost = 0, [1.0]
        return self.rng.uniform(-1, 1, (self.n, 27))

    def step(self, action):
        assert np.shape(action) == (self.n,) and np.all((0 <= action) & (action <= 1))
        self.t += 1
        self.cost.append(self.cost[-1] * float(np.mean(action)))
        return self.rng.uniform(-1, 1, (self.n, 27)), float(1 - np.mean(action)), self.t >= self.steps, {}


class SelectionEnv:
    """RLDAS-shaped: object observation (feature list, 6 move lists); action one of 3; an optimizer with
    MaxFEs and period (K = int(0.3 · (MaxFEs // period)))."""

    def __init__(self, steps=3, max_fes=20000, period=2500):
        self.steps, self.optimizer = steps, types.SimpleNamespace(MaxFEs=max_fes, period=period, FEs=0)

    def seed(self, s):
        self.rng = np.random.default_rng(s)

    def _obs(self):
        return rldas_obs(1, DIM, int(self.rng.integers(1 << 30)))[0]

    def reset(self):
        self.t, self.cost, self.optimizer.FEs = 0, [1.0], 0
        return self._obs()

    def step(self, action):
        assert int(action) in (0, 1, 2)
        self.t += 1
        self.optimizer.FEs += 2500
        self.cost.append(self.cost[-1] * 0.5)
        return self._obs(), float(action == 1), self.t >= self.steps, {}


ENVS = {"GLEET": lambda: SwarmEnv(), "RLEPSO": lambda: ToyOptimizerEnv(action_dim=35, max_steps=3, feature_dim=1),
        "RLDAS": lambda: SelectionEnv()}


@pytest.mark.parametrize("name", ["RLEPSO", "RLDAS"])
def test_ports_train_pickle_and_roll_out(tmp_path, name):
    """(GLEET's wiring trains in tests/test_compat_conventions.py and under MetaBox's Trainer in
    benchmarks/metabox_agents.py; compiling its attention network's update here costs minutes.)"""
    agent = PORTS[name](config(tmp_path))
    before = state_dict(agent.actor)
    ended, info = agent.train_episode([ENVS[name]() for _ in range(2)], seeds=[1, 2])
    k = 2 if name == "RLDAS" else 3  # RLDAS: int(0.3 · (20000 // 2500))
    assert not ended and agent.K_epochs == k and info["learn_steps"] == k and len(info["return"]) == 2
    assert any(not np.array_equal(v, state_dict(agent.actor)[n]) for n, v in before.items())
    clone = pickle.loads(pickle.dumps(agent, -1))
    out = clone.rollout_episode(ENVS[name](), seed=4)
    assert np.isfinite(out["return"]) and len(out["cost"]) == 4
    if name == "RLDAS":
        assert out["fes"] == 3 * 2500  # the optimizer's FEs, as MetaBox's RLDAS reports
    again = copy.deepcopy(agent).rollout_episode(ENVS[name](), seed=4)
    assert again["return"] == out["return"]


def test_gleet_port_pickles_and_rolls_out_per_particle_actions(tmp_path):
    agent = GLEET(config(tmp_path))
    out = pickle.loads(pickle.dumps(agent, -1)).rollout_episode(SwarmEnv(), seed=4)  # SwarmEnv checks [N] actions
    assert np.isfinite(out["return"]) and len(out["cost"]) == 4
    assert copy.deepcopy(agent).rollout_episode(SwarmEnv(), seed=4)["return"] == out["return"]


def test_rldas_takes_k_from_its_envs():
    assert epochs_for([SelectionEnv(max_fes=20000), SelectionEnv(max_fes=100000)]) == 12
    assert epochs_for([SelectionEnv(max_fes=2000)]) == 1
    with pytest.raises(ValueError, match=r"MaxFEs, period.*env 0 \(ToyOptimizerEnv\)"):
        epochs_for([ToyOptimizerEnv()])


class MultiTaskEnv:
    """L2T-shaped (cec2017mto, 2 tasks): state [15] (progress, then 7 per task), action [6] in [0, 1]."""

    def __init__(self, tasks=2, steps=4):
        self.tasks, self.steps = tasks, steps

    def seed(self, s):
        self.rng = np.random.default_rng(s)

    def _state(self):
        return np.concatenate([[self.t / self.steps], self.rng.uniform(0, 1, 7 * self.tasks)]).astype(np.float32)

    def reset(self):
        self.t, self.cost, self.fes = 0, [1.0], 0
        return self._state()

    def step(self, action):
        assert np.shape(action) == (3 * self.tasks,) and np.all((0 <= action) & (action <= 1))
        self.t += 1
        self.fes += 10
        self.cost.append(self.cost[-1] * float(np.mean(action)))
        return self._state(), float(np.mean(action[::3]) - 0.5), self.t >= self.steps, {}


def l2t_config(tmp_path, **changes):
    return config(tmp_path, train_problem="cec2017mto", test_problem="bbob", **changes)


def test_l2t_port_config_values_and_sizes(tmp_path):
    cfg = l2t_config(tmp_path)
    agent = L2T(cfg)
    assert str(agent) == "L2T" and PORTS["L2T"] is L2T and agent.config is cfg and cfg.optimizer == "Adam"
    for key, value in dict(n_step=10, K_epochs=3, eps_clip=0.2, gamma=0.99, max_grad_norm=0.1).items():
        assert getattr(agent, key) == value == getattr(cfg, key), key
    assert [g["lr"] for g in agent.optimizer.param_groups] == [1e-4, 1e-4]
    assert (agent.task_cnt, cfg.n_state, cfg.n_action) == (2, 15, 6)
    assert cfg.agent_save_dir == os.path.join(str(tmp_path / "agents"), "L2T", "run")
    assert os.path.isfile(os.path.join(cfg.agent_save_dir, "checkpoint-0.pkl"))
    assert state_dict(agent.critic)["linear1.weight"].shape == (64, 15)
    assert state_dict(agent.actor)["sigma.weight"].shape == (6, 64)
    for suite, tasks in (("wcci2020", 50), ("augmented-wcci2020", 10)):  # the test suite wins, as in MetaBox
        assert L2T(config(tmp_path / suite, train_problem="cec2017mto", test_problem=suite)).task_cnt == tasks


def test_l2t_refuses_a_single_task_suite_listing_the_suites_it_takes(tmp_path):
    with pytest.raises(ValueError, match=r"multi-task suites only, \['augmented-wcci2020', 'cec2017mto', "
                                         r"'wcci2020'\].*train_problem='bbob', test_problem='bbob'"):
        L2T(config(tmp_path, train_problem="bbob", test_problem="bbob"))


def test_l2t_twins_load_and_agree_through_the_hooks(tmp_path, x64):
    torch.manual_seed(3)
    actor, critic = T.TL2TActor(15, 6).double(), T.TL2TCritic(15).double()
    agent = L2T.from_metabox(converted(tmp_path, "L2T", actor, critic), l2t_config(tmp_path))
    x = np.random.default_rng(0).uniform(0, 1, (5, 15))
    with torch.no_grad():
        t = torch.tensor(x)
        mu, sigma, _, _ = actor(t, torch.zeros(()))
        action = torch.clamp(mu - 0.2 * sigma, 0, 1)
        t_logp, t_value = actor(t, action)[2].numpy(), critic(t)[:, 0].numpy()
    logp, value = agent_outputs(agent, x, action.numpy())
    assert max(np.abs(logp - t_logp).max(), np.abs(value - t_value).max()) < TOL
    # acting scores the clamped action it returns (compat's correction; MetaBox scores the raw draw)
    a, logp_act, entropy, _ = agent._act({"actor": agent.actor, "critic": agent.critic}, jnp.asarray(x),
                                         jax.random.key(0))
    assert bool(jnp.all((a >= 0) & (a <= 1))) and entropy.shape == (5, 6)
    assert np.abs(np.asarray(logp_act) - agent_outputs(agent, x, np.asarray(a))[0]).max() < TOL


def test_l2t_trains_its_critic_pickles_and_rolls_out(tmp_path):
    agent = L2T(l2t_config(tmp_path))
    actor_before, critic_before = state_dict(agent.actor), state_dict(agent.critic)
    ended, info = agent.train_episode([MultiTaskEnv() for _ in range(2)], seeds=[1, 2])
    assert not ended and info["learn_steps"] == 3 and len(info["return"]) == 2
    assert any(not np.array_equal(v, state_dict(agent.actor)[n]) for n, v in actor_before.items())
    # MetaBox's L2T loop gives its value loss no gradient; compat's trains the critic
    assert any(not np.array_equal(v, state_dict(agent.critic)[n]) for n, v in critic_before.items())
    clone = pickle.loads(pickle.dumps(agent, -1))
    out = clone.rollout_episode(MultiTaskEnv(), seed=4)
    assert np.isfinite(out["return"]) and len(out["cost"]) == 5 and out["fes"] == 40
    assert copy.deepcopy(agent).rollout_episode(MultiTaskEnv(), seed=4)["return"] == out["return"]


# --------------------------------------------------------------------------- RLDEAFL


class DEEnv:
    """RLDEAFL-shaped: state [NP, d + 2] (x in [0, 1], cost, fes fraction); action [NP, 7] (mutation and
    crossover operator indices, F, CR in [0, 1])."""

    def __init__(self, n=6, dim=3, steps=3):
        self.n, self.dim, self.steps = n, dim, steps

    def seed(self, s):
        self.rng = np.random.default_rng(s)

    def _state(self):
        return np.column_stack([self.rng.uniform(0, 1, (self.n, self.dim)), self.rng.uniform(1, 100, self.n),
                                np.full(self.n, self.t / self.steps)])

    def reset(self):
        self.t, self.cost = 0, [1.0]
        return self._state()

    def step(self, action):
        action = np.asarray(action)
        assert action.shape == (self.n, 7) and set(action[:, 0]) <= set(range(14)) and set(action[:, 1]) <= {0, 1, 2}
        assert np.all((0 <= action[:, 2:]) & (action[:, 2:] <= 1))
        self.t += 1
        self.cost.append(self.cost[-1] * float(np.mean(action[:, 2])))
        return self._state(), float(1 - np.mean(action[:, 2])), self.t >= self.steps, {}


def rldeafl_twins(hidden):
    torch.manual_seed(4)
    return {"actor": T.TRLDEAFLActor(hidden + 16).double(), "critic": T.TRLDEAFLCritic(hidden + 16).double(),
            "fe": T.TRLDEAFLExtractor(hidden).double()}


def test_rldeafl_port_config_networks_and_bad_weights(tmp_path):
    """MetaBox's values and sizes; RLDAS weights are refused naming both agents; weights of another
    size list every network, name and shape, and change nothing."""
    from compat.agents import RLDEAFL

    agent = RLDEAFL(config(tmp_path))
    assert str(agent) == "RLDEAFL" and agent.network == ["actor", "critic", "fe"]
    assert (agent.config.lr, agent.K_epochs, agent.eps_clip, agent.max_grad_norm) == (1e-4, 3, 0.2, 1)
    assert agent.optimizer.learning_rates() == {"actor": 1e-4, "critic": 1e-4, "fe": 1e-4}
    with pytest.raises(WeightsMismatch, match=r"MetaBox's RLDAS weights; they do not load into the RLDEAFL port"):
        agent.load_metabox(converted(tmp_path, "RLDAS", *twins("RLDAS")))
    stand_in = type("RLDEAFL", (), {})()
    nets = rldeafl_twins(hidden=8)
    stand_in.network, stand_in.config, stand_in.learning_time = list(nets), types.SimpleNamespace(), 0
    for name, net in nets.items():
        setattr(stand_in, name, net)
    write_weights(tmp_path / "small.npz", agent_weights(stand_in))
    before = {n: state_dict(getattr(agent, n)) for n in agent.network}
    with pytest.raises(WeightsMismatch) as err:
        agent.load_metabox(tmp_path / "small.npz")
    msg = str(err.value)
    assert all(f"network '{n}'" in msg for n in ("actor", "critic", "fe"))
    assert "mutation_selector_net.net.layer0-linear.weight: expected (32, 80), got (32, 24)" in msg
    assert "dimension_encoder.0.MHA_sublayer.MHA.W_query: expected (1, 64, 64), got (1, 8, 8)" in msg
    assert "position_encoder.encoding: expected (512, 64), got (512, 8)" in msg
    for n in agent.network:
        assert all(np.array_equal(v, state_dict(getattr(agent, n))[k]) for k, v in before[n].items())


def test_rldeafl_port_trains_through_the_extractor_pickles_and_rolls_out(tmp_path, x64):
    """compat's loop with the port's hooks: all three networks learn (the extractor from both losses);
    the twins' weights give the torch twins' log-probs through `_evaluate`."""
    from compat.agents import RLDEAFL
    from jppo.metabbo.networks import load_state_dict

    agent = RLDEAFL(config(tmp_path))
    nets = rldeafl_twins(hidden=64)
    for name, net in nets.items():
        load_state_dict(getattr(agent, name), net.state_dict())
    env = DEEnv()
    env.seed(0)
    states = np.stack([env.reset(), env.step(np.zeros((6, 7)))[0]])
    actions = np.concatenate([np.random.default_rng(1).integers(0, 3, (2, 6, 2)),
                              np.random.default_rng(2).uniform(0, 1, (2, 6, 5))], -1).astype(float)
    logp, _, value = agent._evaluate({n: getattr(agent, n) for n in agent.network}, jnp.asarray(states),
                                     jnp.asarray(actions))
    with torch.no_grad():
        mo, co, m_mu, m_sigma, c_mu, c_sigma = nets["actor"](nets["fe"](torch.tensor(states)))
        a = torch.tensor(actions)
        t_logp = (torch.distributions.Categorical(mo).log_prob(a[..., 0])
                  + torch.distributions.Categorical(co).log_prob(a[..., 1])
                  + torch.distributions.Normal(m_mu, m_sigma).log_prob(a[..., 2:5]).sum(-1)
                  + torch.distributions.Normal(c_mu, c_sigma).log_prob(a[..., 5:]).sum(-1)).sum(1)
        t_value = nets["critic"](nets["fe"](torch.tensor(states)))
    assert np.max(np.abs(np.asarray(logp) - t_logp.numpy())) < TOL
    assert np.max(np.abs(np.asarray(value) - t_value.numpy())) < TOL
    before = {n: state_dict(getattr(agent, n)) for n in agent.network}
    ended, info = agent.train_episode([DEEnv() for _ in range(2)], seeds=[1, 2])
    assert not ended and info["learn_steps"] == 3 and len(info["return"]) == 2
    for n in agent.network:
        assert any(not np.array_equal(v, state_dict(getattr(agent, n))[k]) for k, v in before[n].items()), n
    out = pickle.loads(pickle.dumps(agent, -1)).rollout_episode(DEEnv(), seed=4)
    assert np.isfinite(out["return"]) and len(out["cost"]) == 4


# --------------------------------------------------------------------------- MetaBox's shipped checkpoints


def _metabox():
    src = os.environ.get("JPPO_METABOX_SRC")
    if not src:
        pytest.skip("JPPO_METABOX_SRC not set (MetaBox's shipped checkpoints)")
    pytest.importorskip("metaevobox", reason="unpickling MetaBox's agents needs an importable metaevobox")
    return os.path.join(src, "model", "bbob-10D", "difficult")


def _env_states(name, n_states=3):
    """States of MetaBox's own optimizer env for `name` on a bbob-10D problem (reset, then random actions)."""
    import sys

    from metaevobox import Config
    from metaevobox.environment.basic_environment import PBO_Env
    from metaevobox.environment.problem.utils import construct_problem_set

    from benchmarks.metabox_agents import _optimizer_class

    saved, sys.argv = sys.argv, sys.argv[:1]
    try:
        cfg, (train, _) = construct_problem_set(Config({"train_problem": "bbob-10D", "train_difficulty": "difficult"}))
    finally:
        sys.argv = saved
    env = PBO_Env(copy.deepcopy(train.data[0]), _optimizer_class(name)(cfg))
    env.seed(5)
    rng = np.random.default_rng(5)
    out = [env.reset()]
    while len(out) < n_states:
        action = {"GLEET": lambda: rng.uniform(0, 1, 100), "RLEPSO": lambda: rng.uniform(0, 1, 35),
                  "RLDAS": lambda: int(rng.integers(3))}[name]()
        out.append(env.step(action)[0])
    return np.stack(out) if name != "RLDAS" else np.stack(out).astype(object)


@pytest.mark.metabox
@pytest.mark.parametrize("name", ["GLEET", "RLEPSO", "RLDAS"])
def test_shipped_checkpoints_in_the_ports(tmp_path, x64, name):
    from compat.convert_checkpoint import convert, load_agent

    folder = _metabox()
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        theirs = load_agent(os.path.join(folder, f"{name}.pkl"))
        weights = convert(os.path.join(folder, f"{name}.pkl"), tmp_path / f"{name}.npz")
        cfg = config(tmp_path, dim=getattr(theirs.config, "dim", DIM))
        agent = PORTS[name].from_metabox(tmp_path / f"{name}.npz", cfg)
        assert weights.agent == name
        x = _env_states(name)
        with torch.no_grad():
            t_in = x if name == "RLDAS" else torch.tensor(x)
            if name == "GLEET":
                action, t_logp, t_ent, f = theirs.actor(t_in, require_entropy=True, to_critic=True)
                t_value = theirs.critic(f)
            else:
                action, t_logp, t_ent = theirs.actor(t_in, require_entropy=True)
                t_value = theirs.critic(t_in)[1]
        s = agent._trans_state(x)
        _, logp, ent = agent._get_action(s, fixed_action=jnp.asarray(action.numpy()))
        value = agent._get_critic(s)
        diffs = {"log_prob": np.max(np.abs(np.asarray(logp).ravel() - t_logp.numpy().ravel())),
                 "entropy": np.max(np.abs(np.asarray(ent) - t_ent.numpy().reshape(np.shape(ent)))),
                 "value": np.max(np.abs(np.asarray(value).ravel() - t_value.numpy().ravel()))}
    finally:
        torch.set_default_dtype(saved)
    print(f"shipped {name}.pkl in compat.agents.{name} on {len(x)} states of MetaBox's env: "
          + ", ".join(f"{k} {v:.3g}" for k, v in diffs.items()))
    assert max(diffs.values()) < TOL, diffs
