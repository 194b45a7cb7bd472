"""The `jppo` command line.

    jppo train                                   # PPO on the JAX CartPole until solved
    jppo train --env Pendulum-v1 --total-steps 1000000 --seeds 4 --logdir runs/pend --ckpt-dir ckpt/pend
    jppo train --ckpt-dir ckpt/pend --resume     # continue an interrupted run exactly
    jppo train --sweep learning_rate=1e-4,3e-4,1e-3 --seeds 8 --ckpt-dir ckpt/lr   # 3 settings × 8 seeds, one program
    jppo train --env gym:CartPole-v1 --vector-mode async   # gymnasium envs on the host trainer
    jppo eval --ckpt ckpt/lr                     # every run: mean, IQM and 95% CIs per grid point, curves
    jppo train --env rlepso-bbob10d --ckpt-dir ckpt/rlepso   # MetaBox's RLEPSO, the whole loop compiled
    jppo train --env rlepso-bbob10d --difficulty difficult --batching multi   # another split, MetaBox's 'multi'
    jppo eval --ckpt ckpt/rlepso                 # report: trained vs untrained vs plain PSO on the test split
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from jppo.config import TrainConfig, preset, read_file
from jppo.learner import SWEEPABLE
from jppo.sweep import Grid


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _help(field: dataclasses.Field) -> str:
    """The field's one-line help (`jppo.config.option`) and TrainConfig's default."""
    default = " ".join(map(str, field.default)) if isinstance(field.default, tuple) else str(field.default)
    return field.metadata["help"] + (f" (default: {default})" if default else "")


def _add_config_flags(parser: argparse.ArgumentParser):
    """One flag per `TrainConfig` field, built from the field: its type, help and choices."""
    group = parser.add_argument_group(
        "hyperparameters", "TrainConfig's fields. The defaults shown are TrainConfig's; an env's preset (the MetaBBO "
                           "envs: MetaBox's settings) replaces them, a --config file replaces both, and these flags "
                           "replace all three.")
    for f in dataclasses.fields(TrainConfig):
        flag = "--env" if f.name == "env_id" else _flag(f.name)
        if isinstance(f.default, bool):
            kind = dict(action=argparse.BooleanOptionalAction)
        elif isinstance(f.default, tuple):
            kind = dict(type=int, nargs="+")
        else:
            kind = dict(type=type(f.default), choices=f.metadata.get("choices"))
        group.add_argument(flag, dest=f.name, default=None, help=_help(f), **kind)


def build_config(args) -> TrainConfig:
    """Defaults < the env's preset (`jppo.config.PRESETS`) < --config file < command-line flags."""
    values = read_file(args.config) if args.config else {}
    values.update({f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                   if getattr(args, f.name, None) is not None})
    return preset(values.pop("env_id", TrainConfig.env_id), **values)


def _start_runtime(args) -> None:
    """Before anything touches a device: the compilation cache, then (with --coordinator or JAX's
    variables) the multi-process runtime."""
    import os

    from jppo import compile_cache, distributed

    if args.compile_cache is not False:
        compile_cache.enable(args.compile_cache)
    if args.coordinator or args.num_processes is not None or "JAX_COORDINATOR_ADDRESS" in os.environ:
        distributed.connect(args.coordinator, args.num_processes, args.process_id, timeout=args.coordinator_timeout)


