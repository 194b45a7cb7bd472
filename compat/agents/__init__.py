"""MetaBox's own PPO agents (metaevobox 2.0.2) ported onto `compat.ppo.PPO_Agent`.

    from compat.agents import GLEET, RLEPSO, RLDAS, L2T, RLDEAFL, RLEMMO, SYMBOL
    agent = GLEET(config)                                  # MetaBox's config values, NNX networks
    agent = GLEET.from_metabox("GLEET.npz", config)        # MetaBox's trained weights (compat.convert_checkpoint)

Each port sets the config values its MetaBox class sets, builds the networks of
`jppo.metabbo.networks`, has the same `__str__`, and trains with compat's loop (`compat.ppo`).
"""

from compat.agents.base import MetaBoxPort, WeightsMismatch
from compat.agents.gleet import GLEET
from compat.agents.l2t import L2T
from compat.agents.rldas import RLDAS
from compat.agents.rldeafl import RLDEAFL
from compat.agents.rlemmo import RLEMMO
from compat.agents.rlepso import RLEPSO
from compat.agents.symbol import SYMBOL

PORTS = {"GLEET": GLEET, "RLEPSO": RLEPSO, "RLDAS": RLDAS, "L2T": L2T, "RLDEAFL": RLDEAFL, "RLEMMO": RLEMMO, "SYMBOL": SYMBOL}

__all__ = ["GLEET", "L2T", "RLDAS", "RLDEAFL", "RLEMMO", "RLEPSO", "SYMBOL", "PORTS", "MetaBoxPort", "WeightsMismatch"]
