"""MetaBox's RLEMMO agent (baseline/metabbo/rlemmo.py) on `compat.ppo.PPO_Agent`.

Config values as MetaBox's `RLEMMO.__init__` sets them (`SETTINGS["RLEMMO"]` of
`jppo.metabbo.metabox_settings`: Adam, 5e-4 for actor and critic, constant (MetaBox builds no
scheduler from lr_scheduler / lr_decay), γ 0.99, n_step 10, K 3, ε 0.1, gradient norms clipped to 0.1
per network; embedding 64, 4 heads, 1 encoder layer, 'layer' normalisation, feed-forward 64, actor
heads 16-8, critic 16-8), and on the agent, as MetaBox's: output_dim 5 (operators), global_dim 5,
local_dim 5, ind_dim 12 (the state's 22 features per individual). No trained RLEMMO checkpoint ships
with MetaBox; `RLEMMO.from_metabox(npz, config)` loads one converted by `python -m compat.convert_checkpoint`.

Networks: `RLEMMOActor` (two embedders, attention over the population, per individual a torch
Categorical over the five niching DE operators of MetaBox's RLEMMO_Optimizer; log π summed over the
population) and `RLEMMOCritic`, which reads the actor's encoder output:

    f = actor.features(s),   (a, log π(a), H) from softmax(decoder(f)),   V = critic(f)

so the value loss trains the actor's embedders and encoder (a shared trunk, `to_critic=` /
`only_critic=`, as GLEET's); compat's default hooks call the networks that way. States are the env's
[B, 100, 22] arrays; actions [B, 100] operator indices, one row per env.

Acting and rollouts follow MetaBox's: training samples (`sampling=True`), `rollout_episode` takes the
most probable operator of each individual (MetaBox's `sampling=False`, an argmax) and reports, besides
cost, fes and return, the env's `pr` and `sr` (peak ratio and success rate at accuracies 1e-1 … 1e-5
at each log point), and with the agent's `config.full_meta_data` the metadata `{'X', 'Cost', 'Pr', 'Sr'}`
(its env records them when the env's config has it too); without it, no 'metadata' at all, as MetaBox's.

Training follows MetaBox's own `RLEMMO.train_episode`, which re-evaluates each stored action, and its
value, at the state where it was taken, bootstraps every epoch from the current networks, and at epoch
0 differentiates the acting pass itself (the same numbers as re-evaluating it), as compat's loop does.
It departs in one place: MetaBox steps its envs with `action.squeeze()`, so with one env in the batch
([1, 100] → [100]) its ParallelEnv gets 100 actions for one env and refuses them (an AssertionError),
and MetaBox's RLEMMO trains only with train_batch_size ≥ 2 (its Config's default is 1). compat's loop
passes [B, 100] for every B.

The env itself: MetaBox's RLEMMO_Optimizer draws from numpy's global `np.random`, not from the
generator that `env.seed(seed)` makes, so seeds do not make its episodes repeatable; the port does not
touch numpy's global state. Its reward counts DBSCAN clusters of the population (each adds 1 - its best
cost / the initial worst cost), divided by 1000.
"""

from __future__ import annotations

import jax
from flax import nnx

from compat.agents.base import MetaBoxPort, network_rngs, save_dir
from compat.parallelenv import ParallelEnv, WorkerError
from compat.ppo import PPO_Agent
from jppo.metabbo.networks import RLEMMOActor, RLEMMOCritic


class RLEMMO(MetaBoxPort, PPO_Agent):
    """RLEMMO: MetaBox's config values and networks; greedy rollouts reporting peak ratio and success rate."""

    metabox_name = "RLEMMO"

    def __init__(self, config):
        self._take_config(config)
        self.output_dim, self.global_dim, self.local_dim, self.ind_dim = 5, 5, 5, 12
        c = config
        actor = RLEMMOActor(c.embedding_dim, c.hidden_dim, c.encoder_head_num, c.n_encode_layers, c.normalization,
                            c.hidden_dim1_actor, c.hidden_dim2_actor, self.output_dim, self.global_dim,
                            self.local_dim, self.ind_dim, rngs=network_rngs(config))
        critic = RLEMMOCritic(c.embedding_dim, c.hidden_dim1_critic, c.hidden_dim2_critic,
                              rngs=network_rngs(config, 1))
        config.agent_save_dir = save_dir(self, config)
        super().__init__(config, {"actor": actor, "critic": critic}, [c.lr_actor, c.lr_critic])

    def _rollout_action(self, state):
        """argmax_k p(k | s) per individual, compiled once (MetaBox's `actor(state, sampling=False)`)."""
        fns = self._fns()
        if "greedy" not in fns:
            graph, rest = self._graphs()["actor"]
            fns["greedy"] = jax.jit(lambda params, s: nnx.merge(graph, params, rest)(s, sampling=False)[0])
        return fns["greedy"](self._current_params()["actor"], state)

    def rollout_episode(self, env, seed=None, required_info={}):
        """MetaBox's RLEMMO rollout: greedy operators; cost, fes, return, pr, sr (and metadata)."""
        results = super().rollout_episode(env, seed, required_info)
        adapter = ParallelEnv([env], "dummy")
        for key in ("pr", "sr"):
            try:
                results[key] = adapter.get_env_attr(key)[0]
            except WorkerError:  # an env without them (not MetaBox's RLEMMO_Optimizer)
                pass
        results.pop("metadata", None)  # a gym.Env's own `metadata` (render modes), which PBO_Env has
        if getattr(self.config, "full_meta_data", False):
            results["metadata"] = {k: adapter.get_env_attr(f"meta_{k}")[0] for k in ("X", "Cost", "Pr", "Sr")}
        return results
