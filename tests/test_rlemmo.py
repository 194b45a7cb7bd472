"""RLEMMO: its networks (jppo.metabbo.networks.rlemmo) against torch twins (references/torch_twins_rlemmo.py)
and, with JPPO_METABOX_SRC set, against MetaBox's own `rlemmo.Actor` / `rlemmo.Critic`, outputs and
gradients to 1e-10 in float64; the port compat.agents.RLEMMO (MetaBox's config values and name, weights
saved from the twins through compat.convert_checkpoint, bad weights and inputs named, compat's loop on a
stand-in env, greedy rollouts). With metaevobox importable (metabox marker): MetaBox's own Trainer trains
the port for one window on the `mmo` suite with MetaBox's RLEMMO_Optimizer and the checkpoint rolls out in
a fresh process; MetaBox's own loop refuses a batch of one env; an RLEMMO that MetaBox saved converts and
agrees on states of its env.
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
from references.twin_check import NetworkPair, TorchPair, check_against_twin, max_diff, randomise_affine  # noqa: E402

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
    twin = TorchPair(TR.TRLEMMOActor(16, 12, 2, layers, normalization), TR.t_rlemmo_critic(16)).double()
    randomise_affine(twin)
    return actor, critic, twin


# --------------------------------------------------------------------------- networks vs the torch twins


@pytest.mark.parametrize("sizes", ["metabox", "small"])
def test_actor_and_critic_match_the_torch_twins(sizes):
    """log π(a) [B] (summed over the population), entropy [B, NP], value [B] through to_critic; the
    gradients of every parameter and of the state (the value loss reaches the actor's trunk)."""
    if sizes == "metabox":
        actor, critic = N.rlemmo_networks(rngs=nnx.Rngs(0))
        torch.manual_seed(0)
        twin = TorchPair(TR.TRLEMMOActor(), TR.t_rlemmo_critic()).double()
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

    worst = check_against_twin(NetworkPair(actor, critic), twin, mine, theirs, [x])
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


# --------------------------------------------------------------------------- the port


def config(tmp_path, **changes):
    values = dict(device="cpu", agent_save_dir=str(tmp_path / "agents"), train_name="run", seed=0, end_mode="step",
                  save_interval=10**9, max_learning_step=10**9, no_tb=True, full_meta_data=False)
    values.update(changes)
    return types.SimpleNamespace(**values)


def converted(tmp_path, agent_name, file=None, **networks):
    """The .npz `python -m compat.convert_checkpoint` writes for a stand-in MetaBox agent of class `agent_name`."""
    from compat.convert_checkpoint import agent_weights
    from jppo.metabbo.metabox_checkpoint import write_weights

    agent = type(agent_name, (), {})()
    agent.network, agent.config, agent.learning_time = list(networks), types.SimpleNamespace(lr_actor=5e-4), 7
    for name, net in networks.items():
        setattr(agent, name, net)
    path = tmp_path / (file or f"{agent_name}.npz")
    write_weights(path, agent_weights(agent))
    return path


def test_port_sets_metaboxs_config_values_and_name(tmp_path):
    from compat.agents import PORTS, RLEMMO

    cfg = config(tmp_path)
    agent = RLEMMO(cfg)
    assert PORTS["RLEMMO"] is RLEMMO and str(agent) == "RLEMMO" and agent.config is cfg
    expected = dict(optimizer="Adam", lr_actor=5e-4, lr_critic=5e-4, lr_scheduler="ExponentialLR", embedding_dim=64,
                    encoder_head_num=4, n_encode_layers=1, normalization="layer", hidden_dim=64, hidden_dim1_actor=16,
                    hidden_dim2_actor=8, hidden_dim1_critic=16, hidden_dim2_critic=8, gamma=0.99, n_step=10,
                    K_epochs=3, eps_clip=0.1, lr_decay=0.9862327, max_grad_norm=0.1)
    assert {k: getattr(cfg, k) for k in expected} == expected
    assert (agent.gamma, agent.n_step, agent.K_epochs, agent.eps_clip, agent.max_grad_norm) == (0.99, 10, 3, 0.1, 0.1)
    assert (agent.output_dim, agent.global_dim, agent.local_dim, agent.ind_dim) == (5, 5, 5, 12)
    assert agent.optimizer.learning_rates() == {"actor": 5e-4, "critic": 5e-4}
    assert cfg.agent_save_dir == os.path.join(str(tmp_path / "agents"), "RLEMMO", "run")
    assert os.path.isfile(os.path.join(cfg.agent_save_dir, "checkpoint-0.pkl"))
    assert N.torch_layout(agent.actor)["decoder.net.layer2-linear.weight"] == (5, 8)


def test_twin_weights_convert_load_and_give_the_twins_outputs_through_the_hooks(tmp_path):
    from compat.agents import RLEMMO

    torch.manual_seed(5)
    actor, critic = TR.TRLEMMOActor().double(), TR.t_rlemmo_critic().double()
    agent = RLEMMO.from_metabox(str(converted(tmp_path, "RLEMMO", actor=actor, critic=critic)), config(tmp_path))
    x, a = rlemmo_state(4, 10, seed=6), rlemmo_actions(4, 10, seed=7)
    with torch.no_grad():
        t_logp, t_ent, t_value = TR.t_rlemmo_outputs(actor, critic, torch.tensor(x), a)
    s = agent._trans_state(x)
    _, logp, ent = agent._get_action(s, fixed_action=jnp.asarray(a))
    nets = {"actor": agent.actor, "critic": agent.critic}
    e_logp, e_ent, e_value = agent._evaluate(nets, s, jnp.asarray(a))
    diffs = [max_diff(logp, t_logp), max_diff(ent, t_ent), max_diff(agent._get_critic(s), t_value),
             max_diff(e_logp, t_logp), max_diff(e_ent, t_ent), max_diff(e_value, t_value)]
    print(f"RLEMMO port with the twins' converted weights: max |diff| {max(diffs):.3g}")
    assert max(diffs) < TOL and agent.learning_time == 0
    clone = pickle.loads(pickle.dumps(agent, -1))
    assert np.array_equal(clone._get_action(s, fixed_action=jnp.asarray(a))[1], logp)


def test_bad_weights_name_both_agents_or_every_name_and_shape_and_change_nothing(tmp_path):
    from compat.agents import RLEMMO, WeightsMismatch
    from references import torch_twins as T

    agent = RLEMMO(config(tmp_path))
    before = {n: N.state_dict(getattr(agent, n)) for n in agent.network}
    torch.manual_seed(0)
    gleet = converted(tmp_path, "GLEET", actor=T.TGLEETActor().double(), critic=T.TGLEETCritic().double())
    with pytest.raises(WeightsMismatch, match=r"MetaBox's GLEET weights; they do not load into the RLEMMO port"):
        agent.load_metabox(gleet)
    small = converted(tmp_path, "RLEMMO", "small.npz", actor=TR.TRLEMMOActor(emb=16, hidden=16).double(),
                      critic=TR.t_rlemmo_critic(16).double())
    with pytest.raises(WeightsMismatch) as err:
        agent.load_metabox(small)
    msg = str(err.value)
    assert "network 'actor'" in msg and "network 'critic'" in msg
    for line in ("embedder_1.embedder.weight: expected (32, 10), got (8, 10)",
                 "encoder.0.MHA_sublayer.MHA.W_query: expected (4, 64, 16), got (4, 16, 4)",
                 "encoder.0.FFandNorm_sublayer.FF.0.weight: expected (64, 64), got (16, 16)",
                 "decoder.net.layer0-linear.weight: expected (16, 64), got (16, 16)",
                 "value_head.net.layer0-linear.weight: expected (16, 64), got (16, 16)"):
        assert line in msg, line
    for n in agent.network:
        assert all(np.array_equal(v, N.state_dict(getattr(agent, n))[k]) for k, v in before[n].items()), n


class NicheEnv:
    """RLEMMO-shaped: state [NP, 22], action [NP] operator indices 0..4; pr, sr and (full_meta_data)
    meta_X, meta_Cost, meta_Pr, meta_Sr as MetaBox's RLEMMO_Optimizer keeps them."""

    def __init__(self, n=6, steps=3):
        self.n, self.steps = n, steps

    def seed(self, s):
        self.rng = np.random.default_rng(s)

    def _state(self):
        return self.rng.uniform(0, 1, (self.n, 22))

    def reset(self):
        self.t, self.fes, self.cost, self.pr, self.sr = 0, 0, [1.0], [np.zeros(5)], [np.zeros(5)]
        self.meta_X, self.meta_Cost, self.meta_Pr, self.meta_Sr = [], [], [], []
        return self._state()

    def step(self, action):
        action = np.asarray(action)
        assert action.shape == (self.n,) and set(np.unique(action)) <= set(range(5)), action
        self.t += 1
        self.fes += self.n
        self.cost.append(self.cost[-1] * 0.9)
        self.pr.append(np.full(5, self.t / self.steps))
        self.sr.append(np.zeros(5))
        for k in ("X", "Cost", "Pr", "Sr"):
            getattr(self, f"meta_{k}").append(self.t)
        return self._state(), float(np.mean(action == 2)), self.t >= self.steps, {}


def test_port_trains_both_networks_at_any_batch_size_pickles_and_rolls_out_greedily(tmp_path):
    """compat's loop with the shared trunk: the actor and the critic learn, with one env in the batch too
    (where MetaBox's RLEMMO loop squeezes the action and its ParallelEnv refuses it); rollouts take the
    argmax operators, so a pickled copy rolls out alike, and report pr, sr and the metadata."""
    from compat.agents import RLEMMO

    agent = RLEMMO(config(tmp_path, full_meta_data=True))
    before = {n: N.state_dict(getattr(agent, n)) for n in agent.network}
    for batch in (2, 1):
        ended, info = agent.train_episode([NicheEnv() for _ in range(batch)], seeds=list(range(1, batch + 1)))
        assert not ended and len(info["return"]) == batch
    assert info["learn_steps"] == agent.learning_time == 6
    for n in agent.network:
        assert any(not np.array_equal(v, N.state_dict(getattr(agent, n))[k]) for k, v in before[n].items()), n
    out = pickle.loads(pickle.dumps(agent, -1)).rollout_episode(NicheEnv(), seed=4)
    assert np.isfinite(out["return"]) and len(out["cost"]) == 4 and out["fes"] == 18
    assert len(out["pr"]) == len(out["sr"]) == 4 and out["pr"][-1][0] == 1.0
    assert out["metadata"] == {"X": [1, 2, 3], "Cost": [1, 2, 3], "Pr": [1, 2, 3], "Sr": [1, 2, 3]}
    env = NicheEnv()
    again = copy.deepcopy(agent).rollout_episode(env, seed=4)
    assert again["return"] == out["return"]
    env.seed(4)
    state = env.reset()  # the first action the rollout took: the argmax of the actor's probabilities
    dist, _ = agent.actor.distribution(jnp.asarray(state[None]))
    assert np.array_equal(agent._rollout_action(agent._trans_state(state[None])), np.argmax(dist.probs, -1))
    agent.config.full_meta_data = False
    assert "metadata" not in agent.rollout_episode(NicheEnv(), seed=4)


# --------------------------------------------------------------------------- under MetaBox's Trainer

_FRESH_ROLLOUT = """
import copy, json, pickle, sys
import numpy as np
from metaevobox.environment.basic_environment import PBO_Env
from metaevobox.environment.problem.utils import construct_problem_set
from benchmarks.metabox_agents import _config, _optimizer_class, _setup
_setup()
with open(sys.argv[1], "rb") as f:
    agent = pickle.load(f)
agent.config.full_meta_data = True  # MetaBox's RLEMMO reads its own config's flag when it rolls out
config, (_, test_set) = construct_problem_set(_config("mmo", full_meta_data=True))
problem = copy.deepcopy(test_set.data[0])
problem.maxfes = 3000  # 100 initial evaluations, then 29 steps of MetaBox's RLEMMO_Optimizer (the problem's own budget is 400000)
outs = []
for _ in range(2):  # the env draws from numpy's global generator; greedy actions: same seed, same episode
    np.random.seed(0)
    outs.append(agent.rollout_episode(PBO_Env(copy.deepcopy(problem), _optimizer_class("RLEMMO")(config)), seed=1))
out = outs[0]
print("RESULT " + json.dumps({"class": f"{type(agent).__module__}.{type(agent).__qualname__}", "str": str(agent),
      "problem": str(problem), "fes": int(out["fes"]), "returns": [float(o["return"]) for o in outs],
      "n_cost": len(out["cost"]), "pr_last": np.asarray(out["pr"][-1]).tolist(), "n_pr": len(out["pr"]),
      "n_sr": len(out["sr"]), "metadata": sorted(out["metadata"]), "meta_X": np.shape(out["metadata"]["X"])}))
"""


def _run(args, cwd, timeout=600):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))[len("RESULT "):])


