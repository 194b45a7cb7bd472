"""MetaBox's GLEET agent (baseline/metabbo/gleet.py) on `compat.ppo.PPO_Agent`.

Config values as MetaBox's `GLEET.__init__` sets them (`SETTINGS["GLEET"]` of
`jppo.metabbo.metabox_settings`: a learning rate per network, constant, as MetaBox builds no
scheduler; the attention networks' sizes). Networks: `GLEETActor`, `GLEETCritic`.

The networks share a trunk: V = critic(actor(s, only_critic=True)), so the value loss trains the
actor's encoder; compat's default hooks call them that way (`compat.conventions`). The actor's
action is [B, 100, 1]; the env (GLEET_Optimizer) takes [100] per env: `_trans_action` drops the
last axis, as MetaBox's `action[:, :, 0]`. MetaBox's own loop re-evaluates each stored action at the
state where it was taken, as compat's does, so training follows MetaBox's.
"""

from __future__ import annotations

import numpy as np

from compat.agents.base import MetaBoxPort, network_rngs, save_dir
from compat.ppo import PPO_Agent
from jppo.metabbo.networks import GLEETActor, GLEETCritic


class GLEET(MetaBoxPort, PPO_Agent):
    """GLEET: MetaBox's config values and networks; `GLEET.from_metabox(npz, config)` loads its weights."""

    metabox_name = "GLEET"

    def __init__(self, config):
        self._take_config(config)
        c = config
        actor = GLEETActor(c.embedding_dim, c.hidden_dim, c.encoder_head_num, c.decoder_head_num, c.n_encode_layers,
                           c.normalization, c.v_range, c.node_dim, c.hidden_dim1_actor, c.hidden_dim2_actor,
                           max_sigma=c.max_sigma, min_sigma=c.min_sigma, rngs=network_rngs(config))
        critic = GLEETCritic(c.embedding_dim, c.hidden_dim1_critic, c.hidden_dim2_critic,
                             rngs=network_rngs(config, 1))
        config.agent_save_dir = save_dir(self, config)
        super().__init__(config, {"actor": actor, "critic": critic}, [c.lr_actor, c.lr_critic])

    def _trans_action(self, action):
        """[B, N, 1] → [B, N]: one coefficient per particle."""
        return np.asarray(action)[..., 0]
