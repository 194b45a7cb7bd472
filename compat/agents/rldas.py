"""MetaBox's RLDAS agent (baseline/metabbo/rldas.py) on `compat.ppo.PPO_Agent`.

Config values as MetaBox's `RLDAS.__init__` sets them (`SETTINGS["RLDAS"]` of
`jppo.metabbo.metabox_settings`; optim_num: the DE variants to choose from); `config.dim` (the problem
dimension) sizes the move embedders. K_epochs is None in the config: as MetaBox, each `train_episode` takes

    K = max(1, max over envs of int(0.3 · (MaxFEs // period)))     (bbob-10D: int(0.3 · 8) = 2)

from the envs' optimizers. Networks: `RLDASActor` (softmax over the 3 optimizers, torch's
Categorical; called with `fix_action=`) and `RLDASCritic` (`(detached, value)`).

Observations are numpy object arrays [B, 1 + 2·optim_num] (feature list, then the mean best and
worst move of each optimizer); `_trans_state` turns them into the pair `(feature [B, 9], moves
[B, 6, dim])` of arrays, which the compiled hooks take. `rollout_episode` reports the env's `FEs`
as 'fes', as MetaBox's RLDAS does (its optimizer has no `fes`).

Training departs from MetaBox's own `RLDAS.train_episode` on purpose: at epochs k ≥ 1 MetaBox
re-evaluates every stored action, and the values, at the window's *last* state (`self.actor(state,
fix_action=old_actions[tt])`), a bug; the port uses compat's loop, which re-evaluates each stored
action, and its value, at the state where the action was taken.
"""

from __future__ import annotations

from compat.agents.base import MetaBoxPort, network_rngs, save_dir
from compat.parallelenv import ParallelEnv, WorkerError
from compat.ppo import PPO_Agent
from jppo.metabbo.networks import RLDASActor, RLDASCritic, rldas_observation


def epochs_for(envs) -> int:
    """MetaBox's K for a batch: max(1, max_i int(0.3 · (MaxFEs_i // period_i))) over the envs' optimizers."""
    k = 1
    for i, env in enumerate(envs):
        optimizer = getattr(env, "optimizer", None)
        if not (hasattr(optimizer, "MaxFEs") and hasattr(optimizer, "period")):
            raise ValueError(f"RLDAS takes K_epochs from its envs' optimizers (MaxFEs, period), as MetaBox's does; "
                             f"env {i} ({type(env).__name__}) has no optimizer with both")
        k = max(k, int(0.3 * (optimizer.MaxFEs // optimizer.period)))
    return k


class RLDAS(MetaBoxPort, PPO_Agent):
    """RLDAS: MetaBox's config values and networks; `RLDAS.from_metabox(npz, config)` loads its weights."""

    metabox_name = "RLDAS"

    def __init__(self, config):
        self._take_config(config)
        actor = RLDASActor(config.dim, config.optim_num, config.feature_dim, config.device, rngs=network_rngs(config))
        critic = RLDASCritic(config.dim, config.optim_num, config.feature_dim, config.device,
                             rngs=network_rngs(config, 1))
        config.agent_save_dir = save_dir(self, config)
        super().__init__(config, {"actor": actor, "critic": critic}, config.lr)

    def _trans_state(self, state):
        """Object array [B, 1 + 2·optim_num] → `(feature [B, feature_dim], moves [B, 2·optim_num, dim])`."""
        return rldas_observation(state, self.config.optim_num)

    def train_episode(self, envs, seeds=None, para_mode="dummy", compute_resource={}, tb_logger=None,
                      required_info={}):
        self.K_epochs = epochs_for(envs)
        return super().train_episode(envs, seeds, para_mode, compute_resource, tb_logger, required_info)

    def rollout_episode(self, env, seed=None, required_info={}):
        results = super().rollout_episode(env, seed, required_info)
        try:
            results["fes"] = ParallelEnv([env], "dummy").get_env_attr("FEs")[0]
        except WorkerError:  # an env without FEs keeps what the base found
            pass
        return results
