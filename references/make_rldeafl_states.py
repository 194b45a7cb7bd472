"""Record states of MetaBox's own RLDEAFL env (`RLDEAFL_Optimizer` on bbob-10D problems, driven by
the shipped `RLDEAFL.pkl` as its `rollout_episode` drives it) into `references/rldeafl_states.npz`.

MetaBox's RLDEAFL env steps only under numpy < 2 (`construct_extra_random_indices` puts
`rng.choice(..., 1)` into a scalar slot; MetaBox pins numpy < 2), so this runs in a venv where
metaevobox, torch and numpy < 2 import, without jax:

    JPPO_METABOX_SRC=<metaevobox folder> <numpy<2 venv>/bin/python -m references.make_rldeafl_states

It writes `states` [6, 100, 12] (per state: the population's 10-D positions in [0, 1], their
costs, the fraction of evaluations used) at steps 0, 40 and 120 of F10 (Ellipsoidal) and F15
(Rastrigin), seed 3, and the agent's sampled `actions` [6, 100, 7] there, float64.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np

from references.metabox_source import load_shipped_agent

OUT = Path(__file__).with_name("rldeafl_states.npz")
STEPS = (0, 40, 120)


def bbob_problem(cls, dim, rng):
    """A bbob problem as MetaBox's bbob-10D sets build them: a shift in [-4, 4]ᵈ, a random rotation, no bias."""
    rotate = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    return cls(dim, rng.uniform(-4, 4, dim), rotate, 0.0, -5.0, 5.0)


def main():
    import torch
    from metaevobox.environment.basic_environment import PBO_Env
    from metaevobox.environment.optimizer.rldeafl_optimizer import RLDEAFL_Optimizer
    from metaevobox.environment.problem.SOO.COCO_BBOB.bbob_numpy import F10, F15

    agent = load_shipped_agent("RLDEAFL")
    torch.manual_seed(3)
    rng = np.random.default_rng(3)
    config = types.SimpleNamespace(maxFEs=20000, log_interval=400, n_logpoint=50, full_meta_data=False, device="cpu")
    states, actions = [], []
    for cls in (F10, F15):
        env = PBO_Env(bbob_problem(cls, 10, rng), RLDEAFL_Optimizer(config))
        env.optimizer.seed(3)
        state = env.reset()
        for step in range(max(STEPS) + 1):
            with torch.no_grad():
                action = agent.actor.get_action(agent.fe(torch.tensor(state)[None]))[0][0].numpy()
            if step in STEPS:
                states.append(np.asarray(state, np.float64))
                actions.append(np.asarray(action, np.float64))
            state = env.step(action)[0]
    np.savez_compressed(OUT, states=np.stack(states), actions=np.stack(actions))
    print(f"{OUT}: states {np.stack(states).shape}, actions {np.stack(actions).shape}, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
