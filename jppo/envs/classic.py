"""CartPole-v1 and Pendulum-v1 with gymnasium's dynamics, bounds, resets and time limits."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

from jppo.envs.base import Box, Discrete, Environment, default_float


@struct.dataclass
class CartPoleParams:
    gravity: float = 9.8
    masscart: float = 1.0
    masspole: float = 0.1
    length: float = 0.5  # half the pole's length
    force_mag: float = 10.0
    tau: float = 0.02
    theta_threshold: float = 12 * 2 * math.pi / 360
    x_threshold: float = 2.4
    max_steps: int = struct.field(pytree_node=False, default=500)


@struct.dataclass
class CartPoleState:
    physics: jax.Array  # [x, x_dot, theta, theta_dot]
    time: jax.Array


class CartPole(Environment):
    r"""Cart-pole balancing (Barto, Sutton & Anderson 1983), explicit Euler with τ = 0.02:

        temp = (F + m_p l θ̇² sin θ) / (m_c + m_p)
        θ̈ = (g sin θ - cos θ · temp) / (l (4/3 - m_p cos²θ / (m_c + m_p)))
        ẍ = temp - m_p l θ̈ cos θ / (m_c + m_p)

    with F = ±10. Reward 1 per step; terminated when |x| > 2.4 or |θ| > 12°; truncated at 500 steps.
    """

    observation_shape = (4,)
    action_space = Discrete(2)

    @property
    def default_params(self) -> CartPoleParams:
        return CartPoleParams()

    def reset(self, key, params: CartPoleParams):
        physics = jax.random.uniform(key, (4,), default_float(), -0.05, 0.05)
        return physics, CartPoleState(physics, jnp.zeros((), jnp.int32))

    def step(self, key, state: CartPoleState, action, params: CartPoleParams):
        p = params
        x, x_dot, theta, theta_dot = state.physics
        force = jnp.where(action == 1, p.force_mag, -p.force_mag)
        cos, sin = jnp.cos(theta), jnp.sin(theta)
        total_mass = p.masscart + p.masspole
        polemass_length = p.masspole * p.length
        temp = (force + polemass_length * theta_dot**2 * sin) / total_mass
        theta_acc = (p.gravity * sin - cos * temp) / (p.length * (4.0 / 3.0 - p.masspole * cos**2 / total_mass))
        x_acc = temp - polemass_length * theta_acc * cos / total_mass
        physics = jnp.stack(
            [x + p.tau * x_dot, x_dot + p.tau * x_acc, theta + p.tau * theta_dot, theta_dot + p.tau * theta_acc]
        )
        time = state.time + 1
        terminated = (jnp.abs(physics[0]) > p.x_threshold) | (jnp.abs(physics[2]) > p.theta_threshold)
        truncated = (time >= p.max_steps) & ~terminated
        reward = jnp.ones((), physics.dtype)
        return physics, CartPoleState(physics, time), reward, terminated, truncated, {}


@struct.dataclass
class PendulumParams:
    max_speed: float = 8.0
    max_torque: float = 2.0
    dt: float = 0.05
    g: float = 10.0
    m: float = 1.0
    l: float = 1.0
    max_steps: int = struct.field(pytree_node=False, default=200)


@struct.dataclass
class PendulumState:
    theta: jax.Array
    theta_dot: jax.Array
    time: jax.Array


def angle_normalize(x):
    return ((x + jnp.pi) % (2 * jnp.pi)) - jnp.pi


class Pendulum(Environment):
    r"""Inverted pendulum swing-up, torque u ∈ [-2, 2]:

        cost = norm(θ)² + 0.1 θ̇² + 0.001 u²,   reward = -cost
        θ̇' = clip(θ̇ + (3g/(2l) sin θ + 3/(m l²) u) dt, -8, 8),   θ' = θ + θ̇' dt

    Observation (cos θ, sin θ, θ̇); never terminates; truncated at 200 steps.
    """

    observation_shape = (3,)
    action_space = Box(-2.0, 2.0, (1,))

    @property
    def default_params(self) -> PendulumParams:
        return PendulumParams()

    @staticmethod
    def observation(state: PendulumState):
        return jnp.stack([jnp.cos(state.theta), jnp.sin(state.theta), state.theta_dot])

    def reset(self, key, params: PendulumParams):
        high = jnp.array([jnp.pi, 1.0], default_float())
        theta, theta_dot = jax.random.uniform(key, (2,), default_float(), -high, high)
        state = PendulumState(theta, theta_dot, jnp.zeros((), jnp.int32))
        return self.observation(state), state

    def step(self, key, state: PendulumState, action, params: PendulumParams):
        p = params
        u = jnp.clip(jnp.reshape(action, (-1,))[0], -p.max_torque, p.max_torque).astype(state.theta.dtype)
        th, thdot = state.theta, state.theta_dot
        cost = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
        new_thdot = jnp.clip(thdot + (3 * p.g / (2 * p.l) * jnp.sin(th) + 3.0 / (p.m * p.l**2) * u) * p.dt,
                             -p.max_speed, p.max_speed)
        new_state = PendulumState(th + new_thdot * p.dt, new_thdot, state.time + 1)
        truncated = new_state.time >= p.max_steps
        return self.observation(new_state), new_state, -cost, jnp.zeros((), bool), truncated, {}
