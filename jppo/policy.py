"""An actor and a critic as pure functions of their parameters.

NNX modules are split once into a static graph definition and a parameter pytree; jitted code
carries only the pytree `{'actor': ..., 'critic': ...}` and merges it back at trace time.

Two shapes of actor-critic, one interface (`distribution`, `value`, `evaluate`, `act`):

* `ActorCritic`: separate networks, `actor(obs) -> distribution`, `critic(obs) -> value`.
* `SharedTrunkActorCritic`: the critic reads the actor's features (GLEET):
  `actor.distribution(obs) -> (distribution, f)`, `actor.features(obs) -> f`, `critic(f) -> value`,
  so V(s) = critic(trunk(s)) and the value loss's gradients reach the actor's trunk. `evaluate` and
  `act` run the trunk once per call.

`split(actor, critic)` picks the one that fits the actor (an actor with `shares_trunk = True` is a
shared-trunk one).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx


@dataclasses.dataclass(frozen=True)
class ActorCritic:
    """Static graph definitions of an actor (obs -> distribution) and a critic (obs -> value)."""

    actor_def: Any
    critic_def: Any

    @classmethod
    def split(cls, actor: nnx.Module, critic: nnx.Module):
        """`(policy, params)` from NNX modules."""
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


class SharedTrunkActorCritic(ActorCritic):
    """A critic on the actor's features: V(s) = critic(f(s)), π(·|s) = head(f(s)), f computed once per call.

    Observations carry a batch axis `[B, ...]` (the actor's own layout); values come back `[B]`.
    """

    def _heads(self, params, obs):
        """`(distribution, value [B])` from one pass of the trunk."""
        dist, f = nnx.merge(self.actor_def, params["actor"]).distribution(obs)
        value = nnx.merge(self.critic_def, params["critic"])(f)
        return dist, jnp.reshape(value, f.shape[:1])

    def distribution(self, params, obs):
        return nnx.merge(self.actor_def, params["actor"]).distribution(obs)[0]

    def value(self, params, obs) -> jax.Array:
        f = nnx.merge(self.actor_def, params["actor"]).features(obs)
        return jnp.reshape(nnx.merge(self.critic_def, params["critic"])(f), f.shape[:1])

    def evaluate(self, params, obs, actions):
        dist, value = self._heads(params, obs)
        return dist.log_prob(actions), dist.entropy(), value

    def act(self, params, obs, key):
        dist, value = self._heads(params, obs)
        action = dist.sample(key)
        return action, dist.log_prob(action), value


def split(actor: nnx.Module, critic: nnx.Module):
    """`(policy, params)`: a `SharedTrunkActorCritic` for an actor with `shares_trunk`, else an `ActorCritic`."""
    cls = SharedTrunkActorCritic if getattr(actor, "shares_trunk", False) else ActorCritic
    return cls.split(actor, critic)
