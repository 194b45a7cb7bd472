"""How MetaBox's networks are called, and their outputs brought to the shapes the loop uses.

MetaBox's seven PPO agents call their actor and critic in several ways; a port keeps its networks'
conventions and compat adapts to them:

* the stored-action keyword: `fixed_action=` (most) or `fix_action=` (RLDAS, SYMBOL);
* `require_entropy=` taken (most) or not (L2T, which always returns the entropy);
* a shared trunk (GLEET, RLEMMO): the actor takes `to_critic=` and `only_critic=`; with
  `to_critic=True` it returns a fourth output, the features the critic reads, and
  `actor(state, only_critic=True)` returns those features alone;
* log-prob `[B]` or `[B, 1]`; entropy any `[B, ...]` (logged as the mean of all its entries);
* a critic returning the value, or a tuple whose last element is the value (`(detached, value)`),
  `[B]` or `[B, 1]` (or `[]` for B = 1, torch's `squeeze()`).

The keywords are read from the actor's call signature; the shapes are checked when the compiled
code is traced (the first step), and anything else is one `ValueError` naming the network and output.
"""

from __future__ import annotations

import dataclasses
import inspect

import jax


@dataclasses.dataclass(frozen=True)
class ActorCall:
    """The keywords an actor takes (see the module docstring)."""

    action_kw: str = "fixed_action"
    require_entropy: bool = True
    shared_trunk: bool = False

    @classmethod
    def of(cls, actor) -> "ActorCall":
        """Read from the signature of `actor.__call__`."""
        params = inspect.signature(actor).parameters
        names = set(params)
        open_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        if "fixed_action" in names or open_kwargs:
            action_kw = "fixed_action"
        elif "fix_action" in names:
            action_kw = "fix_action"
        else:
            raise ValueError(f"the actor ({type(actor).__name__}) must take the stored action as a keyword, "
                             f"fixed_action= or fix_action=; its __call__ takes {list(params)}")
        if "key" not in names and not open_kwargs:
            raise ValueError(f"the actor ({type(actor).__name__}) must take key= (the agent's seeded randomness, "
                             f"for sampling); its __call__ takes {list(params)}")
        trunk = {"to_critic", "only_critic"} & names
        if len(trunk) == 1:
            raise ValueError(f"the actor ({type(actor).__name__}) takes {trunk.pop()}= but not "
                             f"{({'to_critic', 'only_critic'} - trunk).pop()}=: a shared-trunk actor takes both")
        return cls(action_kw, "require_entropy" in names, bool(trunk))

    def kwargs(self, fixed_action=None, key=None) -> dict:
        """Keywords for a call that returns (action, log_prob, entropy[, features])."""
        kw = {}
        if fixed_action is not None:
            kw[self.action_kw] = fixed_action
        if key is not None:
            kw["key"] = key
        if self.require_entropy:
            kw["require_entropy"] = True
        if self.shared_trunk:
            kw["to_critic"] = True
        return kw


def batch_size(state) -> int:
    return jax.tree.leaves(state)[0].shape[0]


def _described(x):
    shape = getattr(x, "shape", None)
    return "None" if x is None else f"shape {tuple(shape)}" if shape is not None else type(x).__name__


def per_env(x, batch: int, who: str, output: str):
    """`x` as `[B]`: accepts `[B]`, `[B, 1]`, and `[]` when B = 1. `who` names the source in the error
    ("network 'actor'", "the hook _evaluate")."""
    shape = getattr(x, "shape", None)
    if shape in ((batch,), (batch, 1)) or (shape == () and batch == 1):
        return x.reshape(batch)
    raise ValueError(f"{who} returned {output} with {_described(x)}; expected ({batch},) or ({batch}, 1): "
                     f"one number per env of the batch (B = {batch})")


def leading(x, batch: int, who: str, output: str):
    """`x` unchanged, after checking that each of its arrays has a leading axis of B."""
    for leaf in jax.tree.leaves(x) if x is not None else [None]:
        shape = getattr(leaf, "shape", None)
        if not shape or shape[0] != batch:
            raise ValueError(f"{who} returned {output} with {_described(leaf)}; expected ({batch}, ...): "
                             f"a leading axis of one entry per env (B = {batch})")
    return x


def actor_outputs(out, call: ActorCall, batch: int):
    """`(action, log_prob [B], entropy [B, ...], features or None)` from an actor's return value."""
    names = ("action", "log_prob", "entropy") + (("critic features",) if call.shared_trunk else ())
    n = len(out) if isinstance(out, (tuple, list)) else 1
    if n != len(names):
        why = " (it takes to_critic=, so it shares its trunk with the critic)" if call.shared_trunk else ""
        raise ValueError(f"network 'actor' must return ({', '.join(names)}) when called with "
                         f"{', '.join(f'{k}=' for k in call.kwargs(key=0))}{why}; it returned {n} output(s)")
    action = leading(out[0], batch, "network 'actor'", "action")
    logp = per_env(out[1], batch, "network 'actor'", "log_prob")
    entropy = leading(out[2], batch, "network 'actor'", "entropy")
    return action, logp, entropy, (out[3] if call.shared_trunk else None)


def critic_value(out, batch: int):
    """The value `[B]` from a critic's return value (a tuple's last element is the value)."""
    value = out[-1] if isinstance(out, (tuple, list)) else out
    return per_env(value, batch, "network 'critic'", "the value" if value is out else "the value (its last output)")
