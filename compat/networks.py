"""NNX networks with MetaBox's call contract, for agents written on `compat.ppo.PPO_Agent`: the names
of `jppo.metabbo.networks`, re-exported (nothing is defined here).

Contract (as MetaBox's torch networks):
  actor(state, fixed_action=None, require_entropy=False, *, key=None) -> (action, log_prob, entropy)
      samples with `key` when `fixed_action` is None, else evaluates `fixed_action`;
  critic(state) -> value, or a pair whose last element is the value.
The agent owns the randomness and passes `key`. The other conventions of MetaBox's agents
(`fix_action=`, shared trunks, `[B, 1]` outputs, ...) are listed in `compat.conventions`.

    from compat.networks import RLEPSOActor, RLEPSOCritic     # MetaBox's RLEPSO networks
    nets = {"actor": RLEPSOActor(1, 35, rngs=nnx.Rngs(0)), "critic": RLEPSOCritic(1, rngs=nnx.Rngs(1))}

Torch weights load with `load_state_dict(module, torch_module.state_dict(), prefix='')`.
"""

from jppo.metabbo.networks import *  # noqa: F401,F403
from jppo.metabbo.networks import __all__  # noqa: F401
