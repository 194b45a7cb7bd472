"""Run-time mends of MetaBox code that fails under numpy 2 (MetaBox pins numpy < 2; jppo needs numpy 2).

Nothing in MetaBox's files changes: `mend_rldeafl_for_numpy2()` patches a class of the imported
module, in this process only (a spawned worker process imports MetaBox afresh, unmended).

RLDEAFL_Optimizer's mutation operators (`environment/optimizer/rldeafl_optimizer.py`,
`Basic_mutation.construct_random_indices` / `construct_extra_random_indices`) draw one index per
individual with `Indices[i] = self.rng.choice(candidates, x_num, replace=False)`; with x_num = 1
`Indices` is 1-D, so that assigns a one-element array to a scalar slot, which numpy 1.25 deprecated and
numpy 2 refuses (ValueError / TypeError: "setting an array element with a sequence" / "only length-1
arrays ..."). The mend runs MetaBox's two methods as they are, with `self.rng` seen through a wrapper
whose `choice(..., 1, ...)` returns the drawn element instead of a one-element array: the same draw
from the same generator, so the env's random stream and results are those of numpy < 2.
"""

from __future__ import annotations

import functools


class _ScalarChoice:
    """A numpy Generator whose `choice(a, 1, ...)` gives the element, not a one-element array."""

    def __init__(self, rng):
        self._rng = rng

    def choice(self, a, size=None, *args, **kwargs):
        out = self._rng.choice(a, size, *args, **kwargs)
        return out[0] if size == 1 else out

    def __getattr__(self, name):
        return getattr(self._rng, name)


def _with_scalar_choice(method):
    @functools.wraps(method)
    def mended(self, *args, **kwargs):
        rng = self.rng
        self.rng = _ScalarChoice(rng)
        try:
            return method(self, *args, **kwargs)
        finally:
            self.rng = rng

    mended.mended_for_numpy2 = True
    return mended


def mend_rldeafl_for_numpy2() -> bool:
    """Patch RLDEAFL_Optimizer's `Basic_mutation` so it steps under numpy 2 (see the module docstring).

    Idempotent. Returns True when the class is mended (now or before), False when metaevobox's
    RLDEAFL optimizer does not import.
    """
    try:
        from metaevobox.environment.optimizer import rldeafl_optimizer
    except Exception:  # noqa: BLE001  (metaevobox pulls in many packages)
        return False
    cls = rldeafl_optimizer.Basic_mutation
    for name in ("construct_random_indices", "construct_extra_random_indices"):
        method = getattr(cls, name)
        if not getattr(method, "mended_for_numpy2", False):
            setattr(cls, name, _with_scalar_choice(method))
    return True