@pytest.mark.metabox
def test_under_metabox_trainer_on_mmo_and_rolled_out_in_a_fresh_process(tmp_path):
    """MetaBox's Trainer trains the port on the mmo suite (CEC2013, difficult split) with MetaBox's
    RLEMMO_Optimizer, dummy mode, one window (3 learning steps, train_batch_size 2); its last checkpoint
    is unpickled in a fresh process and rolled out greedily on the first test problem (budget cut to
    3000 evaluations), giving MetaBox's rollout record: cost, fes, return, pr, sr, metadata. (A whole
    epoch, subproc mode and the full budget: `python -m benchmarks.metabox_agents all --agents RLEMMO`.)"""
    pytest.importorskip("metaevobox", reason="MetaBox's Trainer needs an importable metaevobox")
    trained = _run(["-m", "benchmarks.metabox_agents", "train", "RLEMMO", "dummy", "--windows", "1"], tmp_path)
    assert trained["suite"] == "mmo" and trained["learning_time"] == 3 and trained["K_epochs"] == 3
    assert trained["problems"][0] == "five_uneven_peak_trap_D1" and trained["checkpoints"][-1] == "checkpoint-1.pkl"
    assert all(np.isfinite(r) for rs in trained["episode_returns"] for r in rs)
    rolled = _run(["-c", _FRESH_ROLLOUT, trained["last_checkpoint"]], tmp_path)
    assert rolled["class"] == "compat.agents.rlemmo.RLEMMO" and rolled["str"] == "RLEMMO"
    assert rolled["problem"] == "shubert_D3" and rolled["fes"] == 3000
    assert rolled["returns"][0] == rolled["returns"][1] and np.isfinite(rolled["returns"][0])
    assert rolled["n_cost"] == rolled["n_pr"] == rolled["n_sr"] == 51 and len(rolled["pr_last"]) == 5
    assert rolled["metadata"] == ["Cost", "Pr", "Sr", "X"] and rolled["meta_X"] == [30, 100, 3]  # the initial population, 29 steps


