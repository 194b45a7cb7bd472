"""MetaBox's L2T agent (baseline/metabbo/l2t.py) on `compat.ppo.PPO_Agent`.

Config values as MetaBox's `L2T.__init__` sets them (`SETTINGS["L2T"]` of
`jppo.metabbo.metabox_settings`: Adam, 1e-4 for actor and critic, γ 0.99, n_step 10, K 3, ε 0.2,
gradient norm 0.1). The network sizes come from the multi-task suite in `config.train_problem` /
`config.test_problem` (the test suite wins when both name one, as in MetaBox):

    task_cnt = {cec2017mto: 2, augmented-wcci2020: 10, wcci2020: 50}
    n_state = 7·task_cnt + 1,   n_action = 3·task_cnt

and any other suite is one ValueError listing these (MetaBox fails later, on a missing attribute).
Networks: `L2TActor` (tanh trunk 64-64, Gaussian heads with σ ∈ [0.05, 0.15], actions clamped to
[0, 1], entropy per dimension, no `require_entropy=`) and `L2TCritic` (tanh 64-64-1, returning
`(detached, value)`). No trained L2T checkpoint ships with MetaBox.

Training departs from MetaBox's own `L2T.train_episode` on purpose, in two places:

* the critic: MetaBox unpacks `baseline_val, baseline_val_detached = self.critic(state)`, but the
  critic returns `(value.detach(), value)`, so its `bl_val` is the *detached* value and the value
  loss `((bl_val - Reward)²).mean()` carries no gradient: MetaBox's L2T critic never learns (its
  advantages use the critic's initial values throughout). compat's loop takes the value with its
  gradient (the tuple's last element), so the critic is trained.
* the old log-probability: MetaBox's actor scores the *unclamped* draw and stores the clamped
  action, so epoch 0 uses log π(draw) and epochs k ≥ 1 compare log π_θ(clamp(draw)) with it, a
  ratio ≠ 1 at the first re-evaluation wherever a draw left [0, 1]. The port acts with the actor's
  `ClampedNormal` and scores the clamped action it stores, so every epoch's ratio is
  π_θ(a) / π_old(a) of the same action a (as MetaBox's RLEPSO scores its actions).

MetaBox re-evaluates L2T's stored actions at their own states (unlike RLEPSO and RLDAS); so does compat.
"""

from __future__ import annotations

from compat.agents.base import MetaBoxPort, network_rngs, save_dir
from compat.conventions import batch_size, critic_value
from compat.ppo import PPO_Agent
from jppo.metabbo.networks import L2TActor, L2TCritic

TASKS_PER_SUITE = {"cec2017mto": 2, "augmented-wcci2020": 10, "wcci2020": 50}


def task_count(config) -> int:
    """MetaBox's `task_cnt`: from `config.test_problem` if it names a multi-task suite, else
    `config.train_problem`; a ValueError listing the suites L2T takes otherwise."""
    for field in ("test_problem", "train_problem"):
        suite = getattr(config, field, None)
        if suite in TASKS_PER_SUITE:
            return TASKS_PER_SUITE[suite]
    given = {f: getattr(config, f, None) for f in ("train_problem", "test_problem")}
    raise ValueError(f"L2T runs on MetaBox's multi-task suites only, {sorted(TASKS_PER_SUITE)}; the config names "
                     f"train_problem={given['train_problem']!r}, test_problem={given['test_problem']!r}")


class L2T(MetaBoxPort, PPO_Agent):
    """L2T: MetaBox's config values and networks, sized by its multi-task suite."""

    metabox_name = "L2T"

    def __init__(self, config):
        self.task_cnt = task_count(config)
        self._take_config(config)
        config.n_state, config.n_action = 7 * self.task_cnt + 1, 3 * self.task_cnt
        actor = L2TActor(config.n_state, config.n_action, rngs=network_rngs(config))
        critic = L2TCritic(config.n_state, rngs=network_rngs(config, 1))
        config.agent_save_dir = save_dir(self, config)
        super().__init__(config, {"actor": actor, "critic": critic}, [config.lr_actor, config.lr_critic])

    def _act(self, nets, state, key):
        """a ~ clamp(N(μ, σ), 0, 1), scored at a: `(a, log π(a) [B], entropy [B, n_action], value [B])`."""
        dist = nets["actor"].distribution(state)
        action = dist.sample(key)
        return action, dist.log_prob(action), dist.entropy_per_dim(), critic_value(nets["critic"](state),
                                                                                   batch_size(state))
