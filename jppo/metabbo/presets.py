"""The MetaBBO envs' training presets: each agent's MetaBox settings (`jppo.metabbo.metabox_settings`) as
`TrainConfig` fields, with jppo's choice, and why, where MetaBox has no setting or jppo departs from it.
The env ids each preset belongs to are in `jppo.metabbo.registry`."""

from jppo.metabbo.metabox_settings import SETTINGS, train_fields

# RLEPSO: MetaBox's n-step loop (windows of 10, K = 3, eps 0.1, gamma 0.999), Adam with lr 1e-5 for both
# networks, no gradient clipping, and what its loop does without a setting: no entropy bonus, a value loss
# of factor 1, clipped values, raw advantages, a constant rate, the whole window as one batch. Its networks:
# an actor of two 64-32 ReLU MLPs and a 16-8 ReLU critic, started where torch starts them (init 'torch':
# U(±1/√fan_in), no head scaling), since PPO's usual small-head init learns several times slower at lr 1e-5.
# MetaBox's Trainer defaults: the easy split, train_mode 'single' (every env of a batch episode on one train
# problem, the problems in an order reshuffled every epoch: jppo.batching); 16 envs per batch.
# One departure, the TrainConfig default: no bootstrap past a termination (bootstrap_terminal=True is
# MetaBox's): with gamma 0.999 MetaBox's target lets the critic feed on its own value at the state after
# the budget, and it drifts. Costs are exact (f(x) - bias); MetaBox's arithmetic (metabox_costs=True) is what
# makes the ±1 reward MetaBox's, but only in float64 (JAX_ENABLE_X64=1): float32 would round costs 1e8 times
# coarser than MetaBox does.
RLEPSO = dict(train_fields(SETTINGS["RLEPSO"]), algorithm="nstep", num_envs=16, num_minibatches=1, anneal_lr=False,
              ent_coef=0.0, vf_coef=1.0, normalize_advantages=False, value_clip=True, hidden=(64, 32),
              critic_hidden=(16, 8), activation="relu", actor="bounded", init="torch", batching="single",
              difficulty="easy")

# GLEET: the same loop with GLEET's settings (Adam lr 1e-4 for actor and critic, constant: MetaBox names an
# ExponentialLR but builds none; per-network gradient clipping at 0.1); GLEET's attention actor and its
# critic on the actor's features. Split: 'difficult', the one MetaBox's shipped GLEET.pkl was trained on, so
# that jppo's runs and the shipped agent meet on the same test problems. Bootstrap as RLEPSO's, for its reason.
GLEET = dict(RLEPSO, **train_fields(SETTINGS["GLEET"]), actor="gleet", difficulty="difficult")


def _budget(preset: dict, windows: int, episodes: int) -> dict:
    return {**preset, "total_steps": preset["num_envs"] * preset["num_steps"] * windows * episodes}


def rlepso(windows: int) -> dict:
    """RLEPSO's preset for episodes of `windows` windows: 100 batch episodes (bbob-10D: 6.25 epochs of the
    16 easy train problems)."""
    return _budget(RLEPSO, windows, episodes=100)


def gleet(windows: int) -> dict:
    """GLEET's preset for episodes of `windows` windows: 120 batch episodes (bbob-10D: 15 epochs of the 8
    difficult train problems, the 7200 learning steps of MetaBox's GLEET.pkl)."""
    return _budget(GLEET, windows, episodes=120)
