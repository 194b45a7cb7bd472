"""SYMBOL: its networks against torch twins, its grammar against MetaBox's, the port (compat.agents.SYMBOL).

* `SYMBOLActor` / `SYMBOLCritic` vs the twins of references/torch_twins_symbol.py: log-probabilities,
  entropies and values of recorded update rules, and their gradients w.r.t. every parameter and the
  state, float64, 1e-10;
* the host grammar (`grammar_mask`, `next_position`, `expression`) replays 320 rules MetaBox drew
  (references/symbol_states.npz): every mask, every next slot and every expression string equal;
* the port: MetaBox's config values, sampling that keeps to the grammar and scores what it drew,
  training on a stand-in env (both networks learn), pickling, rollout, the nan check, bad input;
* with metaevobox (`metabox` marker): MetaBox's own `get_mask` on trees the port draws; the shipped
  SYMBOL.pkl converted, loaded with `from_metabox` and compared with MetaBox's torch agent on states
  of MetaBox's SYMBOL env; MetaBox's Trainer training the port for one window.
"""

from __future__ import annotations

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

from compat.agents import PORTS, SYMBOL, WeightsMismatch  # noqa: E402
from compat.convert_checkpoint import agent_weights  # noqa: E402
from jppo.metabbo.metabox_checkpoint import write_weights  # noqa: E402
from jppo.metabbo.networks import SYMBOLActor, SYMBOLCritic, UpdateRule, load_state_dict, state_dict  # noqa: E402
from jppo.metabbo.networks import symbol as S  # noqa: E402
from references.metabox_source import ENV, SKIP_REASON, metabbo_agent_module  # noqa: E402
from references.torch_twins_symbol import TSYMBOLActor, TSYMBOLCritic  # noqa: E402
from references.twin_check import check_against_twin  # noqa: E402

TOL = 1e-10
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDED = os.path.join(REPO, "references", "symbol_states.npz")
FIELDS = ("tokens", "positions", "masks", "constants", "valid")


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def recorded(prefix=""):
    """(UpdateRule, expressions) of the rules MetaBox drew (prefix 'grammar_': its random-weight actor's)."""
    data = np.load(RECORDED)
    return UpdateRule(**{f: data[prefix + f] for f in FIELDS}), list(data[prefix + "expressions"])


def rows(rule, idx):
    return UpdateRule(**{f: np.asarray(getattr(rule, f))[idx] for f in FIELDS})


def config(tmp_path, **changes):
    values = dict(device="cpu", agent_save_dir=str(tmp_path / "agents"), train_name="run", seed=0, end_mode="step",
                  save_interval=10**9, max_learning_step=10**9, no_tb=True)
    values.update(changes)
    return types.SimpleNamespace(**values)


def twin_tensors(rule):
    return [torch.tensor(np.asarray(getattr(rule, f))) for f in FIELDS]


# --------------------------------------------------------------------------- networks vs torch twins


def test_actor_and_critic_match_torch_twins_outputs_and_gradients(x64):
    """log π, H and V of 12 recorded rules (the longest of MetaBox's grammar corpus) at random states:
    values and gradients (every parameter, the state) equal the twins' to 1e-10 in float64."""
    rule, _ = recorded("grammar_")
    pick = np.argsort(-np.asarray(rule.valid).sum(1), kind="stable")[:12]
    rule = rows(rule, pick)
    x = np.random.default_rng(0).uniform(-1, 2, (12, 9))
    torch.manual_seed(0)
    worst_actor = check_against_twin(SYMBOLActor(rngs=nnx.Rngs(0)), TSYMBOLActor().double(),
                                     lambda m, s: jnp.stack(m(s, fix_action=rule, require_entropy=True)[1:]),
                                     lambda m, s: torch.stack(m(s, *twin_tensors(rule))), [x])
    worst_critic = check_against_twin(SYMBOLCritic(rngs=nnx.Rngs(1)), TSYMBOLCritic().double(),
                                      lambda m, s: m(s)[1], lambda m, s: m(s)[1], [x])
    print(f"SYMBOL vs torch twins: max |diff| actor {worst_actor:.3g}, critic {worst_critic:.3g}")


def test_two_layer_lstm_matches_torch(x64):
    """num_layers 2 (MetaBox's config has 1): torch's stacked nn.LSTM, smaller trees (max_layer 4)."""
    actor = SYMBOLActor(max_layer=4, hidden_dim=8, num_layers=2, rngs=nnx.Rngs(2))
    x = np.random.default_rng(1).uniform(0, 1, (5, 9))
    rule, _, _ = actor(x, require_entropy=True, key=jax.random.key(0))
    torch.manual_seed(2)
    twin = TSYMBOLActor(max_layer=4, hidden_dim=8, num_layers=2).double()
    check_against_twin(actor, twin, lambda m, s: jnp.stack(m(s, fix_action=rule, require_entropy=True)[1:]),
                       lambda m, s: torch.stack(m(s, *twin_tensors(rule))), [x])


