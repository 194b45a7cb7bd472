"""MetaBox's PPO agents' settings: what each agent's `__init__` writes into MetaBox's config (metaevobox 2.0.2).

One table, read by both products: compat's ports set these attributes on the caller's config as
MetaBox's classes do (`compat.agents`), and the MetaBBO env presets start from them, translated to
`TrainConfig` fields by `train_fields` (`jppo.metabbo.presets`). The keys are MetaBox's names; an
agent's key is its class name, which is also its `str()` and the directory its checkpoints go to.

What MetaBox computes rather than sets is not here: RLDAS sets K_epochs None and takes K per batch
from its envs' optimizers (`compat.agents.rldas.epochs_for`); L2T's n_state and n_action follow the
number of tasks of its problem set.
"""

from __future__ import annotations

import math

SETTINGS: dict[str, dict] = {
    "RLEPSO": dict(feature_dim=1, action_dim=35, action_shape=(35,), n_step=10, K_epochs=3, eps_clip=0.1,
                   gamma=0.999, max_sigma=0.7, min_sigma=0.01, lr=1e-5, optimizer="Adam", max_grad_norm=math.inf),
    # lr_scheduler, lr_model and lr_decay are set but never used: MetaBox builds no scheduler.
    "GLEET": dict(optimizer="Adam", lr_actor=1e-4, lr_critic=1e-4, lr_scheduler="ExponentialLR", embedding_dim=16,
                  encoder_head_num=4, decoder_head_num=4, n_encode_layers=1, normalization="layer", v_range=6,
                  hidden_dim=16, node_dim=9, hidden_dim1_actor=32, hidden_dim2_actor=8, max_sigma=0.7, min_sigma=0.01,
                  hidden_dim1_critic=32, hidden_dim2_critic=16, gamma=0.999, n_step=10, K_epochs=3, eps_clip=0.1,
                  lr_model=1e-4, lr_decay=0.9862327, max_grad_norm=0.1),
    "RLDAS": dict(optimizer="Adam", lr=1e-5, feature_dim=9, optim_num=3, gamma=0.99, n_step=10, K_epochs=None,
                  eps_clip=0.1, max_grad_norm=0.1),
    "SYMBOL": dict(optimizer="Adam", init_pop="random", teacher="MadDE", population_size=100,
                   boarder_method="clipping", skip_step=5, test_skip_step=5, max_c=1.0, min_c=-1.0, c_interval=0.4,
                   max_layer=6, value_dim=1, hidden_dim=16, num_layers=1, lr=1e-3, lr_critic=1e-3,
                   max_grad_norm=math.inf, encoder_head_num=4, decoder_head_num=4, critic_head_num=4,
                   embedding_dim=16, n_encode_layers=1, normalization="layer", hidden_dim1_critic=32,
                   hidden_dim2_critic=16, hidden_dim1_actor=32, hidden_dim2_actor=8, output_dim_actor=1, gamma=0.99,
                   K_epochs=3, eps_clip=0.1, n_step=10, fea_dim=9),
    "RLDEAFL": dict(optimizer="Adam", lr=1e-4, fe_hidden_dim=64, fe_n_layers=1, gamma=0.99, n_step=10, K_epochs=3,
                    eps_clip=0.2, max_grad_norm=1, mu_operator=14, cr_operator=3, n_mutation=3, n_crossover=2),
    "L2T": dict(optimizer="Adam", lr_actor=1e-4, lr_critic=1e-4, lr_scheduler="ExponentialLR", gamma=0.99, n_step=10,
                K_epochs=3, eps_clip=0.2, max_grad_norm=0.1),
    "RLEMMO": dict(optimizer="Adam", lr_actor=5e-4, lr_critic=5e-4, lr_scheduler="ExponentialLR", embedding_dim=64,
                   encoder_head_num=4, n_encode_layers=1, normalization="layer", hidden_dim=64, hidden_dim1_actor=16,
                   hidden_dim2_actor=8, hidden_dim1_critic=16, hidden_dim2_critic=8, gamma=0.99, n_step=10,
                   K_epochs=3, eps_clip=0.1, lr_decay=0.9862327, max_grad_norm=0.1),
}

# MetaBox's name -> TrainConfig's, for the settings both have (the learning rate: `learning_rate`).
TRAIN_FIELDS = {"n_step": "num_steps", "K_epochs": "num_epochs", "eps_clip": "clip_eps", "gamma": "gamma",
                "max_grad_norm": "max_grad_norm", "optimizer": "optimizer", "min_sigma": "min_sigma",
                "max_sigma": "max_sigma"}


def train_fields(settings: dict) -> dict:
    """The `TrainConfig` fields a MetaBox config sets (`SETTINGS[name]`, or a trained agent's saved config);
    settings that are absent or None are left out."""
    fields = {TRAIN_FIELDS[key]: value for key, value in settings.items() if key in TRAIN_FIELDS and value is not None}
    # a TrainConfig has one rate for both networks; GLEET, L2T and RLEMMO give actor and critic the same
    lr = settings.get("lr", settings.get("lr_actor"))
    return fields if lr is None else {**fields, "learning_rate": lr}
