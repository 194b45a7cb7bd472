"""MetaBox's GLEET agent (baseline/metabbo/gleet.py) on `compat.ppo.PPO_Agent`.

Config values as MetaBox's `GLEET.__init__` sets them: Adam, lr 1e-4 for actor and critic (constant:
MetaBox names an ExponentialLR but builds none), gamma 0.999, n_step 10, K_epochs 3, eps_clip 0.1,
max_grad_norm 0.1 (per network); embedding 16, 4 heads, 1 encoder layer, 'layer' normalisation,
node_dim 9, actor heads 32-8, critic 32-16, σ in [0.01, 0.7]. Networks: `GLEETActor`, `GLEETCritic`.

The networks share a trunk: V = critic(actor(s, only_critic=True)), so the value loss trains the
actor's encoder; compat's default hooks call them that way (`compat.conventions`). The actor's
action is [B, 100, 1]; the env (GLEET_Optimizer) takes [100] per env: `_trans_action` drops the
last axis, as MetaBox's `action[:, :, 0]`. MetaBox's own loop re-evaluates the stored actions at
the stored states, as compat's does, so training follows MetaBox's (design.md, "The facade").
"""

from __future__ import annotations

import numpy as np

from compat.agents.base import MetaBoxPort, network_rngs, save_dir
from compat.ppo import PPO_Agent
from jppo.metabbo.networks import GLEETActor, GLEETCritic

CONFIG = dict(optimizer="Adam", lr_actor=1e-4, lr_critic=1e-4, lr_scheduler="ExponentialLR", embedding_dim=16,
              encoder_head_num=4, decoder_head_num=4, n_encode_layers=1, normalization="layer", v_range=6,
              hidden_dim=16, node_dim=9, hidden_dim1_actor=32, hidden_dim2_actor=8, max_sigma=0.7, min_sigma=0.01,
              hidden_dim1_critic=32, hidden_dim2_critic=16, gamma=0.999, n_step=10, K_epochs=3, eps_clip=0.1,
              lr_model=1e-4, lr_decay=0.9862327, max_grad_norm=0.1)


class GLEET(MetaBoxPort, PPO_Agent):
    """GLEET: MetaBox's config values and networks; `GLEET.from_metabox(npz, config)` loads its weights."""

    def __init__(self, config):
        self.config = config
        for key, value in CONFIG.items():
            setattr(config, key, value)
        c = config
        actor = GLEETActor(c.embedding_dim, c.hidden_dim, c.encoder_head_num, c.decoder_head_num, c.n_encode_layers,
                           c.normalization, c.v_range, c.node_dim, c.hidden_dim1_actor, c.hidden_dim2_actor,
                           max_sigma=c.max_sigma, min_sigma=c.min_sigma, rngs=network_rngs(config))
        critic = GLEETCritic(c.embedding_dim, c.hidden_dim1_critic, c.hidden_dim2_critic,
                             rngs=network_rngs(config, 1))
        config.agent_save_dir = save_dir(self, config)
        super().__init__(config, {"actor": actor, "critic": critic}, [c.lr_actor, c.lr_critic])

    def __str__(self):
        return "GLEET"

    def _trans_action(self, action):
        """[B, N, 1] → [B, N]: one coefficient per particle."""
        return np.asarray(action)[..., 0]
