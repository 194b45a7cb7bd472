"""RLEPSO's policies as the study handles them: MetaBox's weights in jppo's networks, jppo's own starts, and
the shape of an actor (its μ and σ over the state t = fes/maxFEs, RLEPSO's whole state)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import metabox_side
from benchmarks.cache import Cache
from benchmarks.metabox_parity.setting import DIFFICULTY, ENV_ID, METABOX_CODE, QUICK, Scale, train_config
from jppo.metabbo import rlepso


def weights_file(cache: Cache, scale: Scale) -> Path | None:
    """RLEPSO.pkl converted once (compat.convert_checkpoint) to an .npz entry; None without MetaBox."""
    if not scale.metabox:
        return None
    label, settings = "rlepso_weights", {"pkl": str(metabox_side.PKL)}
    if not cache.path(label, settings, METABOX_CODE).exists() and not metabox_side.available():
        return None
    from compat.convert_checkpoint import convert

    return cache.file(label, settings, METABOX_CODE, lambda path: convert(metabox_side.pretrained_pkl(), path))


def jppo_policy(config):
    """jppo's RLEPSO actor-critic for `config` (its `ActorCritic`, from the trainer jppo would train with)."""
    from jppo.fit import make_trainer

    return make_trainer(config).policy


def pretrained_params(weights_path: Path):
    """`(config, policy, params)`: MetaBox's RLEPSO weights in jppo's networks."""
    from jppo.metabbo.metabox_checkpoint import metabox_config, read_weights, rlepso_params
    from jppo.policy import ActorCritic
    from jppo.learner import make_networks

    weights = read_weights(weights_path)
    config = metabox_config(weights, ENV_ID, difficulty=DIFFICULTY)
    policy = jppo_policy(config)
    actor, critic = make_networks(rlepso.RLEPSOEnv(), config, jax.random.key(0))
    rlepso_params(weights, actor, critic)
    return config, policy, ActorCritic.split(actor, critic)[1]


def initial_params(trainer, config, weights):
    """jppo's params for `weights` (a MetaBoxWeights of RLEPSO's layout), or None to keep jppo's own init."""
    if weights is None:
        return None
    from jppo.metabbo.metabox_checkpoint import rlepso_params
    from jppo.policy import ActorCritic
    from jppo.learner import make_networks

    actor, critic = make_networks(trainer.env, config, jax.random.key(0))
    rlepso_params(weights, actor, critic)
    return ActorCritic.split(actor, critic)[1]


def start_params(trainer, config, num_seeds: int):
    """[S, ...] the initial params of `fit(config, num_seeds=S)` (seed keys split from config.seed, then
    `NStepTrainer.init`'s split), built eagerly, without compiling the env's reset (equal to the jitted
    init to float rounding)."""
    from jppo.policy import ActorCritic
    from jppo.learner import make_networks

    def one(key):
        net_key = jax.random.split(key, 3)[1]
        return ActorCritic.split(*make_networks(trainer.env, config, net_key))[1]

    keys = jax.random.split(jax.random.key(config.seed), num_seeds)
    return jax.tree.map(lambda *xs: jnp.stack(xs), *[one(k) for k in keys])


def jppo_init_weights(seed: int = 0):
    """A jppo initialisation of RLEPSO's networks (`make_networks`, as `NStepTrainer.init` builds them from key
    `seed`) in MetaBox's state_dict layout, so torch can start from it."""
    from jppo.metabbo.metabox_checkpoint import RLEPSO_LAYOUT, MetaBoxWeights
    from jppo.learner import make_networks

    config = train_config(QUICK, 2, 1, init="orthogonal")
    net_key = jax.random.split(jax.random.key(seed), 3)[1]  # NStepTrainer.init's split
    actor, critic = make_networks(rlepso.RLEPSOEnv(), config, net_key)
    modules = {"actor": actor, "critic": critic}
    networks = {net: {} for net in RLEPSO_LAYOUT}
    for net, parts in RLEPSO_LAYOUT.items():
        for attr, prefix in parts.items():
            for i, layer in enumerate(getattr(modules[net], attr).layers):
                networks[net][f"{prefix}.net.layer{i}-linear.weight"] = np.asarray(layer.kernel[...], float).T
                networks[net][f"{prefix}.net.layer{i}-linear.bias"] = np.asarray(layer.bias[...], float)
    return MetaBoxWeights("RLEPSO", networks, {}, 0)


def flat(tree) -> dict:
    """A params tree as npz-able arrays 'leaf000', 'leaf001', ..."""
    return {f"leaf{i:03d}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(tree))}


def unflat(data: dict, prefix: str, template):
    """Inverse of `flat` for the keys `prefix + 'leafNNN'`, in `template`'s structure."""
    leaves = [data[f"{prefix}leaf{i:03d}"] for i in range(len(jax.tree.leaves(template)))]
    return jax.tree.unflatten(jax.tree.structure(template), leaves)


def index(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def sampler(policy):
    """`(params, key, obs) -> action`: the policy's sampled action, as MetaBox's rollouts act."""
    return lambda p, key, obs: policy.distribution(p, obs).sample(key)


def mu_sigma(policy, params, t=None):
    """`(μ [T, 35], σ [T, 35])` of jppo's RLEPSO actor at states fes/maxFEs = t."""
    t = metabox_side.SNAPSHOT_T if t is None else t
    dist = policy.distribution(params, jnp.asarray(t[:, None], jax.tree.leaves(params)[0].dtype))
    return np.asarray(dist.loc), np.asarray(dist.scale)


def rms(x) -> float:
    return float(np.sqrt(np.mean(x ** 2)))


def shape(mu, sigma, mu0=None, sigma0=None) -> dict:
    """What the report shows of an actor's schedule `(μ, σ)` [T, 35] and, given one, how far it is from
    `(μ0, σ0)`: means over t and the dims, σ at t = 0 and 1, RMS differences, and the means over the dims per t
    (the plots)."""
    moved = mu0 is not None
    return {"mu": mu.mean(), "mu_dev": np.abs(mu - 0.5).mean(), "sigma": sigma.mean(), "sigma_t0": sigma[0].mean(),
            "sigma_t1": sigma[-1].mean(), "rms_dmu": rms(mu - mu0) if moved else None,
            "rms_dsigma": rms(sigma - sigma0) if moved else None, "mu_t": mu.mean(axis=1),
            "sigma_t": sigma.mean(axis=1)}