# --------------------------------------------------------------------------- the grammar


@pytest.mark.parametrize("prefix", ["", "grammar_"])
def test_grammar_replays_metabox_masks_slots_and_expressions(prefix):
    """Each rule MetaBox drew, replayed token by token: our mask equals MetaBox's at every step, the next
    slot is the one MetaBox wrote next (-1 after the last), and the infix string is MetaBox's."""
    rule, expressions = recorded(prefix)
    tokens, slots, masks, valid = (np.asarray(getattr(rule, f)) for f in ("tokens", "positions", "masks", "valid"))
    steps = 0
    for i in range(len(tokens)):
        seq = np.full(63, -1)
        n = int(valid[i].sum())
        assert valid[i, :n].all() and slots[i, 0] == 0
        for t in range(n):
            np.testing.assert_array_equal(S.grammar_mask(seq, int(slots[i, t]), 6), masks[i, t], err_msg=f"{i}, {t}")
            assert masks[i, t, tokens[i, t]]
            seq[slots[i, t]] = tokens[i, t]
            assert S.next_position(seq, int(slots[i, t])) == (slots[i, t + 1] if t + 1 < n else -1)
            steps += 1
    assert rule.expressions(-1.0, 0.4) == expressions
    assert steps > (1000 if prefix else 600)


def test_grammar_rules_by_example():
    seq = np.full(63, -1)
    np.testing.assert_array_equal(np.flatnonzero(S.grammar_mask(seq, 0, 6)), [0, 1])  # root: '+' or '*'
    seq[0] = S.TIMES
    assert not S.grammar_mask(seq, 1, 6)[list(S.VARS)].any()  # '*' on level 1..3: no variable child
    seq[1] = 3  # C-1
    np.testing.assert_array_equal(np.flatnonzero(S.grammar_mask(seq, 2, 6)), [0])  # after a constant, level 2: '+'
    assert S.next_position(seq, 1) == 2 and S.grammar_mask(seq, 62, 6)[list(S.OPERATORS)].sum() == 0
    seq[2] = S.PLUS
    assert S.next_position(seq, 2) == 5
    seq[5] = S.X
    assert S.next_position(seq, 5) == 6
    assert not S.grammar_mask(seq, 6, 6)[list(S.LEAVES)].any()  # level 3, after a leaf sibling: an operator
    seq[6], seq[13], consts = S.MINUS, 8, np.zeros(63)  # dx
    consts[1] = -0.6
    assert S.next_position(seq, 13) == -1 and S.expression(seq, consts) == "(-0.06*(x+-(dx)))"
    with pytest.raises(ValueError, match="empty"):
        S.expression(np.full(63, -1), consts)


# --------------------------------------------------------------------------- sampling


def test_sampling_keeps_to_the_grammar_and_scores_what_it_drew(x64):
    actor = SYMBOLActor(rngs=nnx.Rngs(3))
    x = np.random.default_rng(2).uniform(0, 1, (8, 9))
    rule, logp, ent = actor(x, require_entropy=True, key=jax.random.key(4))
    tokens, slots, masks, valid = (np.asarray(getattr(rule, f)) for f in ("tokens", "positions", "masks", "valid"))
    for i in range(8):
        seq = np.full(63, -1)
        for t in np.flatnonzero(valid[i]):
            np.testing.assert_array_equal(S.grammar_mask(seq, int(slots[i, t]), 6), masks[i, t])
            assert masks[i, t, tokens[i, t]]
            seq[slots[i, t]] = tokens[i, t]
    assert len(rule.expressions(-1.0, 0.4)) == 8 and np.all(np.asarray(logp) < 0) and np.all(np.asarray(ent) > 0)
    again = actor(x, key=jax.random.key(4))[0]
    assert all(np.array_equal(getattr(rule, f), getattr(again, f)) for f in FIELDS)
    scored = actor(x, fix_action=rule)[1]
    np.testing.assert_allclose(scored, logp, rtol=0, atol=1e-12)


