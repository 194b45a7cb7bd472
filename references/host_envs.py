"""Gymnasium environments for tests/test_host.py, importable in worker processes as
`gym:references.host_envs:<id>` (gymnasium imports the module, which registers the ids)."""

import gymnasium
from gymnasium.envs.classic_control import CartPoleEnv


class FaultyCartPole(CartPoleEnv):
    """CartPole whose step raises after `fail_after` steps (in whichever process holds it)."""

    def __init__(self, fail_after: int = 20, **kwargs):
        super().__init__(**kwargs)
        self.fail_after, self.steps = fail_after, 0

    def step(self, action):
        self.steps += 1
        if self.steps > self.fail_after:
            raise RuntimeError(f"FaultyCartPole broke at step {self.steps}")
        return super().step(action)


if "FaultyCartPole-v0" not in gymnasium.registry:
    gymnasium.register("FaultyCartPole-v0", entry_point=FaultyCartPole, max_episode_steps=500)
