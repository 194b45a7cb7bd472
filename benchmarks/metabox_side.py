"""MetaBox's own side of the metabox_parity study (`benchmarks/metabox_parity/`): its pretrained RLEPSO
rolled out by its Tester's rules, and its Trainer driving MetaBox's torch RLEPSO or compat's PPO_Agent.
Everything here imports metaevobox and torch lazily; `available()` says whether they import.

Conventions copied from MetaBox 2.0.2 (paths under metaevobox/):
* Tester (tester.py:358-367): for run seed s = 1..51, `torch.manual_seed(s)`, `np.random.seed(s)`,
  float64 default dtype, then `agent.rollout_episode(PBO_Env(problem, optimizer), s)`; the final cost
  is the last entry of the env's cost log.
* Trainer (trainer.py:125-127, 239-263): `torch.manual_seed(seed)`, `np.random.seed(seed)` at
  construction; every epoch reshuffles the train set; 'single' mode gives each batch episode B copies
  of one problem with seeds seed + 100·epoch + 5·(i + B·k).
"""

from __future__ import annotations

import contextlib
import copy
import math
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

PKL = Path("model") / "bbob-10D" / "difficult" / "RLEPSO.pkl"
SNAPSHOT_T = np.linspace(0.0, 1.0, 21)  # states fes/maxFEs at which the actor's μ and σ are recorded


def available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("metaevobox", "torch"))


def pretrained_pkl() -> Path:
    """MetaBox's shipped RLEPSO for the difficult split of bbob-10D."""
    import metaevobox

    return Path(metaevobox.__file__).parent / PKL


@contextlib.contextmanager
def _bare_argv():
    saved, sys.argv = sys.argv, sys.argv[:1]  # MetaBox's Config parses the command line
    try:
        yield
    finally:
        sys.argv = saved


def config(**values):
    """MetaBox's Config for bbob-10D (difficult split, cpu, no TensorBoard) with `values` over it."""
    from metaevobox import Config

    base = {"train_problem": "bbob-10D", "test_problem": "bbob-10D", "train_difficulty": "difficult",
            "test_difficulty": "difficult", "device": "cpu", "no_tb": True, "full_meta_data": False,
            "train_parallel_mode": "dummy"}
    with _bare_argv():
        return Config({**base, **values})


def problem_sets(cfg):
    """`(train problems, test problems)`: MetaBox's bbob-10D split of `cfg`, as lists."""
    from metaevobox.environment.problem.utils import construct_problem_set

    cfg, (train, test) = construct_problem_set(cfg)
    return list(train.data), list(test.data)


def fid(problem) -> int:
    """The BBOB function number of a MetaBox problem (its class is F<n>)."""
    return int(type(problem).__name__.lstrip("F"))


def load_pretrained():
    """MetaBox's pickled RLEPSO agent, float64 as its Tester runs it."""
    import torch

    from compat.convert_checkpoint import load_agent

    torch.set_default_dtype(torch.float64)
    agent = load_agent(pretrained_pkl())
    agent.config.full_meta_data = False
    return agent


def rollout_final_costs(agent, problems, runs: int, cfg, max_fes: int | None = None):
    """`(final cost [P, runs], cost history [P, runs, points], seconds per episode)` of `agent`
    under MetaBox's Tester rules (seeds 1..runs)."""
    import torch
    from metaevobox.environment.basic_environment import PBO_Env
    from metaevobox.environment.optimizer.rlepso_optimizer import RLEPSO_Optimizer

    if max_fes is not None:
        cfg.maxFEs, cfg.log_interval = max_fes, max_fes // cfg.n_logpoint
    optimizer = RLEPSO_Optimizer(cfg)
    finals, histories, start = [], [], time.perf_counter()
    for problem in problems:
        row, hist = [], []
        for seed in range(1, runs + 1):
            torch.manual_seed(seed)
            np.random.seed(seed)
            torch.set_default_dtype(torch.float64)
            result = agent.rollout_episode(PBO_Env(copy.deepcopy(problem), copy.deepcopy(optimizer)), seed)
            row.append(float(result["cost"][-1]))
            hist.append(np.asarray(result["cost"], float))
        finals.append(row)
        histories.append(np.stack(hist))
    seconds = (time.perf_counter() - start) / max(1, len(problems) * runs)
    return np.array(finals), np.stack(histories), seconds


