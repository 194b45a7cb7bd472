"""MetaBox's networks (metaevobox 2.0.2) in Flax NNX, and the loader of their torch weights.

Ports of `metaevobox/baseline/metabbo/networks.py` and of the actors and critics of MetaBox's
agents: same arithmetic, same call conventions, same initial distributions (torch `nn.Linear`:
weight and bias U(±1/√fan_in); attention matrices U[0, 1) as `torch.rand`; affine norms weight 1,
bias 0). Parameters are float64 when `jax_enable_x64` is on (MetaBox trains in float64), else
float32. They are built from jppo's own pieces: the one `MLP` (`MLP.from_config` reads MetaBox's
layer configs), the Gaussian head `bounded_normal` / `BoundedGaussianActor`, and the distributions
of `jppo.distributions`.

One module per role:

    layers       torch-style layers and init: torch_linear, norms, FeedForward, EmbeddingNet, ...
    attention    multi-head attention, encoder layers
    acting       the action an actor scores: its sample (drawn with `key=`) or the one it is given
    gleet, rlepso, rldas, l2t, rldeafl, symbol, rlemmo
                 each agent's actor and critic (symbol: also its grammar and the recorded UpdateRule)
    state_dict   `load_state_dict(module, state_dict, prefix='')`: a torch `state_dict()` (tensors
                 or numpy arrays) under MetaBox's own names (`encoder.0.MHA_sublayer.MHA.W_query`,
                 `_Actor__mu_net.net.layer0-linear.weight`, ...); `state_dict(module)`, its inverse

Call contract (MetaBox's): `actor(state, fixed_action=None, require_entropy=False, *, key=None)`
samples with `key` when `fixed_action` is None, else evaluates `fixed_action`; `critic(state)`
returns the value, or a pair whose last element is the value. Each agent keeps its own variations
(`fix_action=`, shared trunks, `[B, 1]` outputs; `compat.conventions` reads them).
"""

from jppo.networks import ACTIVATIONS, MLP, BoundedGaussianActor, bounded_normal
from jppo.metabbo.networks.acting import TorchCategorical, chosen_action, torch_categorical
from jppo.metabbo.networks.attention import (
    FFandNormsubLayer,
    MultiHeadAttention,
    MultiHeadAttentionLayerforCritic,
    MultiHeadAttentionsubLayer,
    MultiHeadCompat,
    MultiHeadEncoder,
)
from jppo.metabbo.networks.gleet import GLEETActor, GLEETCritic, gleet_networks
from jppo.metabbo.networks.l2t import L2TActor, L2TCritic
from jppo.metabbo.networks.layers import (
    BatchNorm1d,
    EmbeddingNet,
    FeedForward,
    InstanceNorm1d,
    LSTM,
    Normalization,
    PositionalEncoding,
    SkipConnection,
    torch_linear,
)
from jppo.metabbo.networks.rldas import RLDASActor, RLDASCritic, rldas_observation
from jppo.metabbo.networks.rldeafl import RLDEAFLActor, RLDEAFLCritic, RLDEAFLFeatureExtractor, encode_cost
from jppo.metabbo.networks.rlemmo import RLEMMOActor, RLEMMOCritic, rlemmo_networks
from jppo.metabbo.networks.rlepso import RLEPSOActor, RLEPSOCritic
from jppo.metabbo.networks.symbol import SYMBOLActor, SYMBOLCritic, UpdateRule
from jppo.metabbo.networks.state_dict import StateDictError, load_state_dict, state_dict, torch_layout

__all__ = [
    "ACTIVATIONS", "MLP", "BoundedGaussianActor", "bounded_normal", "chosen_action",
    "TorchCategorical", "torch_categorical",
    "BatchNorm1d", "EmbeddingNet", "FeedForward", "InstanceNorm1d", "LSTM", "Normalization", "PositionalEncoding",
    "SkipConnection", "torch_linear",
    "FFandNormsubLayer", "MultiHeadAttention", "MultiHeadAttentionLayerforCritic", "MultiHeadAttentionsubLayer",
    "MultiHeadCompat", "MultiHeadEncoder",
    "GLEETActor", "GLEETCritic", "gleet_networks",
    "RLEPSOActor", "RLEPSOCritic",
    "L2TActor", "L2TCritic",
    "RLDASActor", "RLDASCritic", "rldas_observation",
    "RLDEAFLActor", "RLDEAFLCritic", "RLDEAFLFeatureExtractor", "encode_cost",
    "RLEMMOActor", "RLEMMOCritic", "rlemmo_networks",
    "SYMBOLActor", "SYMBOLCritic", "UpdateRule",
    "StateDictError", "load_state_dict", "state_dict", "torch_layout",
]
