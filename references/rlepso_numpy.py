"""A plain numpy RLEPSO (MetaBox's ``RLEPSO_Optimizer``), statement by statement, with injectable draws.

Used by the tests to check `jppo.metabbo.rlepso` step for step, and by benchmarks as the numpy
baseline. Randomness comes from a *source* asked for each draw by name, in MetaBox's order:

* `RandomStateSource(np.random.RandomState(seed))` reproduces MetaBox's own stream
  (``rng.rand``, ``rng.randint``, ``rng.uniform`` = low + (high - low)·random_sample), including
  skipping the re-initialisation draws in generations where no particle is re-initialised;
* `RecordedSource(init, steps)` hands out pre-made arrays (e.g. the JAX env's `InitDraws` /
  `StepDraws` converted with `draws_to_numpy`).

`problem` is any object with `lb`, `ub`, `dim`, `eval(x[n, D]) -> [n]` and `optimum`.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def draws_to_numpy(draws) -> dict:
    return {f.name: np.asarray(getattr(draws, f.name)) for f in dataclasses.fields(draws)}


class RandomStateSource:
    """MetaBox's draws from a `np.random.RandomState`, called in MetaBox's order."""

    def __init__(self, rng: np.random.RandomState):
        self.rng = rng

    def uniform(self, name, shape):
        return self.rng.rand(*shape)

    def randint(self, name, high, shape):
        return self.rng.randint(low=0, high=high, size=shape)

    def next_step(self):
        pass


class RecordedSource:
    """Hands out recorded draws: `init` is a dict for the reset, `steps` a list of dicts, one per generation."""

    def __init__(self, init: dict, steps: list[dict]):
        self.current = init
        self.steps = list(steps)

    def _get(self, name, shape):
        value = self.current[name]
        assert value.shape == tuple(shape), (name, value.shape, shape)
        return value

    def uniform(self, name, shape):
        return self._get(name, shape)

    def randint(self, name, high, shape):
        return self._get(name, shape)

    def next_step(self):
        self.current = self.steps.pop(0)


class RLEPSOReference:
    """MetaBox's optimizer: `init_population(problem)` then `update(action, problem)` per generation."""

    def __init__(self, source, max_fes=20000, population_size=100, n_groups=5, n_logpoint=50, group_stride=None):
        self.source = source
        self.max_fes = max_fes
        self.NP = population_size
        self.n_group = n_groups
        self.stride = n_groups if group_stride is None else group_stride
        self.n_logpoint = n_logpoint
        self.log_interval = max_fes // n_logpoint
        i = np.arange(self.NP)
        self.pci = 0.05 + 0.45 * np.exp(10 * i / (self.NP - 1)) / (np.exp(10) - 1)

    # -- helpers
    def _uniform(self, name, low, high, shape):
        return low + (high - low) * self.source.uniform(name, shape)

    def _costs(self, problem, x):
        self.fes += self.NP
        return problem.eval(x) - problem.optimum

    def _bests(self, position, cost):
        p = self.p
        better = cost < p["pbest"]
        best_val, best_i = np.min(cost), np.argmin(cost)
        gbetter = best_val < p["gbest_val"]
        return {
            "current_position": position,
            "c_cost": cost,
            "pbest_position": np.where(better[:, None], position, p["pbest_position"]),
            "pbest": np.where(better, cost, p["pbest"]),
            "velocity": p["velocity"],
            "gbest_val": best_val if gbetter else p["gbest_val"],
            "gbest_position": position[best_i] if gbetter else p["gbest_position"],
        }

    # -- MetaBox's two entry points
    def init_population(self, problem):
        self.dim = problem.dim
        self.max_velocity = 0.1 * (problem.ub - problem.lb)
        pos = self._uniform("position", problem.lb, problem.ub, (self.NP, self.dim))
        vel = self._uniform("velocity", -self.max_velocity, self.max_velocity, (self.NP, self.dim))
        self.fes = 0
        cost = self._costs(problem, pos)
        best = np.argmin(cost)
        self.p = {"current_position": pos.copy(), "c_cost": cost.copy(), "pbest_position": pos.copy(),
                  "pbest": cost.copy(), "gbest_position": pos[best].copy(), "gbest_val": cost[best],
                  "velocity": vel.copy()}
        self.per_no_improve = np.zeros(self.NP)
        self.log_index = 1
        self.cost = [self.p["gbest_val"]]
        return np.array([self.fes / self.max_fes])

    def coefficients(self, action):
        NP, G = self.NP, self.n_group
        assert action.shape[-1] == G * 7
        per = NP // G
        w, cm = np.zeros(NP), np.zeros(NP)
        c = np.zeros((4, NP))
        for g in range(G):
            a = action[g * self.stride : g * self.stride + 7]
            sl = slice(g * per, (g + 1) * per)
            cm[sl] = a[0] * 0.01 * self.per_no_improve[sl]
            w[sl] = a[1] * 0.8 + 0.1
            scale = 1.0 / (a[3] + a[4] + a[5] + a[6] + 1e-5) * a[2] * 8
            for j in range(4):
                c[j, sl] = scale * a[3 + j]
        return w[:, None], cm, c[0][:, None], c[1][:, None], c[2][:, None], c[3][:, None]

    def update(self, action, problem):
        self.source.next_step()
        NP, D, p = self.NP, self.dim, self.p
        pre_gbest = p["gbest_val"]
        rand1 = self.source.uniform("pbest", (NP, 1))
        rand2 = self.source.uniform("gbest", (NP, 1))

        # comprehensive learning, exemplars by binary tournament per dimension
        rand = self.source.uniform("clpso", (NP, D))
        own = rand > self.pci[:, None]
        idx = self.source.randint("tournament", NP, (NP, D, 2))
        cand = p["pbest_position"][idx, np.arange(D)[None, :, None]]
        cand_cost = p["pbest"][idx]
        pick = np.argmin(cand_cost, axis=-1)
        target = cand[np.arange(NP)[:, None], np.arange(D)[None, :], pick]
        v_clpso = rand * (np.where(own, p["pbest_position"], target) - p["current_position"])

        # fitness-distance ratio
        pos = p["pbest_position"]
        dist = np.abs(pos[None, :, :] - pos[:, None, :])
        delta = p["pbest"][None, :] - p["pbest"][:, None]
        j_star = np.argmin(delta[:, :, None] / (dist + 1e-5), axis=1)
        v_fdr = self.source.uniform("fdr", (NP, D)) * (pos[j_star, np.arange(D)[None, :]] - pos)

        v_pbest = rand1 * (p["pbest_position"] - p["current_position"])
        v_gbest = rand2 * (p["gbest_position"][None, :] - p["current_position"])
        w, c_mut, c1, c2, c3, c4 = self.coefficients(action)

        vel = w * p["velocity"] + c1 * v_clpso + c2 * v_fdr + c3 * v_gbest + c4 * v_pbest
        vel = np.clip(vel, -self.max_velocity, self.max_velocity)
        new_pos = np.clip(p["current_position"] + vel, problem.lb, problem.ub)
        new_cost = self._costs(problem, new_pos)
        new = self._bests(new_pos, new_cost)
        new["velocity"] = vel

        improved = new["c_cost"] < p["c_cost"]
        self.per_no_improve += 1
        self.per_no_improve -= np.where(improved, self.per_no_improve, 0)
        self.p = new

        reinit = self.source.uniform("reinit", (NP,)) < c_mut * 0.01 * self.per_no_improve
        if np.any(reinit):
            rp = self._uniform("reinit_position", problem.lb, problem.ub, (NP, D))
            rv = self._uniform("reinit_velocity", -self.max_velocity, self.max_velocity, (NP, D))
            position = np.where(reinit[:, None], rp, self.p["current_position"])
            velocity = np.where(reinit[:, None], rv, self.p["velocity"])
            pre_fes = self.fes
            cost = self._costs(problem, position)
            self.fes = pre_fes + np.sum(reinit)
            self.p = self._bests(position, cost)
            self.p["velocity"] = velocity

        if self.fes >= self.log_index * self.log_interval:
            self.log_index += 1
            self.cost.append(self.p["gbest_val"])
        is_end = self.fes >= self.max_fes
        reward = 1 if self.p["gbest_val"] < pre_gbest else -1
        if is_end:
            if len(self.cost) >= self.n_logpoint + 1:
                self.cost[-1] = self.p["gbest_val"]
            else:
                while len(self.cost) < self.n_logpoint + 1:
                    self.cost.append(self.p["gbest_val"])
        return np.array([self.fes / self.max_fes]), reward, is_end, {}

    # -- for comparisons
    @property
    def gbest_val(self):
        return self.p["gbest_val"]
