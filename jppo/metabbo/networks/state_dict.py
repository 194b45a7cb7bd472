"""torch `state_dict` ↔ NNX: the one loader of torch weights into jppo's networks.

A module names its tensors as its torch twin does through `_torch_layout()`: a list of `(name,
child)` pairs, a child being another such module, an `nnx.Linear` (`weight`, `bias`) or an
`nnx.Variable`. Layouts: an `nn.Linear` weight [out, in] is the NNX kernel [in, out] transposed;
every other tensor keeps its shape.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax.numpy as jnp
import numpy as np
from flax import nnx


class StateDictError(ValueError):
    """A state_dict whose names or shapes do not fit the module; lists every problem at once."""


def _entries(item, path: tuple[str, ...]) -> Iterator[tuple[str, nnx.Variable, bool]]:
    """`(torch name, variable, transposed)` for every tensor of `item`, in torch's order."""
    if isinstance(item, nnx.Linear):
        yield ".".join((*path, "weight")), item.kernel, True
        if item.bias is not None:
            yield ".".join((*path, "bias")), item.bias, False
    elif isinstance(item, nnx.Variable):
        yield ".".join(path), item, False
    elif hasattr(item, "_torch_layout"):
        for name, child in item._torch_layout():
            yield from _entries(child, path + ((name,) if name else ()))
    else:
        raise TypeError(f"{type(item).__name__} has no torch layout: load_state_dict takes the modules of "
                        f"jppo.networks and jppo.metabbo.networks (and nnx.Linear)")


def torch_layout(module) -> dict[str, tuple[int, ...]]:
    """torch name → torch shape of every tensor `module` holds (what its state_dict must contain)."""
    return {name: tuple(var[...].shape[::-1] if t else var[...].shape) for name, var, t in _entries(module, ())}


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _under(state_dict, scope: str) -> dict[str, np.ndarray]:
    """The entries of `state_dict` whose names start with `scope` ('' or a module path and '.'), without it."""
    if not scope:
        return {name: _to_numpy(value) for name, value in state_dict.items()}
    given = {name[len(scope):]: _to_numpy(value) for name, value in state_dict.items() if name.startswith(scope)}
    if not given:
        roots = sorted({name.split(".")[0] for name in state_dict})
        raise StateDictError(f"no tensors under prefix {scope!r} in the state_dict; its top-level names are {roots}")
    return given


def load_state_dict(module, state_dict, prefix: str = "") -> None:
    """Copy a torch `state_dict` (name → tensor or numpy array) into `module`, in place.

    `prefix` loads one sub-module of a larger state_dict: the entries under that dotted path (e.g.
    ``"_Actor__mu_net"``, the μ network of MetaBox's RLEPSO actor), the rest ignored. Names and
    shapes are torch's (`nn.Linear` weight [out, in], stored transposed as the NNX kernel); values
    are cast to the module's dtypes. Everything is checked before anything is written: on any
    missing name, unexpected name or shape mismatch, one `StateDictError` lists them all (with the
    prefix, as the state_dict names them) and `module` is unchanged.
    """
    entries = {name: (var, t) for name, var, t in _entries(module, ())}
    scope = prefix.rstrip(".") + "." if prefix else ""
    given = _under(state_dict, scope)
    expected = torch_layout(module)
    missing = [scope + n for n in entries if n not in given]
    unexpected = [scope + n for n in given if n not in entries]
    mismatched = [f"{scope + n}: expected {expected[n]}, got {tuple(given[n].shape)}"
                  for n in entries if n in given and tuple(given[n].shape) != expected[n]]
    if missing or unexpected or mismatched:
        lines = [f"state_dict does not fit {type(module).__name__}:"]
        lines += [f"  missing: {', '.join(missing)}"] if missing else []
        lines += [f"  unexpected: {', '.join(unexpected)}"] if unexpected else []
        lines += [f"  shape mismatch (torch layout): {'; '.join(mismatched)}"] if mismatched else []
        raise StateDictError("\n".join(lines))
    for name, (var, transposed) in entries.items():
        value = given[name].T if transposed else given[name]
        var[...] = jnp.asarray(value, var[...].dtype)


def state_dict(module) -> dict[str, np.ndarray]:
    """The inverse of `load_state_dict`: torch name → numpy array in torch's layout."""
    return {name: np.asarray(var[...]).T if t else np.asarray(var[...]) for name, var, t in _entries(module, ())}
