"""Orbax checkpoints of a training run: the whole `TrainState` (parameters, optimizer state, env
state, RNG key, counters) plus the config and a format version, so that a resumed run continues
exactly as if it had never stopped.

States are saved as host arrays (`jppo.devices.gather` first for a state laid out over devices),
so a run restores on any number of devices. In a run of several processes only process 0 keeps a
`Checkpointer` (orbax is told it works alone).
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from jppo.config import TrainConfig

FORMAT_VERSION = 3  # 2: NStepState carries per-env return statistics; 3: and the problem schedule (epoch, episode)


class CheckpointError(RuntimeError):
    pass


def _to_storable(state):
    # Typed PRNG keys are stored as their raw key data, on the host.
    return state.replace(key=np.asarray(jax.random.key_data(state.key)))


# Parameter names changed since checkpoints were written, old -> new. GLEET's heads (actor='gleet') kept
# their Linear layers under `linears` (MetaBox's own MLP) until they became jppo's one MLP (`layers`).
RENAMED = {"linears": "layers"}


def _renamed(tree):
    """`tree` (nested dicts, as orbax reads a checkpoint without a template) with the keys of RENAMED renamed."""
    if isinstance(tree, dict):
        return {RENAMED.get(k, k): _renamed(v) for k, v in tree.items()}
    return tree


# Hyperparameters a state carries since sweeps (`jppo.learner.SweepParams`) that earlier checkpoints held
# as constants of their config: a checkpoint without them takes the template's values, which the run's
# config gives, as the run used them.
ADDED_SWEEP_FIELDS = ("vf_coef", "max_grad_norm", "gamma", "gae_lambda")


def _completed(saved, template):
    """`saved` with the ADDED_SWEEP_FIELDS it lacks taken from `template` (both nested dicts)."""
    if not isinstance(saved, dict) or not isinstance(template, dict):
        return saved
    out = {k: _completed(v, template.get(k)) for k, v in saved.items()}
    if "sweep" in template and isinstance(out.get("sweep"), dict):
        missing = {k: v for k, v in template["sweep"].items() if k in ADDED_SWEEP_FIELDS and k not in out["sweep"]}
        out["sweep"] = {**out["sweep"], **missing}
    return out


class Checkpointer:
    """Saves every call to `save`, keeps the last `keep`; `restore` picks the newest readable one."""

    def __init__(self, directory: str | Path, keep: int = 3):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        if jax.process_count() > 1:  # only process 0 writes: orbax is told it works alone
            self.directory.mkdir(parents=True, exist_ok=True)
            me = jax.process_index()
            alone = ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})
            options = dataclasses.replace(options, create=False, multiprocessing_options=alone)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, state, config: TrainConfig, num_seeds: int = 1, grid: list | None = None) -> None:
        """Save `state` under its update count; a step already saved is kept (a run stopped right after a
        checkpoint saves the same state again). `num_seeds` and `grid` (`jppo.sweep.Grid.to_json`) say
        which runs the state's leading axis holds."""
        step = int(jax.numpy.ravel(state.update)[0])
        if step in self.manager.all_steps():
            return
        meta = {"format_version": FORMAT_VERSION, "config": config.to_dict(), "update": step, "num_seeds": num_seeds,
                "grid": grid or []}
        self.manager.save(
            step, args=ocp.args.Composite(state=ocp.args.StandardSave(_to_storable(state)), meta=ocp.args.JsonSave(meta)),
            force=True,
        )
        self.manager.wait_until_finished()

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def read_meta(self, step: int) -> dict:
        """The JSON beside a checkpoint: format_version, config, update, num_seeds, grid (absent before sweeps)."""
        meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        if meta.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} has format version {meta.get('format_version')}, "
                f"this jppo reads version {FORMAT_VERSION}"
            )
        return meta

    def read_config(self, step: int) -> TrainConfig:
        return TrainConfig.from_dict(self.read_meta(step)["config"])

    def restore(self, template, config: TrainConfig | None = None):
        """`(state, config)` from the newest checkpoint that reads back.

        `template` is a state of the right structure (e.g. `trainer.init(key)`). A checkpoint that
        fails to read (truncated, corrupt) is reported with a warning and the next older one is
        tried. If `config` is given, a saved config that differs in shape-changing fields is refused.
        """
        steps = self.steps()
        if not steps:
            raise CheckpointError(f"no checkpoints in {self.directory}")
        for step in reversed(steps):
            try:
                saved_config = self.read_config(step)
            except CheckpointError:
                raise
            except Exception as err:  # orbax raises many kinds for damaged files
                self._warn_damaged(step, err)
                continue
            if config is not None:
                diff = saved_config.shape_differences(config)
                if diff:
                    details = ", ".join(f"{k}: saved {a!r} vs now {b!r}" for k, (a, b) in diff.items())
                    raise CheckpointError(f"cannot resume from {self.directory}: the config changes shapes ({details})")
            try:
                restored = self._restore(step, _to_storable(template))
            except Exception as err:
                self._warn_damaged(step, err)
                continue
            return restored.replace(key=jax.random.wrap_key_data(restored.key)), saved_config
        raise CheckpointError(f"no readable checkpoint in {self.directory} (tried steps {steps})")

    def _restore(self, step: int, target):
        """The state saved at `step`, laid out as `target`; a checkpoint written under older parameter
        names (RENAMED) or without the hyperparameters added since (ADDED_SWEEP_FIELDS) is read as saved,
        renamed and completed, and laid out the same way."""
        def read(template=None):
            return self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(template)))["state"]

        try:
            return read(target)
        except Exception as err:
            saved = read()
            try:
                upgraded = _completed(_renamed(saved), ocp.tree.serialize_tree(target, keep_empty_nodes=True))
                leaves = jax.tree.leaves(ocp.tree.deserialize_tree(upgraded, target, keep_empty_nodes=True))
            except Exception:
                raise err from None  # not a rename: the first error says what is wrong
            if [(np.shape(a), a.dtype) for a in leaves] != [(np.shape(b), b.dtype) for b in jax.tree.leaves(target)]:
                raise err
            return jax.tree.unflatten(jax.tree.structure(target), leaves)

    def _warn_damaged(self, step, err):
        warnings.warn(
            f"checkpoint {self.directory / str(step)} is corrupt or truncated and was skipped "
            f"({type(err).__name__}: {str(err)[:200]})",
            stacklevel=3,
        )

    def close(self):
        self.manager.close()
