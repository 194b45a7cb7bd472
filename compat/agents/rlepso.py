"""MetaBox's RLEPSO agent (baseline/metabbo/rlepso.py) on `compat.ppo.PPO_Agent`.

Config values as MetaBox's `RLEPSO.__init__` sets them: feature_dim 1, action_dim 35 (action_shape
(35,)), n_step 10, K_epochs 3, eps_clip 0.1, gamma 0.999, σ in [0.01, 0.7], Adam with lr 1e-5 for
both networks, max_grad_norm inf (no clipping). Networks: `RLEPSOActor` (μ and σ MLPs 64-32,
clamped Gaussian, log-prob summed over the 35 actions) and `RLEPSOCritic` (16-8, `(detached, value)`);
compat's default hooks call them as MetaBox does.

Training departs from MetaBox's own `RLEPSO.train_episode` on purpose: at epochs k ≥ 1 MetaBox
re-evaluates every stored action, and the values, at the window's *last* state (`self.actor(state,
fixed_action=old_actions[tt])`, `self.critic(state)`), a bug; the port uses compat's corrected loop,
which re-evaluates them at the states where they were taken (design.md, "The facade").
"""

from __future__ import annotations

import math

from compat.agents.base import MetaBoxPort, network_rngs, save_dir
from compat.ppo import PPO_Agent
from jppo.metabbo.networks import RLEPSOActor, RLEPSOCritic

CONFIG = dict(feature_dim=1, action_dim=35, action_shape=(35,), n_step=10, K_epochs=3, eps_clip=0.1, gamma=0.999,
              max_sigma=0.7, min_sigma=0.01, lr=1e-5, optimizer="Adam", max_grad_norm=math.inf)


class RLEPSO(MetaBoxPort, PPO_Agent):
    """RLEPSO: MetaBox's config values and networks; `RLEPSO.from_metabox(npz, config)` loads its weights."""

    def __init__(self, config):
        self.config = config
        for key, value in CONFIG.items():
            setattr(config, key, value)
        actor = RLEPSOActor(config.feature_dim, config.action_dim, config.max_sigma, config.min_sigma,
                            rngs=network_rngs(config))
        critic = RLEPSOCritic(config.feature_dim, rngs=network_rngs(config, 1))
        config.agent_save_dir = save_dir(self, config)
        super().__init__(config, {"actor": actor, "critic": critic}, config.lr)

    def __str__(self):
        return "RLEPSO"
