"""A plain numpy reference of the 24 BBOB functions under MetaBox's conventions, one point at a time.

Written from the BBOB definitions (Hansen et al. 2009) with MetaBox's deviations, independently of
jppo/metabbo/bbob.py: scalar loops over coordinates, no shared helpers. Instance data (x*, R, Q, bias,
Gallagher's peaks) comes from a `jppo.metabbo.bbob.Problem`.
"""

from __future__ import annotations

import math

import numpy as np


def _t_osz(v: float) -> float:
    if v == 0:
        return 0.0
    h = math.log(abs(v))
    c1, c2 = (10.0, 7.9) if v > 0 else (5.5, 3.1)
    return math.copysign(math.exp(h + 0.049 * (math.sin(c1 * h) + math.sin(c2 * h))), v)


def _t_asy(z: np.ndarray, beta: float) -> np.ndarray:
    d = len(z)
    out = z.copy()
    for i in range(d):
        if z[i] > 0:
            out[i] = z[i] ** (1 + beta * (i / (d - 1)) * math.sqrt(z[i]))
    return out


def _lam(alpha: float, d: int) -> np.ndarray:
    return np.array([alpha ** (0.5 * i / (d - 1)) for i in range(d)])


def _pen(x: np.ndarray, ub: float) -> float:
    return sum(max(0.0, abs(v) - ub) ** 2 for v in x)


def _rastrigin(u):
    return 10 * (len(u) - sum(math.cos(2 * math.pi * v) for v in u)) + sum(v * v for v in u)


def _rosenbrock(z):
    return sum(100 * (z[i] ** 2 - z[i + 1]) ** 2 + (z[i] - 1) ** 2 for i in range(len(z) - 1))


def value(problem, x: np.ndarray) -> float:
    """f(x) for one point (bias included)."""
    p = {k: np.asarray(getattr(problem, k), np.float64) for k in
         ("shift", "rotate", "rotate2", "bias", "ub", "peaks_rotated", "peak_scales", "peak_weights")}
    fid = int(problem.fid)
    x = np.asarray(x, np.float64)
    d = len(x)
    ub = float(p["ub"])
    R, Q, xs = p["rotate"], p["rotate2"], p["shift"]
    z = R @ (x - xs)
    osz = np.array([_t_osz(v) for v in z])
    if fid == 1:
        f = float(z @ z)
    elif fid in (2, 10):
        f = sum(1e6 ** (i / (d - 1)) * osz[i] ** 2 for i in range(d))
    elif fid == 3:
        f = _rastrigin(_lam(10, d) * _t_asy(osz, 0.2))
    elif fid == 4:
        u = np.array([10 * v if (i % 2 == 0 and v > 0) else v for i, v in enumerate(osz)]) * _lam(10, d)
        f = _rastrigin(u) + 100 * _pen(x, ub)
    elif fid == 5:
        f = 0.0
        for i in range(d):
            s = math.copysign(10 ** (i / (d - 1)), xs[i])
            zi = math.copysign(ub, x[i]) if x[i] * xs[i] > ub**2 else x[i]
            f += ub * abs(s) - zi * s
    elif fid == 6:
        f = _t_osz(sum((100 * v if v * xs[i] > 0 else v) ** 2 for i, v in enumerate(z))) ** 0.9
    elif fid == 7:
        rounded = np.array([math.floor(0.5 + v) if abs(v) > 0.5 else math.floor(0.5 + 10 * v) / 10 for v in z])
        u = Q @ rounded
        f = 0.1 * max(abs(z[0]) / 1e4, sum(100 ** (i / (d - 1)) * u[i] ** 2 for i in range(d))) + _pen(x, ub)
    elif fid == 8:
        f = _rosenbrock(max(1.0, math.sqrt(d) / 8) * (x - xs) + 1)
    elif fid == 9:
        f = _rosenbrock(Q @ x + 0.5)
    elif fid == 11:
        f = 1e6 * osz[0] ** 2 + sum(v * v for v in osz[1:])
    elif fid == 12:
        u = R @ _t_asy(z, 0.5)
        f = u[0] ** 2 + 1e6 * sum(v * v for v in u[1:])
    elif fid == 13:
        f = z[0] ** 2 + 100 * math.sqrt(sum(v * v for v in z[1:]))
    elif fid == 14:
        f = math.sqrt(sum(abs(z[i]) ** (2 + 4 * i / (d - 1)) for i in range(d)))
    elif fid == 15:
        f = _rastrigin(Q @ _t_asy(osz, 0.2))
    elif fid == 16:
        u = Q @ osz
        f0 = sum(0.5**k * math.cos(math.pi * 3**k) for k in range(12))
        mean = sum(sum(0.5**k * math.cos(2 * math.pi * 3**k * (v + 0.5)) for k in range(12)) for v in u) / d
        f = 10 * (mean - f0) ** 3 + 10 / d * _pen(x, ub)
    elif fid in (17, 18):
        u = Q @ _t_asy(z, 0.5)
        s = [math.sqrt(u[i] ** 2 + u[i + 1] ** 2) for i in range(d - 1)]
        f = (sum(math.sqrt(v) * (math.sin(50 * v**0.2) ** 2 + 1) for v in s) / (d - 1)) ** 2 + 10 * _pen(x, ub)
    elif fid == 19:
        u = Q @ x + 0.5
        s = [100 * (u[i] ** 2 - u[i + 1]) ** 2 + (1 - u[i]) ** 2 for i in range(d - 1)]
        f = 10 + 10 * sum(v / 4000 - math.cos(v) for v in s) / (d - 1)
    elif fid == 20:
        x_hat = 2 * np.sign(xs) * x
        two = 2 * np.abs(xs)
        zz = x_hat.copy()
        for i in range(1, d):
            zz[i] = x_hat[i] + 0.25 * (x_hat[i - 1] - two[i - 1])
        v = 100 * (_lam(10, d) * (zz - two) + two)
        f = 4.189828872724339 - 0.01 * sum(w * math.sin(math.sqrt(abs(w))) for w in v) / d + 100 * _pen(v / 100, ub)
    elif fid in (21, 22):
        rx = R @ x
        best = 0.0
        for y_rot, c, w in zip(p["peaks_rotated"], p["peak_scales"], p["peak_weights"]):
            if w > 0:
                best = max(best, w * math.exp(-0.5 / d * float(c @ (rx - y_rot) ** 2)))
        f = _t_osz(10 - best) ** 2 + _pen(x, ub)
    elif fid == 23:
        prod = 1.0
        for i in range(d):
            total = sum(abs(2**j * z[i] - math.floor(2**j * z[i] + 0.5)) / 2**j for j in range(1, 33))
            prod *= (1 + (i + 1) * total) ** (10 / d**1.2)
        f = 10 / d**2 * prod - 10 / d**2 + _pen(x, ub)
    elif fid == 24:
        mu0 = 0.5 * ub
        x_hat = 2 * np.sign(xs) * x
        s = 1 - 1 / (2 * math.sqrt(d + 20) - 8.2)
        mu1 = -math.sqrt((mu0**2 - 1) / s)
        zz = R @ (x_hat - mu0)
        f = (min(float(np.sum((x_hat - mu0) ** 2)), d + s * float(np.sum((x_hat - mu1) ** 2)))
             + 10 * (d - sum(math.cos(2 * math.pi * v) for v in zz)) + 1e4 * _pen(x, ub))
    else:
        raise ValueError(fid)
    return f + float(p["bias"])
