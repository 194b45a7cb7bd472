"""Where a run's arrays live: its vmapped seeds, and with fewer seeds than devices its env batch,
sharded over devices with `jax.sharding` (one compiled program, partitioned by XLA; no pmap).

    placement = plan(num_seeds=4, num_envs=64, devices=select_devices())  # a Mesh ("seeds", "envs")
    init, run = seed_batched(trainer, num_seeds=4, placement=placement)
    state = init(config.seed)                  # [seeds, ...] arrays, laid out on the mesh
    state, metrics = run(state, 10)

Every leaf of a seed-batched state has the seed axis first; it is split over the mesh's "seeds"
axis. The state's per-env fields (`ENV_FIELDS`: `[seeds, num_envs, ...]`) are also split over
"envs"; everything else (parameters, optimizer state, keys, counters) is replicated along "envs".
With several processes (`jax.distributed`, see `jppo.distributed`) the mesh spans the devices of
every process and `gather` brings a state or metrics back to each host as numpy arrays.
"""

from __future__ import annotations

import dataclasses
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXES = ("seeds", "envs")
ENV_FIELDS = ("env_state", "obs")  # state fields with an env axis after the seed axis


def select_devices(count: int | None = None) -> list:
    """The first `count` local devices of every process (all of them when `count` is None)."""
    local = jax.local_devices()
    if count is not None:
        if count < 1 or count > len(local):
            raise ValueError(f"--devices {count}: this process has {len(local)} {local[0].platform} device(s)")
        local = local[:count]
    if jax.process_count() == 1:
        return local
    by_process: dict[int, list] = {}
    for d in jax.devices():
        by_process.setdefault(d.process_index, []).append(d)
    return [d for p in sorted(by_process) for d in by_process[p][: len(local)]]


@dataclasses.dataclass(frozen=True)
class Placement:
    """A 2-D mesh: `seed_devices` groups of `env_devices` devices."""

    mesh: Mesh

    @property
    def seed_devices(self) -> int:
        return self.mesh.shape["seeds"]

    @property
    def env_devices(self) -> int:
        return self.mesh.shape["envs"]

    @property
    def size(self) -> int:
        return self.mesh.size

    def by_seed(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec("seeds"))

    def shardings(self, state):
        """A sharding per leaf of a seed-batched `state` (arrays or `jax.ShapeDtypeStruct`s)."""
        seeds, envs = self.by_seed(), NamedSharding(self.mesh, PartitionSpec("seeds", "envs"))
        out = jax.tree.map(lambda _: seeds, state)
        per_env = {f: jax.tree.map(lambda _: envs, getattr(state, f)) for f in ENV_FIELDS if hasattr(state, f)}
        return out.replace(**per_env)

    def put(self, state):
        """A host (numpy) seed-batched state, as arrays laid out on the mesh."""
        key = getattr(state, "key", None)
        typed = key is not None and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        raw = state.replace(key=jax.random.key_data(key)) if typed else state
        raw = jax.tree.map(np.asarray, raw)
        placed = jax.tree.map(lambda x, s: jax.make_array_from_callback(x.shape, s, lambda i: x[i]), raw,
                              self.shardings(raw))
        if not typed:
            return placed
        impl = jax.random.key_impl(key)
        rewrap = jax.jit(lambda s: s.replace(key=jax.random.wrap_key_data(s.key, impl=impl)),
                         out_shardings=self.shardings(state))
        return rewrap(placed)


