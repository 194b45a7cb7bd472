r"""The 24 noiseless BBOB functions in JAX, with MetaBox's conventions (metaevobox 2.0.2 `bbob_numpy`).

A problem instance is explicit data (`Problem`): the optimum `shift` x*, the linear maps `rotate`
(R, applied first) and `rotate2` (the second map where a function has one, else I), the `bias`,
the bounds, and Gallagher's peaks. `evaluate(problem, x)` gives f(x) for x `[..., D]`, bias
included; MetaBox's cost is f(x) - f(x*) (= f(x) - bias, since f(x*) = bias for every function).
Instances of different functions have identical leaf shapes, so a suite stacks into one batch and
`jax.vmap(evaluate)` runs it, each problem computing only its own function: one after another
('loop', on CPU) or one pass per function present over the whole batch ('dense', on accelerators),
`STRATEGIES`, the same numbers either way.

`make_problem(fid, dim, rng)` draws an instance exactly as MetaBox does from a numpy RandomState
(shift = 0.8·U[lb, ub]^D, R a random rotation, bias = 100·randint[1, 25], then each function's own
draws), so `bbob_suite(dim, difficulty, split)` with the default instance seed 3849 rebuilds
MetaBox's bbob-10D / bbob-30D problem sets.

Notation: z = R(x - x*) unless said otherwise, λ_i = i / (D - 1), Λ^α = diag(α^{λ_i / 2}),
T_osz and T_asy^β the usual BBOB transforms, f_pen(x) = Σ max(0, |x_i| - ub)², Q = `rotate2`.

     1 sphere                 Σ z²
     2 ellipsoidal            Σ 10^{6λ_i} T_osz(z)_i²
     3 Rastrigin              10(D - Σ cos 2πu) + Σ u²,   u = Λ^10 T_asy^0.2(T_osz(z))
     4 Büche-Rastrigin        Rastrigin of u = Λ^10 s ⊙ T_osz(z) (s = 10 on positive even-index
                              entries), + 100 f_pen;  x*_even = |·|
     5 linear slope           Σ (ub|s_i| - z_i s_i),  s_i = sign(x*_i) 10^{λ_i},  z = x clamped
                              where x_i x*_i > ub²;  x* = ±ub
     6 attractive sector      T_osz(Σ (h_i z_i)²)^0.9,  h_i = 100 where z_i x*_i > 0;  R = R'Λ^10 R
     7 step ellipsoidal       0.1 max(|ẑ_1|/1e4, Σ 100^{λ_i} (Q z̃)_i²) + f_pen,  ẑ = Λ^10 R(x - x*),
                              z̃ = round(ẑ) where |ẑ| > 0.5 else round(10ẑ)/10
     8 Rosenbrock             Σ 100(z_i² - z_{i+1})² + (z_i - 1)²,  z = max(1, √D/8)(x - x*) + 1;
                              x* scaled by 0.75
     9 Rosenbrock rotated     as 8 with z = Q x + 0.5,  Q = max(1, √D/8) R
    10 ellipsoidal (rotated)  Σ 10^{6λ_i} T_osz(z)_i²
    11 discus                 10⁶ T_osz(z)_1² + Σ_{i>1} T_osz(z)_i²
    12 bent cigar             u_1² + 10⁶ Σ_{i>1} u_i²,  u = R T_asy^0.5(z)
    13 sharp ridge            z_1² + 100 √(Σ_{i>1} z_i²);  R = R'Λ^10 R
    14 different powers       √(Σ |z_i|^{2 + 4λ_i})
    15 Rastrigin (rotated)    Rastrigin of u = Q T_asy^0.2(T_osz(z)),  Q = R Λ^10 R'
    16 Weierstrass            10((1/D) Σ_i Σ_k ½^k cos(2π 3^k (u_i + ½)) - f₀)³ + (10/D) f_pen,
                              u = Q T_osz(z),  Q = R Λ^{1/100} R',  k = 0..11
    17 Schaffers F7           ((1/(D-1)) Σ √s_i (sin²(50 s_i^0.2) + 1))² + 10 f_pen,
                              s_i = √(u_i² + u_{i+1}²),  u = Q T_asy^0.5(z),  Q = Λ^10 R'
    18 Schaffers F7, cond.    as 17 with Q = Λ^1000 R'
    19 Griewank-Rosenbrock    10 + (10/(D-1)) Σ (s_i/4000 - cos s_i),  s_i = 100(u_i² - u_{i+1})²
                              + (1 - u_i)²,  u = Q x + 0.5,  Q = max(1, √D/8) R
    20 Schwefel               4.189828872724339 - 0.01 mean(v sin √|v|) + 100 f_pen(v/100), v from
                              x̂ = 2 sign(x*) x with the BBOB coupling and Λ^10 (no rotation)
    21 Gallagher 101 peaks    T_osz(10 - max_i w_i exp(-(1/2D) Σ C_i ⊙ (R(x - y_i))²))² + f_pen
    22 Gallagher 21 peaks     as 21 with 21 peaks
    23 Katsuura               (10/D²) Π_i (1 + i Σ_{j=1}^{32} |2^j z_i - round(2^j z_i)| / 2^j)^{10/D^1.2}
                              - 10/D² + f_pen;  R = R'Λ^100 R
    24 Lunacek bi-Rastrigin   min(Σ(x̂ - μ₀)², D + s Σ(x̂ - μ₁)²) + 10(D - Σ cos 2πz) + 10⁴ f_pen,
                              x̂ = 2 sign(x*) x,  z = R(x̂ - μ₀),  R = R'Λ^100 R

(R' is a second random rotation a function draws in its constructor.)
"""

