"""The MetaBBO envs' training presets: MetaBox's settings for each agent, as `TrainConfig` fields."""

import math

# MetaBox's RLEPSO agent (metaevobox baseline/metabbo/rlepso.py): n-step windows of 10, K = 3,
# eps 0.1, gamma 0.999, Adam with lr 1e-5 for both networks, no gradient clipping, an actor of two
# 64-32 ReLU MLPs and a 16-8 ReLU critic. MetaBox's Trainer defaults (config.py:147, 166): the easy
# split, train_mode 'single': each batch episode is 16 copies of one train problem (16 seeds), the
# problems in an order reshuffled every epoch (jppo.batching). Networks start where torch starts them
# (init 'torch': U(±1/√fan_in), no head scaling; benchmarks/results/metabox_parity.md §2 shows that
# PPO's usual small-head init learns several times slower at lr 1e-5). One departure, the TrainConfig
# default: no bootstrap past a termination (bootstrap_terminal=True is MetaBox's). Costs are exact
# (f(x) - bias); MetaBox's arithmetic (metabox_costs=True) is what makes the ±1 reward MetaBox's, but only
# in float64 (JAX_ENABLE_X64=1): float32 would round costs 1e8 times coarser than MetaBox does
# (benchmarks/results/metabox_parity.md §5).
_RLEPSO = dict(algorithm="nstep", num_envs=16, num_steps=10, num_epochs=3, num_minibatches=1, clip_eps=0.1,
               gamma=0.999, learning_rate=1e-5, anneal_lr=False, max_grad_norm=math.inf, ent_coef=0.0, vf_coef=1.0,
               normalize_advantages=False, value_clip=True, hidden=(64, 32), critic_hidden=(16, 8), activation="relu",
               actor="bounded", init="torch", batching="single", difficulty="easy",
               total_steps=16 * 10 * 20 * 100)  # 100 batch episodes of 20 windows (6.25 epochs of the 16 easy problems)

# MetaBox's GLEET agent (baseline/metabbo/gleet.py:217-484, reference/gleet.md §3): the same n-step loop
# (windows of 10, K = 3, eps 0.1, gamma 0.999), Adam lr 1e-4 for actor and critic, constant (MetaBox
# builds no scheduler), per-network gradient clipping at 0.1, no entropy bonus, no advantage
# normalisation; GLEET's attention actor and its critic on the actor's features; batch 16, 'single'.
# Split: 'difficult', the one MetaBox's shipped GLEET.pkl was trained on, so that jppo's runs and the
# shipped agent meet on the same test problems. Bootstrap: jppo's default (no bootstrap past a
# termination), for the reason RLEPSO's runs found (benchmarks/results/rlepso_eval.md): with gamma
# 0.999 MetaBox's target lets the critic feed on its own value at the state after the budget.
# Episodes: 199 steps = 20 windows.
_GLEET = dict(_RLEPSO, learning_rate=1e-4, max_grad_norm=0.1, actor="gleet", difficulty="difficult",
              total_steps=16 * 10 * 20 * 120)  # 120 batch episodes = 15 epochs of the 8 difficult train problems (GLEET.pkl: 7200 steps)

METABBO_PRESETS: dict[str, dict] = {"rlepso-bbob10d": _RLEPSO, "rlepso-bbob30d": {**_RLEPSO, "total_steps": 16 * 10 * 50 * 100}}
METABBO_PRESETS.update({f"{env_id}{suffix}": preset for env_id, preset in METABBO_PRESETS.items()
                        for suffix in ("-log", "-rel")})  # the other rewards, same settings
METABBO_PRESETS.update({"gleet-bbob10d": _GLEET,  # 30D: 50000 evaluations, 499 steps = 50 windows
                        "gleet-bbob30d": {**_GLEET, "total_steps": 16 * 10 * 50 * 120}})
