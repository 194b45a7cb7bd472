"""Checking an NNX network against its torch twin: the weights copied by MetaBox's names, then outputs and
gradients compared in float64 (the tests of every port's networks use it)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

from jppo.metabbo.networks import load_state_dict, state_dict

TOL = 1e-10  # float64 agreement asked of every network and gradient


def randomise_affine(tmod, seed=1):
    """Norm layers start at weight 1, bias 0; give them random values so the test sees them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in tmod.named_parameters():
            if "normalizer" in name:
                p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) + 0.5)


def max_diff(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def check_against_twin(jmod, tmod, j_fn, t_fn, inputs, seed=0):
    """Load tmod's weights into jmod; compare j_fn(jmod, *x) with t_fn(tmod, *x), and the gradients of
    Σ w·out (w random) w.r.t. the inputs and every parameter. Returns the largest difference."""
    load_state_dict(jmod, tmod.state_dict())
    t_in = [torch.tensor(np.asarray(x), dtype=torch.float64, requires_grad=True) for x in inputs]
    t_out = t_fn(tmod, *t_in)
    w = np.random.default_rng(seed).normal(size=tuple(t_out.shape))
    tmod.zero_grad()
    (t_out * torch.tensor(w)).sum().backward()

    graphdef, params, rest = nnx.split(jmod, nnx.Param, ...)

    def loss(p, xs):  # copy: fresh variables in this trace, which training-mode BatchNorm may write to
        out = j_fn(nnx.merge(graphdef, p, rest, copy=True), *xs)
        return jnp.sum(out * w), out

    (_, j_out), (g_params, g_in) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(
        params, [jnp.asarray(x) for x in inputs])
    diffs = {"out": max_diff(j_out, t_out.detach().numpy())}
    for i, (gj, xt) in enumerate(zip(g_in, t_in)):
        diffs[f"d input{i}"] = max_diff(gj, xt.grad.numpy())
    j_grads = state_dict(nnx.merge(graphdef, g_params, rest))
    for name, p in tmod.named_parameters():
        diffs[f"d {name}"] = max_diff(j_grads[name], np.zeros(p.shape) if p.grad is None else p.grad.numpy())
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] < TOL, f"{worst}: {diffs[worst]:.3g}"
    assert set(j_grads) >= {n for n, _ in tmod.named_parameters()}
    return diffs[worst]


class NetworkPair(nnx.Module):
    """An actor and a critic under one torch-style prefix each, so one gradient check covers both."""

    def __init__(self, actor, critic):
        self.actor, self.critic = actor, critic

    def _torch_layout(self):
        return [("actor", self.actor), ("critic", self.critic)]


class TorchPair(torch.nn.Module):
    def __init__(self, actor, critic):
        super().__init__()
        self.actor, self.critic = actor, critic
