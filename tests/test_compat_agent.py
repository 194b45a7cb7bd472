"""compat.PPO_Agent's contract: attributes, checkpoints, TensorBoard tags, objects, bad input; ParallelEnv."""

import copy
import math
import pickle
import types

import dill
import jax
import numpy as np
import pytest
from flax import nnx

from compat.networks import RLEPSOActor, RLEPSOCritic
from compat.parallelenv import ParallelEnv, WorkerError
from compat.ppo import PPO_Agent
from compat.utils import save_class
from references.envs import NaNRewardEnv, ToyOptimizerEnv


def make_config(tmp_path, **changes):
    cfg = dict(gamma=0.99, n_step=5, K_epochs=3, eps_clip=0.1, max_grad_norm=math.inf, device="cpu", optimizer="Adam",
               agent_save_dir=str(tmp_path), save_interval=4, end_mode="step", max_learning_step=1000, no_tb=False, seed=0)
    cfg.update(changes)
    return types.SimpleNamespace(**cfg)


def make_agent(tmp_path, lrs=1e-3, **changes):
    nets = {"actor": RLEPSOActor(3, 3, rngs=nnx.Rngs(0)), "critic": RLEPSOCritic(3, rngs=nnx.Rngs(1))}
    return PPO_Agent(make_config(tmp_path, **changes), nets, lrs)


def envs(n=3):
    return [ToyOptimizerEnv(max_steps=12) for _ in range(n)]


class TwoOutputs(RLEPSOActor):
    def __call__(self, state, fixed_action=None, require_entropy=False, *, key=None):
        return super().__call__(state, fixed_action, require_entropy, key=key)[:2]


class Recorder:
    def __init__(self):
        self.tags = set()

    def add_scalar(self, tag, value, step):
        assert isinstance(value, float), (tag, type(value))
        self.tags.add(tag)


def test_attributes_checkpoints_and_return_dict(tmp_path):
    agent = make_agent(tmp_path, lrs=[1e-3, 2e-3])
    assert (tmp_path / "checkpoint-0.pkl").exists() and agent.cur_checkpoint == 1
    assert agent.network == ["actor", "critic"] and agent.optimizer.param_groups[1]["lr"] == 2e-3
    before = np.asarray(agent.actor.mean.layers[0].kernel[...]).copy()
    tb = Recorder()
    ended, info = agent.train_episode(envs(), seeds=1, tb_logger=tb)
    assert not ended and info["learn_steps"] == agent.get_step() == 9  # windows 5, 5, 2 × K=3
    assert len(info["loss"]) == 9 and len(info["return"]) == 3
    assert set(info) >= {"return", "loss", "learn_steps", "normalizer", "gbest"}
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*.pkl")) == ["checkpoint-0.pkl", "checkpoint-1.pkl", "checkpoint-2.pkl"]
    assert not np.allclose(before, np.asarray(agent.actor.mean.layers[0].kernel[...]))  # modules hold new weights
    expected = {"learnrate/actor", "learnrate/critic", "grad/actor", "grad/critic", "grad_clipped/actor",
                "grad_clipped/critic", "loss/actor_loss", "loss/critic_loss", "loss/total_loss",
                "train/episode_avg_return", "train/target_avg_return_changed", "train/critic_avg_output",
                "train/avg_entropy", "train/-avg_logprobs", "train/approx_kl", "train/avg_reward", "train/max_reward"}
    assert tb.tags == expected


def test_stops_at_max_learning_step(tmp_path):
    agent = make_agent(tmp_path, max_learning_step=4)
    ended, info = agent.train_episode(envs(), seeds=1)
    assert ended and info["learn_steps"] == 4 and len(info["loss"]) == 4


def test_same_seeds_same_result(tmp_path):
    a, b = make_agent(tmp_path / "a"), make_agent(tmp_path / "b")
    ia, ib = a.train_episode(envs(), seeds=3)[1], b.train_episode(envs(), seeds=3)[1]
    assert ia["loss"] == ib["loss"] and ia["return"] == ib["return"]


def test_update_setting(tmp_path):
    agent = make_agent(tmp_path)
    agent.train_episode(envs(), seeds=1)
    new = types.SimpleNamespace(max_learning_step=50, agent_save_dir=str(tmp_path / "new"), save_interval=7)
    agent.update_setting(new)
    assert agent.learning_time == 0 and agent.cur_checkpoint == 1 and agent.config.save_interval == 7
    assert (tmp_path / "new" / "checkpoint-0.pkl").exists()


