"""MetaBox's batching in the n-step trainer ('single', 'multi', 'mixed'), the train split's
difficulty, their checkpoints and their errors; on a toy problem suite where that is enough."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jppo import batching, envs
from jppo.checkpoint import Checkpointer
from jppo.config import TrainConfig, preset
from jppo.envs import Box, Environment
from jppo.fit import fit, seed_batched
from jppo.nstep import NStepTrainer


@struct.dataclass
class SuiteParams:
    target: jax.Array  # [3] one problem, [N, 3] a suite
    problem: jax.Array  # [] or [N]: the problem's index


@struct.dataclass
class SuiteState:
    t: jax.Array
    problem: jax.Array  # the index of the problem this env works on
    draw: jax.Array  # one uniform number from the reset key: equal draws, equal keys


class TargetSuite(Environment):
    """Problem p of N: reward -Σ(a - target_p)² for `length` steps; targets spread over [0.8, 0.9]."""

    observation_shape = (1,)
    action_space = Box(0.0, 1.0, (3,))

    def __init__(self, n: int = 6, length: int = 4):
        self.n, self.length = n, length

    @property
    def default_params(self):
        return SuiteParams(jnp.linspace(0.8, 0.9, self.n)[:, None] * jnp.ones(3), jnp.arange(self.n))

    def num_problems(self, params):
        return None if jnp.ndim(params.problem) == 0 else int(jnp.shape(params.problem)[0])

    def batch_params(self, params, num_envs):
        n = self.num_problems(params)
        if n is None:
            return super().batch_params(params, num_envs)
        return jax.tree.map(lambda leaf: leaf[np.arange(num_envs) % n], params)

    def reset(self, key, params):
        return jnp.zeros(1), SuiteState(jnp.zeros((), jnp.int32), params.problem, jax.random.uniform(key))

    def step(self, key, state, action, params):
        t = state.t + 1
        reward = -jnp.sum((action - params.target) ** 2)
        obs = (t / self.length).reshape(1).astype(action.dtype)
        return obs, state.replace(t=t), reward, t >= self.length, jnp.zeros((), bool), {"problem": state.problem}


envs.register("target-suite-test", lambda: (TargetSuite(3), TargetSuite(3).default_params))

CONFIG = TrainConfig(env_id="target-suite-test", algorithm="nstep", batching="single", num_envs=4, num_steps=4,
                     num_epochs=2, num_minibatches=1, total_steps=4 * 4 * 8, learning_rate=3e-3, anneal_lr=False,
                     gamma=0.5, max_grad_norm=float("inf"), vf_coef=1.0, normalize_advantages=False, hidden=(16,),
                     critic_hidden=(8,), activation="relu", actor="bounded", ent_coef=0.0, seed=7)


def batch_episodes(batching_mode, n, num_envs, count):
    """[(epoch, episode, problems [B], draws [B], seeds [B])] of `count` batch episodes in a row, each
    started by the trainer's own window start after the previous one ended."""
    config = dataclasses.replace(CONFIG, batching=batching_mode, num_envs=num_envs)
    env = TargetSuite(n)
    trainer = NStepTrainer(config, env=env, env_params=env.default_params)
    state = jax.jit(trainer.init)(jax.random.key(0))
    start = jax.jit(trainer._start_window)
    out = []
    for _ in range(count):
        s = state.schedule
        out.append((int(s.epoch), int(s.episode), np.asarray(state.env_state.problem), np.asarray(state.env_state.draw),
                    np.asarray(batching.seeds(config.seed, s, num_envs))))
        state = start(state.replace(ended=jnp.asarray(True)))
    return out


def metabox_seeds(seed, epoch, problem_id, bs):
    return (epoch * 100 + 5 * (np.arange(bs) + bs * problem_id) + seed).tolist()  # MetaBox, trainer.py:252