def cmd_train(args) -> int:
    from jppo import envs

    host_env = False
    try:
        config = build_config(args)
        host_env = envs.is_host_env(config.env_id)
        if host_env:
            from jppo import host  # gymnasium: imported only for its envs

            host.check_env_id(config.env_id)
        elif config.env_id not in envs.available():
            raise ValueError(f"unknown environment {config.env_id!r}; available: {', '.join(envs.available())}, "
                             f"or a gymnasium id as {envs.HOST_PREFIX}<id>")
        elif args.vector_mode is not None or args.workers is not None:
            raise ValueError(f"--vector-mode and --workers apply to gymnasium environments ({envs.HOST_PREFIX}<id>) only")
        if host_env and (args.seeds != 1 or args.sweep):
            raise ValueError("the host trainer (gym: environments) trains one seed per run: --seeds 1, no --sweep")
        grid = Grid.parse(args.sweep or [], config)
        if args.resume and args.ckpt_dir is None:
            raise ValueError("--resume needs --ckpt-dir")
        if (args.num_processes is None) != (args.process_id is None) or (
                args.coordinator is None and args.num_processes is not None):
            raise ValueError("a run of several processes needs --coordinator, --num-processes and --process-id")
        _start_runtime(args)
        from jppo.fit import make_trainer

        # built here so that a setting only the env can check (--difficulty, --batching) fails before training
        trainer = make_trainer(config, vector_mode=args.vector_mode, num_workers=args.workers)
    except (ValueError, TypeError, RuntimeError) as err:  # distributed.CoordinatorError is a RuntimeError
        print(f"jppo train: error: {err}", file=sys.stderr)
        return 2
    import jax

    from jppo.checkpoint import CheckpointError
    from jppo.fit import TrainingDiverged, fit
    from jppo.logging import summary

    primary = jax.process_index() == 0
    where = f", host trainer ({args.vector_mode or 'sync'} envs)" if host_env else ""
    if config.algorithm == "nstep" and getattr(trainer, "num_problems", None):
        where += (f", {config.difficulty or 'default'} split ({trainer.num_problems} problems), "
                  f"batching {config.batching}")
    if primary:
        print(f"Training PPO on {config.env_id}: {config.total_steps:,} steps × {grid.describe(args.seeds)}, "
              f"{config.num_envs} envs × {config.num_steps} steps per update{where}")
    try:
        result = fit(config, num_seeds=args.seeds, grid=grid, logdir=args.logdir, ckpt_dir=args.ckpt_dir,
                     ckpt_every=args.ckpt_every, keep=args.keep, resume=args.resume, show_progress=not args.quiet,
                     num_devices=args.devices, trainer=trainer)
    except ValueError as err:  # e.g. --devices or seeds that do not fit the devices
        print(f"jppo train: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"jppo train: {err}", file=sys.stderr)
        return 1
    except CheckpointError as err:  # --resume from an unreadable or incompatible checkpoint
        print(f"jppo train: error: {err}", file=sys.stderr)
        return 2
    if primary:
        print(summary(config, result, logdir=args.logdir, ckpt_dir=args.ckpt_dir))
        if args.ckpt_dir is not None:
            from jppo import curves, history

            path = Path(args.ckpt_dir, "curves.png")
            if curves.plot(history.read(args.ckpt_dir), grid, args.seeds, config.batch_size, path, config.env_id):
                print(f"  learning curves: {path}")
    return 130 if result.interrupted else 0


def cmd_eval(args) -> int:
    import jax
    import numpy as np

    from jppo import history, host, report, train
    from jppo.checkpoint import CheckpointError, Checkpointer
    from jppo.fit import make_trainer, seed_batched
    from jppo.metabbo import report as metabbo

    ckpt = Checkpointer(args.ckpt)
    steps = ckpt.steps()
    if not steps:
        print(f"jppo eval: error: no checkpoints in {args.ckpt}", file=sys.stderr)
        return 2
    try:  # an unusable checkpoint: its meta (another format version) or every saved state
        meta = ckpt.read_meta(steps[-1])
        config = TrainConfig.from_dict(meta["config"])
        if args.env is not None and args.env != config.env_id:
            raise CheckpointError(f"{args.ckpt} holds a checkpoint of {config.env_id!r}, not of --env {args.env!r}")
        trainer = make_trainer(config)
        grid, num_seeds = Grid.from_json(meta.get("grid", [])), meta.get("num_seeds", 1)
        init, _ = seed_batched(trainer, num_seeds, grid=grid)
        template = init(config.seed)  # the runs' start, as fit seeds them
        state, _ = ckpt.restore(template)
    except CheckpointError as err:
        print(f"jppo eval: error: {err}", file=sys.stderr)
        return 2
    update = int(np.asarray(state.update).reshape(-1)[0])
    out = args.out or str(ckpt.directory / "report")
    runs = f"{grid.describe(num_seeds)}, checkpoint at update {update}"
    if config.env_id in metabbo.SUITES:
        def policy(key, obs, p):  # one env's observation: a batch of one for the policy
            return trainer.policy.distribution(p, obs[None]).sample(key)[0]

        untrained = jax.tree.map(lambda x: x[:num_seeds], template.params)  # each seed's start (alike at every point)
        # MetaBox's test_difficulty defaults to the train difficulty (config.py:97-98)
        difficulty = args.difficulty or config.difficulty or "easy"
        text, _ = metabbo.metabbo_report(config.env_id, policy, state.params, untrained, grid=grid, num_seeds=num_seeds,
                                         runs=args.runs, seed=args.seed, difficulty=difficulty, split=args.split,
                                         per_seed=args.per_seed, out_dir=out)
        print(f"{runs}\n{text}\nwritten to {out}/report.md and {out}/cost_curves.png")
        return 0
    key = jax.random.key(args.seed)
    if isinstance(trainer, host.HostTrainer):  # one run
        params = jax.tree.map(lambda x: x[0], state.params)
        returns = host.evaluate_policy(trainer, params, key, args.episodes, deterministic=not args.stochastic)[None]
    else:
        returns = train.evaluate_runs(trainer, state.params, key, args.episodes, deterministic=not args.stochastic)
    title = f"{config.env_id}: {runs}, {args.episodes} episodes per run ({'sampled' if args.stochastic else 'mode'})"
    text = report.returns_report(title, np.asarray(returns), grid, num_seeds, out_dir=out, per_seed=args.per_seed,
                                 history=history.read(args.ckpt, update), steps_per_update=config.batch_size)
    print(f"{text}\nwritten to {out}/report.md")
    return 0


def cmd_import_metabox(args) -> int:
    from jppo.metabbo.metabox_checkpoint import import_metabox, read_weights

    try:
        weights = read_weights(args.weights)
        config = import_metabox(weights, args.ckpt_dir, env_id=args.env)
    except ValueError as err:
        print(f"jppo import-metabox: error: {err}", file=sys.stderr)
        return 2
    print(f"MetaBox's {weights.agent} ({weights.learning_time} learning steps) written to {args.ckpt_dir} as "
          f"{config.env_id}; evaluate it with: jppo eval --ckpt {args.ckpt_dir}")
    return 0


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line, as every other error of the command line (`--help` shows usage)."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: error: {message}")