def pretrained_final_costs(runs: int, problems: int | None, max_fes: int) -> dict:
    """RLEPSO.pkl on the first `problems` (None: all) test problems, `runs` runs each, by the Tester's rules:
    `{'final', 'history', 'seconds' (per episode), 'fids'}`."""
    cfg = config()
    _, test = problem_sets(cfg)
    test = test[:problems] if problems is not None else test
    final, history, seconds = rollout_final_costs(load_pretrained(), test, runs, cfg, max_fes)
    return {"final": final, "history": history, "seconds": seconds, "fids": [fid(p) for p in test]}


def metabox_seed(seed: int) -> int:
    """The Trainer seed of run `seed` (0 is MetaBox's default, 3849)."""
    return 3849 + seed


def make_agent(way: str, cfg):
    """A fresh RLEPSO agent whose networks start from torch's initialisation under `torch.manual_seed(cfg.seed)`:
    way 'metabox' (MetaBox's torch agent as shipped) or 'compat' (the port `compat.agents.rlepso.RLEPSO`:
    compat's PPO_Agent, MetaBox's RLEPSO networks in NNX, loaded with the same initial weights)."""
    import torch
    from metaevobox.baseline.metabbo import rlepso as mb_rlepso

    torch.set_default_dtype(torch.float64)
    torch.manual_seed(cfg.seed)
    torch_agent = mb_rlepso.RLEPSO(cfg)
    if way == "metabox":
        return torch_agent
    import jax

    from compat.agents.rlepso import RLEPSO
    from compat.convert_checkpoint import agent_weights

    cfg.agent_save_dir = os.path.dirname(os.path.dirname(cfg.agent_save_dir.rstrip("/")))  # the port appends these again
    with jax.enable_x64(True):
        agent = RLEPSO(cfg)
        agent.load_metabox(agent_weights(torch_agent))
    return agent


def raised_in_metabox(err: BaseException) -> bool:
    """Whether the innermost frame of `err`'s traceback is in metaevobox's source."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and "metaevobox" in tb.tb_frame.f_code.co_filename


def crash_report(err: BaseException) -> str:
    """One line: where in metaevobox `err` was raised, the source line, and the message."""
    import traceback

    frame = traceback.extract_tb(err.__traceback__)[-1]
    path = frame.filename[frame.filename.index("metaevobox"):]
    return f"{type(err).__name__} at {path}:{frame.lineno} (`{frame.line}`): {err}"


def init_weights(seed: int):
    """MetaBox's RLEPSO networks as torch initialises them under `torch.manual_seed(metabox_seed(seed))`,
    as `jppo.metabbo.metabox_checkpoint.MetaBoxWeights`."""
    import torch
    from metaevobox.baseline.metabbo import rlepso as mb_rlepso

    from compat.convert_checkpoint import agent_weights

    torch.set_default_dtype(torch.float64)
    torch.manual_seed(metabox_seed(seed))
    cfg = config(seed=metabox_seed(seed))
    cfg.feature_dim, cfg.action_dim, cfg.min_sigma, cfg.max_sigma = 1, 35, 0.01, 0.7
    import types

    agent = types.SimpleNamespace(network=["actor", "critic"], actor=mb_rlepso.Actor(cfg),
                                  critic=mb_rlepso.Critic(cfg), config=types.SimpleNamespace())
    weights = agent_weights(agent)
    return type(weights)("RLEPSO", weights.networks, {}, 0)


def mu_sigma(agent, t: np.ndarray):
    """`(μ [T, 35], σ [T, 35])` of an RLEPSO agent's actor (torch or compat) at states fes/maxFEs = t."""
    actor = agent.actor
    if hasattr(actor, "distribution"):  # the compat port's NNX actor
        import jax
        import jax.numpy as jnp

        with jax.enable_x64(True):
            dist = actor.distribution(jnp.asarray(t[:, None], jnp.float64))
            return np.asarray(dist.loc), np.asarray(dist.scale)
    import torch

    with torch.no_grad():
        x = torch.as_tensor(t[:, None], dtype=torch.float64)
        mu = (torch.tanh(actor._Actor__mu_net(x)) + 1) / 2
        sigma = (torch.tanh(actor._Actor__sigma_net(x)) + 1) / 2 * (0.7 - 0.01) + 0.01
    return mu.numpy(), sigma.numpy()


