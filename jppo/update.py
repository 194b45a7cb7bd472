"""The PPO update: K epochs × M minibatches of clipped-loss gradient steps, one compiled function.

Each epoch draws a permutation of the N samples (`jax.random.permutation`), splits it into M
minibatches of N/M, and takes one gradient step per minibatch; both loops are `lax.scan`s, so the
whole update is a single XLA program. Per-sample work is batched: `evaluate` sees a whole
minibatch at once.

Sweepable hyperparameters are traced, never static: `Hyperparams.clip_eps`, `ent_coef`, `vf_coef`,
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
    vf_coef: jax.Array | float = 0.5  # CleanRL's; MetaBox's loop weighs the value loss 1


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
        check_clipping(self.clipping)


def check_clipping(clipping: str) -> str:
    if clipping not in CLIPPING:
        raise ValueError(f"clipping must be one of {list(CLIPPING)}, got {clipping!r}")
    return clipping


# loss(params, batch, hparams) -> (scalar loss, aux): what one gradient step minimises
Loss = Callable[[Any, Any, Hyperparams], tuple[jax.Array, Any]]


def minibatch_loss(evaluate: Evaluate, config: LossConfig) -> Loss:
    """The clipped PPO loss (`jppo.loss.ppo_loss`) of a minibatch of `BATCH_KEYS`: `(loss, metrics)`."""

    def loss(params, mb, hparams: Hyperparams):
        logp, entropy, values = evaluate(params, mb["obs"], mb["actions"])
        return ppo_loss(logp, mb["logp"], mb["advantages"], values, mb["values"], mb["returns"], entropy,
                        clip_eps=hparams.clip_eps, ent_coef=hparams.ent_coef, vf_coef=hparams.vf_coef,
                        config=config)

    return loss


def make_gradient_step(loss: Loss, optimizer: optax.GradientTransformation, clipping: str = "global"):
    r"""One gradient step on `loss`:

        g = ∇_θ loss(θ, batch, hparams),   g ← clip(g, hparams.max_grad_norm),   θ ← θ + optimizer(g)

    `clipping` names one of `jppo.optim.CLIPPING`: 'global' (one norm over all networks, optax),
    'per_network' (MetaBox) or 'none'. Returns `step(params, opt_state, batch, hparams) -> (params,
    opt_state, aux, norms, clipped_norms)`, a pure function (jit it, or call it inside a jitted program):
    `aux` is the loss's; `norms` and `clipped_norms` map each network to its gradient's L2 norm before
    and after clipping.
    """
    clip = CLIPPING[check_clipping(clipping)]

    def step(params, opt_state, batch, hparams: Hyperparams):
        grads, aux = jax.grad(loss, has_aux=True)(params, batch, hparams)
        grads, norms, clipped_norms = clip(grads, hparams.max_grad_norm)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, aux, norms, clipped_norms

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
    step = make_gradient_step(minibatch_loss(evaluate, config.loss), optimizer, config.clipping)
    K, M = config.num_epochs, config.num_minibatches

    def update(params, opt_state, batch, key, hparams: Hyperparams, permutations=None):
        n = batch["obs"].shape[0]
        if permutations is None:
            permutations = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, K))

        def epoch(carry, permutation):
            def minibatch_step(carry, indices):
                params, opt_state = carry
                minibatch = jax.tree.map(lambda x: jnp.take(x, indices, axis=0), batch)
                params, opt_state, metrics, norms, clipped_norms = step(params, opt_state, minibatch, hparams)
                metrics = {**metrics, **{f"grad_norm/{net}": n for net, n in norms.items()},
                           **{f"grad_norm_clipped/{net}": n for net, n in clipped_norms.items()}}
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