@pytest.mark.metabox
def test_metabox_rlemmo_loop_refuses_one_env_where_the_port_trains(tmp_path):
    """MetaBox's RLEMMO.train_episode steps its envs with `action.squeeze()`: with one env ([1, 100] →
    [100]) its ParallelEnv gets 100 actions for one env and asserts; compat's loop passes [1, 100]."""
    pytest.importorskip("metaevobox", reason="MetaBox's agent and env need an importable metaevobox")
    from metaevobox.baseline.metabbo.rlemmo import RLEMMO as TheirRLEMMO
    from metaevobox.environment.basic_environment import PBO_Env
    from metaevobox.environment.problem.utils import construct_problem_set

    from benchmarks.metabox_agents import _config, _optimizer_class
    from compat.agents import RLEMMO

    saved = torch.get_default_dtype()
    try:
        def made(side):
            cfg, (train_set, _) = construct_problem_set(_config("mmo", agent_save_dir=str(tmp_path / side),
                                                                train_name="run", no_tb=True, max_learning_step=3,
                                                                end_mode="step", save_interval=10**9))
            return cfg, [PBO_Env(copy.deepcopy(train_set.data[3]), _optimizer_class("RLEMMO")(cfg))]

        cfg, envs = made("torch")
        with pytest.raises(AssertionError) as err:
            TheirRLEMMO(cfg).train_episode(envs, seeds=[1])
        assert "parallelenv" in str(err.traceback[-1].path)  # MetaBox's ParallelEnv: one action per env
        cfg, envs = made("compat")
        ended, info = RLEMMO(cfg).train_episode(envs, seeds=[1])
    finally:
        torch.set_default_dtype(saved)
    assert ended and info["learn_steps"] == 3 and len(info["return"]) == 1


