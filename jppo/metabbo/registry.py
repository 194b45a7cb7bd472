"""The MetaBBO env ids, one row each: the module that builds the env, its problem suite and its preset.

`jppo.envs` imports an id's module on first use (the module registers its ids), the suite modules
(`jppo.metabbo.rlepso`, `jppo.metabbo.gleet`) build their suites from their rows, and `jppo.config`
takes the presets. Importing this module costs nothing: it loads no JAX.
"""

from __future__ import annotations

import dataclasses

from jppo.metabbo import presets


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    module: str  # the module that builds the env and registers the id with jppo.envs when imported
    dim: int  # MetaBox's bbob suite at this dimension
    max_fes: int  # an episode's budget of function evaluations
    preset: dict  # the env's TrainConfig defaults
    reward: str = ""  # RLEPSO's: 'sign' (MetaBox's ±1), 'log' or 'relative' (jppo.metabbo.rlepso)


# MetaBox's budgets, dim -> (max_fes, windows of 10 steps per episode): with 100 particles an episode is
# max_fes / 100 - 1 steps (199 at 10D, 499 at 30D).
BUDGETS = {10: (20000, 20), 30: (50000, 50)}

# The `-log` and `-rel` ids train RLEPSO on other rewards than MetaBox's ±1, with the same settings.
RLEPSO_REWARDS = {"": "sign", "-log": "log", "-rel": "relative"}

ENVS: dict[str, EnvSpec] = {
    f"rlepso-bbob{dim}d{suffix}": EnvSpec("jppo.metabbo.rlepso", dim, max_fes, presets.rlepso(windows), reward)
    for dim, (max_fes, windows) in BUDGETS.items() for suffix, reward in RLEPSO_REWARDS.items()}
ENVS.update({f"gleet-bbob{dim}d": EnvSpec("jppo.metabbo.gleet", dim, max_fes, presets.gleet(windows))
             for dim, (max_fes, windows) in BUDGETS.items()})


def specs_of(module: str) -> dict[str, EnvSpec]:
    """The rows whose env `module` builds (e.g. `specs_of(__name__)` in a suite module)."""
    return {env_id: spec for env_id, spec in ENVS.items() if spec.module == module}
