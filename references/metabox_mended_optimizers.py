"""MetaBox optimizer envs that carry their numpy-2 mend into every process they are unpickled in.

`references.metabox_mends.mend_rldeafl_for_numpy2()` patches MetaBox's RLDEAFL mutation operators in
the process that calls it. Under MetaBox's Trainer in 'subproc' mode (and the Tester's Ray modes)
the env is pickled and stepped in a fresh interpreter that imports MetaBox afresh, unmended, so its
first mutation fails under numpy 2 (`construct_extra_random_indices` puts `rng.choice(..., 1)`, a
one-element array, into a scalar slot). `RLDEAFL_Optimizer` here is MetaBox's `RLDEAFL_Optimizer`
itself with one addition: before it builds its operators (`init_population`, at every reset) and
before each step (`update`) it applies the mend in the process it is running in (idempotent; a
cheap attribute check once applied). A pickled env names this class, so a worker that unpickles it
imports this module and mends its own copy of MetaBox. Nothing in MetaBox's files changes; the
draws are MetaBox's own (see metabox_mends), so results are those of numpy < 2. `str()` of the
optimizer is MetaBox's ("RLDEAFL_Optimizer"), so MetaBox's Trainer and Tester log it under its name.

`MFEA` is MetaBox's multi-task baseline (`baseline/bbo/mfea.py`), which fails under numpy 2 in the
same way: `Individual.update_evaluate` returns an offspring's fitness as a one-element array and
`run_episode` assigns it to a scalar slot (`factorial_costs[population_cnt + i, j] = factorial_cost`).
`mend_mfea_for_numpy2()` makes `update_evaluate` return that fitness as a 0-d array (the same value,
which numpy 2 assigns); `MFEA` here applies it before each episode. `update_evaluate` has no other
caller in MetaBox.

Importing this module needs metaevobox.
"""

from __future__ import annotations

import functools

from metaevobox.baseline.bbo import mfea
from metaevobox.environment.optimizer import rldeafl_optimizer

from references.metabox_mends import mend_rldeafl_for_numpy2

mend_rldeafl_for_numpy2()


class RLDEAFL_Optimizer(rldeafl_optimizer.RLDEAFL_Optimizer):  # noqa: N801  (MetaBox's name)
    """MetaBox's RLDEAFL optimizer env, mended for numpy 2 in whichever process runs it."""

    def init_population(self, problem):
        mend_rldeafl_for_numpy2()
        return super().init_population(problem)

    def update(self, action, problem):
        mend_rldeafl_for_numpy2()
        return super().update(action, problem)


def mend_mfea_for_numpy2() -> None:
    """Patch MetaBox's `mfea.Individual.update_evaluate` to return a one-element fitness as a 0-d array
    (see the module docstring). Idempotent."""
    method = mfea.Individual.update_evaluate
    if getattr(method, "mended_for_numpy2", False):
        return

    @functools.wraps(method)
    def update_evaluate(self):
        task, fitness = method(self)
        return task, fitness.reshape(()) if fitness.size == 1 else fitness

    update_evaluate.mended_for_numpy2 = True
    mfea.Individual.update_evaluate = update_evaluate


mend_mfea_for_numpy2()


class MFEA(mfea.MFEA):
    """MetaBox's MFEA baseline, mended for numpy 2 in whichever process runs it."""

    def run_episode(self, mto_tasks):
        mend_mfea_for_numpy2()
        return super().run_episode(mto_tasks)
