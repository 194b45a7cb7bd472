"""jppo: a JAX PPO engine, and (in `compat`) a drop-in facade for MetaBox's torch PPO agent."""

from jppo.distributions import Categorical, Normal
from jppo.loss import METABOX, LossConfig, explained_variance, ppo_loss
from jppo.networks import CategoricalActor, Critic, GaussianActor
from jppo.optim import clip_global, clip_per_network, learning_rates, make_optimizer, set_learning_rates
from jppo.policy import ActorCritic
from jppo.returns import gae, nstep_returns
from jppo.update import Hyperparams, UpdateConfig, check_batch, make_gradient_step, make_update

__version__ = "0.1.0"