from __future__ import annotations

import functools
import operator

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import lax

from jppo.envs.base import default_float

NUM_FUNCTIONS = 24
MAX_PEAKS = 101
ORTHOGONALITY_TOL = 1e-6  # max |R Rᵀ - I| accepted for a rotation given explicitly
# MetaBox's splits: 'easy' trains on the complement of these and tests on them; 'difficult' swaps.
SMALL_SET = (1, 2, 3, 5, 15, 16, 17, 21)
INSTANCE_SEED = 3849
# Functions whose `rotate` is a plain rotation (F6, 7, 13, 23, 24 store R composed with a scaling; F5, 8, 9,
# 19, 20 do not rotate their input through `rotate`).
_ORTHOGONAL_ROTATE = {1, 2, 3, 4, 10, 11, 12, 14, 15, 16, 17, 18, 21, 22}


@struct.dataclass
class Problem:
    """One BBOB instance (or a stack of them: a leading axis on every leaf)."""

    fid: jax.Array  # [] int32, 1..24
    shift: jax.Array  # [D] the optimum x*
    rotate: jax.Array  # [D, D]
    rotate2: jax.Array  # [D, D]
    bias: jax.Array  # []
    lb: jax.Array  # []
    ub: jax.Array  # []
    peaks_rotated: jax.Array  # [101, D] Gallagher's R y_i (zero rows unused)
    peak_scales: jax.Array  # [101, D] Gallagher's C_i
    peak_weights: jax.Array  # [101] Gallagher's w_i (0 for unused rows)

    @property
    def dim(self) -> int:
        return int(jnp.shape(self.shift)[-1])

    @classmethod
    def from_arrays(cls, fid, shift, rotate, bias, lb=-5.0, ub=5.0, rotate2=None, peaks=None, peak_scales=None,
                    peak_weights=None) -> Problem:
        """An instance from explicit data, checked (see `check_instance`). `peaks` are Gallagher's y_i
        (unrotated, [n, D]); the other Gallagher arrays are [n, D] and [n]."""
        fid = _check_fid(fid)
        shift = np.asarray(shift, np.float64)
        if shift.ndim != 1:
            raise ValueError(f"shift must have shape [D], got {shift.shape}")
        dim = shift.shape[0]
        rotate = np.asarray(rotate, np.float64)
        rotate2 = np.eye(dim) if rotate2 is None else np.asarray(rotate2, np.float64)
        for name, matrix in (("rotate", rotate), ("rotate2", rotate2)):
            if matrix.shape != (dim, dim):
                raise ValueError(f"{name} must have shape ({dim}, {dim}) to match shift of dimension {dim}, "
                                 f"got {matrix.shape}")
        for name, value in (("shift", shift), ("rotate", rotate), ("rotate2", rotate2), ("bias", bias), ("lb", lb),
                            ("ub", ub)):
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{name} must be finite")
        if fid in _ORTHOGONAL_ROTATE:
            error = np.abs(rotate @ rotate.T - np.eye(dim)).max()
            if error > ORTHOGONALITY_TOL:
                raise ValueError(f"rotate must be orthogonal for F{fid} (max |R Rᵀ - I| = {error:.2e} > "
                                 f"{ORTHOGONALITY_TOL})")
        if not float(lb) < float(ub):
            raise ValueError(f"need lb < ub, got lb={lb}, ub={ub}")
        rotated_peaks = np.zeros((MAX_PEAKS, dim))
        scales = np.ones((MAX_PEAKS, dim))
        weights = np.zeros(MAX_PEAKS)
        if peaks is not None:
            peaks = np.asarray(peaks, np.float64)
            n = peaks.shape[0]
            if peaks.shape != (n, dim) or n > MAX_PEAKS or np.shape(peak_scales) != (n, dim) or np.shape(peak_weights) != (n,):
                raise ValueError(f"peaks and peak_scales must be [n ≤ {MAX_PEAKS}, {dim}] and peak_weights [n]; got "
                                 f"{peaks.shape}, {np.shape(peak_scales)}, {np.shape(peak_weights)}")
            rotated_peaks[:n] = peaks @ rotate.T
            scales[:n] = peak_scales
            weights[:n] = peak_weights
        elif fid in (21, 22):
            raise ValueError(f"F{fid} (Gallagher) needs peaks, peak_scales and peak_weights")
        dtype = default_float()
        f = lambda v: jnp.asarray(v, dtype)  # noqa: E731
        return cls(jnp.asarray(fid, jnp.int32), f(shift), f(rotate), f(rotate2), f(bias), f(lb), f(ub), f(rotated_peaks),
                   f(scales), f(weights))