TB_TAGS = ("grad/actor", "grad/critic", "loss/actor_loss", "loss/critic_loss", "train/approx_kl", "train/avg_entropy")


class _Scalars:
    """A stand-in TensorBoard writer that keeps the scalars of `TB_TAGS`."""

    def __init__(self):
        self.values = {tag: [] for tag in TB_TAGS}

    def add_scalar(self, tag, value, step=None):
        if tag in self.values:
            self.values[tag].append(float(value))


class _Recorder:
    """Wraps `agent.train_episode` to keep each batch episode's return, final cost and wall-clock."""

    def __init__(self, agent, x64: bool, progress: Path | None = None):
        self.agent, self.x64, self.inner, self.progress = agent, x64, agent.train_episode, progress
        self.returns, self.final_costs, self.seconds, self.problems, self.mu, self.sigma = [], [], [], [], [], []
        self.scalars = []
        agent.train_episode = self

    def __call__(self, envs, seeds, **kwargs):
        import jax

        scalars, no_tb = _Scalars(), self.agent.config.no_tb
        self.agent.config.no_tb = False  # the agent logs each learning step's scalars to `scalars`
        start = time.perf_counter()
        try:
            with jax.enable_x64(self.x64):
                ended, info = self.inner(envs=envs, seeds=seeds, **{**kwargs, "tb_logger": scalars})
        finally:
            self.agent.config.no_tb = no_tb
        self.seconds.append(time.perf_counter() - start)
        self.scalars.append([np.mean(scalars.values[tag]) if scalars.values[tag] else np.nan for tag in TB_TAGS])
        self.returns.append(float(np.mean(info["return"])))
        self.final_costs.append(np.asarray(info["gbest"], float))
        self.problems.append(fid(envs[0].problem))
        mu, sigma = mu_sigma(self.agent, SNAPSHOT_T)
        self.mu.append(mu)
        self.sigma.append(sigma)
        if self.progress is not None:  # a long run shows (and keeps) its course as it goes
            cost = np.log10(np.maximum(self.final_costs[-1], 1e-8)).mean()
            with open(self.progress, "a") as f:
                f.write(f"{len(self.returns)}\tF{self.problems[-1]}\t{self.returns[-1]:.3f}\t{cost:.3f}\t"
                        f"{sigma.mean():.4f}\t{np.abs(mu - 0.5).mean():.4f}\t{self.seconds[-1]:.1f}\n")
        return ended, info


def final_networks(agent) -> dict[str, np.ndarray]:
    """The agent's networks in MetaBox's state_dict layout, flat: 'w:<network>:<torch name>' → array (the
    torch agent's own state_dict; the compat port's NNX modules under the same names)."""
    if hasattr(agent.actor, "distribution"):  # the compat port
        from jppo.metabbo.networks import state_dict

        networks = {name: state_dict(getattr(agent, name)) for name in ("actor", "critic")}
    else:
        from compat.convert_checkpoint import agent_weights

        networks = agent_weights(agent).networks
    return {f"w:{net}:{name}": np.asarray(value) for net, sd in networks.items() for name, value in sd.items()}