def test_single_is_copies_of_one_problem_in_an_order_reshuffled_every_epoch_with_metabox_seeds():
    n, num_envs, epochs = 6, 4, 3
    episodes = batch_episodes("single", n, num_envs, n * epochs)
    assert [(e, k) for e, k, *_ in episodes] == [(e, k) for e in range(epochs) for k in range(n)]
    orders = []
    for epoch in range(epochs):
        problems = [p for e, _, p, _, _ in episodes if e == epoch]
        assert all(len(set(p.tolist())) == 1 for p in problems)  # one problem per batch episode
        orders.append([int(p[0]) for p in problems])
        assert sorted(orders[-1]) == list(range(n))  # each problem once an epoch
    assert len({tuple(o) for o in orders}) == epochs, orders  # a new order every epoch
    drawn = {}
    for epoch, k, _, draws, seeds in episodes:
        assert seeds.tolist() == metabox_seeds(CONFIG.seed, epoch, k, num_envs)
        assert len(set(draws.tolist())) == num_envs  # distinct seeds, distinct swarms
        for seed, draw in zip(seeds.tolist(), draws.tolist()):
            drawn.setdefault(seed, set()).add(draw)
    # MetaBox's seeds repeat across epochs (100 = 5·20): a repeated seed gives the same start, only then
    assert sum(len(d) == 1 for d in drawn.values()) == len(drawn)
    repeats = sum(seeds.tolist().count(s) for _, _, _, _, seeds in episodes for s in seeds.tolist()) - len(drawn)
    assert repeats > 0
    draws = [next(iter(d)) for d in drawn.values()]
    assert len(set(draws)) == len(draws)


