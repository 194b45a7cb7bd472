"""A hyperparameter grid × seeds as one run axis: what `jppo train --sweep` trains in one compiled program.

    grid = Grid.parse(["learning_rate=1e-5,3e-5,1e-4", "clip_eps=0.1,0.2"], config)   # 6 grid points
    fit(config, num_seeds=8, grid=grid)                                                 # 48 runs, one program

The grid points are the Cartesian product of the axes, the first axis varying slowest. Runs are laid out
grid-major: run r is grid point r // S with seed r % S (S seeds). Seed s is the same key at every grid
point (`jax.random.split(key(config.seed), S)[s]`), so the grid points start from the same networks and
environments: a comparison between them is paired seed by seed. Only `SweepParams`' fields can be swept
(`jppo.learner.SWEEPABLE`): they are data in the run's state, so every grid point is the same program.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import jax.numpy as jnp
import numpy as np

from jppo.config import TrainConfig
from jppo.learner import SWEEPABLE, SweepParams

SHORT = {"learning_rate": "lr"}  # a field's name in run names and labels, where shorter


@dataclasses.dataclass(frozen=True)
class Grid:
    """Axes `((field, (value, ...)), ...)`; no axes is one grid point, the config itself."""

    axes: tuple[tuple[str, tuple[float, ...]], ...] = ()

    @classmethod
    def parse(cls, specs: list[str], config: TrainConfig) -> Grid:
        """The grid of `--sweep FIELD=V1,V2,...` specs, each value checked as `config`'s field would be."""
        axes = []
        for spec in specs:
            name, sep, text = spec.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or not text.strip():
                raise ValueError(f"--sweep {spec!r}: write FIELD=V1,V2,... (e.g. learning_rate=1e-5,3e-5)")
            check_sweepable(name, config)
            if name in dict(axes):
                raise ValueError(f"--sweep {name} is given twice; give all its values once: {name}=V1,V2,...")
            values = tuple(_number(name, word) for word in text.split(","))
            if len(set(values)) != len(values):
                raise ValueError(f"--sweep {name}: a value is repeated in {text!r}")
            for value in values:
                try:
                    dataclasses.replace(config, **{name: value})
                except ValueError as err:
                    raise ValueError(f"--sweep {name}={value:g}: {err}") from None
            axes.append((name, values))
        return cls(tuple(axes))

    @property
    def num_points(self) -> int:
        return math.prod(len(values) for _, values in self.axes)

    def points(self) -> list[dict[str, float]]:
        """Each grid point's values, in run order."""
        names = [name for name, _ in self.axes]
        return [dict(zip(names, values)) for values in itertools.product(*(v for _, v in self.axes))]

    def labels(self) -> list[str]:
        """Each grid point's name, e.g. 'lr=1e-05,clip_eps=0.1' ('' for the empty grid)."""
        return [",".join(f"{SHORT.get(k, k)}={v:g}" for k, v in point.items()) for point in self.points()]

    def run_names(self, num_seeds: int) -> list[str]:
        """Each run's name, in run order: 'lr=1e-05/seed=3' ('seed=3' for the empty grid)."""
        return [f"{label}/seed={s}" if label else f"seed={s}" for label in self.labels() for s in range(num_seeds)]

    def params(self, config: TrainConfig) -> SweepParams | None:
        """`SweepParams` with a leading axis of grid points: the swept fields' values, the others
        `config`'s; None for the empty grid (every run takes `config`'s)."""
        if not self.axes:
            return None
        points = self.points()
        columns = {name: [point.get(name, getattr(config, name)) for point in points] for name in SWEEPABLE}
        return SweepParams(**{name: jnp.asarray(values) for name, values in columns.items()})

    def describe(self, num_seeds: int) -> str:
        """'learning_rate ∈ {1e-05, 3e-05} × 8 seeds' (or '8 seeds')."""
        axes = [f"{name} ∈ {{{', '.join(f'{v:g}' for v in values)}}}" for name, values in self.axes]
        return " × ".join([*axes, f"{num_seeds} seed{'s' * (num_seeds != 1)}"])

    def to_json(self) -> list:
        return [[name, list(values)] for name, values in self.axes]

    @classmethod
    def from_json(cls, axes: list) -> Grid:
        return cls(tuple((name, tuple(float(v) for v in values)) for name, values in axes))


def check_sweepable(name: str, config: TrainConfig) -> None:
    """A ValueError unless `name` is a field `config`'s trainer takes as data (`SWEEPABLE`)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    sweepable = ", ".join(SWEEPABLE)
    if name not in fields:
        raise ValueError(f"--sweep {name}: TrainConfig has no field {name!r}; sweepable: {sweepable}")
    if name not in SWEEPABLE:
        raise ValueError(f"--sweep {name}: {name} cannot be swept (it changes the compiled program: shapes, loops "
                         f"or code; see jppo.learner.SweepParams); sweepable: {sweepable}")
    if name == "gae_lambda" and config.algorithm == "nstep":
        raise ValueError("--sweep gae_lambda: algorithm 'nstep' has no GAE (its targets are n-step returns); "
                         f"sweepable there: {', '.join(n for n in SWEEPABLE if n != 'gae_lambda')}")


def _number(name: str, word: str) -> float:
    try:
        value = float(word)
    except ValueError:
        value = math.nan
    if math.isnan(value):
        raise ValueError(f"--sweep {name}: {word.strip()!r} is not a number")
    return value


def by_point(x, num_seeds: int) -> np.ndarray:
    """`[runs, ...]` (grid-major) -> `[grid points, seeds, ...]`."""
    x = np.asarray(x)
    return x.reshape(x.shape[0] // num_seeds, num_seeds, *x.shape[1:])
