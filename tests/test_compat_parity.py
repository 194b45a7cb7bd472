"""compat.PPO_Agent.train_episode against a torch implementation of compat's loop (docs/metabox.md)
(references/torch_ppo.py: `torch_train_episode`), in float64."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch")

from compat.networks import RLEPSOActor, RLEPSOCritic  # noqa: E402
from compat.ppo import PPO_Agent  # noqa: E402
from references.envs import ToyOptimizerEnv  # noqa: E402
from references.torch_ppo import TorchClampedActor, TorchValueCritic, torch_train_episode  # noqa: E402


class DeterministicActor(RLEPSOActor):
    """Acts with clamp(μ + σ/2, 0, 1) instead of sampling; the offset keeps the policy gradient well away
    from zero (with a = μ it is exactly zero at k = 0, and Adam would amplify rounding noise)."""

    def __call__(self, state, fixed_action=None, require_entropy=False, *, key=None):
        if fixed_action is None:
            policy = self.distribution(state)
            fixed_action = jax.lax.stop_gradient(jnp.clip(policy.loc + 0.5 * policy.scale, 0.0, 1.0))
        return super().__call__(state, fixed_action, require_entropy, key=key)


def test_train_episode_matches_torch_reference(tmp_path):
    with jax.enable_x64(True):
        cfg = types.SimpleNamespace(gamma=0.9, n_step=5, K_epochs=3, eps_clip=0.1, max_grad_norm=0.05, device="cpu",
                                    optimizer="Adam", agent_save_dir=str(tmp_path), save_interval=1000,
                                    end_mode="epoch", max_learning_step=10_000, no_tb=True, seed=0)
        actor = DeterministicActor(3, 3, hidden=(16, 8), rngs=nnx.Rngs(0))
        critic = RLEPSOCritic(3, rngs=nnx.Rngs(1))
        t_actor, t_critic = TorchClampedActor(actor), TorchValueCritic(critic)
        agent = PPO_Agent(cfg, {"actor": actor, "critic": critic}, [3e-3, 1e-2])
        opt = torch.optim.Adam([{"params": t_actor.params(), "lr": 3e-3}, {"params": t_critic.params(), "lr": 1e-2}])

        envs = [ToyOptimizerEnv(max_steps=13) for _ in range(3)]  # windows 5, 5, 3: the last is short
        ended, info = agent.train_episode(envs, seeds=7)
        t_losses, t_returns, t_steps = torch_train_episode(t_actor, t_critic, opt, [ToyOptimizerEnv(max_steps=13) for _ in range(3)], 7, cfg)

        assert not ended and info["learn_steps"] == t_steps == 9
        np.testing.assert_allclose(info["loss"], t_losses, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(info["return"], t_returns, rtol=0, atol=0)
        costs = [e.cost for e in envs]
        np.testing.assert_allclose(info["normalizer"], [c[0] for c in costs])
        np.testing.assert_allclose(info["gbest"], [c[-1] for c in costs])
        for mine, theirs in [(agent.actor.mean, t_actor.mu_layers), (agent.actor.spread, t_actor.sigma_layers),
                             (agent.critic.value_head, t_critic.layers)]:
            for lin, layer in zip(mine.layers, theirs):
                np.testing.assert_allclose(np.asarray(lin.kernel[...]), layer.weight.detach().numpy().T, rtol=1e-8, atol=1e-10)
                np.testing.assert_allclose(np.asarray(lin.bias[...]), layer.bias.detach().numpy(), rtol=1e-8, atol=1e-10)
        # gradient clipping was active: the clipped norm is max_grad_norm for some step
        assert agent.learning_time == 9
