"""Training configuration: one frozen dataclass, validated before anything compiles."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from pathlib import Path

# Fields whose change alters array shapes or the compiled program: a resumed run must keep them.
SHAPE_FIELDS = ("env_id", "num_envs", "num_steps", "num_epochs", "num_minibatches", "hidden", "optimizer")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """PPO hyperparameters. Defaults are PureJaxRL's / CleanRL's CartPole settings.

    A rollout is `num_envs × num_steps` transitions; one update is `num_epochs` passes over it in
    `num_minibatches` minibatches; training runs `total_steps // (num_envs × num_steps)` updates.
    """

    env_id: str = "CartPole-v1"
    total_steps: int = 500_000
    num_envs: int = 4
    num_steps: int = 128
    num_epochs: int = 4
    num_minibatches: int = 4
    learning_rate: float = 2.5e-4
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    normalize_advantages: bool = True
    value_clip: bool = True
    hidden: tuple[int, ...] = (64, 64)
    optimizer: str = "Adam"
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(self.hidden))
        for name in ("total_steps", "num_envs", "num_steps", "num_epochs", "num_minibatches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_envs × num_steps = {self.batch_size} is not divisible by num_minibatches="
                f"{self.num_minibatches}"
            )
        if self.total_steps < self.batch_size:
            raise ValueError(
                f"total_steps={self.total_steps} is smaller than one update "
                f"(num_envs × num_steps = {self.batch_size})"
            )
        if not math.isfinite(self.learning_rate) or self.learning_rate < 0:
            raise ValueError(f"learning_rate must be a finite number >= 0, got {self.learning_rate}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.clip_eps <= 0:
            raise ValueError(f"clip_eps must be > 0, got {self.clip_eps}")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_steps // self.batch_size

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {[f.name for f in dataclasses.fields(cls)]}")
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """From a .toml or .json file of field = value pairs."""
        path = Path(path)
        if path.suffix == ".toml":
            return cls.from_dict(tomllib.loads(path.read_text()))
        if path.suffix == ".json":
            return cls.from_dict(json.loads(path.read_text()))
        raise ValueError(f"config file must be .toml or .json, got {path}")

    def shape_differences(self, other: TrainConfig) -> dict:
        """Fields that change shapes or the program, as {name: (self, other)}."""
        return {f: (getattr(self, f), getattr(other, f)) for f in SHAPE_FIELDS if getattr(self, f) != getattr(other, f)}
