"""The `jppo` command line.

    jppo train                                   # PPO on the JAX CartPole until solved
    jppo train --env Pendulum-v1 --total-steps 1000000 --seeds 4 --logdir runs/pend --ckpt-dir ckpt/pend
    jppo train --ckpt-dir ckpt/pend --resume     # continue an interrupted run exactly
    jppo eval --ckpt ckpt/pend                   # mean and std of the saved policy's return
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from jppo.config import TrainConfig


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_config_flags(parser: argparse.ArgumentParser):
    group = parser.add_argument_group("hyperparameters (override the defaults and --config)")
    for f in dataclasses.fields(TrainConfig):
        default = f.default
        if f.name == "env_id":
            group.add_argument("--env", dest="env_id", default=None, help=f"environment id (default {default})")
        elif isinstance(default, bool):
            group.add_argument(_flag(f.name), default=None, action=argparse.BooleanOptionalAction, help=f"(default {default})")
        elif isinstance(default, tuple):
            group.add_argument(_flag(f.name), default=None, type=int, nargs="+", help=f"(default {' '.join(map(str, default))})")
        else:
            group.add_argument(_flag(f.name), default=None, type=type(default), help=f"(default {default})")


def build_config(args) -> TrainConfig:
    base = TrainConfig.load(args.config) if args.config else TrainConfig()
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if getattr(args, f.name, None) is not None}
    return dataclasses.replace(base, **overrides)


def cmd_train(args) -> int:
    from jppo import envs
    from jppo.fit import TrainingDiverged, fit
    from jppo.logging import summary

    try:
        config = build_config(args)
        if config.env_id not in envs.available():
            raise ValueError(f"unknown environment {config.env_id!r}; available: {', '.join(envs.available())}")
    except (ValueError, TypeError) as err:
        print(f"jppo train: error: {err}", file=sys.stderr)
        return 2
    if args.resume and args.ckpt_dir is None:
        print("jppo train: error: --resume needs --ckpt-dir", file=sys.stderr)
        return 2
    print(f"Training PPO on {config.env_id}: {config.total_steps:,} steps × {args.seeds} seed(s), "
          f"{config.num_envs} envs × {config.num_steps} steps per update")
    try:
        result = fit(config, num_seeds=args.seeds, logdir=args.logdir, ckpt_dir=args.ckpt_dir,
                     ckpt_every=args.ckpt_every, keep=args.keep, resume=args.resume, show_progress=not args.quiet)
    except TrainingDiverged as err:
        print(f"jppo train: {err}", file=sys.stderr)
        return 1
    print(summary(config, result, logdir=args.logdir, ckpt_dir=args.ckpt_dir))
    return 130 if result.interrupted else 0


def cmd_eval(args) -> int:
    import jax
    import numpy as np

    from jppo.checkpoint import Checkpointer
    from jppo.train import Trainer, evaluate_policy

    ckpt = Checkpointer(args.ckpt)
    steps = ckpt.steps()
    if not steps:
        print(f"jppo eval: error: no checkpoints in {args.ckpt}", file=sys.stderr)
        return 2
    meta = ckpt.read_meta(steps[-1])
    config = TrainConfig.from_dict(meta["config"])
    trainer = Trainer(config)
    num_seeds = meta.get("num_seeds", 1)
    template = jax.vmap(trainer.init)(jax.random.split(jax.random.key(0), num_seeds))
    state, _ = ckpt.restore(template)
    params = jax.tree.map(lambda x: x[0], state.params)  # a run over several seeds: the first
    returns = np.asarray(evaluate_policy(trainer, params, jax.random.key(args.seed), args.episodes,
                                         deterministic=not args.stochastic))
    print(f"{config.env_id}: checkpoint at update {int(np.asarray(state.update).reshape(-1)[0])}, "
          f"{args.episodes} episodes: return {returns.mean():.2f} ± {returns.std():.2f} (mean ± std)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="jppo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train PPO (default: the JAX CartPole)")
    train.add_argument("--config", help="a .toml or .json file of hyperparameters")
    train.add_argument("--seeds", type=int, default=1, help="number of seeds trained at once (vmapped)")
    train.add_argument("--logdir", help="TensorBoard directory")
    train.add_argument("--ckpt-dir", help="checkpoint directory")
    train.add_argument("--ckpt-every", type=int, default=100, help="updates between checkpoints")
    train.add_argument("--keep", type=int, default=3, help="checkpoints to keep")
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --ckpt-dir")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_flags(train)
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="roll out a saved policy")
    ev.add_argument("--ckpt", required=True, help="checkpoint directory")
    ev.add_argument("--episodes", type=int, default=20)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")
    ev.set_defaults(func=cmd_eval)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
