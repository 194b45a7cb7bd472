"""NNX networks with MetaBox's call contract, and a loader for torch MLP weights.

Contract (as MetaBox's torch networks):
  actor(state, fixed_action=None, require_entropy=False, *, key=None) -> (action, log_prob, entropy)
      samples with `key` when `fixed_action` is None, else evaluates `fixed_action`;
  critic(state) -> value, or a pair whose last element is the value.
The agent owns the randomness and passes `key`. The other conventions of MetaBox's agents
(`fix_action=`, shared trunks, `[B, 1]` outputs, ...) are listed in `compat.conventions`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jppo.distributions import Normal
from jppo.envs.base import default_float


class MLP(nnx.Module):
    """Linear layers with ReLU between them (MetaBox's `MLP` with 'ReLU' activations)."""

    def __init__(self, sizes, *, rngs: nnx.Rngs):
        dtype = default_float()
        self.layers = nnx.List([nnx.Linear(a, b, dtype=dtype, param_dtype=dtype, rngs=rngs)
                                for a, b in zip(sizes[:-1], sizes[1:])])

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = jax.nn.relu(layer(x))
        return self.layers[-1](x)


class ClampedGaussianActor(nnx.Module):
    r"""RLEPSO's actor: μ = (tanh(f_μ(s)) + 1)/2, σ = (tanh(f_σ(s)) + 1)/2 · (σ_max - σ_min) + σ_min,
    action = clamp(a ~ N(μ, σ), 0, 1), log π = Σ_i log N(action_i; μ_i, σ_i).
    """

    def __init__(self, feature_dim, action_dim, hidden=(64, 32), *, rngs, min_sigma=0.01, max_sigma=0.7):
        self.mu_net = MLP([feature_dim, *hidden, action_dim], rngs=rngs)
        self.sigma_net = MLP([feature_dim, *hidden, action_dim], rngs=rngs)
        self.min_sigma, self.max_sigma = min_sigma, max_sigma

    def policy(self, state) -> Normal:
        mu = (jnp.tanh(self.mu_net(state)) + 1.0) / 2.0
        sigma = (jnp.tanh(self.sigma_net(state)) + 1.0) / 2.0 * (self.max_sigma - self.min_sigma) + self.min_sigma
        return Normal(mu, sigma)

    def choose(self, policy: Normal, key):
        return policy.clamped_sample(key, 0.0, 1.0)

    def __call__(self, state, fixed_action=None, require_entropy=False, *, key=None):
        policy = self.policy(state)
        action = self.choose(policy, key) if fixed_action is None else fixed_action
        entropy = policy.entropy() if require_entropy else None
        return action, policy.log_prob(action), entropy


class Critic(nnx.Module):
    """RLEPSO's critic: returns `(value detached, value)`."""

    def __init__(self, feature_dim, hidden=(16, 8), *, rngs):
        self.value_head = MLP([feature_dim, *hidden, 1], rngs=rngs)

    def __call__(self, state):
        value = self.value_head(state)[..., 0]
        return jax.lax.stop_gradient(value), value


def load_torch_state_dict(mlp: MLP, state_dict, prefix: str = "") -> None:
    """Copy a torch MLP's `nn.Linear` weights into an NNX `MLP` of matching sizes.

    `state_dict` is a torch `state_dict()` (tensors or numpy arrays). `prefix` selects one
    sub-module by its dotted path, e.g. ``"_Actor__mu_net"`` for the mu network of MetaBox's RLEPSO
    actor; its Linear layers (``<module>.weight`` of shape (out, in) and ``<module>.bias``), in
    order of appearance, become the MLP's layers (kernel (in, out) = weight.T). Parameter-free
    modules (Dropout, activations) have no entries and are skipped.

    Everything is checked before anything is written, so a failed load leaves `mlp` unchanged.

    Raises:
      ValueError: nothing under `prefix` (the message lists the top-level names that exist); a
        Linear layer without its weight or bias; an entry that is not a Linear weight or bias
        (e.g. a BatchNorm buffer); a different number of layers; a weight or bias whose shape
        does not fit the corresponding NNX layer.
    """
    scope = prefix if not prefix or prefix.endswith(".") else prefix + "."
    modules: dict[str, dict[str, np.ndarray]] = {}  # module path -> {"weight", "bias"}, in order
    for key, value in state_dict.items():
        if not key.startswith(scope):
            continue
        module, _, leaf = key[len(scope):].rpartition(".")
        if leaf not in ("weight", "bias"):
            raise ValueError(f"unexpected key {key!r} in the state_dict under {scope!r}: only Linear layers "
                             f"(weight, bias) can be loaded into an MLP")
        value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
        modules.setdefault(module, {})[leaf] = np.asarray(value)
    if not modules:
        roots = sorted({k.split(".")[0] for k in state_dict})
        raise ValueError(f"no tensors under prefix {scope!r} in the state_dict; its top-level names are {roots}")
    for module, leaves in modules.items():
        for leaf in ("weight", "bias"):
            if leaf not in leaves:
                raise ValueError(f"missing key {scope + module + '.' + leaf!r}: every layer of the MLP has a "
                                 f"weight and a bias")
        if leaves["weight"].ndim != 2 or leaves["bias"].ndim != 1:
            raise ValueError(f"{scope + module!r} is not a Linear layer: weight {leaves['weight'].shape}, "
                             f"bias {leaves['bias'].shape}")
    names = list(modules)
    if len(names) != len(mlp.layers):
        raise ValueError(f"the state_dict has {len(names)} Linear layer(s) under {scope!r} ({names}), "
                         f"the MLP has {len(mlp.layers)}")
    for i, (name, layer) in enumerate(zip(names, mlp.layers)):
        w, b = modules[name]["weight"], modules[name]["bias"]
        kernel, bias = layer.kernel[...].shape, layer.bias[...].shape
        if w.T.shape != kernel or b.shape != bias:
            raise ValueError(f"layer {i} ({scope + name!r}): torch weight {w.shape} (out, in) and bias {b.shape} "
                             f"do not fit the NNX kernel {kernel} (in, out) and bias {bias}")
    for name, layer in zip(names, mlp.layers):
        layer.kernel[...] = jnp.asarray(modules[name]["weight"].T, layer.kernel[...].dtype)
        layer.bias[...] = jnp.asarray(modules[name]["bias"], layer.bias[...].dtype)


# MetaBox's own networks (metaevobox/baseline/metabbo): modules, the GLEET / RLEPSO / RLDAS actors and
# critics with MetaBox's call conventions and torch parameter names, and the state_dict loader.
from jppo.metabbo.networks import (  # noqa: E402,F401
    MLP as MetaBoxMLP,
    BatchNorm1d,
    EmbeddingNet,
    FFandNormsubLayer,
    GLEETActor,
    GLEETCritic,
    InstanceNorm1d,
    MultiHeadAttention,
    MultiHeadAttentionLayerforCritic,
    MultiHeadAttentionsubLayer,
    MultiHeadCompat,
    MultiHeadEncoder,
    Normalization,
    PositionalEncoding,
    RLDASActor,
    RLDASCritic,
    RLEPSOActor,
    RLEPSOCritic,
    SkipConnection,
    StateDictError,
    gleet_networks,
    load_state_dict,
    rldas_observation,
    state_dict,
    torch_layout,
)
