"""MetaBox's own modules for side-by-side checks, without installing metaevobox.

metaevobox cannot be installed next to jppo (its tianshou pins gymnasium < 0.29 and numpy < 2), and
importing the package runs every problem suite's imports (xgboost, ...). Its pure-numpy modules are
loaded one by one instead: from an installed metaevobox when there is one, else from the source
tree named by JPPO_METABOX_SRC (…/src/metaevobox, e.g. from `pip download --no-deps metaevobox==2.0.2`).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types

ENV = "JPPO_METABOX_SRC"
SKIP_REASON = (f"metaevobox not importable (these run in MetaBox's venv: python -m references.metabox_venv --test; "
               f"or set {ENV} to its src/metaevobox)")


def load(dotted: str, needs: tuple[str, ...] = ()):
    """The module `metaevobox.<dotted>` (loading the modules in `needs` first), or None."""
    try:
        return importlib.import_module(f"metaevobox.{dotted}")
    except Exception:
        pass
    src = os.environ.get(ENV)
    if not src or not os.path.isfile(os.path.join(src, *dotted.split(".")) + ".py"):
        return None
    saved = set(sys.modules)
    try:
        module = None
        for name in (*needs, dotted):
            for depth in range(len(name.split("."))):  # stand-in packages, so relative imports resolve
                parent = ".".join(["metaevobox", *name.split(".")[:depth]])
                if parent not in sys.modules:
                    package = types.ModuleType(parent)
                    package.__path__ = [os.path.join(src, *name.split(".")[:depth])]
                    sys.modules[parent] = package
            spec = importlib.util.spec_from_file_location(f"metaevobox.{name}", os.path.join(src, *name.split(".")) + ".py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        return module
    finally:  # forget the stand-ins only: torch and friends cannot be imported twice
        for name in [n for n in sys.modules if n.split(".")[0] == "metaevobox" and n not in saved]:
            del sys.modules[name]


def rlepso_optimizer_class():
    module = load("environment.optimizer.rlepso_optimizer",
                  ("environment.problem.basic_problem", "environment.optimizer.learnable_optimizer"))
    return None if module is None else module.RLEPSO_Optimizer


def gleet_optimizer_class():
    module = load("environment.optimizer.gleet_optimizer",
                  ("environment.problem.basic_problem", "environment.optimizer.learnable_optimizer"))
    return None if module is None else module.GLEET_Optimizer


def bbob_numpy():
    return load("environment.problem.SOO.COCO_BBOB.bbob_numpy", ("environment.problem.basic_problem",))


def metabbo_agent_module(name: str):
    """`metaevobox.baseline.metabbo.<name>` (e.g. 'gleet', 'rldas', 'rlepso') for its torch networks, or None.

    From an installed metaevobox when there is one; else from JPPO_METABOX_SRC, with a stand-in for
    `rl.ppo` (its ParallelEnv needs gym, GPUtil, ...): the names the agent modules take from it by
    `from ...rl.ppo import *` (torch, numpy, typing, a `PPO_Agent` base) and nothing of its loop; and
    for `environment.parallelenv.parallelenv`, whose `ParallelEnv` L2T imports (an empty class).
    """
    try:
        return importlib.import_module(f"metaevobox.baseline.metabbo.{name}")
    except Exception:
        pass
    src = os.environ.get(ENV)
    if not src or not os.path.isfile(os.path.join(src, "baseline", "metabbo", f"{name}.py")):
        return None
    import copy
    import math
    import typing

    import numpy as np
    import torch

    stubs = {}
    for parent in ("metaevobox", "metaevobox.rl"):
        if parent not in sys.modules:
            package = types.ModuleType(parent)
            package.__path__ = [os.path.join(src, *parent.split(".")[1:])]
            stubs[parent] = package
    ppo = types.ModuleType("metaevobox.rl.ppo")
    ppo.__dict__.update(torch=torch, np=np, math=math, copy=copy, os=os, nn=torch.nn,
                        PPO_Agent=type("PPO_Agent", (), {}), Memory=type("Memory", (), {}),
                        **{n: getattr(typing, n) for n in ("Optional", "Union", "Literal", "List", "Tuple", "Any", "Dict")})
    stubs["metaevobox.rl.ppo"] = ppo
    for parent in ("metaevobox.environment", "metaevobox.environment.parallelenv"):  # L2T imports ParallelEnv
        if parent not in sys.modules:
            package = types.ModuleType(parent)
            package.__path__ = [os.path.join(src, *parent.split(".")[1:])]
            stubs[parent] = package
    parallelenv = types.ModuleType("metaevobox.environment.parallelenv.parallelenv")
    parallelenv.ParallelEnv = type("ParallelEnv", (), {})
    stubs["metaevobox.environment.parallelenv.parallelenv"] = parallelenv
    sys.modules.update(stubs)
    try:
        return load(f"baseline.metabbo.{name}", ("rl.utils", "baseline.metabbo.networks"))
    finally:
        for n in stubs:
            sys.modules.pop(n, None)


def load_shipped_agent(name: str):
    """MetaBox's pretrained agent `model/bbob-10D/difficult/<name>.pkl` under JPPO_METABOX_SRC, unpickled
    (needs an importable metaevobox), with torch's default dtype float64 as MetaBox's Config sets it."""
    import pickle

    import torch

    torch.set_default_dtype(torch.float64)
    with open(os.path.join(os.environ[ENV], "model", "bbob-10D", "difficult", f"{name}.pkl"), "rb") as f:
        return pickle.load(f)
