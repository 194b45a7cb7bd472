"""Programs that scale on an accelerator. BBOB over a batch of problems: every strategy
(`bbob.STRATEGIES`) gives the same values, 'auto' is 'loop' lowered for CPU and 'dense' (no loop over
the batch) lowered for CUDA, the swarm envs step alike under each, an unknown one is refused. The
MetaBBO training programs lowered for CUDA on this CPU have no loop over envs or seeds. A run too
large for the device's memory says what fits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.mlir import ir

from jppo import cli, devices
from jppo import fit as fit_module
from jppo.config import TrainConfig, preset
from jppo.fit import fit, make_trainer
from jppo.metabbo import bbob
from jppo.metabbo.gleet import GLEETEnv, GLEETParams, fixed_action_policy
from jppo.metabbo.rlepso import RLEPSOEnv, RLEPSOParams
from jppo.metabbo.swarm import rollout

FORCED = ("loop", "dense")  # what 'auto' chooses between


def loop_trip_counts(module: ir.Module) -> list[int | None]:
    """The trip count of every `stablehlo.while` in `module`: the constant its condition compares the
    counter with (None where the bound is not a constant)."""
    found = []

    def visit(op):
        if op.name == "stablehlo.while":
            condition = op.regions[0].blocks[0].operations
            bounds = [getattr(inner.operands[1].owner, "operation", None)  # an op, or None for a block argument
                      for inner in condition if inner.operation.name == "stablehlo.compare"]
            constant = [b for b in bounds if b is not None and b.name == "stablehlo.constant"]
            found.append(int(ir.DenseIntElementsAttr(constant[0].attributes["value"])[0]) if constant else None)
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    return found


def lowered(fn, *args, platform: str) -> ir.Module:
    """`jax.jit(fn)(*args)` as StableHLO for `platform` (lowering needs no such device here)."""
    return jax.jit(fn).trace(*args).lower(lowering_platforms=(platform,)).compiler_ir("stablehlo")


def _batched(strategy: str, nested: bool):
    one = jax.vmap(lambda p, x: bbob.evaluate(p, x, bias=False, strategy=strategy))
    return jax.jit(jax.vmap(one) if nested else one)


@pytest.mark.xla_defaults  # the suite's emitters at -O0 evaluate cos, exp of large arguments shape by shape
def test_forced_strategies_agree_on_all_24_functions():
    """'loop' and 'dense' forced on this CPU ('auto' is 'loop' here: see the lowering test below), in
    10-D and 30-D, float32 and float64; and over seeds × problems (a trainer's seed vmap over its envs),
    each seed's problems in another order."""
    for dim in (10, 30):
        for x64, rtol in ((False, 1e-6), (True, 1e-12)):
            with jax.enable_x64(x64):
                problems, fids = bbob.bbob_suite(dim, "all", "train")
                assert fids == list(range(1, 25))
                x = np.random.default_rng(dim).uniform(-6.0, 6.0, (24, 9, dim))  # inside and outside [-5, 5]
                loop, dense = (np.asarray(_batched(strategy, False)(problems, x)) for strategy in FORCED)
            np.testing.assert_allclose(dense, loop, rtol=rtol, atol=0, err_msg=f"{dim}-D, x64={x64}")
    problems, _ = bbob.bbob_suite(10, "all", "train")
    seeds = jax.tree.map(lambda leaf: jnp.stack([leaf, leaf[::-1]]), problems)
    x = np.random.default_rng(0).uniform(-6.0, 6.0, (24, 9, 10))
    flat = np.asarray(_batched("loop", False)(problems, x))
    for strategy in FORCED:
        nested = np.asarray(_batched(strategy, True)(seeds, np.stack([x, x[::-1]])))
        np.testing.assert_allclose(nested, np.stack([flat, flat[::-1]]), rtol=1e-6, atol=0, err_msg=strategy)


def test_auto_loops_on_cpu_and_not_on_cuda():
    """Lowered for CPU, a batch of problems (and seeds × problems) is a loop per batch axis, trip counts 7
    and 3; lowered for CUDA there is no loop at all. Forced strategies lower the same on both."""
    problems, _ = bbob.bbob_suite(10, "easy", "train")
    seven = jax.tree.map(lambda leaf: jnp.stack([leaf[:7]] * 3), problems)
    x = jnp.zeros((3, 7, 5, 10))
    loops = {(strategy, platform): loop_trip_counts(lowered(_batched(strategy, True), seven, x, platform=platform))
             for strategy in bbob.STRATEGIES for platform in ("cpu", "cuda")}
    assert sorted(loops["auto", "cpu"]) == sorted(loops["loop", "cpu"]) == sorted(loops["loop", "cuda"]) == [3, 7]
    assert loops["auto", "cuda"] == loops["dense", "cuda"] == loops["dense", "cpu"] == []


@pytest.mark.xla_defaults
def test_swarm_envs_step_alike_under_every_strategy():
    """Four problems of different functions, vmapped as a trainer batches its envs, float64: the same
    best costs step after step whichever way BBOB is batched, for RLEPSO and GLEET."""
    envs = {"rlepso": (RLEPSOEnv, RLEPSOParams, lambda key, obs: jnp.full(35, 0.5, obs.dtype)),
            "gleet": (GLEETEnv, GLEETParams, fixed_action_policy(0.5))}
    with jax.enable_x64(True):
        problems, _ = bbob.bbob_suite(10, "all", "train")
        four = jax.tree.map(lambda leaf: leaf[np.array([3, 6, 20, 22])], problems)  # F4, F7, F21, F23
        keys = jax.random.split(jax.random.key(0), 4)
        for name, (env_class, params_class, policy) in envs.items():
            costs = {}
            for strategy in FORCED:
                env = env_class(bbob_strategy=strategy)
                def costs_of(p, key, env=env):
                    return rollout(env, params_class(problem=p), key, policy, num_steps=6)[1]["cost"]

                costs[strategy] = np.asarray(jax.jit(jax.vmap(costs_of))(four, keys))
            np.testing.assert_allclose(costs["dense"], costs["loop"], rtol=1e-12, atol=0, err_msg=name)


def test_an_unknown_strategy_is_refused_with_the_known_ones(capsys):
    problem = bbob.make_problem(1, 10, 0)
    known = "known: auto, loop, dense"
    for attempt in (lambda: bbob.evaluate(problem, np.zeros(10), strategy="gpu"),
                    lambda: RLEPSOEnv(bbob_strategy="gpu"), lambda: GLEETEnv(bbob_strategy="gpu")):
        with pytest.raises(ValueError, match=f"unknown BBOB strategy 'gpu'; {known}"):
            attempt()
    with pytest.raises(ValueError, match=r"bbob_strategy must be one of \('auto', 'loop', 'dense'\), got 'gpu'"):
        preset("rlepso-bbob10d", bbob_strategy="gpu")
    assert cli.main(["train", "--env", "gleet-bbob10d", "--bbob-strategy", "gpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("error") == 1 and "invalid choice: 'gpu' (choose from 'auto', 'loop', 'dense')" in err
    with pytest.raises(ValueError, match="give it or evaluate_fn, not both"):
        RLEPSOEnv(evaluate_fn=bbob.evaluate, bbob_strategy="dense")  # a strategy that would not be used
    assert cli.main(["train", "--env", "CartPole-v1", "--bbob-strategy", "dense", "--quiet"]) == 2
    assert "takes no option bbob_strategy" in capsys.readouterr().err


def test_the_strategy_reaches_the_trainers_env():
    for env_id in ("rlepso-bbob10d", "gleet-bbob10d"):
        for strategy in bbob.STRATEGIES:
            evaluate_fn = make_trainer(preset(env_id, bbob_strategy=strategy)).env.evaluate_fn
            assert evaluate_fn.keywords["strategy"] == strategy


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["rlepso-bbob10d", "gleet-bbob10d"])
def test_training_program_has_no_loop_over_envs_or_seeds_on_a_gpu(env_id):
    """A window of `jppo train --seeds S` with MetaBox's settings (env step, reward, cost log, the
    problem schedule, the n-step update), seeds vmapped as `jppo.devices.seed_batched` runs them,
    lowered for CUDA at two sizes: the same loops at both (the window's steps, K epochs, the n-step
    returns, RLEPSO's FDR search over its 100 particles), none as long as the envs, the seeds or both
    (today's BBOB 'loop' would be one per evaluation: see test_auto_loops_on_cpu_and_not_on_cuda)."""
    sizes = ((2, 7), (4, 11))  # (seeds, envs): trip counts no loop of the window has
    found = {}
    for seeds, envs in sizes:
        trainer = make_trainer(preset(env_id, num_envs=envs))
        state = jax.eval_shape(lambda key: jax.vmap(trainer.init)(jax.random.split(key, seeds)), jax.random.key(0))
        counts = loop_trip_counts(lowered(jax.vmap(lambda s: trainer.run(s, 1)), state, platform="cuda"))
        assert None not in counts and not {seeds, envs, seeds * envs} & set(counts), (seeds, envs, counts)
        found[seeds, envs] = sorted(counts)
    assert found[sizes[0]] == found[sizes[1]], found


EXHAUSTED = "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1099511627776 bytes."
TINY = TrainConfig(num_envs=4, num_steps=8, total_steps=64)


def _out_of_memory(monkeypatch, message=EXHAUSTED):
    """The run's programs raise XLA's error, as a device that cannot hold them does."""

    def raise_error(*args):
        raise jax.errors.JaxRuntimeError(message)

    monkeypatch.setattr(fit_module, "seed_batched", lambda *args: (raise_error, raise_error))


def test_a_run_too_large_for_the_memory_says_what_fits(monkeypatch, capsys):
    """The estimate: XLA's memory analysis of one update of one seed, per env, into the device's memory."""
    trainer = make_trainer(TINY)
    stats = trainer.run.lower(jax.eval_shape(trainer.init, jax.random.key(0)), 1).compile().memory_analysis()
    per_env = (stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes) / TINY.num_envs
    monkeypatch.setattr(devices, "_memory_per_device", lambda device: int(per_env * 1000.5))
    _out_of_memory(monkeypatch)
    expected = (r"^3 seed\(s\) × 4 envs \(12 envs in all\) do not fit in the memory of 1 × cpu .*: "
                r"about 1,000 envs in all fit, e\.g\. 250 seed\(s\) × 4 envs "
                r"\(estimated: XLA's memory analysis of one update of 1 seed")
    with pytest.raises(devices.DoesNotFit, match=expected):
        fit(TINY, num_seeds=3, show_progress=False)
    flags = ["--num-envs", "4", "--num-steps", "8", "--total-steps", "64", "--seeds", "3", "--quiet"]
    assert cli.main(["train", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jppo train: error: 3 seed(s) × 4 envs (12 envs in all) do not fit") and err.count("\n") == 1


def test_other_runtime_errors_are_not_taken_for_memory(monkeypatch):
    _out_of_memory(monkeypatch, "INTERNAL: something else")
    with pytest.raises(jax.errors.JaxRuntimeError, match="INTERNAL: something else"):
        fit(TINY, num_seeds=3, show_progress=False)