def _check_fid(fid) -> int:
    if isinstance(fid, bool) or not isinstance(fid, (int, np.integer)) or not 1 <= fid <= NUM_FUNCTIONS:
        raise ValueError(f"fid must be a BBOB function id, an integer in 1..{NUM_FUNCTIONS}, got {fid!r}")
    return int(fid)


# ---------------------------------------------------------------- instance drawing (host, numpy)


def random_rotation(rng: np.random.RandomState, dim: int) -> np.ndarray:
    """A random orthogonal matrix as a product of Householder reflections with sign fixes (the
    BBOB generator MetaBox uses; same draws from `rng`, same matrix)."""
    product = np.eye(dim)
    signs = np.ones(dim)
    for n in range(1, dim):
        v = rng.normal(size=dim - n + 1)
        signs[n - 1] = np.sign(v[0])
        v[0] -= signs[n - 1] * np.sqrt(v @ v)
        reflection = np.eye(dim)
        reflection[n - 1:, n - 1:] -= 2.0 * np.outer(v, v) / (v @ v)
        product = product @ reflection
    signs[-1] = (-1) ** (1 - dim % 2) * signs.prod()
    return signs[:, None] * product


def _lambda(alpha: float, dim: int) -> np.ndarray:
    return (alpha**0.5) ** np.linspace(0, 1, dim)


