"""A plain numpy GLEET (MetaBox's ``GLEET_Optimizer``), statement by statement, with injectable draws.

Written from the definitions (MetaBox's GLEET_Optimizer read line by line), independently of
jppo/metabbo/gleet.py. Randomness comes from a source asked for each draw by name, in MetaBox's order
(`references.rlepso_numpy.RandomStateSource` reproduces MetaBox's RandomState stream;
`RecordedSource` hands out the JAX env's draws): 'position', 'velocity' at reset, then 'pbest' (r₁)
and 'gbest' (r₂) each step.

`problem` is any object with `lb`, `ub`, `dim`, `eval(x[n, D]) -> [n]` and `optimum`.
"""

from __future__ import annotations

import numpy as np


class GLEETReference:
    """MetaBox's optimizer: `init_population(problem)` then `update(action, problem)` per step."""

    def __init__(self, source, max_fes=20000, population_size=100, n_logpoint=50):
        self.source = source
        self.max_fes = max_fes
        self.ps = population_size
        self.n_logpoint = n_logpoint
        self.log_interval = max_fes // n_logpoint
        self.c = 4.1
        self.reward_scale = 100

    def _uniform(self, name, low, high, shape):
        return low + (high - low) * self.source.uniform(name, shape)

    def _costs(self, problem, x):
        self.fes += x.shape[0]
        return problem.eval(x) - problem.optimum

    # -- the 9 features, one per line
    def observe(self):
        p, m, t = self.p, self.max_cost, self.max_fes // self.ps
        x, pbest, gbest = p["current_position"], p["pbest_position"], p["gbest_position"][None, :]
        f0 = p["c_cost"] / m
        f1 = (p["c_cost"] - p["gbest_val"]) / m
        f2 = (p["c_cost"] - p["pbest"]) / m
        f3 = np.full(self.ps, (self.max_fes - self.fes) / self.max_fes)
        f4 = self.per_no_improve / t
        f5 = np.full(self.ps, self.no_improve / t)
        f6 = np.linalg.norm(x - gbest, axis=-1) / self.max_dist
        f7 = np.linalg.norm(x - pbest, axis=-1) / self.max_dist
        u, v = pbest - x, gbest - x
        f8 = np.sum(u * v, -1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1) + 1e-5)
        f8 = np.where(np.isnan(f8), 0.0, f8)
        return np.stack([f0, f1, f2, f3, f4, f5, f6, f7, f8], axis=1)

    def state(self, own):
        return np.concatenate([own, self.pbest_feature, np.tile(self.gbest_feature, (self.ps, 1))], axis=1)

    # -- MetaBox's two entry points
    def init_population(self, problem):
        self.fes = 0
        self.dim = problem.dim
        self.w = 0.9
        self.max_velocity = 0.1 * (problem.ub - problem.lb)
        self.max_dist = np.sqrt(np.sum((np.asarray(problem.ub) - np.asarray(problem.lb)) ** 2))
        self.per_no_improve = np.zeros(self.ps)
        self.no_improve = 0
        pos = self._uniform("position", problem.lb, problem.ub, (self.ps, self.dim))
        vel = self._uniform("velocity", -self.max_velocity, self.max_velocity, (self.ps, self.dim))
        cost = self._costs(problem, pos)
        best = int(np.argmin(cost))
        self.max_cost = cost[best]
        self.p = {"current_position": pos, "c_cost": cost, "pbest_position": pos.copy(), "pbest": cost.copy(),
                  "gbest_position": pos[best].copy(), "gbest_val": cost[best], "velocity": vel, "gbest_index": best}
        self.log_index = 1
        self.cost = [cost[best]]
        own = self.observe()
        self.pbest_feature = own.copy()
        self.gbest_feature = own[best].copy()
        return self.state(own)

    def update(self, action, problem):
        self.source.next_step()
        p = self.p
        previous_best = p["gbest_val"]
        self.w = self.w - 0.5 / (self.max_fes / self.ps)
        r1 = self.source.uniform("pbest", (self.ps, 1))
        r2 = self.source.uniform("gbest", (self.ps, 1))
        a = np.asarray(action, np.float64)[:, None]
        x = p["current_position"]
        vel = self.w * p["velocity"] + self.c * a * r1 * (p["pbest_position"] - x) \
            + self.c * (1 - a) * r2 * (p["gbest_position"][None, :] - x)
        vel = np.clip(vel, -self.max_velocity, self.max_velocity)
        pos = np.clip(x + vel, problem.lb, problem.ub)
        cost = self._costs(problem, pos)

        better = cost < p["pbest"]
        best = int(np.argmin(cost))
        gbest_better = cost[best] < p["gbest_val"]
        self.no_improve = 0 if gbest_better else self.no_improve + 1
        self.per_no_improve = np.where(cost < p["c_cost"], 0.0, self.per_no_improve + 1)
        self.p = {"current_position": pos, "c_cost": cost,
                  "pbest_position": np.where(better[:, None], pos, p["pbest_position"]),
                  "pbest": np.where(better, cost, p["pbest"]), "velocity": vel,
                  "gbest_position": pos[best].copy() if gbest_better else p["gbest_position"],
                  "gbest_val": cost[best] if gbest_better else p["gbest_val"],
                  "gbest_index": best if gbest_better else p["gbest_index"]}
        is_end = self.fes >= self.max_fes
        reward = (previous_best - self.p["gbest_val"]) / self.max_cost * self.reward_scale

        own = self.observe()
        self.pbest_feature = np.where(self.per_no_improve[:, None] == 0, own, self.pbest_feature)
        if self.no_improve == 0:
            self.gbest_feature = own[self.p["gbest_index"]].copy()

        if self.fes >= self.log_index * self.log_interval:
            self.log_index += 1
            self.cost.append(self.p["gbest_val"])
        if is_end:
            if len(self.cost) >= self.n_logpoint + 1:
                self.cost[-1] = self.p["gbest_val"]
            while len(self.cost) < self.n_logpoint + 1:
                self.cost.append(self.p["gbest_val"])
        return self.state(own), reward, is_end, {}
