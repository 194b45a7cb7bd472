"""MetaBBO training: RLEPSO on 4 BBOB-10D problems, the whole episode compiled vs MetaBox's numpy loop.

One training episode: 4 envs (problems F4, F6, F7, F8 of MetaBox's bbob-10D, instance seed 3849),
100 particles, 20000 evaluations (199 generations), windows of n_step = 10 with K = 3 epochs each
(60 optimizer steps), RLEPSO's networks (actor: mu and sigma MLPs 64-32 -> 35; critic 16-8).

* jppo: `NStepTrainer` with the JAX RLEPSO environment and JAX BBOB: rollout and update of the
  whole episode run as one compiled program (float32, and float64 as MetaBox).
* MetaBox's structure, numpy optimizer: MetaBox's own `RLEPSO_Optimizer` and `bbob_numpy`
  problems, stepped one Python call per generation, with (a) the torch agent
  (`references/torch_ppo.torch_train_episode`, MetaBox's loop in torch, float64) and (b) jppo's compat
  `PPO_Agent` (float64). These rows need MetaBox's source (JPPO_METABOX_SRC=…/src/metaevobox);
  without it they are left out.

GLEET (second table): one training episode of MetaBox's GLEET agent (attention actor on 100 particles ×
27 features, critic on its features; 199 steps, 60 optimizer steps) on the same four problems repeated
to the batch: jppo's `NStepTrainer` with the JAX GLEET env (float32), against MetaBox's own GLEET agent
(`GLEET.train_episode`, torch, float64; the shipped GLEET.pkl's object, so its own code and settings)
on MetaBox's numpy `GLEET_Optimizer` in `PBO_Env`s, at batch 4 and 16; and jppo's scaling over batch
4 -> 64 -> 256. MetaBox's rows need `import metaevobox` (run under a Python where it imports).

Rows are timed in turn, round after round (the machine's speed drifts; this way it slows every row
alike), each as the second of two episodes back to back; figures are medians, ratios the medians of
per-round ratios.
"""

from __future__ import annotations

import itertools
import math
import tempfile
import time
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import report
from jppo.config import preset
from jppo.metabbo import bbob
from jppo.metabbo.gleet import GLEETEnv, GLEETParams
from jppo.metabbo.rlepso import RLEPSOEnv, RLEPSOParams
from jppo.nstep import NStepTrainer
from benchmarks.gleet_parity import metabox_problems
from references import metabox_source
from references.envs import ToyPBOEnv

DIM, FIDS, NUM_ENVS = 10, (4, 6, 7, 8), 4


def _metabox_envs(optimizer_class, module, num_envs: int = NUM_ENVS, env_class=ToyPBOEnv):
    """`num_envs` MetaBox envs (`env_class(problem, optimizer)`) on F4, F6, F7, F8 repeated."""
    problems = metabox_problems(module, DIM)
    config = types.SimpleNamespace(maxFEs=20000, n_logpoint=50, log_interval=400, full_meta_data=False, device="cpu")
    return [env_class(problems[FIDS[i % len(FIDS)]], optimizer_class(config)) for i in range(num_envs)]


def _jppo_episode(x64: bool, num_envs: int = NUM_ENVS, agent: str = "rlepso"):
    """`(episode, first)`: a callable timing one more training episode of `agent` ('rlepso', 'gleet'), and
    the seconds of the first (compilation included); env i works on problem i mod 4."""
    with jax.enable_x64(x64):
        problems, fids = bbob.bbob_suite(DIM, "all", "train")
        suite = jax.tree.map(lambda leaf: leaf[np.array(FIDS) - 1], problems)
        env, params = (RLEPSOEnv(), RLEPSOParams(problem=suite)) if agent == "rlepso" else \
            (GLEETEnv(), GLEETParams(problem=suite))
        config = preset(f"{agent}-bbob10d", num_envs=num_envs, total_steps=num_envs * 10 * 20, batching="mixed")
        trainer = NStepTrainer(config, env=env, env_params=params)
        state = [jax.jit(trainer.init)(jax.random.key(0))]

    def episode() -> float:
        with jax.enable_x64(x64):
            start = time.perf_counter()
            state[0], _ = jax.block_until_ready(trainer.run(state[0], 20))
            return time.perf_counter() - start

    return episode, episode()


