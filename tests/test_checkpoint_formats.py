"""Checkpoints written by earlier versions of jppo restore: what changed in the saved state since, and how
`Checkpointer.restore` reads the old layout."""

from __future__ import annotations

import jax
import numpy as np
import orbax.checkpoint as ocp

from jppo.checkpoint import Checkpointer, _to_storable
from jppo.config import TrainConfig
from jppo.learner import SweepParams
from jppo.train import Trainer

CONFIG = TrainConfig(num_envs=2, num_steps=4, total_steps=8)


def _rewrite(ckpt: Checkpointer, tree) -> None:
    """Replace checkpoint 0's state by `tree` (nested dicts), keeping its metadata."""
    meta = ckpt.read_meta(0)
    ckpt.manager.delete(0)
    ckpt.manager.save(0, args=ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)))
    ckpt.manager.wait_until_finished()


def _saved_tree(state):
    return ocp.tree.serialize_tree(_to_storable(state), keep_empty_nodes=True)


def _keys_renamed(tree, old: str, new: str):
    if isinstance(tree, dict):
        return {new if k == old else k: _keys_renamed(v, old, new) for k, v in tree.items()}
    return tree


def test_checkpoint_under_the_old_mlp_names_restores(tmp_path, recwarn):
    """Checkpoints of actor='gleet' written before GLEET's heads became the one MLP keep those heads'
    Linear layers under `linears` (MetaBox's MLP); `Checkpointer.restore` reads them under today's name,
    `layers`. Simulated here on CartPole's MLPs, every `layers` saved as `linears`."""
    trainer = Trainer(CONFIG)
    state = trainer.init(jax.random.key(0))
    ckpt = Checkpointer(tmp_path)
    ckpt.save(state, CONFIG)
    _rewrite(ckpt, _keys_renamed(_saved_tree(state), "layers", "linears"))
    restored, _ = ckpt.restore(trainer.init(jax.random.key(1)))
    ckpt.close()
    assert not [w for w in recwarn if "corrupt" in str(w.message)]
    assert jax.tree.structure(restored.params) == jax.tree.structure(state.params)
    saved = (state.params, state.opt_state)
    for a, b in zip(jax.tree.leaves((restored.params, restored.opt_state)), jax.tree.leaves(saved), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_checkpoint_from_before_sweeps_restores_with_the_configs_hyperparameters(tmp_path, recwarn):
    """Checkpoints written before sweeps hold learning_rate, ent_coef and clip_eps as data but not vf_coef,
    max_grad_norm, gamma, gae_lambda (constants of the config then): they restore with the config's values,
    everything else as saved."""
    trainer = Trainer(CONFIG)
    state = trainer.init(jax.random.key(0))
    ckpt = Checkpointer(tmp_path)
    ckpt.save(state, CONFIG)
    old = _saved_tree(state)
    for name in ("vf_coef", "max_grad_norm", "gamma", "gae_lambda"):
        del old["sweep"][name]
    _rewrite(ckpt, old)
    restored, saved_config = ckpt.restore(trainer.init(jax.random.key(1)), CONFIG)
    ckpt.close()
    assert not [w for w in recwarn if "corrupt" in str(w.message)]
    assert saved_config == CONFIG
    from_config = SweepParams.from_config(CONFIG)
    for name in ("vf_coef", "max_grad_norm", "gamma", "gae_lambda"):
        np.testing.assert_array_equal(np.asarray(getattr(restored.sweep, name)), np.asarray(getattr(from_config, name)))
    for a, b in zip(jax.tree.leaves(_to_storable(restored)), jax.tree.leaves(_to_storable(state)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