def main(argv=None) -> int:
    parser = _Parser(prog="jppo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train PPO (default: the JAX CartPole)")
    train.add_argument("--config", help="a .toml or .json file of hyperparameters")
    train.add_argument("--seeds", type=int, default=1, help="number of seeds trained at once (vmapped)")
    train.add_argument("--sweep", action="append", metavar="FIELD=V1,V2,...",
                       help=f"train every value (several --sweep: every combination) × --seeds as one program; "
                            f"sweepable: {', '.join(SWEEPABLE)}")
    train.add_argument("--logdir", help="TensorBoard directory")
    train.add_argument("--ckpt-dir", help="checkpoint directory")
    train.add_argument("--ckpt-every", type=int, default=100, help="updates between checkpoints")
    train.add_argument("--keep", type=int, default=3, help="checkpoints to keep")
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --ckpt-dir")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--vector-mode", choices=("sync", "async", "ray"), default=None,
                       help="gym:<id> environments: step them in this process (sync, the default), in worker "
                            "processes (async) or in Ray actors (ray)")
    train.add_argument("--workers", type=int, default=None,
                       help="--vector-mode ray: number of Ray actors, each holding a slice of the envs "
                            "(default: one per CPU, at most num_envs)")
    scale = train.add_argument_group("devices, processes and compilation")
    scale.add_argument("--devices", type=int, default=None,
                       help="use the first K local devices of each process (default: all); seeds, or with fewer "
                            "seeds than devices the envs, are split over them")
    scale.add_argument("--coordinator", help="HOST:PORT of process 0, for a run over several processes / hosts "
                                             "(or set JAX_COORDINATOR_ADDRESS)")
    scale.add_argument("--num-processes", type=int, default=None, help="number of processes in the run")
    scale.add_argument("--process-id", type=int, default=None, help="this process's index, 0 .. N-1")
    scale.add_argument("--coordinator-timeout", type=float, default=300.0,
                       help="seconds to wait for the coordinator and the other processes (default 300)")
    scale.add_argument("--compile-cache", metavar="DIR", default=None,
                       help="persistent compilation cache directory (default: $XDG_CACHE_HOME/jppo/jax, "
                            "i.e. ~/.cache/jppo/jax)")
    scale.add_argument("--no-compile-cache", dest="compile_cache", action="store_false",
                       help="compile everything afresh")
    _add_config_flags(train)
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="evaluate every run of a checkpoint: a report across seeds (report.md, plots)")
    ev.add_argument("--ckpt", required=True, help="checkpoint directory")
    ev.add_argument("--env", default=None, help="the env id the checkpoint must be of (refused otherwise)")
    ev.add_argument("--episodes", type=int, default=20)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")
    ev.add_argument("--runs", type=int, default=10, help="MetaBBO envs: runs per test problem")
    ev.add_argument("--difficulty", default=None, choices=["easy", "difficult", "all"],
                    help="MetaBBO envs: difficulty of the split (default: the one the run trained on)")
    ev.add_argument("--split", default="test", choices=["test", "train"], help="MetaBBO envs: problems to evaluate on")
    ev.add_argument("--out", help="report directory (default CKPT/report)")
    ev.add_argument("--per-seed", action="store_true", help="the report also lists every run (seed) on its own")
    ev.set_defaults(func=cmd_eval)

    imp = sub.add_parser("import-metabox", help="MetaBox's trained RLEPSO or GLEET (converted by compat.convert_checkpoint) "
                                                "as a jppo checkpoint")
    imp.add_argument("weights", help=".npz written by python -m compat.convert_checkpoint")
    imp.add_argument("--ckpt-dir", required=True, help="checkpoint directory to write")
    imp.add_argument("--env", default=None, help="the env id the checkpoint is for (default: the agent's bbob-10D env)")
    imp.set_defaults(func=cmd_import_metabox)

    try:
        args = parser.parse_args(argv)
    except _UsageError as err:
        print(err, file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