def _metabox_episodes(save_dir: str):
    """`({name: episode}, shares)`: callables timing one training episode of the torch and of the compat
    agent on MetaBox's numpy optimizer and problems, and the list to which each torch episode adds the
    share of its time spent inside the optimizer; None without MetaBox's source."""
    import torch
    from flax import nnx

    from compat.networks import RLEPSOActor, RLEPSOCritic
    from compat.ppo import PPO_Agent
    from references.torch_ppo import TorchClampedActor, TorchValueCritic, torch_train_episode

    optimizer_class, module = metabox_source.rlepso_optimizer_class(), metabox_source.bbob_numpy()
    if optimizer_class is None or module is None:
        return None
    torch.set_num_threads(1)  # tiny networks; see bench_compat.py
    cfg = types.SimpleNamespace(gamma=0.999, n_step=10, K_epochs=3, eps_clip=0.1, max_grad_norm=math.inf,
                                device="cpu", optimizer="Adam", save_interval=10**9, end_mode="epoch",
                                max_learning_step=10**9, no_tb=True, seed=0, agent_save_dir=save_dir)
    with jax.enable_x64(True):
        actor, critic = RLEPSOActor(1, 35, rngs=nnx.Rngs(0)), RLEPSOCritic(1, rngs=nnx.Rngs(1))
        agent = PPO_Agent(cfg, {"actor": actor, "critic": critic}, 1e-5)
    t_actor, t_critic = TorchClampedActor(actor, sample=True), TorchValueCritic(critic)
    t_opt = torch.optim.Adam([{"params": t_actor.params(), "lr": 1e-5}, {"params": t_critic.params(), "lr": 1e-5}])
    envs = _metabox_envs(optimizer_class, module)
    step_seconds = [0.0]
    for env in envs:  # time spent inside the numpy optimizer (and problem)
        inner = env.step

        def timed(action, inner=inner):
            start = time.perf_counter()
            result = inner(action)
            step_seconds[0] += time.perf_counter() - start
            return result

        env.step = timed
    trains = {"torch agent": lambda rep: torch_train_episode(t_actor, t_critic, t_opt, envs, rep, cfg),
              "compat agent": lambda rep: agent.train_episode(envs, [rep] * len(envs))}
    shares, seeds = {name: [] for name in trains}, itertools.count(1)

    def episode(name: str) -> float:
        step_seconds[0] = 0.0
        start = time.perf_counter()
        with jax.enable_x64(True):
            trains[name](next(seeds))
        seconds = time.perf_counter() - start
        shares[name].append(step_seconds[0] / seconds)
        return seconds

    return {name: (lambda name=name: episode(name)) for name in trains}, shares["torch agent"]


def _steady(episode) -> float:
    """The second of two episodes back to back: the first warms caches and thread pools again after
    the other rows ran (a training run's episodes follow one another)."""
    episode()
    return episode()


def main(out_dir: Path, quick: bool):
    reps = 2 if quick else 7
    jppo32, first32 = _jppo_episode(False)
    jppo64, first64 = _jppo_episode(True)
    runs = {"jppo f32": jppo32, "jppo f64": jppo64}
    seconds = {name: [] for name in runs}
    with tempfile.TemporaryDirectory(prefix="jppo-bench-") as save_dir:
        metabox = _metabox_episodes(save_dir)
        if metabox is not None:
            episodes, shares = metabox
            for episode in episodes.values():  # warm-up (compat compiles)
                episode()
            runs.update(episodes)
            seconds.update({name: [] for name in episodes})
        for _ in range(reps):  # each row in turn: a machine whose speed drifts slows all rows alike
            for name, episode in runs.items():
                seconds[name].append(_steady(episode))
    seconds = {name: np.array(times) for name, times in seconds.items()}
    base = np.median(seconds["jppo f32"])
    ratio = lambda name: np.median(seconds[name] / seconds["jppo f32"])  # noqa: E731  per-round ratios
    rows = [("jppo, whole episode compiled, float32", f"{base:.2f}", "1.0x", f"{first32:.1f}"),
            ("jppo, whole episode compiled, float64", f"{np.median(seconds['jppo f64']):.2f}",
             f"{ratio('jppo f64'):.1f}x", f"{first64:.1f}")]
    plot = {"jppo f32": seconds["jppo f32"], "jppo f64": seconds["jppo f64"]}
    notes = []
    if metabox is None:
        notes.append(f"MetaBox rows left out: {metabox_source.SKIP_REASON}.")
    else:
        for name in ("torch agent", "compat agent"):
            rows.append((f"MetaBox's numpy RLEPSO + BBOB, {name}, float64", f"{np.median(seconds[name]):.2f}",
                         f"**{ratio(name):.1f}x**", "-"))
            plot[name.replace(" agent", "\n+ numpy env")] = seconds[name]
        notes.append(f"In the torch row {np.median(shares[1:]):.0%} of the episode is spent inside MetaBox's numpy "
                     f"optimizer and problems (the rest: the agent, one call per generation and per re-evaluated "
                     f"step).")
    notes.append(f"{reps} rounds of each row in turn (two episodes back to back, the second timed), after one "
                 f"warm-up each; 'slower' = the median over rounds of row time / jppo float32 time. Compile: the "
                 f"first episode of the compiled trainer, compilation included.")
    notes.append(report.machine())
    batches = (4, 16, 64, 256)
    episodes = {batch: _jppo_episode(False, batch)[0] for batch in batches}
    scaling = {batch: [] for batch in batches}
    for _ in range(2 if quick else 3):  # in turn, as above
        for batch, episode in episodes.items():
            scaling[batch].append(_steady(episode))
    scaling = [(b, np.median(scaling[b]), np.median(np.divide(scaling[b], scaling[4]))) for b in batches]
    scaling_rows = [(b, f"{t:.2f}", f"{r:.1f}x", f"{b * 199 * 100 / t:,.0f}") for b, t, r in scaling]
    sections = [("Scaling: jppo float32, envs per batch (problems F4, F6, F7, F8 repeated)",
                 ("batch", "s / training episode", "vs batch 4", "function evaluations / s"), scaling_rows,
                 ["Each env runs 199 generations of 100 particles; the update's work grows with the batch too. "
                  "Batch sizes in turn, timed as above; 'vs batch 4' is the median of per-round ratios."])]
    sections += _gleet_sections(quick)
    report.write(out_dir, "metabbo", sections=sections,
                 title="MetaBBO training episode: RLEPSO, 4 BBOB-10D problems × 100 particles × 20000 evaluations",
                 header=("implementation", "s / training episode", "slower than jppo f32", "compile s"), rows=rows,
                 notes=notes, plot=plot, ylabel="seconds per training episode")


