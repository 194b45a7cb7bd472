"""The clipped PPO loss, with every switch that differs between well-known implementations.

Defaults follow CleanRL's PPO; the MetaBox agent is `value_loss_factor=1, normalize_advantages=False,
value_clip=True` with the policy's epsilon (`METABOX`), and the weights `vf_coef=1, ent_coef=0` (traced
arguments of `ppo_loss`, like `clip_eps`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Structural switches of the loss (static: changing one recompiles). The weights of the loss's terms
    (`clip_eps`, `vf_coef`, `ent_coef`) are `ppo_loss`'s traced arguments instead.

    Attributes:
      value_loss_factor: c in  L_V = c · mean(...)  (0.5 in CleanRL / SB3, 1 in MetaBox).
      value_clip: clip the value prediction around the old one (max-style, see `ppo_loss`).
      value_clip_eps: the value clip range; None uses the policy's `clip_eps`.
      normalize_advantages: standardise advantages over the (mini)batch.
    """

    value_loss_factor: float = 0.5
    value_clip: bool = True
    value_clip_eps: float | None = None
    normalize_advantages: bool = True


METABOX = LossConfig(value_loss_factor=1.0, value_clip=True, value_clip_eps=None, normalize_advantages=False)


def ppo_loss(
    logp,
    old_logp,
    advantages,
    values,
    old_values,
    returns,
    entropy,
    *,
    clip_eps,
    ent_coef=0.0,
    vf_coef=0.5,
    config: LossConfig = LossConfig(),
    mask=None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    r"""Clipped-surrogate PPO loss over a batch of `N` samples (inputs `[N]`; `entropy` `[N, ...]`).

        ρ = exp(logp - old_logp)
        Â = (A - mean A) / (std A + 1e-8)       if normalize_advantages, else A
        L_π = -mean(min(ρ Â, clip(ρ, 1-ε, 1+ε) Â))
        L_V = c · mean((V - G)²)                                              value_clip off
        L_V = c · mean(max((V - G)², (V_old + clip(V - V_old, -ε_v, ε_v) - G)²))   value_clip on
        H   = mean(entropy)            (over every entry: an entropy per dimension or per particle,
                                        `[N, A]` or `[N, P, 1]`, counts each entry once, as MetaBox logs it)
        L   = L_π + vf_coef · L_V - ent_coef · H

    `advantages`, `returns`, `old_logp` and `old_values` are treated as constants (gradients are
    stopped). `clip_eps`, `ent_coef` and `vf_coef` (0.5 in CleanRL, 1 in MetaBox) may be traced, so
    sweeping them does not recompile.
    `mask` (`[N]`, optional) weights samples 0/1: every mean (and the advantage statistics) is
    taken over the samples with mask 1, as if the others were not in the batch.

    Metrics (no gradient): policy_loss, value_loss, entropy, approx_kl_k1 = mean(-log ρ),
    approx_kl_k3 = mean(ρ - 1 - log ρ), approx_kl_metabox = mean(½ (log ρ)²),
    clip_fraction = mean(|ρ - 1| > ε), explained_variance = 1 - Var(G - V) / Var(G).

    Returns:
      `(loss, metrics)`.
    """
    sg = jax.lax.stop_gradient
    old_logp, advantages, old_values, returns = map(sg, (old_logp, advantages, old_values, returns))
    weights = None if mask is None else sg(jnp.asarray(mask, logp.dtype))

    def mean(x):
        return _mean(x, weights)

    if config.normalize_advantages:
        centred = advantages - mean(advantages)
        advantages = centred / (jnp.sqrt(mean(centred**2)) + 1e-8)
    log_ratio = logp - old_logp
    ratio = jnp.exp(log_ratio)
    surrogate = ratio * advantages
    clipped_surrogate = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    policy_loss = -mean(jnp.minimum(surrogate, clipped_surrogate))

    squared_error = (values - returns) ** 2
    if config.value_clip:
        eps_v = clip_eps if config.value_clip_eps is None else config.value_clip_eps
        clipped_values = old_values + jnp.clip(values - old_values, -eps_v, eps_v)
        squared_error = jnp.maximum(squared_error, (clipped_values - returns) ** 2)
    value_loss = config.value_loss_factor * mean(squared_error)

    mean_entropy = mean(_per_sample(entropy))
    loss = policy_loss + vf_coef * value_loss - ent_coef * mean_entropy

    log_ratio, ratio, v = sg(log_ratio), sg(ratio), sg(values)
    metrics = {
        "loss": sg(loss),
        "policy_loss": sg(policy_loss),
        "value_loss": sg(value_loss),
        "entropy": sg(mean_entropy),
        "approx_kl_k1": mean(-log_ratio),
        "approx_kl_k3": mean(ratio - 1.0 - log_ratio),
        "approx_kl_metabox": mean(0.5 * log_ratio**2),
        "clip_fraction": mean((jnp.abs(ratio - 1.0) > clip_eps).astype(ratio.dtype)),
        "explained_variance": explained_variance(v, returns, weights),
    }
    return loss, metrics


def explained_variance(predictions, targets, weights=None) -> jax.Array:
    """1 - Var(targets - predictions) / Var(targets) (over samples of weight 1); NaN when the
    targets are constant."""

    def var(x):
        return _mean((x - _mean(x, weights)) ** 2, weights)

    var_targets = var(targets)
    return jnp.where(var_targets == 0, jnp.nan, 1.0 - var(targets - predictions) / var_targets)


def _per_sample(x):
    """`[N, ...]` -> `[N]`: the mean of each sample's entries (the mean of the result is then the mean
    of all entries, also under a 0/1 sample mask, since every sample has as many)."""
    return x.reshape(x.shape[0], -1).mean(axis=1)


def _mean(x, weights=None):
    """The mean of `x`, over the samples of weight 1 when `weights` (0/1) is given."""
    return x.mean() if weights is None else (x * weights).sum() / weights.sum()
