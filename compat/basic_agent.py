"""MetaBox's `Basic_Agent`: the base class every MetaBBO agent inherits."""

from __future__ import annotations


class Basic_Agent:
    """Holds the config; subclasses implement training and rollouts."""

    def __init__(self, config):
        self.__config = config

    def update_setting(self, config):
        pass

    def train_episode(self, envs, seeds, para_mode="dummy", compute_resource={}, tb_logger=None, required_info={}):
        raise NotImplementedError

    def rollout_episode(self, env, seed=None, required_info={}):
        raise NotImplementedError

    def train_epoch(self):
        pass

    def set_network(self, networks: dict, learning_rates):
        pass

    def get_step(self):
        raise NotImplementedError