def make_problem(fid: int, dim: int, rng: np.random.RandomState | int | None = None, *, shifted=True, rotated=True,
                 biased=True, lb: float = -5.0, ub: float = 5.0) -> Problem:
    """Draw an instance of F`fid` in dimension `dim` exactly as MetaBox's `get_datasets` and `F<fid>`
    constructors do, from `rng` (a numpy RandomState, or a seed)."""
    fid = _check_fid(fid)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 2:
        raise ValueError(f"dim must be an integer ≥ 2, got {dim!r}")
    rng = rng if isinstance(rng, np.random.RandomState) else np.random.RandomState(rng)
    shift = 0.8 * (rng.random_sample(dim) * (ub - lb) + lb) if shifted else np.zeros(dim)
    rotate = random_rotation(rng, dim) if rotated else np.eye(dim)
    bias = rng.randint(1, 26) * 100 if biased else 0
    rotate2, gallagher = None, {}
    scale = max(1.0, dim**0.5 / 8.0)
    if fid == 4:
        shift[::2] = np.abs(shift[::2])
    elif fid == 5:
        shift = np.sign(shift)
        shift[shift == 0.0] = rng.choice([-1.0, 1.0], size=int((shift == 0.0).sum()))
        shift = shift * ub
    elif fid in (6, 13):
        rotate = random_rotation(rng, dim) @ np.diag(_lambda(10.0, dim)) @ rotate
    elif fid == 7:
        rotate = np.diag(_lambda(10.0, dim)) @ rotate
        rotate2 = random_rotation(rng, dim)
    elif fid == 8:
        shift = shift * 0.75
        rotate = np.eye(dim)
    elif fid in (9, 19):
        rotate2 = scale * rotate
        shift = (0.5 * np.ones(dim) @ rotate2) / scale**2
    elif fid in (15, 16):
        rotate2 = rotate @ np.diag(_lambda(10.0 if fid == 15 else 0.01, dim)) @ random_rotation(rng, dim)
    elif fid in (17, 18):
        rotate2 = np.diag(_lambda(10.0 if fid == 17 else 1000.0, dim)) @ random_rotation(rng, dim)
    elif fid == 20:
        shift = 0.5 * 4.2096874633 * rng.choice([-1.0, 1.0], size=dim)
    elif fid in (21, 22):
        n_peaks, shrink, global_alpha = (101, 1.0, 1e3) if fid == 21 else (21, 0.98, 1e6)
        peaks = shrink * (rng.rand(n_peaks, dim) * (ub - lb) + lb)
        peaks[0] = shift * shrink
        shift = peaks[0]
        sqrt_alpha = np.insert(1000 ** rng.permutation(np.linspace(0, 1, n_peaks - 1)), 0, np.sqrt(global_alpha))
        scales = np.vstack([rng.permutation(sqrt_alpha[i] ** np.linspace(-0.5, 0.5, dim)) for i in range(n_peaks)])
        weights = np.insert(np.linspace(1.1, 9.1, n_peaks - 1), 0, 10.0)
        gallagher = dict(peaks=peaks, peak_scales=scales, peak_weights=weights)
    elif fid in (23, 24):
        if fid == 24:
            shift = rng.choice([-1.0, 1.0], size=dim) * (2.5 / 5 * ub) / 2
        rotate = random_rotation(rng, dim) @ np.diag(_lambda(100.0, dim)) @ rotate
    return Problem.from_arrays(fid, shift, rotate, bias, lb, ub, rotate2, **gallagher)


def stack(problems: list[Problem]) -> Problem:
    """One batched Problem (leading axis) from instances of the same dimension."""
    dims = {p.dim for p in problems}
    if len(dims) != 1:
        raise ValueError(f"problems of one suite must share a dimension, got {sorted(dims)}")
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *problems)


