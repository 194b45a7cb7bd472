"""Advantage and return estimators over time-major arrays `[T, *batch]`.

Two estimators:

* `gae` — generalised advantage estimation (Schulman et al. 2016) with terminations and
  truncations kept apart.
* `nstep_returns` — MetaBox's PPO target: the discounted return over a window, bootstrapped with
  the critic's value of the state after the window, with no done mask inside the window.

Both are reverse `lax.scan`s; the functions check their inputs before tracing and can be called
inside `jit` (checks on values are then skipped).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jppo import _checks


def gae(
    rewards,
    values,
    last_value,
    terminated,
    truncated=None,
    final_values=None,
    *,
    gamma: float,
    lam: float,
) -> tuple[jax.Array, jax.Array]:
    r"""Generalised advantage estimation.

    With V'_t the value of the state reached after step t,

        V'_t = final_values_t   if truncated_t        (time limit: bootstrap from the final obs)
             = values_{t+1}     otherwise, t < T-1
             = last_value       otherwise, t = T-1

        δ_t = r_t + γ (1 - terminated_t) V'_t - V_t
        A_t = δ_t + γ λ (1 - done_t) A_{t+1},   done_t = terminated_t or truncated_t,  A_T = 0
        G_t = A_t + V_t

    A termination stops the bootstrap; a truncation bootstraps from the value of the final
    observation (which an auto-resetting env has replaced by the next episode's first one, so the
    caller supplies it) and cuts the trace.

    Args:
      rewards: float `[T, *batch]`.
      values: float `[T, *batch]`, V(s_t).
      last_value: float `[*batch]`, V of the state after the last step.
      terminated: bool `[T, *batch]`.
      truncated: bool `[T, *batch]` or None (no truncations).
      final_values: float `[T, *batch]`, V(final obs of step t); read where `truncated` is true.
        Required when `truncated` is given.
      gamma: discount in [0, 1].
      lam: GAE λ in [0, 1].

    Returns:
      `(advantages, returns)`, both `[T, *batch]`.
    """
    rewards = _checks.float_array("rewards", rewards)
    if rewards.ndim < 1:
        raise ValueError(f"rewards must be time-major [T, *batch], got shape {rewards.shape}")
    shape = rewards.shape
    values = _checks.float_array("values", values, shape)
    last_value = _checks.float_array("last_value", last_value, shape[1:])
    terminated = _checks.flag_array("terminated", terminated, shape)
    _checks.unit_interval("gamma", gamma)
    _checks.unit_interval("lam", lam)
    if truncated is None:
        truncated = jnp.zeros(shape, bool)
        final_values = values  # never read
    else:
        truncated = _checks.flag_array("truncated", truncated, shape)
        if final_values is None:
            raise ValueError("final_values [T, *batch] is required when truncated is given")
        final_values = _checks.float_array("final_values", final_values, shape)

    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    next_values = jnp.where(truncated, final_values, next_values)
    not_terminated = (~terminated).astype(rewards.dtype)
    not_done = (~(terminated | truncated)).astype(rewards.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values
    continues = gamma * lam * not_done

    def backward(advantage, step):
        delta, cont = step
        advantage = delta + cont * advantage
        return advantage, advantage

    _, advantages = lax.scan(
        backward, jnp.zeros_like(last_value), (deltas, continues), reverse=True
    )
    return advantages, advantages + values


def nstep_returns(rewards, bootstrap, gamma: float, valid=None) -> jax.Array:
    r"""MetaBox's window target: discounted returns bootstrapped at the window's end.

        G_{T-1} = r_{T-1} + γ B,    G_t = r_t + γ G_{t+1}

    with B the critic's value of the state after the window and no done mask inside it. It equals
    `gae(..., lam=1)` with no terminations or truncations.

    Args:
      rewards: float `[T, *batch]`.
      bootstrap: float `[*batch]`, B.
      gamma: discount in [0, 1].
      valid: optional bool `[T, *batch]`; steps marked False (padding after the batch's episode
        ended inside the window) pass the target through unchanged, G_t = G_{t+1}, so a padded
        window gives the valid steps the targets of the shorter window.

    Returns:
      `[T, *batch]` returns.
    """
    rewards = _checks.float_array("rewards", rewards)
    if rewards.ndim < 1:
        raise ValueError(f"rewards must be time-major [T, *batch], got shape {rewards.shape}")
    bootstrap = _checks.float_array("bootstrap", bootstrap, rewards.shape[1:])
    _checks.unit_interval("gamma", gamma)
    valid = jnp.ones(rewards.shape, bool) if valid is None else _checks.flag_array("valid", valid, rewards.shape)

    def backward(ret, step):
        reward, ok = step
        ret = jnp.where(ok, reward + gamma * ret, ret)
        return ret, ret

    _, returns = lax.scan(backward, bootstrap, (rewards, valid), reverse=True)
    return returns
