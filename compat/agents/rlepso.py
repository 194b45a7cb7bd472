"""MetaBox's RLEPSO agent (baseline/metabbo/rlepso.py) on `compat.ppo.PPO_Agent`.

Config values as MetaBox's `RLEPSO.__init__` sets them (`SETTINGS["RLEPSO"]` of
`jppo.metabbo.metabox_settings`: one learning rate for both networks, no gradient clipping).
Networks: `RLEPSOActor` (μ and σ MLPs 64-32, clamped Gaussian, log-prob summed over the 35 actions)
and `RLEPSOCritic` (16-8, `(detached, value)`); compat's default hooks call them as MetaBox does.

Training departs from MetaBox's own `RLEPSO.train_episode` on purpose: at epochs k ≥ 1 MetaBox
re-evaluates every stored action, and the values, at the window's *last* state (`self.actor(state,
fixed_action=old_actions[tt])`, `self.critic(state)`), a bug; the port uses compat's loop, which
re-evaluates each stored action, and its value, at the state where the action was taken.
"""

from __future__ import annotations

from compat.agents.base import MetaBoxPort, network_rngs, save_dir
from compat.ppo import PPO_Agent
from jppo.metabbo.networks import RLEPSOActor, RLEPSOCritic


class RLEPSO(MetaBoxPort, PPO_Agent):
    """RLEPSO: MetaBox's config values and networks; `RLEPSO.from_metabox(npz, config)` loads its weights."""

    metabox_name = "RLEPSO"

    def __init__(self, config):
        self._take_config(config)
        actor = RLEPSOActor(config.feature_dim, config.action_dim, config.max_sigma, config.min_sigma,
                            rngs=network_rngs(config))
        critic = RLEPSOCritic(config.feature_dim, rngs=network_rngs(config, 1))
        config.agent_save_dir = save_dir(self, config)
        super().__init__(config, {"actor": actor, "critic": critic}, config.lr)