def weights_from_flat(data) -> "MetaBoxWeights":
    """Inverse of `final_networks`: a MetaBoxWeights of RLEPSO's layout from a dict/npz with 'w:' keys."""
    from jppo.metabbo.metabox_checkpoint import MetaBoxWeights

    networks = {"actor": {}, "critic": {}}
    for key in data:
        if key.startswith("w:"):
            _, net, name = key.split(":", 2)
            networks[net][name] = np.asarray(data[key])
    return MetaBoxWeights("RLEPSO", networks, {}, 0)


@contextlib.contextmanager
def mended_cost_logs():
    """MetaBox's RLEPSO.train_episode ends with `np.array(env.get_env_attr('cost'))`, which raises when the
    envs' cost logs differ in length (RLEPSO_Optimizer appends one entry per log interval, and particle
    re-initialisations make fes jump unevenly, so an env can end a log entry short). The log is only read
    back for the returned info, its first and last entries; inside this context each env's log is given as
    exactly those two, so a long run is not lost to that. Training is untouched."""
    from metaevobox.baseline.metabbo import rlepso as mb_rlepso

    plain = mb_rlepso.ParallelEnv

    class Mended(plain):
        def get_env_attr(self, key, id=None):
            values = super().get_env_attr(key, id)
            if key != "cost":
                return values
            return [[v[0], v[-1]] for v in values]

    mb_rlepso.ParallelEnv = Mended
    try:
        yield
    finally:
        mb_rlepso.ParallelEnv = plain


def train_curves(way: str, seed: int, epochs: int, batch_size: int, work_dir: Path, max_fes: int | None = None,
                 mend_cost_logs: bool = False):
    """Train a fresh agent (`make_agent(way)`, Trainer seed `metabox_seed(seed)`) with MetaBox's Trainer
    ('single' mode, difficult split) for `epochs` epochs (8 batch episodes of `batch_size` envs each: one
    per train problem). Returns dict of arrays per batch episode: return [E] (mean over the batch),
    final_cost [E, B], problem [E] (BBOB fid), seconds [E], and the actor's mu, sigma [E, 21, 35] after it
    (at states `SNAPSHOT_T`), and per batch episode the mean over its learning steps of each TensorBoard
    scalar in `TB_TAGS` (keys 'tb:<tag>'), as the agent logs them (pre-clip gradient norms, losses, KL);
    and the final networks (`final_networks`). `mend_cost_logs`: see `mended_cost_logs`."""
    from metaevobox import Trainer
    from metaevobox.environment.optimizer.rlepso_optimizer import RLEPSO_Optimizer
    from metaevobox.environment.problem.utils import construct_problem_set

    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(work_dir)  # MetaBox writes agent_model/ and output/ under the working directory
    try:
        cfg = config(train_batch_size=batch_size, train_mode="single", end_mode="epoch", max_epoch=epochs,
                     n_checkpoint=1, seed=metabox_seed(seed))
        if max_fes is not None:
            cfg.maxFEs, cfg.log_interval = max_fes, max_fes // cfg.n_logpoint
        cfg.save_interval = 10**9  # no checkpoints (the recorder wrapped around train_episode does not pickle)
        cfg, datasets = construct_problem_set(cfg)
        agent = make_agent(way, cfg)
        progress = work_dir / "progress.tsv"  # episode, problem, return, mean log10 final cost, mean σ, mean |μ-0.5|, s
        progress.write_text("")
        recorder = _Recorder(agent, x64=(way == "compat"), progress=progress)
        trainer = Trainer(cfg, agent, RLEPSO_Optimizer(cfg), datasets)
        mend = mended_cost_logs() if mend_cost_logs else contextlib.nullcontext()
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), mend:
            trainer.train()
    finally:
        os.chdir(cwd)
    return {"return": np.array(recorder.returns), "final_cost": np.stack(recorder.final_costs),
            "problem": np.array(recorder.problems), "seconds": np.array(recorder.seconds),
            "mu": np.stack(recorder.mu), "sigma": np.stack(recorder.sigma),
            **{f"tb:{tag}": np.array(recorder.scalars)[:, i] for i, tag in enumerate(TB_TAGS)},
            **final_networks(agent)}


