"""MetaBox-compatible facade over jppo: swap `from src.rl.ppo import PPO_Agent` for
`from compat.ppo import PPO_Agent` and write the actor and critic as Flax NNX modules."""