def _metabox_gleet_episode(num_envs: int):
    """A callable timing one training episode of MetaBox's own GLEET agent (torch, float64) on MetaBox's
    numpy GLEET optimizer, `num_envs` envs; None where metaevobox does not import."""
    try:
        import torch
        from metaevobox.environment.basic_environment import PBO_Env
    except Exception:
        return None
    import os

    from compat import convert_checkpoint

    pkl = os.path.join(os.environ.get(metabox_source.ENV, ""), "model", "bbob-10D", "difficult", "GLEET.pkl")
    optimizer_class, module = metabox_source.gleet_optimizer_class(), metabox_source.bbob_numpy()
    if not os.path.isfile(pkl) or optimizer_class is None or module is None:
        return None
    torch.set_default_dtype(torch.float64)  # MetaBox's Config()
    torch.set_num_threads(1)  # tiny networks; see bench_compat.py
    agent = convert_checkpoint.load_agent(pkl)
    agent.config.no_tb = True  # the pickled config logs to TensorBoard, which needs the Trainer's writer
    seeds = itertools.count(1)

    def episode() -> float:
        envs = _metabox_envs(optimizer_class, module, num_envs, PBO_Env)
        start = time.perf_counter()
        agent.train_episode(envs, [next(seeds)] * num_envs, para_mode="dummy")
        return time.perf_counter() - start

    return episode


def _gleet_sections(quick: bool) -> list:
    """GLEET: jppo vs MetaBox at batch 4 and 16 (rounds in turn, per-round ratios), jppo's scaling 4 -> 256."""
    reps = 2 if quick else 3
    rows, notes = [], []
    for batch in (4, 16):
        jppo, first = _jppo_episode(False, batch, "gleet")
        metabox = _metabox_gleet_episode(batch)
        runs = {"jppo": jppo} if metabox is None else {"jppo": jppo, "metabox": metabox}
        seconds = {name: [] for name in runs}
        for _ in range(reps):
            for name, episode in runs.items():
                seconds[name].append(_steady(episode))
        t = {name: np.array(v) for name, v in seconds.items()}
        rows.append((batch, "jppo, whole episode compiled, float32", f"{np.median(t['jppo']):.2f}", "1.0x", f"{first:.1f}"))
        if metabox is not None:
            ratios = t["metabox"] / t["jppo"]
            rows.append((batch, "MetaBox's GLEET agent (torch, float64) + numpy GLEET_Optimizer",
                         f"{np.median(t['metabox']):.2f}", f"**{np.median(ratios):.1f}x** (rounds: "
                         f"{', '.join(f'{r:.1f}' for r in ratios)})", "-"))
    if len(rows) == 2:
        notes.append(f"MetaBox rows left out: metaevobox does not import here ({metabox_source.SKIP_REASON}).")
    notes.append(f"{reps} rounds of each row in turn per batch (two episodes back to back, the second timed); "
                 f"'slower' = the median over rounds of MetaBox time / jppo time, the per-round ratios in brackets.")
    batches = (4, 64, 256)
    episodes = {batch: _jppo_episode(False, batch, "gleet")[0] for batch in batches}
    scaling = {batch: [] for batch in batches}
    for _ in range(reps):
        for batch, episode in episodes.items():
            scaling[batch].append(_steady(episode))
    scaling_rows = [(b, f"{np.median(scaling[b]):.2f}", f"{np.median(np.divide(scaling[b], scaling[4])):.1f}x",
                     f"{b * 199 * 100 / np.median(scaling[b]):,.0f}") for b in batches]
    return [("GLEET: one training episode, 100 particles × 20000 evaluations (problems F4, F6, F7, F8 repeated)",
             ("batch", "implementation", "s / training episode", "slower than jppo", "compile s"), rows, notes),
            ("GLEET scaling: jppo float32, envs per batch",
             ("batch", "s / training episode", "vs batch 4", "function evaluations / s"), scaling_rows,
             ["Batch sizes in turn, timed as above; 'vs batch 4' is the median of per-round ratios."])]
