"""What the study runs on: its scale, RLEPSO's env and trainer with MetaBox's settings, the test problems, and
the code versions its caches are keyed by."""

from __future__ import annotations

import dataclasses
import math
import os

import jax
import numpy as np

from benchmarks import metabox_side
from benchmarks.cache import Code
from jppo.metabbo import report as mreport
from jppo.metabbo import rlepso

ENV_ID, DIFFICULTY = "rlepso-bbob10d", "difficult"
COST_FLOOR = mreport.COST_FLOOR

# MetaBox-only runs depend on MetaBox's side and the weight conversion alone; everything else on jppo and
# compat too, and on the study module that computes it (`study_code`).
METABOX_CODE = Code(("benchmarks/metabox_side.py", "compat/convert_checkpoint.py", "jppo/metabbo/metabox_checkpoint.py"),
                    ("metaevobox", "torch", "numpy"))
STUDY_SOURCES = ("jppo", "compat", "references", "benchmarks/metabox_side.py",
                 "benchmarks/metabox_parity/setting.py", "benchmarks/metabox_parity/policies.py",
                 "benchmarks/metabox_parity/evaluate.py")
STUDY_PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "metaevobox", "torch")


def study_code(module_file: str) -> Code:
    """The code version of a jppo-side run computed in the study module `module_file`."""
    return Code((*STUDY_SOURCES, f"benchmarks/metabox_parity/{os.path.basename(module_file)}"), STUDY_PACKAGES)


@dataclasses.dataclass(frozen=True)
class Scale:
    runs: int  # test runs per problem (MetaBox's Tester: 51)
    max_fes: int  # evaluations per episode (bbob-10D: 20000)
    train_windows: int  # section 2: windows of the jppo training run (14400 learning steps / K)
    train_seeds: int
    num_envs: int  # section 2 batch (MetaBox's train_batch_size)
    curve_epochs: int  # section 3: epochs of 8 batch episodes
    curve_envs: int  # section 3 batch size
    curve_seeds: int
    train_runs: int = 51  # section 2: test runs per problem for the trained seeds (0: not evaluated)
    long_epochs: int = 30  # section 5: the whole budget (30 epochs × 8 batch episodes = 14400 learning steps)
    long_envs: int = 16
    long_seeds: int = 1  # per way (0: section 5 is not run)
    problems: int | None = None  # test problems used (None: all 16)
    evaluate_fn: object = None  # jppo's env: f(problem, x) in place of BBOB (tests: a cheap stand-in)
    metabox: bool = True  # run MetaBox's parts when metaevobox imports
    metabox_costs_way: bool = True  # sections 3 and 5 also run jppo with MetaBox's cost arithmetic
    train_metabox_costs: bool = False  # section 2 trains with MetaBox's cost arithmetic, in float64 as MetaBox


FULL = Scale(runs=51, max_fes=20000, train_windows=4800, train_seeds=3, num_envs=16, curve_epochs=7, curve_envs=4,
             curve_seeds=3, train_metabox_costs=True)
QUICK = Scale(runs=3, max_fes=1000, train_windows=4, train_seeds=2, num_envs=2, curve_epochs=1, curve_envs=2,
              curve_seeds=2, train_runs=3, problems=2, long_epochs=1, long_envs=2)
REPORTED = [f.name for f in dataclasses.fields(Scale) if f.name not in ("evaluate_fn", "metabox")]


def scale_from_env(scale: Scale) -> Scale:
    """`scale` with the overrides in JPPO_PARITY_SCALE ("train_windows=960,curve_epochs=2": what a loaded
    machine can afford; the report says the scale it ran at)."""
    spec = os.environ.get("JPPO_PARITY_SCALE", "")
    pairs = [item.split("=") for item in spec.split(",") if item]
    return dataclasses.replace(scale, **{k.strip(): int(v) for k, v in pairs})


def settings(scale: Scale, *names: str, **more) -> dict:
    """A cache entry's settings: the named fields of `scale` (the stand-in `evaluate_fn` by name) and `more`."""
    values = {name: getattr(scale, name) for name in names}
    if "evaluate_fn" in values and values["evaluate_fn"] is not None:
        fn = values["evaluate_fn"]
        values["evaluate_fn"] = f"{fn.__module__}.{fn.__qualname__}"
    return {**values, **more}


def make_env(scale: Scale, metabox_costs: bool = False) -> rlepso.RLEPSOEnv:
    """RLEPSO's env on jppo's BBOB (or `scale.evaluate_fn`). `metabox_costs`: costs computed as MetaBox computes
    them, eval(x) - eval(x*) with the bias in both (in float64 they are then quantised at the bias's spacing,
    as MetaBox's are), in place of jppo's f(x) - bias evaluated directly."""
    reward = rlepso.SUITES[ENV_ID][2]
    if scale.evaluate_fn is None:
        return rlepso.RLEPSOEnv(reward=reward, metabox_costs=metabox_costs)
    evaluate = (lambda problem, x: scale.evaluate_fn(problem, x) + problem.bias) if metabox_costs else scale.evaluate_fn
    return rlepso.RLEPSOEnv(reward=reward, evaluate_fn=evaluate)


def with_metabox(scale: Scale) -> bool:
    return scale.metabox and metabox_side.available()


def test_suite(scale: Scale):
    """`(env, params, fids)`: the difficult split's test problems (the first `scale.problems`)."""
    _, params, fids = rlepso.suite(ENV_ID, "test", DIFFICULTY)
    env = make_env(scale)
    if scale.problems is not None:
        fids = fids[: scale.problems]
        params = params.replace(problem=jax.tree.map(lambda x: x[: scale.problems], params.problem))
    return env, params.replace(max_fes=scale.max_fes), [int(f) for f in fids]


def train_config(scale: Scale, num_envs: int, windows: int, seed: int = 0, init: str = "torch",
                 metabox_costs: bool = False):
    """The `rlepso-bbob10d` preset with MetaBox's RLEPSO run: lr 1e-5, MetaBox's bootstrap at termination,
    'single' batching on the difficult split, networks started as torch starts them (the preset's init)."""
    from jppo.config import preset

    return preset(ENV_ID, learning_rate=1e-5, bootstrap_terminal=True, num_envs=num_envs, batching="single",
                  difficulty=DIFFICULTY, total_steps=windows * num_envs * 10, seed=seed, init=init,
                  metabox_costs=metabox_costs)


def make_trainer(config, scale: Scale, metabox_costs: bool = False):
    from jppo.nstep import NStepTrainer

    _, params = rlepso.train_suite(ENV_ID, DIFFICULTY)
    return NStepTrainer(config, env=make_env(scale, metabox_costs), env_params=params.replace(max_fes=scale.max_fes))


def log_cost(costs) -> np.ndarray:
    return np.log10(np.maximum(np.asarray(costs, float), COST_FLOOR))


def mean_se(x, axis=-1):
    x = np.asarray(x, float)
    return x.mean(axis), x.std(axis, ddof=1) / math.sqrt(x.shape[axis])