def split_ids(difficulty: str, split: str) -> list[int]:
    """Function ids of MetaBox's 'easy' / 'difficult' / 'all' train or test split."""
    if difficulty not in ("easy", "difficult", "all"):
        raise ValueError(f"difficulty must be 'easy', 'difficult' or 'all', got {difficulty!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    everything = list(range(1, NUM_FUNCTIONS + 1))
    if difficulty == "all":
        return everything
    small = split == "test" if difficulty == "easy" else split == "train"
    return [f for f in everything if (f in SMALL_SET) == small]


def bbob_suite(dim: int, difficulty: str = "easy", split: str = "train", instance_seed: int = INSTANCE_SEED, *,
               upperbound: float = 5.0) -> tuple[Problem, list[int]]:
    """MetaBox's bbob-`dim`D problem set: `(stacked problems, fids)` of one split. As MetaBox, all 24
    instances are drawn in order from one RandomState(instance_seed), then the split is taken."""
    ids = split_ids(difficulty, split)
    rng = np.random.RandomState(instance_seed)
    drawn = {fid: make_problem(fid, dim, rng, lb=-upperbound, ub=upperbound) for fid in range(1, NUM_FUNCTIONS + 1)}
    return stack([drawn[f] for f in ids]), ids


# ---------------------------------------------------------------- evaluation (JAX)


def _sum(v):
    """Σ over the last axis in a fixed order: its entries, moved to the front (a transpose XLA makes
    contiguous), added one after another. A reduction's order is XLA's and depends on the shapes, so a
    problem evaluated alone and in a batch would round apart, and float32's T_osz and cos of large
    arguments turn 1 ulp into up to 1e-4 (F6, F16, F19, F23); this way every strategy rounds alike."""
    return functools.reduce(operator.add, jnp.unstack(jnp.moveaxis(v, -1, 0)))


def _prod(v):
    return functools.reduce(operator.mul, jnp.unstack(jnp.moveaxis(v, -1, 0)))


def _mean(v):
    return _sum(v) / v.shape[-1]


def _rotate(y, matrix):
    """y Mᵀ over the last axis. A dot with one row XLA rewrites into a reduction (see `_sum`): for one
    point it is Σ_j y_j M[:, j], in order of j."""
    if y.ndim > 1 and y.shape[-2] > 1:
        return y @ matrix.T
    columns = zip(jnp.unstack(y, axis=-1), jnp.unstack(matrix, axis=1))
    return functools.reduce(operator.add, [y_j[..., None] * m_j for y_j, m_j in columns])


def _osz(x):
    """T_osz, elementwise; exp(·)^0.1 is taken as exp(0.1 ·) so float32 does not overflow."""
    safe = jnp.where(x == 0, 1.0, jnp.abs(x))
    y = jnp.log(safe) / 0.1
    positive = jnp.exp(0.1 * (y + 0.49 * (jnp.sin(y) + jnp.sin(0.79 * y))))
    negative = -jnp.exp(0.1 * (y + 0.49 * (jnp.sin(0.55 * y) + jnp.sin(0.31 * y))))
    return jnp.where(x > 0, positive, jnp.where(x < 0, negative, 0.0))


def _asy(x, beta):
    dim = x.shape[-1]
    safe = jnp.where(x > 0, x, 1.0)
    power = 1.0 + beta * jnp.linspace(0.0, 1.0, dim, dtype=x.dtype) * jnp.sqrt(safe)
    return jnp.where(x > 0, safe**power, x)


def _pen(x, ub):
    return _sum(jnp.maximum(0.0, jnp.abs(x) - ub) ** 2)


def _lam(alpha, dim, dtype):
    return (alpha**0.5) ** jnp.linspace(0.0, 1.0, dim, dtype=dtype)


def _z(p, x):
    return _rotate(x - p.shift, p.rotate)


def _rastrigin(u):
    return 10.0 * (u.shape[-1] - _sum(jnp.cos(2 * jnp.pi * u))) + _sum(u**2)


def _rosenbrock(z):
    return _sum(100.0 * (z[..., :-1] ** 2 - z[..., 1:]) ** 2 + (z[..., :-1] - 1) ** 2)


def _ellipsoid(z, condition):
    dim = z.shape[-1]
    return _sum(condition ** (jnp.arange(dim, dtype=z.dtype) / (dim - 1)) * z**2)


def _f1(p, x):
    return _sum(_z(p, x) ** 2)


def _f2(p, x):
    return _ellipsoid(_osz(_z(p, x)), 1e6)


def _f3(p, x):
    z = _z(p, x)
    return _rastrigin(_lam(10.0, z.shape[-1], z.dtype) * _asy(_osz(z), 0.2))


def _f4(p, x):
    z = _osz(_z(p, x))
    even = (jnp.arange(z.shape[-1]) % 2 == 0) & (z > 0)
    z = jnp.where(even, 10.0 * z, z) * _lam(10.0, z.shape[-1], z.dtype)
    return _rastrigin(z) + 100.0 * _pen(x, p.ub)


def _f5(p, x):
    dim = x.shape[-1]
    z = jnp.where(x * p.shift > p.ub**2, jnp.sign(x) * p.ub, x)
    s = jnp.sign(p.shift) * 10.0 ** jnp.linspace(0.0, 1.0, dim, dtype=x.dtype)
    return _sum(p.ub * jnp.abs(s) - z * s)


def _f6(p, x):
    z = _z(p, x)
    z = jnp.where(z * p.shift > 0, 100.0 * z, z)
    return _osz(_sum(z**2)) ** 0.9


def _f7(p, x):
    z_hat = _z(p, x)
    rounded = jnp.where(jnp.abs(z_hat) > 0.5, jnp.floor(0.5 + z_hat), jnp.floor(0.5 + 10.0 * z_hat) / 10.0)
    z = _rotate(rounded, p.rotate2)
    dim = x.shape[-1]
    weighted = _sum(100.0 ** jnp.linspace(0.0, 1.0, dim, dtype=x.dtype) * z**2)
    return 0.1 * jnp.maximum(jnp.abs(z_hat[..., 0]) / 1e4, weighted) + _pen(x, p.ub)


def _f8(p, x):
    dim = x.shape[-1]
    return _rosenbrock(max(1.0, dim**0.5 / 8.0) * _z(p, x) + 1.0)


def _f9(p, x):
    return _rosenbrock(_rotate(x, p.rotate2) + 0.5)


def _f10(p, x):
    return _ellipsoid(_osz(_z(p, x)), 1e6)


def _f11(p, x):
    z = _osz(_z(p, x))
    return 1e6 * z[..., 0] ** 2 + _sum(z[..., 1:] ** 2)


def _f12(p, x):
    z = _rotate(_asy(_z(p, x), 0.5), p.rotate)
    return z[..., 0] ** 2 + 1e6 * _sum(z[..., 1:] ** 2)


def _f13(p, x):
    z = _z(p, x)
    return z[..., 0] ** 2 + 100.0 * jnp.sqrt(_sum(z[..., 1:] ** 2))


def _f14(p, x):
    z = _z(p, x)
    dim = z.shape[-1]
    exponents = 2.0 + 4.0 * jnp.arange(dim, dtype=z.dtype) / max(1, dim - 1)
    return jnp.sqrt(_sum(jnp.abs(z) ** exponents))


def _f15(p, x):
    return _rastrigin(_rotate(_asy(_osz(_z(p, x)), 0.2), p.rotate2))


def _f16(p, x):
    z = _rotate(_osz(_z(p, x)), p.rotate2)
    k = jnp.arange(12, dtype=z.dtype)
    a, b = 0.5**k, 3.0**k
    f0 = jnp.sum(a * jnp.cos(jnp.pi * b))
    terms = _sum(a * jnp.cos(2 * jnp.pi * (z[..., None] + 0.5) * b))
    return 10.0 * (_mean(terms) - f0) ** 3 + 10.0 / x.shape[-1] * _pen(x, p.ub)


def _schaffer(p, x):
    z = _rotate(_asy(_z(p, x), 0.5), p.rotate2)
    s = jnp.sqrt(z[..., :-1] ** 2 + z[..., 1:] ** 2)
    inner = _sum(jnp.sqrt(s) * (jnp.sin(50.0 * s**0.2) ** 2 + 1.0)) / (x.shape[-1] - 1)
    return inner**2 + 10.0 * _pen(x, p.ub)


def _f19(p, x):
    z = _rotate(x, p.rotate2) + 0.5
    s = 100.0 * (z[..., :-1] ** 2 - z[..., 1:]) ** 2 + (1.0 - z[..., :-1]) ** 2
    return 10.0 + 10.0 * _sum(s / 4000.0 - jnp.cos(s)) / (x.shape[-1] - 1.0)


def _f20(p, x):
    dim = x.shape[-1]
    twice = 2.0 * jnp.abs(p.shift)
    z = 2.0 * jnp.sign(p.shift) * x
    z = z.at[..., 1:].add(0.25 * (z[..., :-1] - twice[:-1]))
    z = 100.0 * (_lam(10.0, dim, x.dtype) * (z - twice) + twice)
    return 4.189828872724339 - 0.01 * _mean(z * jnp.sin(jnp.sqrt(jnp.abs(z)))) + 100.0 * _pen(z / 100.0, p.ub)


def _gallagher(p, x):
    z = _rotate(x, p.rotate)[..., None, :] - p.peaks_rotated  # [..., peaks, D] = R(x - y_i)
    heights = p.peak_weights * jnp.exp(-0.5 / x.shape[-1] * _sum(p.peak_scales * z**2))
    return _osz(10.0 - jnp.max(heights, axis=-1)) ** 2 + _pen(x, p.ub)


def _f23(p, x):
    z = _z(p, x)
    dim = z.shape[-1]
    powers = 2.0 ** jnp.arange(1, 33, dtype=z.dtype)
    scaled = z[..., None] * powers
    sums = _sum(jnp.abs(scaled - jnp.floor(scaled + 0.5)) / powers)  # [..., D]
    product = _prod((1.0 + jnp.arange(1, dim + 1, dtype=z.dtype) * sums) ** (10.0 / dim**1.2))
    factor = 10.0 / dim / dim
    return product * factor - factor + _pen(x, p.ub)


def _f24(p, x):
    dim = x.shape[-1]
    mu0 = 2.5 / 5 * p.ub
    x_hat = 2.0 * jnp.sign(p.shift) * x
    z = _rotate(x_hat - mu0, p.rotate)
    s = 1.0 - 1.0 / (2.0 * np.sqrt(dim + 20.0) - 8.2)
    mu1 = -jnp.sqrt((mu0**2 - 1) / s)
    sphere0 = _sum((x_hat - mu0) ** 2)
    sphere1 = dim + s * _sum((x_hat - mu1) ** 2)
    return jnp.minimum(sphere0, sphere1) + 10.0 * (dim - _sum(jnp.cos(2 * jnp.pi * z))) + 1e4 * _pen(x, p.ub)


_FUNCTIONS = (_f1, _f2, _f3, _f4, _f5, _f6, _f7, _f8, _f9, _f10, _f11, _f12, _f13, _f14, _f15, _f16, _schaffer,
              _schaffer, _f19, _f20, _gallagher, _gallagher, _f23, _f24)


def _evaluate(problem: Problem, x):
    index = jnp.clip(problem.fid - 1, 0, NUM_FUNCTIONS - 1)
    return lax.switch(index, _FUNCTIONS, problem, x)


# ---------------------------------------------------------------- a batch of problems: the strategies

STRATEGIES = ("auto", "loop", "dense")
# One pass per distinct function: (function, its 0-based indices); F17/F18 and F21/F22 share code.
_PASSES = tuple((fn, tuple(i for i, g in enumerate(_FUNCTIONS) if g is fn))
                for fn in dict.fromkeys(_FUNCTIONS))


def check_strategy(strategy) -> str:
    """`strategy` if it is one of `STRATEGIES`, else a ValueError listing them."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown BBOB strategy {strategy!r}; known: {', '.join(STRATEGIES)} ('loop': one problem "
                         f"after another, lax.map; 'dense': one pass per function present, over every problem's "
                         f"points; 'auto': 'loop' on CPU, 'dense' elsewhere)")
    return strategy


def _broadcast_batch(axis_size, in_batched, problem, x):
    """Give every leaf of (problem, x) the vmapped axis (in front), so that the batch can be reshaped."""
    spread = lambda leaf, b: leaf if b else jnp.broadcast_to(leaf, (axis_size, *jnp.shape(leaf)))  # noqa: E731
    return jax.tree.map(spread, (problem, x), tuple(in_batched))


def _one_by_one(problem: Problem, x):
    """A batch (leading axis on every leaf) as a loop, each problem computing only its own function."""
    return lax.map(lambda args: _BATCHABLE["loop"](*args), (problem, x))


@jax.custom_batching.custom_vmap
@jax.jit  # traced once per shape: a training program evaluates at several places with the same shapes
def _by_function(problem: Problem, x):
    r"""A batch of B problems, one pass per function: f(x)_b = Σ_k [fid_b ∈ F_k] f_k(problem_b, x_b).

    Pass k runs over every problem's points (no loop over the batch) when some fid_b ∈ F_k and is
    skipped (`lax.cond`) otherwise: a batch of one function costs one pass."""
    index = jnp.clip(problem.fid - 1, 0, NUM_FUNCTIONS - 1)  # [B]
    out = jnp.zeros(x.shape[:-1], x.dtype)
    for fn, ids in _PASSES:
        mine = jnp.isin(index, jnp.asarray(ids))
        values = lax.cond(jnp.any(mine), lambda fn=fn: jax.vmap(fn)(problem, x), lambda: jnp.zeros_like(out))
        out = jnp.where(mine.reshape(mine.shape + (1,) * (out.ndim - 1)), values, out)
    return out


@_by_function.def_vmap
def _by_function_batched(axis_size, in_batched, problem, x):
    """An outer vmap (seeds over a batch of problems) joins the batch: [S, B] -> [S·B], so the passes run
    once over all of it (a vmapped `lax.cond` would compute every function)."""
    problem, x = _broadcast_batch(axis_size, in_batched, problem, x)
    join = lambda leaf: leaf.reshape(-1, *leaf.shape[2:])  # noqa: E731
    out = _by_function(jax.tree.map(join, problem), join(x))
    return out.reshape(axis_size, -1, *out.shape[1:]), True


def _batch_rule(strategy: str):
    def rule(axis_size, in_batched, problem, x):
        if not any(jax.tree.leaves(in_batched[0])):  # one problem, a batch of points: x [axis, ..., D] as is
            return _BATCHABLE[strategy](problem, x), True
        problem, x = _broadcast_batch(axis_size, in_batched, problem, x)
        if strategy == "loop":
            return _one_by_one(problem, x), True
        if strategy == "dense":
            return _by_function(problem, x), True
        return lax.platform_dependent(problem, x, cpu=_one_by_one, default=_by_function), True

    return rule


def _batchable(strategy: str):
    """`_evaluate` with a vmap rule for a batch of problems: a plain vmap would turn `lax.switch` into
    a select that computes all 24 functions for every point. 'loop' runs the problems one after
    another, each its own function: right on a CPU, where parallel work costs FLOPs, and 3x faster
    than the select there; on a GPU each iteration is a string of small kernels. 'dense' runs one
    pass per function present over the whole batch (`_by_function`). 'auto' picks at lowering
    (`lax.platform_dependent`): 'loop' on CPU, 'dense' elsewhere."""
    fn = jax.custom_batching.custom_vmap(_evaluate)
    fn.def_vmap(_batch_rule(strategy))
    return fn


_BATCHABLE = {strategy: _batchable(strategy) for strategy in STRATEGIES}


def evaluate(problem: Problem, x, *, bias: bool = True, strategy: str = "auto") -> jax.Array:
    """f(x) for x `[..., D]` of one problem; vmap over a stacked suite (each problem then computes
    only its own function, batched as `strategy` says: see `_batchable`). With `bias=False`,
    f(x) - bias: MetaBox's cost f(x) - f(x*) without the float32 cancellation against a bias of
    100-2500 (which rounds costs below ~1e-4 to 0)."""
    batchable = _BATCHABLE[check_strategy(strategy)]
    x = jnp.asarray(x, problem.shift.dtype)
    dim = problem.shift.shape[-1]
    if x.shape[-1:] != (dim,):
        raise ValueError(f"x must have shape [..., {dim}] to match the problem's dimension, got {tuple(x.shape)}")
    if jnp.ndim(problem.fid) != 0:
        raise ValueError("evaluate takes one problem; use jax.vmap(evaluate) over a stacked suite")
    value = batchable(problem, x)
    return value + problem.bias if bias else value
