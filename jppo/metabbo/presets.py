"""The MetaBBO envs' training presets: MetaBox's settings for each agent, as `TrainConfig` fields."""

import math

# MetaBox's RLEPSO agent (metaevobox baseline/metabbo/rlepso.py): n-step windows of 10, K = 3,
# eps 0.1, gamma 0.999, Adam with lr 1e-5 for both networks, no gradient clipping, an actor of two
# 64-32 ReLU MLPs and a 16-8 ReLU critic. MetaBox's Trainer defaults (config.py:147, 166): the easy
# split, train_mode 'single': each batch episode is 16 copies of one train problem (16 seeds), the
# problems in an order reshuffled every epoch (jppo.batching). One departure, the TrainConfig
# default: no bootstrap past a termination (bootstrap_terminal=True is MetaBox's).
_RLEPSO = dict(algorithm="nstep", num_envs=16, num_steps=10, num_epochs=3, num_minibatches=1, clip_eps=0.1,
               gamma=0.999, learning_rate=1e-5, anneal_lr=False, max_grad_norm=math.inf, ent_coef=0.0, vf_coef=1.0,
               normalize_advantages=False, value_clip=True, hidden=(64, 32), critic_hidden=(16, 8), activation="relu",
               actor="bounded", batching="single", difficulty="easy",
               total_steps=16 * 10 * 20 * 100)  # 100 batch episodes of 20 windows (6.25 epochs of the 16 easy problems)
METABBO_PRESETS: dict[str, dict] = {"rlepso-bbob10d": _RLEPSO, "rlepso-bbob30d": {**_RLEPSO, "total_steps": 16 * 10 * 50 * 100}}
METABBO_PRESETS.update({f"{env_id}{suffix}": preset for env_id, preset in METABBO_PRESETS.items()
                        for suffix in ("-log", "-rel")})  # the other rewards, same settings
