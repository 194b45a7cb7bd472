"""An actor and a critic as pure functions of their parameters.

NNX modules are split once into a static graph definition and a parameter pytree; jitted code
carries only the pytree `{'actor': ..., 'critic': ...}` and merges it back at trace time.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from flax import nnx


@dataclasses.dataclass(frozen=True)
class ActorCritic:
    """Static graph definitions of an actor (obs -> distribution) and a critic (obs -> value)."""

    actor_def: Any
    critic_def: Any

    @classmethod
    def split(cls, actor: nnx.Module, critic: nnx.Module):
        """`(ActorCritic, params)` from NNX modules."""
        actor_def, actor_params = nnx.split(actor)
        critic_def, critic_params = nnx.split(critic)
        return cls(actor_def, critic_def), {"actor": actor_params, "critic": critic_params}

    def distribution(self, params, obs):
        return nnx.merge(self.actor_def, params["actor"])(obs)

    def value(self, params, obs) -> jax.Array:
        return nnx.merge(self.critic_def, params["critic"])(obs)

    def evaluate(self, params, obs, actions):
        """`(log_prob, entropy, value)` of given actions, the signature `jppo.update` expects."""
        dist = self.distribution(params, obs)
        return dist.log_prob(actions), dist.entropy(), self.value(params, obs)

    def act(self, params, obs, key):
        """Sample actions: `(action, log_prob, value)`."""
        dist = self.distribution(params, obs)
        action = dist.sample(key)
        return action, dist.log_prob(action), self.value(params, obs)