def test_bad_input_is_named(x64):
    actor, critic = SYMBOLActor(rngs=nnx.Rngs(0)), SYMBOLCritic(rngs=nnx.Rngs(0))
    x = np.zeros((2, 9))
    with pytest.raises(ValueError, match=r"state must have shape \[batch, fea_dim\] with last axis 9, got \(2, 8\)"):
        actor(np.zeros((2, 8)), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"state must have shape \[batch, fea_dim\] with last axis 9, got \(9,\)"):
        critic(np.zeros(9))
    with pytest.raises(ValueError, match="sampling needs key="):
        actor(x)
    rule, _ = recorded()
    with pytest.raises(ValueError, match=r"fix_action.tokens must have shape \(2, 63\) .* got \(120, 63\)"):
        actor(x, fix_action=rule)
    with pytest.raises(ValueError, match="fix_action must be an UpdateRule"):
        actor(x, fix_action=np.zeros((2, 63)))


# --------------------------------------------------------------------------- the port


class RuleEnv:
    """SYMBOL-shaped: state [9]; action MetaBox's {'expr': str, 'skip_step': 5}; reward favours short rules."""

    def __init__(self, steps=3):
        self.steps = steps

    def seed(self, s):
        self.rng = np.random.default_rng(s)

    def reset(self):
        self.t, self.cost, self.exprs = 0, [1.0], []
        return self.rng.uniform(0, 1, 9)

    def step(self, action):
        assert set(action) == {"expr", "skip_step"} and action["skip_step"] == 5
        self.t += 1
        self.exprs.append(action["expr"])
        self.cost.append(float(len(action["expr"])))
        return self.rng.uniform(0, 1, 9), -len(action["expr"]) / 100, self.t >= self.steps, {}


def twins(max_layer=6, hidden_dim=16):
    torch.manual_seed(5)
    return TSYMBOLActor(max_layer=max_layer, hidden_dim=hidden_dim).double(), TSYMBOLCritic().double()


def converted(tmp_path, name, networks):
    """A .npz as `python -m compat.convert_checkpoint` writes it, from a stand-in agent class `name`."""
    agent = type(name, (), {})()
    agent.network, agent.config, agent.learning_time = list(networks), types.SimpleNamespace(lr=1e-3), 42
    for n, net in networks.items():
        setattr(agent, n, net)
    path = tmp_path / f"{name}-{len(os.listdir(tmp_path))}.npz"
    write_weights(path, agent_weights(agent))
    return path


def test_port_config_values_and_bad_weights(tmp_path):
    """MetaBox's values and names; RLDEAFL weights are refused naming both agents; SYMBOL weights of
    another size list every name and shape, and change nothing."""
    cfg = config(tmp_path)
    agent = SYMBOL(cfg)
    assert str(agent) == "SYMBOL" and PORTS["SYMBOL"] is SYMBOL and agent.network == ["actor", "critic"]
    assert (cfg.optimizer, agent.K_epochs, agent.eps_clip, agent.gamma, agent.n_step) == ("Adam", 3, 0.1, 0.99, 10)
    assert agent.max_grad_norm == float("inf") and (cfg.skip_step, cfg.max_layer, cfg.fea_dim) == (5, 6, 9)
    assert agent.optimizer.learning_rates() == {"actor": 1e-3, "critic": 1e-3}
    assert cfg.agent_save_dir == os.path.join(str(tmp_path / "agents"), "SYMBOL", "run")
    assert agent.actor.num_c == 4 and agent.actor.seq_len == 63
    other = converted(tmp_path, "RLDEAFL", dict(zip(("actor", "critic"), twins())))
    with pytest.raises(WeightsMismatch, match=r"MetaBox's RLDEAFL weights; they do not load into the SYMBOL port"):
        agent.load_metabox(other)
    actor, critic = twins(max_layer=5, hidden_dim=8)
    critic.value_net = torch.nn.Linear(7, 1).double()
    before = {n: state_dict(getattr(agent, n)) for n in agent.network}
    with pytest.raises(WeightsMismatch) as err:
        agent.load_metabox(converted(tmp_path, "SYMBOL", {"actor": actor, "critic": critic}))
    msg = str(err.value)
    for line in ("lstm.weight_ih_l0: expected (64, 252), got (32, 124)", "lstm.weight_hh_l0: expected (64, 16), got "
                 "(32, 8)", "lstm.bias_ih_l0: expected (64,), got (32,)", "output_net.weight: expected (11, 16), got "
                 "(11, 8)", "x_to_c.weight: expected (16, 9), got (8, 9)", "constval_net.weight: expected (4, 16), "
                 "got (4, 8)", "value_net.weight: expected (1, 9), got (1, 7)"):
        assert line in msg, line
    assert "network 'actor'" in msg and "network 'critic'" in msg
    for n in agent.network:
        assert all(np.array_equal(v, state_dict(getattr(agent, n))[k]) for k, v in before[n].items())


