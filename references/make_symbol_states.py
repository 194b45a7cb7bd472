"""Record states of MetaBox's own SYMBOL env (`SYMBOL_Optimizer` on bbob-10D problems, driven by the
shipped `SYMBOL.pkl` as its `rollout_episode` drives it) and the update rules MetaBox's actor draws
there, into `references/symbol_states.npz`.

MetaBox's SYMBOL env steps under numpy 2, so this runs where metaevobox and torch import (with or
without jax):

    JPPO_METABOX_SRC=<metaevobox folder> <venv>/bin/python -m references.make_symbol_states

It writes, float64:

* `states` [6, 9]: the env's 9 features at steps 0, 10 and 30 of F10 (Ellipsoidal) and F15
  (Rastrigin), seed 3;
* the rules MetaBox's actor (torch seeded, float64) draws at those 6 states in one batch, and 114 more
  (the 6 states repeated 19 times) for the grammar: `tokens`, `positions`, `masks`, `constants`
  (the class k of each constant), `valid`, padded to [120, 63(, 11)] as `UpdateRule` holds them
  (from MetaBox's `save_data=True` record: its working rows, slots and masks per step);
* `log_prob` [120]: MetaBox's sampling-time log-probabilities; `expressions` [120]: MetaBox's
  `construct_action` strings (what its env compiles);
* `grammar_*`: the same arrays and strings for 200 rules drawn by a MetaBox actor of random weights
  (torch seed 11) at random states, whose trees are longer and more varied than the trained
  agent's: a corpus of MetaBox's own grammar masks.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np

from references.metabox_source import load_shipped_agent

OUT = Path(__file__).with_name("symbol_states.npz")
STEPS = (0, 10, 30)
REPEATS = 20


def bbob_problem(cls, dim, rng):
    """A bbob problem as MetaBox's bbob-10D sets build them: a shift in [-4, 4]ᵈ, a random rotation, no bias."""
    rotate = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    return cls(dim, rng.uniform(-4, 4, dim), rotate, 0.0, -5.0, 5.0)


def padded(record, n_slots=63, n_tokens=11, min_c=-1.0, interval=0.4):
    """MetaBox's `save_data` record (per step: working rows, their slots and masks; the trees `seq` and
    constant values `c_seq`) as the padded arrays of `UpdateRule`."""
    seq, c_seq = record["seq"].numpy(), record["c_seq"].numpy()
    b = seq.shape[0]
    out = dict(tokens=np.zeros((b, n_slots), np.int32), positions=np.zeros((b, n_slots), np.int32),
               masks=np.ones((b, n_slots, n_tokens), bool), constants=np.zeros((b, n_slots), np.int32),
               valid=np.zeros((b, n_slots), bool))
    for t, (rows, slots, masks) in enumerate(zip(record["working_index"], record["position"], record["mask"])):
        for row, slot, mask in zip(rows.tolist(), slots.tolist(), masks.numpy()):
            token = int(seq[row, slot])
            out["tokens"][row, t], out["positions"][row, t], out["valid"][row, t] = token, slot, True
            out["masks"][row, t] = mask > 0
            if token in (3, 4):
                out["constants"][row, t] = int(round((c_seq[row, slot] - min_c) / interval))
    return out


def main():
    import torch
    from metaevobox.baseline.metabbo.symbol import LSTM, construct_action
    from metaevobox.environment.basic_environment import PBO_Env
    from metaevobox.environment.optimizer.symbol_optimizer import SYMBOL_Optimizer
    from metaevobox.environment.problem.SOO.COCO_BBOB.bbob_numpy import F10, F15

    agent = load_shipped_agent("SYMBOL")
    torch.manual_seed(3)
    rng = np.random.default_rng(3)
    config = types.SimpleNamespace(maxFEs=20000, log_interval=400, n_logpoint=50, full_meta_data=False, device="cpu")
    states = []
    for cls in (F10, F15):
        env = PBO_Env(bbob_problem(cls, 10, rng), SYMBOL_Optimizer(config))
        env.optimizer.seed(3)
        state = env.reset()
        for step in range(max(STEPS) + 1):
            if step in STEPS:
                states.append(np.asarray(state, np.float64))
            with torch.no_grad():
                seq, const_seq, _ = agent.actor(torch.tensor(state)[None], save_data=False)
            expr = construct_action(seq=seq[0], const_seq=const_seq[0], tokenizer=agent.tokenizer)
            state = env.step({"expr": expr, "skip_step": agent.config.skip_step})[0]
    states = np.stack(states)
    with torch.no_grad():
        seq, const_seq, log_prob, record = agent.actor(torch.tensor(np.tile(states, (REPEATS, 1))), save_data=True)
    rules = padded(record)
    expressions = np.array([construct_action(seq=s, const_seq=c, tokenizer=agent.tokenizer)
                            for s, c in zip(seq, const_seq)])
    torch.manual_seed(11)
    c = agent.config
    fresh = LSTM(c.max_layer, c.hidden_dim, c.num_layers, c.max_c, c.min_c, c.fea_dim, c.c_interval, agent.tokenizer)
    with torch.no_grad():
        g_seq, g_const, _, g_record = fresh(torch.rand(200, c.fea_dim), save_data=True)
    grammar = {f"grammar_{k}": v for k, v in padded(g_record).items()}
    grammar["grammar_expressions"] = np.array([construct_action(seq=s, const_seq=c, tokenizer=agent.tokenizer)
                                               for s, c in zip(g_seq, g_const)])
    np.savez_compressed(OUT, states=states, log_prob=log_prob.numpy(), expressions=expressions, **rules, **grammar)
    print(f"{OUT}: states {states.shape}, {len(seq)} rules of up to {int(rules['valid'].sum(1).max())} tokens, "
          f"{len(g_seq)} grammar rules of up to {int(grammar['grammar_valid'].sum(1).max())}, "
          f"{OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
