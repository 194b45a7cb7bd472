"""Independent implementations that the tests and benchmarks check jppo against.

Not part of the product (not installed with jppo, never imported by `jppo` or `compat`): a torch PPO
written from the equations (`torch_ppo`), torch twins of MetaBox's networks with its state_dict names
(`torch_twins`), numpy ports of MetaBox's BBOB functions and PSO optimizers (`bbob_numpy`,
`rlepso_numpy`, `gleet_numpy`), small environments and stand-in problems for the tests (`envs`,
`host_envs`, `stand_ins`), the loader of MetaBox's own source (`metabox_source`, `metabox_dropin`), and the venv where MetaBox
itself imports beside jppo, for the tests marked `metabox` (`metabox_venv`).
"""