def plan(num_seeds: int, num_envs: int, devices: list, grid_points: int = 1) -> Placement:
    """The mesh for `num_seeds` seeds of `num_envs` envs over `devices`: seeds split over all devices
    when they divide evenly; with fewer seeds than devices, each seed's env batch split over
    `len(devices) / num_seeds` of them. Anything that does not split evenly raises a ValueError.
    `num_seeds` counts the runs of the seed axis: with a sweep (`jppo.sweep`), `grid_points` × the seeds
    of each point, as the errors then say."""
    n = len(devices)
    if grid_points == 1:
        runs, some, must = f"{num_seeds} seeds", "seeds", "the number of seeds"
    else:
        seeds = num_seeds // grid_points
        runs = f"{grid_points} grid points × {seeds} seed{'s' * (seeds > 1)} = {num_seeds} runs"
        some, must = "runs", "the number of runs (grid points × seeds)"
    if num_seeds >= n:
        if num_seeds % n:
            hint = "" if grid_points == 1 else f", e.g. --seeds a multiple of {n // math.gcd(grid_points, n)}"
            raise ValueError(f"{runs} cannot be split evenly over {n} devices: {must} must be a multiple of {n}"
                             f"{hint} (or pass --devices with a divisor of {num_seeds})")
        grid = (n, 1)
    else:
        if n % num_seeds:
            raise ValueError(f"{runs} cannot share {n} devices evenly: with fewer {some} than devices "
                             f"{must} must divide {n}")
        per_seed = n // num_seeds
        if num_envs % per_seed:
            raise ValueError(f"num_envs={num_envs} cannot be split over the {per_seed} devices of each seed "
                             f"({n} devices / {num_seeds} seeds): num_envs must be a multiple of {per_seed}")
        grid = (num_seeds, per_seed)
    return Placement(Mesh(np.asarray(devices, dtype=object).reshape(grid), AXES))


def seed_batched(trainer, num_seeds: int, placement: Placement, grid=None):
    """`(init(seed), run(state, n))` for a jittable trainer: `init` draws `num_seeds` keys from
    `jax.random.key(seed)` and vmaps `trainer.init` over them; `run` vmaps `trainer.run` (one seed:
    no vmap, the seed axis of 1 is added around them). Both are compiled with the state laid out on
    `placement`'s mesh (metrics `[seeds, n]` split by seed).

    `grid` (`SweepParams` with a leading axis of G grid points, `jppo.sweep.Grid.params`) makes the
    seed axis G × num_seeds runs, grid-major: run r has grid point r // num_seeds and the key of seed
    r % num_seeds."""

    if num_seeds == 1 and grid is None:  # no vmap: a smaller program to trace and lower
        init_all, run_all = one_seed(trainer)
    else:

        def init_all(seed):
            keys = jax.random.split(jax.random.key(seed), num_seeds)
            if grid is None:
                return jax.vmap(trainer.init)(keys)
            points = jax.tree.leaves(grid)[0].shape[0]
            runs = jax.tree.map(lambda x: jnp.repeat(x, num_seeds, axis=0), grid)
            return jax.vmap(trainer.init)(keys[jnp.arange(points * num_seeds) % num_seeds], runs)

        def run_all(state, n):
            return jax.vmap(lambda s: trainer.run(s, n))(state)

    if placement.env_devices == 1:  # every leaf split by its seed axis alone: one sharding for the whole state
        state_sharding = placement.by_seed()
    else:  # per-env fields split on their env axis too: which leaves those are takes the state's structure
        state_sharding = placement.shardings(jax.eval_shape(init_all, 0))
    init = jax.jit(init_all, out_shardings=state_sharding)
    run = jax.jit(run_all, static_argnums=1, in_shardings=(state_sharding,),
                  out_shardings=(state_sharding, placement.by_seed()))
    return init, _compiled_together(run) if jax.process_count() > 1 else run


def one_seed(trainer):
    """`(init(seed), run(state, n))` of one seed, `trainer`'s own with a seed axis of 1 around the
    state and metrics (unjitted; for the host trainer as it is)."""

    def add_seed_axis(tree):
        return jax.tree.map(lambda x: x[None], tree)

    def init(seed):
        return add_seed_axis(trainer.init(jax.random.split(jax.random.key(seed), 1)[0]))

    def run(state, n):
        return add_seed_axis(trainer.run(drop_seed_axis(state), n))

    return init, run


class DoesNotFit(ValueError):
    """A run too large for its devices' memory (XLA's RESOURCE_EXHAUSTED), with what would fit."""


def out_of_memory(err: Exception) -> bool:
    return isinstance(err, jax.errors.JaxRuntimeError) and "RESOURCE_EXHAUSTED" in str(err)