def test_port_scores_like_the_twins_trains_pickles_and_rolls_out(tmp_path, x64):
    """Twin weights through `from_metabox` give the twins' log-probs, entropies and values in `_evaluate`;
    `_get_action` scores what it samples; a short train_episode moves both networks; the pickled agent
    rolls out, handing the env MetaBox's action dicts."""
    actor, critic = twins()
    agent = SYMBOL.from_metabox(converted(tmp_path, "SYMBOL", {"actor": actor, "critic": critic}), config(tmp_path))
    rule, _ = recorded()
    states = np.tile(np.load(RECORDED)["states"], (20, 1))
    nets = {n: getattr(agent, n) for n in agent.network}
    logp, ent, value = agent._evaluate(nets, jnp.asarray(states), rule)
    with torch.no_grad():
        t_logp, t_ent = actor(torch.tensor(states), *twin_tensors(rule))
        t_value = critic(torch.tensor(states))[1]
    for mine, theirs in ((logp, t_logp), (ent, t_ent), (value, t_value)):
        assert np.max(np.abs(np.asarray(mine) - theirs.numpy())) < TOL
    sampled, s_logp, s_ent = agent._get_action(agent._trans_state(states[:4]))
    np.testing.assert_allclose(agent._evaluate(nets, jnp.asarray(states[:4]), sampled)[0], s_logp, rtol=0, atol=1e-12)
    actions = agent._trans_action(sampled)
    assert [a["expr"] for a in actions] == sampled.expressions(-1.0, 0.4) and actions[0]["skip_step"] == 5
    with pytest.raises(ValueError, match="UpdateRules"):
        agent._trans_action(np.zeros((4, 63)))
    with pytest.raises(NotImplementedError, match="samples on the host"):
        agent._act(nets, jnp.asarray(states[:4]), jax.random.key(0))
    before = {n: state_dict(getattr(agent, n)) for n in agent.network}
    envs = [RuleEnv(), RuleEnv()]
    ended, info = agent.train_episode(envs, seeds=[1, 2])
    assert not ended and info["learn_steps"] == 3 and len(info["return"]) == 2 and len(envs[0].exprs) == 3
    for n in agent.network:
        assert any(not np.array_equal(v, state_dict(getattr(agent, n))[k]) for k, v in before[n].items()), n
    out = pickle.loads(pickle.dumps(agent, -1)).rollout_episode(RuleEnv(), seed=4)
    assert np.isfinite(out["return"]) and len(out["cost"]) == 4


def test_nan_loss_stops_training_and_keeps_the_last_weights(tmp_path, x64):
    """MetaBox's `assert True, 'nan found in loss!!'` never fires; the port's check does."""
    agent = SYMBOL(config(tmp_path))
    agent.critic.value_net.bias[...] = jnp.full((1,), jnp.nan)
    before = state_dict(agent.actor)
    with pytest.raises(FloatingPointError, match=r"nan found in loss at learning step 1 \(policy loss nan, value loss"):
        agent.train_episode([RuleEnv()], seeds=[0])
    assert agent.learning_time == 0
    assert all(np.array_equal(v, state_dict(agent.actor)[k]) for k, v in before.items())


# --------------------------------------------------------------------------- against MetaBox itself

needs_source = pytest.mark.skipif(not os.environ.get(ENV), reason=SKIP_REASON)
SHIPPED = os.path.join(os.environ.get(ENV, ""), "model", "bbob-10D", "difficult", "SYMBOL.pkl")


@pytest.mark.metabox
@needs_source
def test_metabox_get_mask_agrees_on_trees_the_port_draws(x64):
    """MetaBox's own `get_mask` on every prefix of 32 rules drawn by a random-weight SYMBOLActor."""
    mb = metabbo_agent_module("symbol")
    if mb is None:
        pytest.skip(SKIP_REASON)
    tokenizer = mb.MyTokenizer()
    actor = SYMBOLActor(rngs=nnx.Rngs(7))
    rule = actor(np.random.default_rng(7).uniform(-1, 1, (32, 9)), key=jax.random.key(7))[0]
    tokens, slots, masks, valid = (np.asarray(getattr(rule, f)) for f in ("tokens", "positions", "masks", "valid"))
    seqs = torch.full((32, 63), -1, dtype=torch.long)
    for t in range(63):
        live = np.flatnonzero(valid[:, t])
        if not live.size:
            break
        theirs = mb.get_mask(seqs[live], tokenizer, torch.tensor(slots[live, t]), 6).numpy() > 0
        np.testing.assert_array_equal(theirs, masks[live, t], err_msg=f"step {t}")
        seqs[live, slots[live, t]] = torch.tensor(tokens[live, t], dtype=torch.long)
    assert valid.sum() > 200


