r"""MetaBox's SYMBOL agent (MetaBox's `symbol.py`) on `compat.ppo.PPO_Agent`.

Config values as MetaBox's `SYMBOL.__init__` sets them (`SETTINGS["SYMBOL"]` of
`jppo.metabbo.metabox_settings`: Adam, lr = lr_critic = 1e-3, no gradient clipping (max_grad_norm
∞), γ = 0.99, K = 3, ε = 0.1, n_step 10; trees of max_layer 6, LSTM hidden 16, constants in
[-1, 1) by 0.4, skip_step 5: each rule drives 5 generations of the env). Networks, in MetaBox's
order: `actor`, `SYMBOLActor` (the LSTM that writes the update rule, called with `fix_action=`), and
`critic`, `SYMBOLCritic` (V(s) = w·s + b, `(detached, value)`), on the 9 features of MetaBox's
`SYMBOL_Optimizer`.

Acting (`_get_action`) samples on the host, one compiled LSTM step per token with the grammar's
mask built in Python between steps (`jppo.metabbo.networks.symbol.generate`), and records what it
drew as an `UpdateRule` of padded arrays; then one compiled call scores it,

    log π(rule | s) = Σ_t [log π_t(a_t) + 1[a_t const] log κ_t(k_t)],

the same function `_evaluate` differentiates over a whole window (T·B rules in one `lax.scan`).
`_trans_action` turns each rule into MetaBox's action `{'expr': infix string, 'skip_step': 5}`.
The compiled `_act` is not used (its sampling cannot be traced) and refuses to run.

Training follows MetaBox's own `SYMBOL.train_episode` (windows of n_step, K epochs each re-scoring
every stored rule at the state where it was drawn; MetaBox's first epoch reuses the sampling-time
log-probs and values, which are the same numbers) except in two places:

* the nan check: MetaBox's `assert True, 'nan found in loss!!'` never fails (its condition is the
  constant True), so a nan loss goes on into the optimizer step and the weights. The port stops
  there: a nan loss raises `FloatingPointError` naming the learning step and both losses, before
  the step is kept (the modules keep the last good weights);
* constants: MetaBox re-scores a stored constant from its value c as ⌊(c - min_c) / c_interval⌋,
  which in float32 reads class 1 (-0.6) as class 0; the port keeps the drawn class itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compat.agents.base import MetaBoxPort, network_rngs, save_dir
from compat.conventions import batch_size
from compat.ppo import PPO_Agent
from jppo.metabbo.networks import SYMBOLActor, SYMBOLCritic, UpdateRule
from jppo.metabbo.networks.symbol import generate


class SYMBOL(MetaBoxPort, PPO_Agent):
    """SYMBOL: MetaBox's config values and networks; `SYMBOL.from_metabox(npz, config)` loads its weights."""

    metabox_name = "SYMBOL"

    def __init__(self, config):
        self._take_config(config)
        c = config
        actor = SYMBOLActor(c.max_layer, c.hidden_dim, c.num_layers, c.max_c, c.min_c, c.fea_dim, c.c_interval,
                            rngs=network_rngs(config))
        critic = SYMBOLCritic(c.fea_dim, c.value_dim, rngs=network_rngs(config, 1))
        config.agent_save_dir = save_dir(self, config)
        super().__init__(config, {"actor": actor, "critic": critic}, [c.lr, c.lr_critic])

    # -- acting: the host loop over tokens ---------------------------------------------------

    def _act(self, nets, state, key):
        raise NotImplementedError("SYMBOL samples on the host (its grammar masks are built in Python between "
                                  "LSTM steps): use agent._get_action(state), not the compiled _act")

    def _build(self):
        fns = super()._build()
        graph, rest = self._graphs()["actor"]

        def actor(p):
            return nnx.merge(graph, p, rest)

        fns["start"] = jax.jit(lambda p, s: actor(p).initial_carry(s))
        fns["step"] = jax.jit(lambda p, carry, u, mask, key: actor(p).step(carry, u, mask, key))
        jitted = fns["epochs"]

        def epochs(params, opt_state, lrs, window, next_state, gamma, eps, max_norm, count, *, num_epochs):
            out = jitted(params, opt_state, lrs, window, next_state, gamma, eps, max_norm, count,
                         num_epochs=num_epochs)
            metrics = {k: np.asarray(v)[:count] for k, v in out[2]["metrics"].items()}
            bad = np.flatnonzero(np.isnan(metrics["loss"]))
            if bad.size:
                k = int(bad[0])
                raise FloatingPointError(
                    f"nan found in loss at learning step {self.learning_time + k + 1} (policy loss "
                    f"{metrics['policy_loss'][k]}, value loss {metrics['value_loss'][k]}); the weights of the "
                    f"last finite step are kept")
            return out

        fns["epochs"] = epochs
        return fns

    def _get_action(self, state, fixed_action=None):
        """`(UpdateRule, log_prob [B], entropy [B])`: rules sampled with the agent's key (host loop, compiled
        steps), or `fixed_action` scored."""
        if fixed_action is not None:
            return super()._get_action(state, fixed_action)
        params, fns = self._current_params(), self._fns()
        actor_params = params["actor"]
        key, sub = jax.random.split(jax.random.wrap_key_data(jnp.asarray(self._key_data)))
        self._key_data = np.asarray(jax.random.key_data(key))
        rule = generate(lambda carry, u, mask, k: fns["step"](actor_params, carry, u, mask, k),
                        fns["start"](actor_params, state), batch_size(state), sub, self.config.max_layer)
        logp, entropy = fns["judge"](params, state, rule)
        return rule, logp, entropy

    def _trans_action(self, action):
        """Each env's rule as MetaBox's action `{'expr': infix string, 'skip_step': config.skip_step}`."""
        if not isinstance(action, UpdateRule):
            raise ValueError(f"SYMBOL's actions are UpdateRules (what its actor samples), got {type(action).__name__}")
        return [{"expr": expr, "skip_step": self.config.skip_step}
                for expr in action.expressions(self.config.min_c, self.config.c_interval)]

    def train_episode(self, envs, seeds=None, para_mode="dummy", compute_resource={}, tb_logger=None,
                      required_info={}):
        for env in envs:  # as MetaBox's SYMBOL: its optimizer env imitates the teacher while training
            optimizer = getattr(env, "optimizer", None)
            if optimizer is not None and hasattr(optimizer, "is_train"):
                optimizer.is_train = True
        return super().train_episode(envs, seeds, para_mode, compute_resource, tb_logger, required_info)

    def rollout_episode(self, env, seed=None, required_info={}):
        """compat's rollout; 'fes' is the population's evaluation count (`env.optimizer.population.cur_fes`)
        where the env has no `fes` (MetaBox's SYMBOL_Optimizer has none, so MetaBox's own rollout reports None)."""
        results = super().rollout_episode(env, seed, required_info)
        if results.get("fes") is None:
            population = getattr(getattr(env, "optimizer", None), "population", None)
            results["fes"] = getattr(population, "cur_fes", None)
        return results