@pytest.mark.metabox
def test_a_metabox_saved_rlemmo_converts_loads_and_agrees_on_states_of_its_env(tmp_path):
    """No trained RLEMMO ships; one that MetaBox saved (its `save_class` pickle of a torch RLEMMO agent)
    converts with compat.convert_checkpoint, loads with `RLEMMO.from_metabox`, and gives MetaBox's
    agent's log-probabilities, entropies and values on states of MetaBox's RLEMMO_Optimizer (float64)."""
    pytest.importorskip("metaevobox", reason="MetaBox's agent and env need an importable metaevobox")
    from metaevobox.baseline.metabbo.rlemmo import RLEMMO as TheirRLEMMO
    from metaevobox.environment.basic_environment import PBO_Env
    from metaevobox.environment.problem.utils import construct_problem_set

    from benchmarks.metabox_agents import _config, _optimizer_class
    from compat.agents import RLEMMO
    from compat.convert_checkpoint import convert

    saved = torch.get_default_dtype()
    try:
        cfg, (train_set, _) = construct_problem_set(_config("mmo", agent_save_dir=str(tmp_path / "torch"),
                                                            train_name="run"))
        torch.manual_seed(2)
        theirs = TheirRLEMMO(cfg)  # saves checkpoint-0.pkl as MetaBox saves every checkpoint
        weights = convert(os.path.join(cfg.agent_save_dir, "checkpoint-0.pkl"), tmp_path / "RLEMMO.npz")
        env = PBO_Env(copy.deepcopy(train_set.data[5]), _optimizer_class("RLEMMO")(cfg))
        np.random.seed(3)
        states = [env.reset()]
        while len(states) < 4:
            states.append(env.step(np.random.randint(0, 5, 100))[0])
        x = torch.tensor(np.stack(states))
        with torch.no_grad():
            t_action, t_logp, t_ent, t_f = theirs.actor(x, require_entropy=True, to_critic=True)
            t_value = theirs.critic(t_f)
    finally:
        torch.set_default_dtype(saved)
    agent = RLEMMO.from_metabox(tmp_path / "RLEMMO.npz", types.SimpleNamespace(
        device="cpu", agent_save_dir=str(tmp_path / "compat"), train_name="run", seed=0))
    s = agent._trans_state(x.numpy())
    _, logp, ent = agent._get_action(s, fixed_action=jnp.asarray(t_action.numpy()))
    diffs = {"log_prob": max_diff(logp, t_logp), "entropy": max_diff(ent, t_ent),
             "value": max_diff(agent._get_critic(s), t_value)}
    print(f"MetaBox-saved RLEMMO in compat.agents.RLEMMO on {len(x)} states of MetaBox's env: "
          + ", ".join(f"{k} {v:.3g}" for k, v in diffs.items()))
    assert weights.agent == "RLEMMO" and max(diffs.values()) < TOL, diffs