def loop_movement(seed: int, fid_: int, batch: int, reevaluate_at_last_state: bool, episodes: int = 1,
                  max_fes: int | None = None, weights=None) -> dict:
    """How far one training episode moves RLEPSO's actor under MetaBox's loop (`reevaluate_at_last_state`,
    epochs k >= 1 evaluate at the window's last state) or the corrected one (the stored states: compat's and
    jppo's), everything else equal: torch, float64, Adam lr 1e-5, the networks of `init_weights(seed)`,
    (or `weights`, a MetaBoxWeights of RLEPSO's layout), `batch` copies of train problem F`fid_` on MetaBox's numpy RLEPSO_Optimizer with the Trainer's seeds,
    torch's sampling seeded alike. Returns per-learning-step stats (references.torch_ppo.torch_train_episode)
    and the actor's μ, σ at `SNAPSHOT_T` before and after."""
    import types

    import jax
    import torch
    from flax import nnx
    from metaevobox.environment.basic_environment import PBO_Env
    from metaevobox.environment.optimizer.rlepso_optimizer import RLEPSO_Optimizer

    import compat.networks as cn
    from references.torch_ppo import TorchClampedActor, TorchValueCritic, torch_train_episode

    torch.set_default_dtype(torch.float64)
    cfg = config(seed=metabox_seed(seed))
    if max_fes is not None:
        cfg.maxFEs, cfg.log_interval = max_fes, max_fes // cfg.n_logpoint
    train, _ = problem_sets(cfg)
    problem = next(p for p in train if fid(p) == fid_)
    weights = init_weights(seed) if weights is None else weights
    with jax.enable_x64(True):
        actor, critic = cn.RLEPSOActor(1, 35, rngs=nnx.Rngs(0)), cn.RLEPSOCritic(1, rngs=nnx.Rngs(1))
        cn.load_state_dict(actor, weights.networks["actor"])
        cn.load_state_dict(critic, weights.networks["critic"])
    t_actor, t_critic = TorchClampedActor(actor, sample=True), TorchValueCritic(critic)
    opt = torch.optim.Adam([{"params": t_actor.params(), "lr": 1e-5}, {"params": t_critic.params(), "lr": 1e-5}])
    loop_cfg = types.SimpleNamespace(n_step=10, K_epochs=3, eps_clip=0.1, gamma=0.999, max_grad_norm=math.inf,
                                     max_learning_step=10**9)

    def snapshot():
        with torch.no_grad():
            x = torch.as_tensor(SNAPSHOT_T[:, None])
            mu = (torch.tanh(t_actor.mu(x)) + 1) / 2
            sigma = (torch.tanh(t_actor.sigma(x)) + 1) / 2 * (0.7 - 0.01) + 0.01
        return mu.numpy().copy(), sigma.numpy().copy()

    mu0, sigma0 = snapshot()
    stats, start = {}, time.perf_counter()
    torch.manual_seed(metabox_seed(seed))
    optimizer = RLEPSO_Optimizer(cfg)
    for episode in range(episodes):
        envs = [PBO_Env(copy.deepcopy(problem), copy.deepcopy(optimizer)) for _ in range(batch)]
        torch_train_episode(t_actor, t_critic, opt, envs, metabox_seed(seed) + 100 * episode, loop_cfg,
                            reevaluate_at_last_state=reevaluate_at_last_state, stats=stats)
    mu1, sigma1 = snapshot()
    return {**{k: np.array(v) for k, v in stats.items()}, "mu0": mu0, "sigma0": sigma0, "mu1": mu1,
            "sigma1": sigma1, "seconds": time.perf_counter() - start}