def _memory_per_device(device) -> int:
    """The bytes XLA may use on `device`: its allocator's limit, or the host's memory for a CPU."""
    stats = device.memory_stats() or {}
    return int(stats.get("bytes_limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def does_not_fit(trainer, num_seeds: int, placement: Placement, num_points: int = 1) -> DoesNotFit:
    """The error for a run of `num_seeds` (× `num_points` of a sweep) × num_envs that ran out of device
    memory, with an estimate of what fits: XLA's memory analysis of one update of one seed (arguments,
    outputs, temporaries), divided by its envs and scaled to the devices' memory. The envs' states,
    windows and temporaries grow with envs × seeds; the networks do not, so the estimate errs low."""
    num_envs = trainer.config.num_envs
    devices = placement.mesh.devices.ravel()
    memory = _memory_per_device(devices[0])
    points = f" × {num_points} sweep points" if num_points > 1 else ""
    total = num_seeds * num_points * num_envs
    asked = f"{num_seeds} seed(s){points} × {num_envs} envs ({total:,} envs in all)"
    where = f"{len(devices)} × {devices[0].device_kind} ({memory / 2**30:.1f} GiB each)"
    try:
        state = jax.eval_shape(trainer.init, jax.random.key(0))
        stats = trainer.run.lower(state, 1).compile().memory_analysis()
        one_seed = stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
    except Exception as err:  # the estimate's own program may not compile either
        first_line = (str(err).splitlines() or [""])[0]
        return DoesNotFit(f"{asked} do not fit in the memory of {where}; no estimate of what fits "
                          f"({type(err).__name__}: {first_line})")
    per_env = one_seed / num_envs
    fits = int(memory // per_env) * len(devices)
    suggestion = (f"e.g. {fits // num_envs:,} seed(s) × {num_envs} envs" if fits >= num_envs else
                  f"fewer than {num_envs} envs for one seed")
    return DoesNotFit(f"{asked} do not fit in the memory of {where}: about {fits:,} envs in all fit, {suggestion} "
                      f"(estimated: XLA's memory analysis of one update of 1 seed × {num_envs} envs, "
                      f"{one_seed / 2**20:,.1f} MiB, is {per_env / 2**20:,.2f} MiB per env, scaled to the memory)")


def drop_seed_axis(tree):
    """The first seed of a seed-batched `tree`."""
    return jax.tree.map(lambda x: x[0], tree)


def _compiled_together(run, timeout_s: int = 3600):
    """`run`, but in a run of several processes every process first compiles the program and waits
    for the others at the coordinator's barrier: CPU collectives (gloo) give a process only 30 s to
    join, and on a busy machine one process may finish compiling minutes after another."""
    from jax._src import distributed  # the coordinator's client; JAX has no public barrier without collectives

    seen = set()

    def synced(state, n):
        if n not in seen:
            run.lower(state, n).compile()
            distributed.global_state.client.wait_at_barrier(f"jppo-run-compiled-{n}", timeout_s * 1000)
            seen.add(n)
        return run(state, n)

    return synced


def gather(tree):
    """Every array of `tree` as a numpy array on this host (typed PRNG keys stay keys, host-local)."""

    def one(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(one(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(one, tree)


def from_process_0(read, template):
    """`read()` (a numpy tree shaped like `template`) on process 0, sent to every process. Alone,
    simply `read()`. An exception in `read` is raised on process 0 and reported on the others."""
    if jax.process_count() == 1:
        return read()
    error, tree = None, template
    if jax.process_index() == 0:
        try:
            tree = read()
        except Exception as err:  # raised below, once every process knows
            error = err
    if int(multihost_utils.broadcast_one_to_all(np.int32(error is not None))):
        if error is not None:
            raise error
        raise RuntimeError("process 0 could not read the checkpoint to resume from (its error says why)")
    key = getattr(tree, "key", None)
    if key is None:
        return multihost_utils.broadcast_one_to_all(tree)
    impl = jax.random.key_impl(key)
    tree = jax.tree.map(np.asarray, multihost_utils.broadcast_one_to_all(tree.replace(key=jax.random.key_data(key))))
    return tree.replace(key=jax.random.wrap_key_data(tree.key, impl=impl))
