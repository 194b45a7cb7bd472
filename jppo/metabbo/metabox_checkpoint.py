"""MetaBox's trained agents as plain arrays, and MetaBox's RLEPSO and GLEET as jppo checkpoints.

MetaBox ships its pretrained agents as pickled torch objects (`metaevobox/model/bbob-10D/difficult/
RLEPSO.pkl`, ...); unpickling them needs torch and metaevobox. `python -m compat.convert_checkpoint
X.pkl out.npz` does that once, where both import, and writes this module's format: one `.npz` with

    "<network>/<torch state_dict key>" -> array        (e.g. "actor/_Actor__mu_net.net.layer0-linear.weight")
    "__meta__"                          -> JSON: {"format", "agent", "networks", "config", "learning_time"}

which reads anywhere with numpy alone. `import_metabox` turns MetaBox's RLEPSO or GLEET weights into a
jppo checkpoint of the agent's preset (`rlepso-bbob10d`, `gleet-bbob10d`), so `jppo eval` evaluates
MetaBox's policy in jppo's env on the same paired swarms as jppo's own runs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

FORMAT = "jppo-metabox-weights/1"
META_KEY = "__meta__"


@dataclasses.dataclass(frozen=True)
class MetaBoxWeights:
    """One converted MetaBox agent: its class name, its networks' state_dicts (numpy), its config."""

    agent: str
    networks: dict  # network name -> {torch state_dict key: np.ndarray}
    config: dict  # MetaBox's config attributes that are plain numbers, strings or lists of them
    learning_time: int = 0


def write_weights(path: str | Path, weights: MetaBoxWeights) -> None:
    """Write `weights` to `path` (.npz) atomically: a crash leaves the old file or none."""
    path = Path(path)
    arrays = {f"{net}/{key}": np.asarray(value) for net, sd in weights.networks.items() for key, value in sd.items()}
    meta = {"format": FORMAT, "agent": weights.agent, "networks": list(weights.networks),
            "config": weights.config, "learning_time": int(weights.learning_time)}
    arrays[META_KEY] = np.asarray(json.dumps(meta))
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def read_weights(path: str | Path) -> MetaBoxWeights:
    """Read a file written by `write_weights`; anything else is a ValueError saying what it is not."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a converted MetaBox agent (.npz from python -m compat.convert_checkpoint): "
                         f"{err}") from None
    with data:
        if META_KEY not in data.files:
            raise ValueError(f"{path} has no {META_KEY!r} entry: not written by python -m compat.convert_checkpoint")
        meta = json.loads(str(data[META_KEY]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} has format {meta.get('format')!r}, this jppo reads {FORMAT!r}")
        networks = {net: {} for net in meta["networks"]}
        for name in data.files:
            if name != META_KEY:
                net, _, key = name.partition("/")
                networks[net][key] = data[name]
    return MetaBoxWeights(meta["agent"], networks, meta["config"], meta.get("learning_time", 0))


# MetaBox's RLEPSO (baseline/metabbo/rlepso.py): the actor's two MLPs and the critic's, by state_dict prefix.
RLEPSO_LAYOUT = {"actor": {"mean": "_Actor__mu_net", "spread": "_Actor__sigma_net"},
                 "critic": {"value": "_Critic__value_head"}}


def metabox_config(weights: MetaBoxWeights, env_id: str, **overrides):
    """jppo's preset of `env_id` with what MetaBox's config says (the settings a `TrainConfig` has:
    `jppo.metabbo.metabox_settings.train_fields`, and the train difficulty) and MetaBox's bootstrap past a
    termination."""
    from jppo.config import preset
    from jppo.metabbo.metabox_settings import train_fields

    values = {**train_fields(weights.config), "bootstrap_terminal": True}
    if weights.config.get("train_difficulty") is not None:
        values["difficulty"] = weights.config["train_difficulty"]
    return preset(env_id, **{**values, **overrides})


def _check_agent(weights: MetaBoxWeights, agent: str) -> None:
    if weights.agent != agent:
        raise ValueError(f"this is MetaBox's {weights.agent} agent, not {agent}")
    missing = [net for net in ("actor", "critic") if net not in weights.networks]
    if missing:
        raise ValueError(f"the converted {agent} has no {missing[0]!r} network (it has {list(weights.networks)})")


def rlepso_params(weights: MetaBoxWeights, actor, critic) -> None:
    """Load MetaBox's RLEPSO weights into jppo's RLEPSO actor (`mean`, `spread` MLPs) and critic
    (`value`); a `StateDictError` names the jppo network and every tensor that does not fit."""
    from jppo.metabbo.networks import StateDictError, load_state_dict

    _check_agent(weights, "RLEPSO")
    modules = {"actor": actor, "critic": critic}
    for net, parts in RLEPSO_LAYOUT.items():
        for attr, prefix in parts.items():
            try:
                load_state_dict(getattr(modules[net], attr), weights.networks[net], prefix)
            except StateDictError as err:
                raise StateDictError(f"MetaBox's RLEPSO {net} does not fit jppo's {net}.{attr}: {err}") from None


def gleet_params(weights: MetaBoxWeights, actor, critic) -> None:
    """Load MetaBox's GLEET weights into jppo's `GLEETActor` / `GLEETCritic` (MetaBox's own names)."""
    from jppo.metabbo.networks import load_state_dict

    _check_agent(weights, "GLEET")
    load_state_dict(actor, weights.networks["actor"])
    load_state_dict(critic, weights.networks["critic"])


# MetaBox agent -> (the jppo env id its checkpoints are for by default, the id prefix they fit, the loader)
AGENTS = {"RLEPSO": ("rlepso-bbob10d", "rlepso-", rlepso_params), "GLEET": ("gleet-bbob10d", "gleet-", gleet_params)}


def import_metabox(weights: MetaBoxWeights, ckpt_dir: str | Path, env_id: str | None = None, **overrides):
    """Write a converted MetaBox agent (one of `AGENTS`) as a jppo checkpoint of `env_id` (default: the
    agent's bbob-10D env) in `ckpt_dir`; returns the config it was saved with.

    The state is a fresh `NStepTrainer` state (seed `config.seed`) with MetaBox's weights in place
    of the initial parameters; its update counter is MetaBox's learning steps / K.
    """
    import jax
    from flax import nnx

    from jppo.checkpoint import Checkpointer
    from jppo.fit import make_trainer, seed_batched
    from jppo.learner import make_networks

    if weights.agent not in AGENTS:
        raise ValueError(f"jppo imports MetaBox's {', '.join(AGENTS)}, not {weights.agent}")
    default_env, prefix, load = AGENTS[weights.agent]
    env_id = default_env if env_id is None else env_id
    if not env_id.startswith(prefix):
        raise ValueError(f"MetaBox's {weights.agent} fits the {prefix}* envs, not {env_id!r}")
    config = metabox_config(weights, env_id, **overrides)
    trainer = make_trainer(config)
    actor, critic = make_networks(trainer.env, config, jax.random.key(0))
    load(weights, actor, critic)
    init, _ = seed_batched(trainer, 1)
    state = init(config.seed)
    params = {"actor": nnx.state(actor, nnx.Param), "critic": nnx.state(critic, nnx.Param)}
    params = jax.tree.map(lambda new, old: jax.numpy.asarray(new, old.dtype)[None], params, state.params)
    state = state.replace(params=params, update=state.update * 0 + weights.learning_time // config.num_epochs)
    ckpt = Checkpointer(ckpt_dir, keep=1)
    try:
        ckpt.save(state, config, num_seeds=1)
    finally:
        ckpt.close()
    return config
