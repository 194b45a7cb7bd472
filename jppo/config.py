"""Training configuration: one frozen dataclass, validated before anything compiles."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from pathlib import Path

from jppo.metabbo import registry
from jppo.networks import INITS

# Fields whose change alters array shapes or the compiled program: a resumed run must keep them.
SHAPE_FIELDS = ("env_id", "algorithm", "num_envs", "num_steps", "num_epochs", "num_minibatches", "hidden",
                "critic_hidden", "activation", "actor", "optimizer", "batching", "difficulty")

ALGORITHMS = ("ppo", "nstep")
ACTIVATIONS = ("tanh", "relu")
ACTORS = ("auto", "bounded", "bounded-unclamped", "gleet")
BATCHINGS = ("mixed", "single", "multi")  # see jppo.batching


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """PPO hyperparameters. Defaults are PureJaxRL's / CleanRL's CartPole settings; `preset(env_id)`
    gives an environment's own defaults (MetaBox's RLEPSO settings for the MetaBBO envs).

    A rollout is `num_envs × num_steps` transitions; one update is `num_epochs` passes over it in
    `num_minibatches` minibatches; training runs `total_steps // (num_envs × num_steps)` updates.

    `algorithm` is 'ppo' (GAE(λ), minibatches, auto-reset envs: `jppo.train.Trainer`) or 'nstep'
    (MetaBox's loop: windows of `num_steps` steps, n-step targets, the whole window as one batch,
    episodes that end for the whole batch at once: `jppo.nstep.NStepTrainer`). `actor` 'auto' is a
    categorical actor for discrete actions and a Gaussian one with a learned log-std otherwise;
    'bounded' is RLEPSO's actor for actions in [0, 1] (σ in [`min_sigma`, `max_sigma`]), which clamps
    its samples to [0, 1] as MetaBox does; 'bounded-unclamped' keeps the raw sample as the action (an
    exact log-density; the env must clip: `jppo.networks.BoundedGaussianActor` says why); 'gleet' is
    GLEET's attention actor on a population's [N, 27] observation (per-particle clamped Gaussian, the
    log-density summed over particles) with GLEET's critic on the actor's pooled features
    (`jppo.metabbo.networks.gleet_networks`, `jppo.policy.SharedTrunkActorCritic`); `hidden`,
    `activation` and the σ range are GLEET's own then.
    `bootstrap_terminal` ('nstep' only) bootstraps every env's window target from the critic's value
    of the state after the window even when its episode terminated there, as MetaBox does; the default
    False gives a terminated env the rewards alone (with γ near 1 MetaBox's way lets the critic feed
    on its own value at the end of the budget and drift). `scale_rewards_per_env` ('nstep' only)
    divides each env's rewards by the RMS of its finished episodes' returns (`jppo.nstep`).
    `batching` ('nstep' only) decides which problems of a problem suite a batch episode works on:
    'mixed' env i on problem i mod N, every batch; 'single' (MetaBox's default) all envs on one
    problem, the problems taken in an order reshuffled every epoch; 'multi' num_envs different
    problems per batch, same epochs (`jppo.batching`). `difficulty` picks a problem suite's train
    split ('easy', 'difficult', 'all' for BBOB); empty means the env's own default. `metabox_costs`
    (RLEPSO envs) computes costs as MetaBox does, (f(x) + bias) - (f(x*) + bias), so that the ±1 reward
    sees what MetaBox's sees (run in float64, JAX_ENABLE_X64=1, for MetaBox's spacing:
    `jppo.metabbo.rlepso.RLEPSOEnv`); `jppo eval` reports exact costs either way.
    `init` starts the MLP actors and critics 'orthogonal' (PPO practice: orthogonal weights, the
    policy head scaled by 0.01, so every bounded actor starts at μ = 0.5 everywhere) or 'torch'
    (torch's `nn.Linear` default, W, b ~ U(±1/√fan_in), no head scaling: where MetaBox's agents
    start, each seed at a different schedule); GLEET's networks always start as MetaBox's do.
    `critic_hidden` empty means the same as `hidden`. `max_grad_norm` is a global norm for 'ppo' and
    a per-network one (MetaBox) for 'nstep'; inf means no clipping.
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
    critic_hidden: tuple[int, ...] = ()
    activation: str = "tanh"
    actor: str = "auto"
    min_sigma: float = 0.01
    max_sigma: float = 0.7
    algorithm: str = "ppo"
    bootstrap_terminal: bool = False
    scale_rewards_per_env: bool = False
    optimizer: str = "Adam"
    batching: str = "mixed"
    init: str = "orthogonal"
    difficulty: str = ""
    metabox_costs: bool = False
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "critic_hidden", tuple(self.critic_hidden))
        for name, allowed in (("algorithm", ALGORITHMS), ("activation", ACTIVATIONS), ("actor", ACTORS),
                              ("batching", BATCHINGS), ("init", INITS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not 0 < self.min_sigma <= self.max_sigma:
            raise ValueError(f"need 0 < min_sigma <= max_sigma, got {self.min_sigma}, {self.max_sigma}")
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
        if math.isnan(self.max_grad_norm):
            raise ValueError("max_grad_norm must be a number (inf or <= 0 for no clipping), got nan")
        nstep_only = [f"{name}={getattr(self, name)!r}" for name, default in
                      (("bootstrap_terminal", False), ("scale_rewards_per_env", False), ("batching", "mixed"))
                      if getattr(self, name) != default]
        if self.algorithm != "nstep" and nstep_only:
            raise ValueError(f"{', '.join(nstep_only)}: these settings belong to algorithm='nstep'")
        if self.scale_rewards_per_env and self.batching != "mixed":
            raise ValueError(f"scale_rewards_per_env keeps each env's return statistics, which needs env i to keep "
                             f"its problem: batching='mixed', got {self.batching!r}")
        if self.metabox_costs and not self.env_id.startswith("rlepso-"):
            raise ValueError(f"metabox_costs is an option of the RLEPSO envs (rlepso-bbob10d, ...), "
                             f"not of {self.env_id!r}")
        if not isinstance(self.difficulty, str):
            raise ValueError(f"difficulty must be a string (the suite's split; empty for its default), "
                             f"got {self.difficulty!r}")
        if self.algorithm == "nstep" and self.num_minibatches != 1:
            raise ValueError(f"algorithm='nstep' trains on the whole window at once: num_minibatches must be 1, "
                             f"got {self.num_minibatches}")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def value_hidden(self) -> tuple[int, ...]:
        return self.critic_hidden or self.hidden

    @property
    def env_options(self) -> dict:
        """Options for the env's factory (`jppo.envs.make`): a problem suite's difficulty, when set, and
        MetaBox's cost arithmetic, when asked for."""
        options = {"difficulty": self.difficulty} if self.difficulty else {}
        return {**options, "metabox_costs": True} if self.metabox_costs else options

    @property
    def num_updates(self) -> int:
        return self.total_steps // self.batch_size

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d["critic_hidden"] = list(self.critic_hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {[f.name for f in dataclasses.fields(cls)]}")
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """From a .toml or .json file of field = value pairs (over the env's preset)."""
        values = read_file(path)
        return preset(values.pop("env_id", cls.env_id), **values)

    def shape_differences(self, other: TrainConfig) -> dict:
        """Fields that change shapes or the program, as {name: (self, other)}."""
        return {f: (getattr(self, f), getattr(other, f)) for f in SHAPE_FIELDS if getattr(self, f) != getattr(other, f)}


PRESETS: dict[str, dict] = {env_id: spec.preset for env_id, spec in registry.ENVS.items()}  # env id -> its defaults


def read_file(path: str | Path) -> dict:
    """The field = value pairs of a .toml or .json config file."""
    path = Path(path)
    if path.suffix == ".toml":
        return tomllib.loads(path.read_text())
    if path.suffix == ".json":
        return json.loads(path.read_text())
    raise ValueError(f"config file must be .toml or .json, got {path}")


def preset(env_id: str, **overrides) -> TrainConfig:
    """The config for `env_id`: its preset (if any) over the defaults, then `overrides`."""
    return TrainConfig.from_dict({"env_id": env_id, **PRESETS.get(env_id, {}), **overrides})