def test_multi_takes_consecutive_slices_of_the_epochs_order():
    n, num_envs = 6, 3
    episodes = batch_episodes("multi", n, num_envs, 3 * n // num_envs)
    assert [(e, k) for e, k, *_ in episodes] == [(e, k) for e in range(3) for k in range(2)]
    orders = []
    for epoch in range(3):
        batches = [p.tolist() for e, _, p, _, _ in episodes if e == epoch]
        orders.append(sum(batches, []))
        assert sorted(orders[-1]) == list(range(n))
    assert len({tuple(o) for o in orders}) > 1
    for epoch, k, _, _, seeds in episodes:
        assert seeds.tolist() == metabox_seeds(CONFIG.seed, epoch, k, num_envs)


def test_mixed_keeps_env_i_on_problem_i_mod_n():
    episodes = batch_episodes("mixed", 3, 6, 4)
    for _, _, problems, _, _ in episodes:
        np.testing.assert_array_equal(problems, np.arange(6) % 3)
    assert len({d for *_, draws, _ in episodes for d in draws.tolist()}) == 6 * 4  # fresh reset keys every episode


def test_single_trains_compiled_and_learns():
    """Every window is one batch episode (4 steps), so each run of n windows is one epoch: the
    problems come in reshuffled orders, and the policy's regret (μ ≈ 0.5 against targets 0.8-0.9)
    is mostly gone at the end."""
    n = 4
    config = dataclasses.replace(CONFIG, total_steps=2 * 4 * 240, num_envs=2)
    env = TargetSuite(n)
    trainer = NStepTrainer(config, env=env, env_params=env.default_params)
    state, metrics = jax.jit(trainer.train)(jax.random.key(1))
    assert (int(state.schedule.epoch), int(state.schedule.episode)) == divmod(240 - 1, n)
    problems = np.asarray(metrics["final_problem"])  # one problem per batch: the mean is its index
    for epoch in range(240 // n):
        assert sorted(problems[epoch * n:(epoch + 1) * n].tolist()) == list(range(n))
    ret = np.asarray(metrics["episodic_return"])
    first, last = ret[:10].mean(), ret[-10:].mean()
    assert first < -0.8 and last > 0.2 * first, (first, last)


def test_resumed_single_run_ends_identical(tmp_path):
    """Half a run, then --resume, gives the parameters, optimizer and schedule of the whole run; it
    stops in the middle of an epoch (3 problems, 1 window per batch episode, 4 of 8 windows)."""
    full = fit(CONFIG, show_progress=False)
    fit(dataclasses.replace(CONFIG, total_steps=CONFIG.total_steps // 2), ckpt_dir=tmp_path / "resumed",
        show_progress=False)  # checkpointed at its end
    resumed = fit(CONFIG, ckpt_dir=tmp_path / "resumed", resume=True, show_progress=False)
    for part in ("params", "opt_state", "schedule", "env_state"):
        for a, b in zip(jax.tree.leaves(getattr(full.state, part)), jax.tree.leaves(getattr(resumed.state, part))):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(full.state.schedule.epoch) == 2


def test_difficulty_goes_from_the_config_into_the_checkpoint_and_is_evals_default(tmp_path, monkeypatch):
    """An RLEPSO run's config with difficulty 'difficult' is saved with its checkpoint, and `jppo eval`
    reports on that split unless --difficulty says otherwise. (The saved state is a toy suite's, and eval
    rebuilds that trainer: compiling RLEPSO's would take a minute and is not what is tested here.)"""
    from jppo import cli
    from jppo import fit as fit_module
    from jppo.metabbo import report

    config = preset("rlepso-bbob10d", difficulty="difficult", num_envs=2, total_steps=20)

    def toy(config, **kw):
        return NStepTrainer(config, env=TargetSuite(3), env_params=TargetSuite(3).default_params)

    monkeypatch.setattr(fit_module, "make_trainer", toy)
    init, _ = seed_batched(toy(config), 1)
    ckpt = Checkpointer(tmp_path)
    ckpt.save(init(config.seed), config)
    ckpt.close()
    asked = []
    monkeypatch.setattr(report, "metabbo_report", lambda *a, **kw: (asked.append(kw["difficulty"]) or "", []))
    assert cli.main(["eval", "--ckpt", str(tmp_path), "--out", str(tmp_path / "r")]) == 0
    assert cli.main(["eval", "--ckpt", str(tmp_path), "--out", str(tmp_path / "r"), "--difficulty", "all"]) == 0
    assert asked == ["difficult", "all"]


def test_train_flags_reach_the_config(monkeypatch):
    from jppo import cli
    from jppo import fit as fit_module

    seen = []

    def fake_fit(config, **kw):
        seen.append((config, kw["trainer"]))
        raise KeyboardInterrupt  # stop before training: what counts is what fit got

    monkeypatch.setattr(fit_module, "fit", fake_fit)
    with pytest.raises(KeyboardInterrupt):
        cli.main(["train", "--env", "rlepso-bbob10d", "--difficulty", "all", "--batching", "multi", "--num-envs", "8",
                  "--quiet"])
    config, trainer = seen[0]
    assert (config.difficulty, config.batching, trainer.num_problems, trainer.per_epoch) == ("all", "multi", 24, 3)
    assert NStepTrainer(preset("rlepso-bbob10d", difficulty="difficult")).num_problems == 8  # MetaBox's small set
    assert preset("rlepso-bbob30d-log").batching == "single"  # MetaBox's train_mode default


@pytest.mark.parametrize("argv, message", [
    (["--env", "rlepso-bbob10d", "--difficulty", "medium"],
     "difficulty must be 'easy', 'difficult' or 'all', got 'medium'"),
    (["--env", "rlepso-bbob10d", "--batching", "multi", "--num-envs", "5"], "num_envs must divide 16, got num_envs=5"),
    (["--env", "rlepso-bbob10d", "--batching", "mixed", "--num-envs", "12"],
     "num_envs must be a multiple of the 16 train problems (each gets as many envs), got num_envs=12"),
    (["--env", "rlepso-bbob10d", "--batching", "any"],
     "argument --batching: invalid choice: 'any' (choose from 'mixed', 'single', 'multi')"),
    (["--difficulty", "difficult"], "environment 'CartPole-v1' takes no option difficulty"),
    (["--batching", "single"], "batching='single': these settings belong to algorithm='nstep'"),
    (["--env", "rlepso-bbob10d", "--scale-rewards-per-env"], "needs env i to keep its problem: batching='mixed'"),
    (["--env", "gym:CartPole-v1", "--difficulty", "easy"], "difficulty belongs to problem suites"),
])
def test_bad_settings_are_one_clear_error(argv, message, capsys):
    from jppo import cli

    assert cli.main(["train", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jppo train: error: ") and message in err and err.count("\n") == 1, err


def test_batching_needs_a_problem_suite():
    env = TargetSuite(3)
    one = jax.tree.map(lambda leaf: leaf[0], env.default_params)
    with pytest.raises(ValueError, match="batching='single' takes its problems from a problem suite"):
        NStepTrainer(CONFIG, env=env, env_params=one)
    NStepTrainer(dataclasses.replace(CONFIG, batching="mixed", num_envs=3), env=env, env_params=one)  # any num_envs
