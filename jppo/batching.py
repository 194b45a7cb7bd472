r"""Which problems a batch of environments works on, episode after episode: MetaBox's Trainer modes.

MetaBox's Trainer (metaevobox 2.0.2, `trainer.py`) trains on a set of N problems in epochs. An epoch
is one pass over the set in a fresh random order (`self.train_set.shuffle()`, trainer.py:246: the
dataset's `np.random.permutation(N)`, bbob_dataset.py:256-271); each batch of the pass is one
`train_episode` call (trainer.py:250-263) whose B environments get the seeds (trainer.py:239-252)

    seed_i = seed + 100·epoch + 5·(i + B·k),    i = 0..B-1,   k = the batch's index in the epoch

(`seed` is config.seed, 3849 by default, config.py:181; B is `train_batch_size`). The modes:

* 'single' (MetaBox's default `train_mode`, config.py:166): the set is read one problem at a time
  (trainer.py:233-235) and the batch is B copies of problem order[k] (trainer.py:254-255):
  N batch episodes an epoch.
* 'multi': batch k is the B problems order[k·B : (k+1)·B] (trainer.py:236-237, 256-257, the
  dataset's `__getitem__`, bbob_dataset.py:212-229): N / B batch episodes an epoch. MetaBox's last
  batch is short when B does not divide N; a compiled batch has one size, so here B must divide N.
* 'mixed' (jppo's own): env i always works on problem i mod N; the order never changes, and every
  batch episode is one pass over the problems (B must be a multiple of N, so each weighs the same).

Here the epoch's order is `jax.random.permutation(fold_in(order_key, epoch), N)` and env i's seed
becomes its reset key `fold_in(swarm_key, seed_i)`: within a run one seed always gives the same
initial swarm, as MetaBox's seed does (it seeds the optimizer's RandomState,
learnable_optimizer.py:77-82). One difference: MetaBox's seed also drives every later draw of the
optimizer; here the steps draw from the trainer's key. 'mixed' keeps jppo's reset keys (split from
the trainer's key).

The problems come from an environment whose params hold a suite (`Environment.num_problems` is
N, and `batch_params(params, N)` gives entry p = problem p); nothing here is specific to one optimizer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jppo.config import BATCHINGS

SEED_PER_EPOCH, SEED_PER_ENV = 100, 5  # MetaBox's epoch_seed and id_seed (trainer.py:239-240)


@struct.dataclass
class Schedule:
    """Where the run is in MetaBox's epochs."""

    key: jax.Array  # raw key data (uint32; checkpoints store it as is): the orders and reset keys derive from it
    epoch: jax.Array  # [] int32, MetaBox's epoch: passes over the problems before this one
    episode: jax.Array  # [] int32, batch episodes before this one in the epoch (MetaBox's problem_id)

    @classmethod
    def start(cls, key) -> Schedule:
        zero = jnp.zeros((), jnp.int32)
        return cls(jax.random.key_data(key), zero, zero)


def episodes_per_epoch(mode: str, num_problems: int | None, num_envs: int) -> int:
    """Batch episodes in one pass over the problems: N ('single'), N / B ('multi'), 1 ('mixed')."""
    if mode == "single":
        return num_problems
    if mode == "multi":
        return num_problems // num_envs
    return 1


def advance(schedule: Schedule, per_epoch: int) -> Schedule:
    """The next batch episode; after the epoch's last one, episode 0 of the next epoch."""
    episode = schedule.episode + 1
    new_epoch = episode >= per_epoch
    return schedule.replace(epoch=schedule.epoch + new_epoch, episode=jnp.where(new_epoch, 0, episode))


def _keys(schedule: Schedule):
    order_key, swarm_key = jax.random.split(jax.random.wrap_key_data(schedule.key))
    return order_key, swarm_key


def epoch_order(schedule: Schedule, num_problems: int) -> jax.Array:
    """The epoch's order of the problems: a permutation of 0..N-1, a new one every epoch."""
    return jax.random.permutation(jax.random.fold_in(_keys(schedule)[0], schedule.epoch), num_problems)


def problems(mode: str, schedule: Schedule, num_problems: int, num_envs: int) -> jax.Array:
    """[B] the problem of each env in the current batch episode (see the module docstring)."""
    envs = jnp.arange(num_envs)
    if mode == "mixed":
        return envs % num_problems
    order = epoch_order(schedule, num_problems)
    if mode == "single":
        return jnp.broadcast_to(order[schedule.episode], (num_envs,))
    return order[schedule.episode * num_envs + envs]


def seeds(base: int, schedule: Schedule, num_envs: int) -> jax.Array:
    """[B] MetaBox's seeds of the current batch episode: base + 100·epoch + 5·(i + B·episode)."""
    return base + SEED_PER_EPOCH * schedule.epoch + SEED_PER_ENV * (jnp.arange(num_envs) + num_envs * schedule.episode)


def reset_keys(schedule: Schedule, seeds: jax.Array) -> jax.Array:
    """[B] reset keys, one function of the seed: fold_in(swarm_key, seed_i)."""
    swarm_key = _keys(schedule)[1]
    return jax.vmap(lambda s: jax.random.fold_in(swarm_key, s))(seeds)


def gather(suite_params, index: jax.Array):
    """Params of env i = entry index[i] of `suite_params` (every leaf has the problem axis first)."""
    return jax.tree.map(lambda leaf: jnp.asarray(leaf)[index], suite_params)


def check(mode: str, num_problems: int | None, num_envs: int, env_id: str) -> None:
    """A clear ValueError when `mode` cannot fill a batch of `num_envs` from the env's problems."""
    if mode not in BATCHINGS:
        raise ValueError(f"batching must be one of {BATCHINGS}, got {mode!r}")
    if num_problems is None:
        if mode != "mixed":
            raise ValueError(f"batching={mode!r} takes its problems from a problem suite; {env_id!r} is not one "
                             f"(its params hold no set of problems): use batching='mixed'")
        return
    if mode == "mixed" and num_envs % num_problems:
        raise ValueError(f"batching='mixed' puts env i on problem i mod N: num_envs must be a multiple of the "
                         f"{num_problems} train problems (each gets as many envs), got num_envs={num_envs}")
    if mode == "multi" and num_problems % num_envs:
        raise ValueError(f"batching='multi' cuts each epoch's order of the {num_problems} train problems into batches "
                         f"of num_envs different problems: num_envs must divide {num_problems}, got num_envs={num_envs} "
                         f"(divisors: {[d for d in range(1, num_problems + 1) if num_problems % d == 0]})")

