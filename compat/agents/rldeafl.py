"""MetaBox's RLDEAFL agent (baseline/metabbo/rldeafl.py) on `compat.ppo.PPO_Agent`.

Config values as MetaBox's `RLDEAFL.__init__` sets them (`SETTINGS["RLDEAFL"]` of
`jppo.metabbo.metabox_settings`: one learning rate for the three networks, gradient norms clipped
to 1 per network, ε = 0.2; 14 mutation and 3 crossover operators, 3 mutation and 2 crossover
parameters). Networks, in MetaBox's order `actor`, `critic`, `fe`: `RLDEAFLActor` (six heads, log π
summed over the population), `RLDEAFLCritic` (`(detached, value)`, the mean over the population)
and `RLDEAFLFeatureExtractor`, which both read:

    f = fe(s),   (a, log π(a), H) = actor(f),   V = critic(f)[1]

so the policy and value losses both train the extractor (as MetaBox's, whose fe is in its
optimizer). The hooks `_act`, `_evaluate` and `_bootstrap` call them that way. States are MetaBox's
[B, NP, d + 2] arrays; actions [B, NP, 7] (operator indices as floats, F, CR), which the env takes.

Training follows MetaBox's own `RLDEAFL.train_episode` (it re-evaluates each stored action at the
state where it was taken, as compat's loop does) except in one place: MetaBox's `encode_y` writes
to the state it is given (`ys[mask] = 1`, a view of the state), so a zero cost reads as 1 the
second time a state goes through the extractor, which happens to the window's bootstrap state at
epochs k ≥ 1. The port's extractor does not write to its input: a zero cost always encodes as 0.
"""

from __future__ import annotations

from compat.agents.base import MetaBoxPort, network_rngs, save_dir
from compat.conventions import batch_size, critic_value
from compat.ppo import PPO_Agent
from jppo.metabbo.networks import RLDEAFLActor, RLDEAFLCritic, RLDEAFLFeatureExtractor


class RLDEAFL(MetaBoxPort, PPO_Agent):
    """RLDEAFL: MetaBox's config values and networks; `RLDEAFL.from_metabox(npz, config)` loads its weights."""

    metabox_name = "RLDEAFL"

    def __init__(self, config):
        self._take_config(config)
        c, features = config, config.fe_hidden_dim + 16
        fe = RLDEAFLFeatureExtractor(hidden_dim=c.fe_hidden_dim, n_layers=c.fe_n_layers, device=c.device,
                                     rngs=network_rngs(config, 2))
        actor = RLDEAFLActor(features, c.mu_operator, c.cr_operator, c.n_mutation, c.n_crossover,
                             rngs=network_rngs(config))
        critic = RLDEAFLCritic(features, rngs=network_rngs(config, 1))
        config.agent_save_dir = save_dir(self, config)
        super().__init__(config, {"actor": actor, "critic": critic, "fe": fe}, config.lr)

    def _act(self, nets, state, key):
        f = nets["fe"](state)
        action, log_prob, entropy = nets["actor"](f, require_entropy=True, key=key)
        return action, log_prob, entropy, critic_value(nets["critic"](f), batch_size(state))

    def _evaluate(self, nets, states, actions):
        f = nets["fe"](states)
        _, log_prob, entropy = nets["actor"](f, fixed_action=actions, require_entropy=True)
        return log_prob, entropy, critic_value(nets["critic"](f), batch_size(states))

    def _bootstrap(self, nets, state):
        return critic_value(nets["critic"](nets["fe"](state)), batch_size(state))
