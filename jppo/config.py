"""Training configuration: one frozen dataclass, validated before anything compiles."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from pathlib import Path

from jppo.metabbo import registry
from jppo.metabbo.bbob import STRATEGIES as BBOB_STRATEGIES
from jppo.networks import INITS
from jppo.optim import OPTIMIZERS

# Fields whose change alters array shapes or the compiled program: a resumed run must keep them.
SHAPE_FIELDS = ("env_id", "algorithm", "num_envs", "num_steps", "num_epochs", "num_minibatches", "hidden",
                "critic_hidden", "activation", "actor", "optimizer", "batching", "difficulty")

ALGORITHMS = ("ppo", "nstep")
ACTIVATIONS = ("tanh", "relu")
ACTORS = ("auto", "bounded", "bounded-unclamped", "gleet")
BATCHINGS = ("mixed", "single", "multi")  # see jppo.batching


def option(default, help: str, choices: tuple | None = None):
    """A `TrainConfig` field with its one-line `jppo train --help` text and, where its values are a fixed
    set, the allowed ones (checked by `TrainConfig`, offered as argparse choices by `jppo.cli`)."""
    metadata = {"help": help} if choices is None else {"help": help, "choices": tuple(choices)}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """PPO hyperparameters. Defaults are PureJaxRL's / CleanRL's CartPole settings; `preset(env_id)`
    gives an environment's own defaults (for the MetaBBO envs, MetaBox's settings of their agent:
    `jppo.metabbo.presets`). Each field's one-line help is in its `option(...)` (`jppo train --help`).

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
    `bbob_strategy` (MetaBBO envs) is how BBOB evaluates a batch of problems: 'loop' one after another,
    'dense' one pass per function over the whole batch, 'auto' 'loop' on CPU and 'dense' on accelerators
    (`jppo.metabbo.bbob.STRATEGIES`; the same costs either way).
    `init` starts the MLP actors and critics 'orthogonal' (PPO practice: orthogonal weights, the
    policy head scaled by 0.01, so every bounded actor starts at μ = 0.5 everywhere) or 'torch'
    (torch's `nn.Linear` default, W, b ~ U(±1/√fan_in), no head scaling: where MetaBox's agents
    start, each seed at a different schedule); GLEET's networks always start as MetaBox's do.
    `critic_hidden` empty means the same as `hidden`. `max_grad_norm` is a global norm for 'ppo' and
    a per-network one (MetaBox) for 'nstep'; inf means no clipping.
    """

    env_id: str = option("CartPole-v1", "environment: a registered JAX env (CartPole-v1, rlepso-bbob10d, ...) or "
                                        "gym:<gymnasium id>")
    total_steps: int = option(500_000, "environment steps to train for, all envs together")
    num_envs: int = option(4, "environments stepped in parallel")
    num_steps: int = option(128, "steps per env in one rollout ('nstep': the window, MetaBox's n_step)")
    num_epochs: int = option(4, "passes over each rollout per update (MetaBox's K_epochs)")
    num_minibatches: int = option(4, "minibatches per pass ('nstep': 1, the whole window)")
    learning_rate: float = option(2.5e-4, "the optimizer's learning rate, for every network")
    anneal_lr: bool = option(True, "decay the learning rate linearly to 0 over the run")
    gamma: float = option(0.99, "discount factor")
    gae_lambda: float = option(0.95, "GAE's lambda ('ppo')")
    clip_eps: float = option(0.2, "PPO's clip range, of the ratio and of clipped values (MetaBox's eps_clip)")
    ent_coef: float = option(0.01, "entropy bonus coefficient")
    vf_coef: float = option(0.5, "value loss coefficient")
    max_grad_norm: float = option(0.5, "gradient clipping: a global norm ('ppo'), per network ('nstep'); inf: none")
    normalize_advantages: bool = option(True, "normalise advantages per minibatch")
    value_clip: bool = option(True, "clip the value loss around the rollout's values")
    hidden: tuple[int, ...] = option((64, 64), "hidden layer sizes of the MLP actor (and critic)")
    critic_hidden: tuple[int, ...] = option((), "hidden layer sizes of the MLP critic (default: --hidden's)")
    activation: str = option("tanh", "activation of the MLPs' hidden layers", ACTIVATIONS)
    actor: str = option("auto", "policy: auto (categorical or Gaussian by action space), bounded (RLEPSO's), "
                                "bounded-unclamped, gleet (GLEET's attention actor)", ACTORS)
    min_sigma: float = option(0.01, "bounded and GLEET actors: the smallest standard deviation")
    max_sigma: float = option(0.7, "bounded and GLEET actors: the largest standard deviation")
    algorithm: str = option("ppo", "ppo (GAE, minibatches, auto-reset envs) or nstep (MetaBox's n-step windows)",
                            ALGORITHMS)
    bootstrap_terminal: bool = option(False, "'nstep': bootstrap past a termination too, as MetaBox does")
    scale_rewards_per_env: bool = option(False, "'nstep': divide each env's rewards by the RMS of its returns")
    optimizer: str = option("Adam", "torch's optimizer of that name, with torch's defaults", tuple(OPTIMIZERS))
    batching: str = option("mixed", "'nstep': problems of a batch: mixed (env i on problem i), single (MetaBox's: "
                                    "one per batch), multi", BATCHINGS)
    init: str = option("orthogonal", "MLP initialisation: orthogonal (PPO practice) or torch (nn.Linear's, "
                                     "MetaBox's)", INITS)
    difficulty: str = option("", "a problem suite's train split (BBOB: easy, difficult, all; empty: the env's)")
    metabox_costs: bool = option(False, "RLEPSO envs: MetaBox's cost arithmetic, (f(x) + bias) - (f(x*) + bias)")
    bbob_strategy: str = option("auto", "MetaBBO envs: how BBOB evaluates a batch of problems: loop, dense, auto "
                                        "(loop on CPU, dense elsewhere)", BBOB_STRATEGIES)
    seed: int = option(0, "random seed (--seeds N draws N keys from it)")

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "critic_hidden", tuple(self.critic_hidden))
        for f in dataclasses.fields(self):
            allowed = f.metadata.get("choices")
            if allowed is not None and getattr(self, f.name) not in allowed:
                raise ValueError(f"{f.name} must be one of {allowed}, got {getattr(self, f.name)!r}")
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
        """Options for the env's factory (`jppo.envs.make`): a problem suite's difficulty, when set,
        MetaBox's cost arithmetic and a BBOB strategy, when asked for."""
        options = {"difficulty": self.difficulty} if self.difficulty else {}
        options.update({"metabox_costs": True} if self.metabox_costs else {})
        return {**options, "bbob_strategy": self.bbob_strategy} if self.bbob_strategy != "auto" else options

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
