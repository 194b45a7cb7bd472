"""Convert a MetaBox agent checkpoint (a pickled torch agent) into arrays jppo and compat read.

    python -m compat.convert_checkpoint metaevobox/model/bbob-10D/difficult/RLEPSO.pkl RLEPSO.npz

Run it where torch and metaevobox import (unpickling MetaBox's agents needs their classes); the
`.npz` it writes (`jppo.metabbo.metabox_checkpoint`) needs numpy alone: each network's
`state_dict`, MetaBox's config values and the agent's learning steps.
"""

from __future__ import annotations

import argparse
import numbers
import pickle
import sys
from pathlib import Path

import numpy as np

from jppo.metabbo.metabox_checkpoint import MetaBoxWeights, write_weights


def _plain(value):
    """A config value JSON can hold, or None (devices, functions, arrays of the problem set...)."""
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, numbers.Number):
        return value.item() if hasattr(value, "item") else value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (bool, str, numbers.Number)) for v in value):
        return [_plain(v) for v in value]
    return None


def _kept_tables(module) -> dict:
    """Tensors a torch module's forward reads but its state_dict lacks: the table of each MetaBox
    `PositionalEncoding` (a plain object, not an nn.Module, computed in float32 when the agent was
    built and pickled with it), as `<path>.position_encoder.encoding` (RLDEAFL's `fe`)."""
    tables = {}
    for path, sub in module.named_modules():
        encoder = vars(sub).get("position_encoder")
        if encoder is not None and hasattr(encoder, "encoding") and not hasattr(encoder, "state_dict"):
            tables[f"{path}.position_encoder.encoding".lstrip(".")] = encoder.encoding.detach().cpu().numpy()
    return tables


def agent_weights(agent) -> MetaBoxWeights:
    """The networks (`agent.network` names -> torch modules), config and learning steps of a MetaBox agent."""
    names = getattr(agent, "network", None)
    if not isinstance(names, (list, tuple)) or not names:
        raise ValueError(f"a {type(agent).__module__}.{type(agent).__name__} is not a MetaBox PPO agent: it has no "
                         f"`network` list naming its torch modules")
    networks = {}
    for name in names:
        module = getattr(agent, name, None)
        if not hasattr(module, "state_dict"):
            raise ValueError(f"agent.{name} is a {type(module).__name__}, not a torch module")
        networks[name] = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
        networks[name].update(_kept_tables(module))
    config = {k: v for k, v in vars(getattr(agent, "config", object())).items()
              if not k.startswith("_") and _plain(v) is not None}
    config = {k: _plain(v) for k, v in config.items()}
    return MetaBoxWeights(type(agent).__name__, networks, config, int(getattr(agent, "learning_time", 0) or 0))


def load_agent(path: str | Path):
    """Unpickle a MetaBox agent; needs torch and metaevobox (clear errors when either is missing)."""
    try:
        import torch  # noqa: F401  (the pickle holds torch tensors)
    except ImportError:
        raise RuntimeError("converting a MetaBox checkpoint needs torch: pip install torch==2.13.0") from None
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except ModuleNotFoundError as err:
        raise RuntimeError(f"{path} pickles classes from {err.name!r}, which does not import here: run the converter "
                           f"where metaevobox is installed (pip install --no-deps metaevobox==2.0.2 and its imports)"
                           ) from None
    except (pickle.UnpicklingError, EOFError, AttributeError) as err:
        raise ValueError(f"{path} is not a pickled MetaBox agent ({type(err).__name__}: {err})") from None


def convert(src: str | Path, dst: str | Path) -> MetaBoxWeights:
    weights = agent_weights(load_agent(src))
    write_weights(dst, weights)
    return weights


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.convert_checkpoint", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="MetaBox agent checkpoint (.pkl)")
    parser.add_argument("out", help="output file (.npz)")
    args = parser.parse_args(argv)
    try:
        weights = convert(args.checkpoint, args.out)
    except (RuntimeError, ValueError, OSError) as err:
        print(f"convert_checkpoint: error: {err}", file=sys.stderr)
        return 2
    sizes = {n: int(sum(np.size(v) for v in sd.values())) for n, sd in weights.networks.items()}
    print(f"{weights.agent}: {sizes} parameters, {weights.learning_time} learning steps -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
