"""Small JAX problems that stand in for BBOB in the env tests, each with its numpy twin.

* `StandInProblem` (RLEPSO's tests; the fields of `jppo.metabbo.bbob.Problem`): fid 1 is the sphere,
  any other fid the rotated Rastrigin function, both plus a bias.
* `ToyProblem` (GLEET's tests): kind 1 is a rotated ellipsoid of condition 1e6 (costs up to ~1e7),
  any other kind the rotated Rastrigin function, both plus a bias.

`NumpyProblem` / `NumpyToy` give either MetaBox's problem interface (`lb, ub, dim, eval, optimum`),
so that MetaBox's numpy optimizers and the numpy references run on the same problems.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

DIM = 10


def _as_float(value):
    return jnp.asarray(value, jnp.result_type(float))


def _rastrigin(z, xp):
    return 10.0 * (z.shape[-1] - xp.sum(xp.cos(2 * xp.pi * z), -1)) + xp.sum(z**2, -1)


def _ellipsoid(z, xp):
    dim = z.shape[-1]
    return xp.sum(10.0 ** (6 * xp.arange(dim) / (dim - 1)) * z**2, -1)


@struct.dataclass
class StandInProblem:
    fid: jax.Array
    shift: jax.Array
    rotate: jax.Array
    rotate2: jax.Array
    bias: jax.Array
    lb: jax.Array
    ub: jax.Array


def stand_in_evaluate(problem, x):
    z = jnp.einsum("...d,ed->...e", x - problem.shift, problem.rotate)
    return jnp.where(problem.fid == 1, jnp.sum(z**2, -1), _rastrigin(z, jnp)) + problem.bias


def stand_in_numpy(problem, x):
    p = jax.tree.map(np.asarray, problem)
    z = (x - p.shift) @ p.rotate.T
    return (np.sum(z**2, -1) if int(p.fid) == 1 else _rastrigin(z, np)) + p.bias


def make_stand_in(fid: int, seed: int, dim: int = DIM, lb=-5.0, ub=5.0) -> StandInProblem:
    rng = np.random.RandomState(seed)
    rotate = np.linalg.qr(rng.randn(dim, dim))[0] if fid != 1 else np.eye(dim)
    return StandInProblem(jnp.asarray(fid), _as_float(rng.uniform(-4, 4, dim)), _as_float(rotate),
                          _as_float(np.eye(dim)), _as_float(rng.uniform(-100, 100)), _as_float(lb), _as_float(ub))


@struct.dataclass
class ToyProblem:
    kind: jax.Array
    shift: jax.Array
    rotate: jax.Array
    bias: jax.Array
    lb: jax.Array
    ub: jax.Array


def toy_evaluate(problem, x):
    z = jnp.einsum("...d,ed->...e", x - problem.shift, problem.rotate)
    return jnp.where(problem.kind == 1, _ellipsoid(z, jnp), _rastrigin(z, jnp)) + problem.bias


def toy_numpy(problem, x):
    p = jax.tree.map(np.asarray, problem)
    z = (x - p.shift) @ p.rotate.T
    return (_ellipsoid(z, np) if int(p.kind) == 1 else _rastrigin(z, np)) + p.bias


def make_toy(kind: int, seed: int, dim: int = DIM, lb=-5.0, ub=5.0) -> ToyProblem:
    rng = np.random.RandomState(seed)
    return ToyProblem(jnp.asarray(kind), _as_float(rng.uniform(-4, 4, dim)),
                      _as_float(np.linalg.qr(rng.randn(dim, dim))[0]), _as_float(rng.uniform(-100, 100)),
                      _as_float(lb), _as_float(ub))


class NumpyProblem:
    """MetaBox's problem interface over a stand-in problem: lb, ub, dim, eval, optimum."""

    numpy_fn = staticmethod(stand_in_numpy)

    def __init__(self, problem):
        self.problem = problem
        self.dim = int(problem.shift.shape[-1])
        self.lb, self.ub = float(problem.lb), float(problem.ub)
        self.optimum = float(self.eval(np.asarray(problem.shift)[None])[0])

    def eval(self, x):
        return self.numpy_fn(self.problem, np.asarray(x, np.float64))

    def reset(self):
        pass


class NumpyToy(NumpyProblem):
    """`NumpyProblem` over a `ToyProblem`."""

    numpy_fn = staticmethod(toy_numpy)
