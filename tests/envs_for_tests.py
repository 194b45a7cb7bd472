"""Small deterministic MetaBox-style environments for the compat tests."""

import numpy as np


class ToyOptimizerEnv:
    """A MetaBox-style env: state = fes/maxFEs (plus two features); an action in [0,1]^d moves a point
    towards the optimum; reward +1 when the best cost improves else -1; `cost` is a history list."""

    def __init__(self, action_dim=3, max_steps=13, feature_dim=3):
        self.action_dim, self.max_steps, self.feature_dim = action_dim, max_steps, feature_dim
        self.rng = np.random.default_rng(0)

    def seed(self, s):
        self.rng = np.random.default_rng(s)

    def _state(self):
        base = [self.t / self.max_steps, np.tanh(self.best), np.sin(self.t)]
        return np.asarray(base[: self.feature_dim], dtype=np.float64)

    def reset(self):
        self.t = 0
        self.target = self.rng.uniform(0.2, 0.8, self.action_dim)
        self.x = self.rng.uniform(0, 1, self.action_dim)
        self.best = float(np.sum((self.x - self.target) ** 2))
        self.cost = [self.best]
        self.fes = 0
        return self._state()

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(self.action_dim)
        self.x = 0.5 * self.x + 0.5 * action
        c = float(np.sum((self.x - self.target) ** 2))
        reward = 1.0 if c < self.best else -1.0
        self.best = min(self.best, c)
        self.t += 1
        self.fes += 1
        self.cost.append(self.best)
        return self._state(), reward, self.t >= self.max_steps, {}


class NaNRewardEnv(ToyOptimizerEnv):
    def step(self, action):
        obs, _, done, info = super().step(action)
        return obs, (float("nan") if self.t == 3 else 1.0), done, info
