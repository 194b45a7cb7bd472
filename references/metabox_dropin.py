"""MetaBox's own RLEPSO agent class, with its torch base class swapped for `compat.ppo.PPO_Agent`,
trained by MetaBox's own `Trainer` on bbob-10D for a tiny budget, then rolled out once.

Needs an environment where `metaevobox` (2.0.2) imports next to jppo. pip cannot resolve one: through
tianshou 1.1.0, metaevobox requires gymnasium<0.29 and numpy<2, while jppo requires gymnasium>=1.0 and,
through jax, numpy>=2 (ResolutionImpossible). It does import and run with numpy 2 when installed with
--no-deps with the packages it imports, in a venv layered over the project's (nothing of .venv changes).
references/metabox_venv.py builds that venv from its pinned list and runs the tests marked `metabox` in it
(this module runs there through tests/test_compat_extra.py):

    .venv/bin/python -m references.metabox_venv --test            # builds .venv-metabox, then the tests
    .venv/bin/python -m references.metabox_venv --test -- -k trainer_runs_rlepso
    .venv/bin/python -m references.metabox_venv --print           # the shell commands, to build it by hand

or by hand: cd <scratch dir> && PYTHONPATH=<repo> <repo>/.venv-metabox/bin/python -m references.metabox_dropin [max_learning_step]

It writes MetaBox's outputs (agent_model/, output/) under the current directory and prints one
line `RESULT {json}` at the end.

What is swapped, and nothing else:
  * `RLEPSO.__bases__`: MetaBox's torch `PPO_Agent` -> `compat.ppo.PPO_Agent`;
  * RLEPSO's own torch `train_episode` / `rollout_episode` overrides are removed, so the facade's run
    (they are MetaBox's PPO loop, written against torch tensors);
  * the module-level `Actor` / `Critic` that RLEPSO's `__init__` instantiates: NNX modules with the
    same layer sizes, squashing and sigma range (`compat.networks.RLEPSOActor`, `RLEPSOCritic`).
MetaBox's `__init__` (its config settings: n_step, K_epochs, gamma, lr, ...), `__str__`, Trainer,
PBO_Env, RLEPSO_Optimizer, BBOB dataset and checkpointing are used as they are.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(max_learning_step: int = 6):
    import numpy as np
    from flax import nnx

    import compat.networks as cn
    import compat.ppo
    from metaevobox import Config, Trainer
    from metaevobox.baseline.metabbo import rlepso as mb_rlepso
    from metaevobox.environment.basic_environment import PBO_Env
    from metaevobox.environment.optimizer.rlepso_optimizer import RLEPSO_Optimizer
    from metaevobox.environment.problem.utils import construct_problem_set

    RLEPSO = mb_rlepso.RLEPSO
    RLEPSO.__bases__ = (compat.ppo.PPO_Agent,)
    for name in ("train_episode", "rollout_episode"):
        if name in RLEPSO.__dict__:
            delattr(RLEPSO, name)
    mb_rlepso.Actor = lambda config: cn.RLEPSOActor(config.feature_dim, config.action_dim, config.max_sigma,
                                                    config.min_sigma, rngs=nnx.Rngs(config.seed))
    mb_rlepso.Critic = lambda config: cn.RLEPSOCritic(config.feature_dim, rngs=nnx.Rngs(config.seed + 1))

    saved_argv = sys.argv
    sys.argv = sys.argv[:1]  # MetaBox's Config parses the command line
    try:
        config = Config({"train_problem": "bbob-10D", "train_difficulty": "easy", "train_parallel_mode": "dummy",
                         "end_mode": "step", "max_learning_step": max_learning_step, "n_checkpoint": 2,
                         "device": "cpu", "no_tb": False, "seed": 7})
    finally:
        sys.argv = saved_argv
    config, datasets = construct_problem_set(config)
    agent = RLEPSO(config)
    assert isinstance(agent, compat.ppo.PPO_Agent) and agent.__str__() == "RLEPSO"
    trainer = Trainer(config, agent, RLEPSO_Optimizer(config), datasets)
    start = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - start

    problem = datasets[1].data[0]
    rollout = agent.rollout_episode(PBO_Env(problem, RLEPSO_Optimizer(config)), seed=3)
    checkpoints = sorted(os.listdir(config.agent_save_dir))
    result = {
        "agent_class": f"{type(agent).__module__}.{type(agent).__qualname__}",
        "mro": [f"{c.__module__}.{c.__qualname__}" for c in type(agent).__mro__],
        "learning_time": agent.learning_time, "n_step": agent.n_step, "K_epochs": agent.K_epochs,
        "gamma": agent.gamma, "lr": agent.optimizer.param_groups[0]["lr"], "train_s": train_s,
        "checkpoints": checkpoints, "train_set_size": datasets[0].N, "rollout_problem": str(problem),
        "rollout_return": float(rollout["return"]), "rollout_fes": int(rollout["fes"]),
        "rollout_cost_first_last": [float(np.asarray(rollout["cost"][0])), float(np.asarray(rollout["cost"][-1]))],
        "tb_files": sum(len(f) for _, _, f in os.walk(config.tb_dir)) if os.path.isdir(config.tb_dir) else 0,
    }
    print("RESULT " + json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