@pytest.mark.parametrize("dumps, loads", [(lambda a: pickle.dumps(a, -1), pickle.loads), (dill.dumps, dill.loads),
                                          (None, None)])
def test_agent_survives_pickle_dill_deepcopy(tmp_path, dumps, loads):
    agent = make_agent(tmp_path)
    agent.train_episode(envs(), seeds=1)
    clone = copy.deepcopy(agent) if dumps is None else loads(dumps(agent))
    r1 = agent.rollout_episode(ToyOptimizerEnv(max_steps=12), seed=4)
    r2 = clone.rollout_episode(ToyOptimizerEnv(max_steps=12), seed=4)
    assert r1["return"] == r2["return"] and r1["cost"] == r2["cost"] and "fes" in r1
    assert clone.train_episode(envs(), seeds=2)[1]["learn_steps"] == agent.learning_time + 9


def test_checkpoint_continues_in_a_fresh_process(tmp_path):
    import subprocess
    import sys

    agent = make_agent(tmp_path)
    agent.train_episode(envs(), seeds=1)
    save_class(str(tmp_path), "saved", agent)
    code = (
        "import pickle; from references.envs import ToyOptimizerEnv as E;"
        f"a = pickle.load(open({str(tmp_path / 'saved.pkl')!r}, 'rb'));"
        "print(a.train_episode([E(max_steps=12) for _ in range(3)], seeds=2)[1]['learn_steps'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=".")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("18")


class TestBadInput:
    def test_missing_critic(self, tmp_path):
        with pytest.raises(ValueError, match="networks must contain 'actor' and 'critic'"):
            PPO_Agent(make_config(tmp_path), {"actor": RLEPSOActor(3, 3, rngs=nnx.Rngs(0))}, 1e-3)

    def test_learning_rate_list_of_wrong_length(self, tmp_path):
        with pytest.raises(ValueError, match=r"learning rates list \(3\) must match the number of networks \(2"):
            make_agent(tmp_path, lrs=[1e-3, 1e-3, 1e-3])

    def test_unknown_optimizer(self, tmp_path):
        with pytest.raises(ValueError, match="config.optimizer must be one of"):
            make_agent(tmp_path, optimizer="Adamax")

    def test_nan_reward_names_env_and_step(self, tmp_path):
        agent = make_agent(tmp_path)
        with pytest.raises(ValueError, match=r"environment 1 returned a non-finite reward \(nan\) at step 2"):
            agent.train_episode([ToyOptimizerEnv(max_steps=12), NaNRewardEnv(max_steps=12)], seeds=1)

    def test_seed_count_mismatch(self, tmp_path):
        with pytest.raises(ValueError, match="seeds has 2 entries but 3 environments"):
            make_agent(tmp_path).train_episode(envs(), seeds=[1, 2])

    def test_actor_with_wrong_number_of_outputs(self, tmp_path):
        agent = PPO_Agent(make_config(tmp_path), {"actor": TwoOutputs(3, 3, rngs=nnx.Rngs(0)),
                                                  "critic": RLEPSOCritic(3, rngs=nnx.Rngs(1))}, 1e-3)
        with pytest.raises(ValueError, match=r"must return \(action, log_prob, entropy\).*returned 2"):
            agent.train_episode(envs(), seeds=1)


def test_parallelenv_modes_agree_and_errors():
    results = {}
    for mode in ("dummy", "subproc"):
        with ParallelEnv(envs(2), mode) as env:
            env.seed(5)
            obs = [env.reset()]
            while not env.all_done():
                o, r, d, _ = env.step(np.full((2, 3), 0.4))
                obs.append(o)
            with pytest.raises(RuntimeError, match="batch of environments is done"):
                env.step(np.full((2, 3), 0.4))
            results[mode] = (np.stack(obs), env.get_env_attr("cost"))
    np.testing.assert_array_equal(results["dummy"][0], results["subproc"][0])
    assert results["dummy"][1] == results["subproc"][1]
    with pytest.raises(ValueError, match="para_mode must be one of"):
        ParallelEnv(envs(), "threads")


def test_worker_exception_names_env_and_has_traceback():
    with ParallelEnv([ToyOptimizerEnv(), ToyOptimizerEnv(action_dim=2)], "subproc") as env:
        env.reset()
        with pytest.raises(WorkerError, match=r"(?s)environment 1 failed in step in its worker.*Traceback"):
            env.step(np.full((2, 3), 0.4))
