"""`jppo train --help` is built from TrainConfig's fields: every field has a one-line help, fields with a fixed
set of values are argparse choices, and a bad value, from a flag, a config file or Python, names the allowed ones."""

from __future__ import annotations

import dataclasses
import json

import pytest

from jppo.cli import main
from jppo.config import TrainConfig

FIELDS = dataclasses.fields(TrainConfig)
WITH_CHOICES = [f for f in FIELDS if "choices" in f.metadata]


def flag(field: dataclasses.Field) -> str:
    return "--env" if field.name == "env_id" else "--" + field.name.replace("_", "-")


def train_help(capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines: compare with whitespace collapsed


def test_every_field_has_a_one_line_help_shown_by_train_help(capsys):
    text = train_help(capsys)
    for f in FIELDS:
        help_ = f.metadata.get("help", "")
        assert help_.strip() and "\n" not in help_, f"{f.name} has no one-line help"
        assert flag(f) in text and " ".join(help_.split()) in text, f.name


def test_help_shows_the_choices_and_defaults(capsys):
    text = train_help(capsys)
    assert "--actor {auto,bounded,bounded-unclamped,gleet}" in text
    assert "--optimizer {Adam,AdamW,SGD,RMSprop}" in text
    assert "(default: CartPole-v1)" in text and "(default: 64 64)" in text
    assert {"algorithm", "activation", "actor", "batching", "init", "optimizer"} <= {f.name for f in WITH_CHOICES}


@pytest.mark.parametrize("field", WITH_CHOICES, ids=lambda f: f.name)
def test_a_bad_flag_value_names_the_allowed_ones(field, capsys):
    assert main(["train", flag(field), "no-such-value"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'no-such-value'" in err and err.count("\n") == 1, err
    for allowed in field.metadata["choices"]:
        assert repr(allowed) in err, (field.name, allowed)


@pytest.mark.parametrize("field", WITH_CHOICES, ids=lambda f: f.name)
def test_a_bad_value_in_a_config_file_or_in_python_names_the_allowed_ones(field, tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({field.name: "no-such-value"}))
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert field.name in err and all(repr(allowed) in err for allowed in field.metadata["choices"])
    with pytest.raises(ValueError, match=f"{field.name} must be one of"):
        TrainConfig(**{field.name: "no-such-value"})


def test_a_config_written_by_an_earlier_run_still_parses():
    """A run's config as jppo wrote it before the help texts (and before later fields existed)."""
    saved = {"env_id": "rlepso-bbob10d", "total_steps": 320000, "num_envs": 16, "num_steps": 10, "num_epochs": 3,
             "num_minibatches": 1, "learning_rate": 1e-05, "anneal_lr": False, "gamma": 0.999, "gae_lambda": 0.95,
             "clip_eps": 0.1, "ent_coef": 0.0, "vf_coef": 1.0, "max_grad_norm": float("inf"),
             "normalize_advantages": False, "value_clip": True, "hidden": [64, 32], "critic_hidden": [16, 8],
             "activation": "relu", "actor": "bounded", "min_sigma": 0.01, "max_sigma": 0.7, "algorithm": "nstep",
             "bootstrap_terminal": False, "scale_rewards_per_env": False, "optimizer": "Adam", "batching": "single",
             "init": "torch", "difficulty": "easy", "metabox_costs": False, "seed": 0}
    config = TrainConfig.from_dict(json.loads(json.dumps(saved)))
    assert {k: v for k, v in config.to_dict().items() if k in saved} == saved
