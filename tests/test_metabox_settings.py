"""MetaBox's agents' settings (jppo.metabbo.metabox_settings) against MetaBox's source, and the one table of
MetaBBO env ids (jppo.metabbo.registry) against what reads it: jppo.envs, the suite modules, the presets."""

from __future__ import annotations

import ast
import importlib
import math
import os

import pytest

from jppo import envs
from jppo.config import PRESETS, preset
from jppo.metabbo import registry
from jppo.metabbo.metabox_settings import SETTINGS, TRAIN_FIELDS, train_fields
from references.metabox_source import ENV, SKIP_REASON

AGENT_MODULES = {"RLEPSO": "rlepso", "GLEET": "gleet", "RLDAS": "rldas", "SYMBOL": "symbol", "RLDEAFL": "rldeafl",
                 "L2T": "l2t", "RLEMMO": "rlemmo"}


COMPUTED = object()  # a setting computed from the problem set or the config, not a constant


def _value(node):
    """A literal, `math.inf`, or COMPUTED."""
    if ast.unparse(node) == "math.inf":
        return math.inf
    try:
        return ast.literal_eval(node)
    except ValueError:
        return COMPUTED


def metabox_init_settings(source: str, name: str) -> tuple[dict, str]:
    """`{attribute: constant}` of the `self.config.<attribute> = <constant>` statements in the body of class
    `name`'s `__init__`, and what its `__str__` returns."""
    cls = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == name)
    methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    constants = {}
    for node in methods["__init__"].body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute)
                and target.value.attr == "config"):
            value = _value(node.value)
            if value is not COMPUTED:
                constants[target.attr] = value
    returned = next(n for n in ast.walk(methods["__str__"]) if isinstance(n, ast.Return))
    return constants, ast.literal_eval(returned.value)


@pytest.mark.parametrize("name", list(AGENT_MODULES))
def test_settings_are_what_metabox_agents_set(name):
    src = os.environ.get(ENV)
    path = src and os.path.join(src, "baseline", "metabbo", f"{AGENT_MODULES[name]}.py")
    if not path or not os.path.isfile(path):
        pytest.skip(SKIP_REASON)
    with open(path) as f:
        constants, str_name = metabox_init_settings(f.read(), name)
    assert str_name == name
    assert SETTINGS[name] == constants
    assert [type(v) for v in SETTINGS[name].values()] == [type(v) for v in constants.values()]


def test_train_fields_translate_metabox_names():
    assert set(SETTINGS) == set(AGENT_MODULES)
    fields = train_fields(SETTINGS["GLEET"])
    assert fields == dict(num_steps=10, num_epochs=3, clip_eps=0.1, gamma=0.999, max_grad_norm=0.1, optimizer="Adam",
                          min_sigma=0.01, max_sigma=0.7, learning_rate=1e-4)
    assert "num_epochs" not in train_fields(SETTINGS["RLDAS"])  # K_epochs None: computed per batch
    assert train_fields(SETTINGS["RLEPSO"])["max_grad_norm"] == math.inf
    assert set(TRAIN_FIELDS.values()) <= set(PRESETS["rlepso-bbob10d"]) | {"optimizer", "min_sigma", "max_sigma"}


@pytest.mark.parametrize("env_id", list(registry.ENVS))
def test_each_env_id_has_its_module_suite_and_preset(env_id):
    spec = registry.ENVS[env_id]
    assert env_id in envs.available() and PRESETS[env_id] is spec.preset
    module = importlib.import_module(spec.module)
    assert module.SUITES[env_id][:2] == (spec.dim, spec.max_fes)
    agent = "GLEET" if env_id.startswith("gleet-") else "RLEPSO"
    config = preset(env_id)
    for key, value in train_fields(SETTINGS[agent]).items():  # the preset trains with MetaBox's settings
        assert getattr(config, key) == value, key


def test_suite_modules_build_exactly_their_rows():
    for module_name in {spec.module for spec in registry.ENVS.values()}:
        module = importlib.import_module(module_name)
        assert set(module.SUITES) == set(registry.specs_of(module_name))