@pytest.mark.metabox
@needs_source
def test_shipped_symbol_checkpoint_gives_metabox_outputs(tmp_path, x64, torch_float64):
    """SYMBOL.pkl converts, loads into the port (`from_metabox`) and gives MetaBox's torch agent's
    log-probabilities (of the rules it draws, and as its `fix_action=` re-scores them), the twin's
    entropies under its weights (MetaBox's actor has none) and its critic's values, float64, 1e-10, on
    6 states of MetaBox's SYMBOL_Optimizer (bbob-10D F10, F15; references/make_symbol_states.py)."""
    pytest.importorskip("metaevobox", reason="unpickling MetaBox's agent needs an importable metaevobox")
    from compat import convert_checkpoint
    from references.make_symbol_states import padded

    npz = tmp_path / "SYMBOL.npz"
    assert convert_checkpoint.main([SHIPPED, str(npz)]) == 0
    theirs = convert_checkpoint.load_agent(SHIPPED)
    data = np.load(RECORDED)
    states = data["states"]
    agent = SYMBOL.from_metabox(npz, config(tmp_path))
    nets = {n: getattr(agent, n) for n in agent.network}
    x = torch.tensor(states)
    torch.manual_seed(0)
    with torch.no_grad():
        _, _, t_sampled, record = theirs.actor(x, save_data=True)
        t_fixed = theirs.actor(x, fix_action=record)
        t_value = theirs.critic(x)[1]
    rule = UpdateRule(**padded(record))
    twin = TSYMBOLActor().double()
    twin.load_state_dict(theirs.actor.state_dict())
    logp, ent, value = agent._evaluate(nets, jnp.asarray(states), rule)
    with torch.no_grad():
        t_ent = twin(x, *twin_tensors(rule))[1]
    stored, _ = recorded()
    s_logp = agent._evaluate(nets, jnp.asarray(np.tile(states, (20, 1))), stored)[0]
    diffs = {"log_prob (sampled)": np.max(np.abs(np.asarray(logp) - t_sampled.numpy())),
             "log_prob (fix_action)": np.max(np.abs(np.asarray(logp) - t_fixed.numpy())),
             "log_prob (recorded 120)": np.max(np.abs(np.asarray(s_logp) - data["log_prob"])),
             "entropy (twin)": np.max(np.abs(np.asarray(ent) - t_ent.numpy())),
             "value": np.max(np.abs(np.asarray(value) - t_value.numpy()))}
    print("shipped SYMBOL.pkl in compat.agents.SYMBOL on states of MetaBox's env: "
          + ", ".join(f"{k} {v:.3g}" for k, v in diffs.items()))
    assert max(diffs.values()) < TOL, diffs
    assert mb_expressions(theirs, record) == rule.expressions(-1.0, 0.4)


def mb_expressions(theirs, record):
    from metaevobox.baseline.metabbo.symbol import construct_action

    return [construct_action(seq=s, const_seq=c, tokenizer=theirs.tokenizer)
            for s, c in zip(record["seq"].numpy(), record["c_seq"].numpy())]


@pytest.mark.metabox
def test_symbol_under_metabox_trainer_rolls_out_in_a_fresh_process(tmp_path):
    """MetaBox's Trainer trains the SYMBOL port on bbob-10D (difficult) with MetaBox's SYMBOL_Optimizer
    in dummy mode for one window (3 learning steps); its last checkpoint rolls out in a fresh process.
    (Whole epochs and subproc mode: `python -m benchmarks.metabox_agents train SYMBOL dummy --epochs 1`.)"""
    pytest.importorskip("metaevobox", reason="MetaBox's Trainer needs an importable metaevobox")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))

    def run(*args):
        out = subprocess.run([sys.executable, "-m", "benchmarks.metabox_agents", *args], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-4000:]
        return json.loads(next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))[len("RESULT "):])

    trained = run("train", "SYMBOL", "dummy", "--windows", "1")
    assert trained["learning_time"] == 3 and trained["K_epochs"] == 3
    assert trained["checkpoints"][-1] == "checkpoint-1.pkl"
    rolled = run("rollout", "SYMBOL", trained["last_checkpoint"])
    assert rolled["class"] == "compat.agents.symbol.SYMBOL" and rolled["str"] == "SYMBOL" and rolled["fes"] > 0
    assert np.isfinite(rolled["return"])
