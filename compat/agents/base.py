"""What the ports share: MetaBox's settings and name, where checkpoints go, the networks' seed, and
loading MetaBox's weights.

MetaBox's weights come from `python -m compat.convert_checkpoint X.pkl X.npz`
(`jppo.metabbo.metabox_checkpoint.MetaBoxWeights`: agent class name, each network's torch
`state_dict`, config, learning steps). `load_metabox` checks everything before writing anything:
the agent's name first (GLEET weights do not go into an RLDAS port), then every network's names
and shapes, with one error listing all that does not fit.
"""

from __future__ import annotations

import os

from flax import nnx

from jppo.metabbo.metabox_checkpoint import MetaBoxWeights, read_weights
from jppo.metabbo.metabox_settings import SETTINGS
from jppo.metabbo.networks import StateDictError, load_state_dict


class WeightsMismatch(ValueError):
    """MetaBox weights that do not fit a port (another agent, a missing network, names or shapes)."""


def network_rngs(config, offset: int = 0) -> nnx.Rngs:
    """The NNX initialisation seed: `config.seed` (0 when unset) + offset."""
    return nnx.Rngs(int(getattr(config, "seed", 0) or 0) + offset)


def save_dir(agent, config) -> str:
    """MetaBox's agents save under `<agent_save_dir>/<str(agent)>/<train_name>`."""
    return os.path.join(config.agent_save_dir, str(agent), config.train_name)


class MetaBoxPort:
    """Mixin for the ports (put before `PPO_Agent` in the bases)."""

    metabox_name: str  # MetaBox's class name: the agent's str(), its save directory, its row of SETTINGS

    def __str__(self):
        return self.metabox_name

    def _take_config(self, config) -> None:
        """Keep `config` and set on it, in place, what MetaBox's `__init__` sets (`SETTINGS[metabox_name]`)."""
        self.config = config
        for key, value in SETTINGS[self.metabox_name].items():
            setattr(config, key, value)

    @classmethod
    def from_metabox(cls, weights, config):
        """A port built from `config` (as MetaBox's class is) with MetaBox's trained weights.

        `weights` is a `MetaBoxWeights` or the path of the `.npz` that `python -m
        compat.convert_checkpoint` writes. The agent's learning steps start at 0; MetaBox's count
        is `weights.learning_time`.
        """
        agent = cls(config)
        agent.load_metabox(weights)
        return agent

    def load_metabox(self, weights) -> None:
        """Copy MetaBox's trained weights into this agent's networks (and restart its optimizer state).

        Raises `WeightsMismatch` naming both agents when the weights are another agent's, and
        listing every missing / unexpected name and shape mismatch otherwise; nothing changes then.
        """
        if not isinstance(weights, MetaBoxWeights):
            weights = read_weights(weights)
        mine = str(self)
        if weights.agent != mine:
            raise WeightsMismatch(f"these are MetaBox's {weights.agent} weights; they do not load into the {mine} "
                                  f"port ({type(self).__module__}.{type(self).__qualname__})")
        problems = []
        missing = [n for n in self.network if n not in weights.networks]
        if missing:
            problems.append(f"no network(s) {missing} in the weights (they have {list(weights.networks)})")
        for name in self.network:
            if name in weights.networks:
                try:  # a throwaway copy: check every network before writing to any
                    load_state_dict(nnx.clone(getattr(self, name)), weights.networks[name])
                except StateDictError as err:
                    problems.append(f"network {name!r}: {err}")
        if problems:
            raise WeightsMismatch(f"MetaBox's {weights.agent} weights do not fit the {mine} port built from this "
                                  f"config:\n" + "\n".join(problems))
        for name in self.network:
            load_state_dict(getattr(self, name), weights.networks[name])
        self._opt_state = self._tx().init(self._params())
        self._live = None
