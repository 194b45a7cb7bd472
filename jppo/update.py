"""The PPO update: K epochs × M minibatches of clipped-loss gradient steps, one compiled function.

Each epoch draws a permutation of the N samples (`jax.random.permutation`), splits it into M
minibatches of N/M, and takes one gradient step per minibatch; both loops are `lax.scan`s, so the
whole update is a single XLA program. Per-sample work is batched: `evaluate` sees a whole
minibatch at once.

Sweepable hyperparameters are traced, never static: `Hyperparams.clip_eps`, `ent_coef`,
`max_grad_norm`, and the learning rates (held in the optimizer state, see `jppo.optim`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax import lax

from jppo import _checks
from jppo.loss import LossConfig, ppo_loss
from jppo.optim import CLIPPING

# evaluate(params, obs, actions) -> (log_prob [n], entropy [n], value [n])
Evaluate = Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, jax.Array, jax.Array]]

BATCH_KEYS = ("obs", "actions", "logp", "values", "advantages", "returns")


@struct.dataclass
class Hyperparams:
    """Traced hyperparameters: new values reuse the compiled update."""

    clip_eps: jax.Array | float = 0.2
    ent_coef: jax.Array | float = 0.0
    max_grad_norm: jax.Array | float = 0.5


@dataclasses.dataclass(frozen=True)
class UpdateConfig:
    """Static structure of the update (changing it recompiles).

    Attributes:
      num_epochs: K, passes over the batch.
      num_minibatches: M, gradient steps per epoch; must divide the batch size.
      clipping: 'global' (one norm over all networks, optax), 'per_network' (MetaBox), or 'none'.
      loss: the loss switches.
    """

    num_epochs: int = 4
    num_minibatches: int = 4
    clipping: str = "global"
    loss: LossConfig = LossConfig()

    def __post_init__(self):
        _checks.positive_int("num_epochs", self.num_epochs)
        _checks.positive_int("num_minibatches", self.num_minibatches)
        if self.clipping not in (*CLIPPING, "none"):
            raise ValueError(f"clipping must be one of {[*CLIPPING, 'none']}, got {self.clipping!r}")


def make_gradient_step(evaluate: Evaluate, optimizer: optax.GradientTransformation, config: UpdateConfig):
    """One gradient step on one minibatch: loss, gradients, clipping, optimizer update.

    Returns `step(params, opt_state, minibatch, hparams) -> (params, opt_state, metrics)`, a pure
    function (jit it, or call it inside a jitted program). `metrics` holds the loss metrics plus
    `grad_norm/{net}` and `grad_norm_clipped/{net}`.
    """

    def loss_fn(params, mb, hparams):
        logp, entropy, values = evaluate(params, mb["obs"], mb["actions"])
        return ppo_loss(
            logp,
            mb["logp"],
            mb["advantages"],
            values,
            mb["values"],
            mb["returns"],
            entropy,
            clip_eps=hparams.clip_eps,
            ent_coef=hparams.ent_coef,
            config=config.loss,
        )

    def step(params, opt_state, minibatch, hparams: Hyperparams):
        grads, metrics = jax.grad(loss_fn, has_aux=True)(params, minibatch, hparams)
        if config.clipping == "none":
            norms = clipped_norms = {net: optax.tree.norm(g) for net, g in grads.items()}
        else:
            grads, norms, clipped_norms = CLIPPING[config.clipping](grads, hparams.max_grad_norm)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics = dict(metrics)
        metrics.update({f"grad_norm/{net}": n for net, n in norms.items()})
        metrics.update({f"grad_norm_clipped/{net}": n for net, n in clipped_norms.items()})
        return params, opt_state, metrics

    return step


def make_update(evaluate: Evaluate, optimizer: optax.GradientTransformation, config: UpdateConfig = UpdateConfig()):
    """The K-epoch × M-minibatch update as one pure function.

    Returns `update(params, opt_state, batch, key, hparams, permutations=None)
    -> (params, opt_state, metrics)` where

    * `batch` is a dict of arrays with leading axis N: obs, actions, logp (behaviour log-probs),
      values (behaviour values), advantages, returns;
    * `permutations`, if given, is an int array `[K, N]` used instead of drawing from `key`
      (for tests against a reference);
    * `metrics` are arrays of shape `[K, M]`.

    Use `check_batch(batch, config)` at the Python boundary; `update` itself is meant to be jitted.
    """
    step = make_gradient_step(evaluate, optimizer, config)
    K, M = config.num_epochs, config.num_minibatches

    def update(params, opt_state, batch, key, hparams: Hyperparams, permutations=None):
        n = batch["obs"].shape[0]
        if permutations is None:
            permutations = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, K))

        def epoch(carry, permutation):
            def minibatch_step(carry, indices):
                params, opt_state = carry
                minibatch = jax.tree.map(lambda x: jnp.take(x, indices, axis=0), batch)
                params, opt_state, metrics = step(params, opt_state, minibatch, hparams)
                return (params, opt_state), metrics

            return lax.scan(minibatch_step, carry, permutation.reshape(M, n // M))

        (params, opt_state), metrics = lax.scan(epoch, (params, opt_state), permutations)
        return params, opt_state, metrics

    return update


def check_batch(batch: dict, config: UpdateConfig) -> int:
    """Validate a flat batch before tracing; returns its size N.

    Every array shares the leading axis N; logp, values, advantages and returns are float `[N]`
    and finite; N is divisible by `num_minibatches`.
    """
    missing = [k for k in BATCH_KEYS if k not in batch]
    if missing:
        raise ValueError(f"batch is missing {missing}; it needs {list(BATCH_KEYS)}")
    n = batch["obs"].shape[0]
    for key in ("logp", "values", "advantages", "returns"):
        _checks.float_array(f"batch[{key!r}]", batch[key], (n,))
    if batch["actions"].shape[0] != n:
        raise ValueError(f"batch['actions'] must have leading axis {n}, got shape {batch['actions'].shape}")
    if n % config.num_minibatches:
        raise ValueError(
            f"num_minibatches={config.num_minibatches} must divide the batch size {n} "
            f"(num_envs × num_steps); choose a divisor of {n}"
        )
    return n
