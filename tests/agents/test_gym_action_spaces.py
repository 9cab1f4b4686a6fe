"""The agents on plain Gymnasium envs whose actions are told in other ways than the MRI env's:
legal actions given only by ``action_masks()`` (not in ``info``), and Discrete spaces whose
actions start elsewhere than 0."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import TimeLimit

from mri_rl.agents import DQN, REINFORCE, evaluate_agent
from mri_rl.agents.base import space_from_dict, space_to_dict
from mri_rl.agents.collect import Collector, as_vector_env, legal_actions


class GateEnv(gym.Env):
    """Three actions paying their index; action 2 is legal on odd steps only, which only
    ``action_masks()`` tells (not ``info``, not the constant observation); ``phase`` 1 swaps odd
    and even.

    An agent that learns what action 2 pays would take it on even steps too unless it reads
    the mask. Illegal actions are counted in ``violations``. Episodes end after six steps by
    the TimeLimit around the env; the best legal return is 1 + 2 + 1 + 2 + 1 + 2 = 9.
    """

    def __init__(self, phase: int = 0) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(3)
        self.phase = phase
        self.t = 0
        self.violations = 0

    def action_masks(self) -> np.ndarray:
        return np.array([True, True, (self.t + self.phase) % 2 == 1])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return np.ones(1, np.float32), {}

    def step(self, action: int):
        self.violations += int(not self.action_masks()[int(action)])
        self.t += 1
        return np.ones(1, np.float32), float(action), False, False, {}


def make_gate(phase: int = 0) -> gym.Env:
    return TimeLimit(GateEnv(phase), max_episode_steps=6)


def test_the_masks_of_a_single_wrapped_env_reach_the_agents():
    env = as_vector_env(make_gate())
    env.reset(seed=0)
    np.testing.assert_array_equal(legal_actions(env, {}, 3), [[True, True, False]])
    env.step(np.array([1]))
    np.testing.assert_array_equal(legal_actions(env, {}, 3), [[True, True, True]])


@pytest.mark.parametrize("vector_class", [SyncVectorEnv, AsyncVectorEnv])
def test_the_masks_of_each_sub_env_reach_the_collector(vector_class):
    """Each sub-env's ``action_masks()`` (through its TimeLimit), read in its own process for an
    AsyncVectorEnv, in the sub-envs' order (their phases differ, so do their masks)."""
    env = vector_class([make_gate, lambda: make_gate(phase=1)], autoreset_mode=AutoresetMode.NEXT_STEP)
    try:
        collector = Collector(env, 3)
        _, legal, _ = collector.reset(seed=0)
        np.testing.assert_array_equal(legal, [[True, True, False], [True, True, True]])
        step = collector.step(np.array([1, 2]))
        np.testing.assert_array_equal(step.legal, [[True, True, True], [True, True, False]])
    finally:
        env.close()


@pytest.mark.parametrize("agent_class", [DQN, REINFORCE])
def test_actions_illegal_by_action_masks_are_never_taken(agent_class):
    env = make_gate()
    settings = (
        dict(learning_starts=20, batch_size=16, target_update_interval=20, learning_rate=1e-2, gamma=0.5)
        if agent_class is DQN
        else dict(episodes_per_update=2)
    )
    agent = agent_class(env, net_arch=(8,), seed=0, **settings)
    agent.learn(600, progress_bar=False)
    assert agent.num_timesteps == 600 and env.unwrapped.violations == 0
    mean, _, returns = evaluate_agent(agent, env, episodes=2, seed=0)
    assert len(returns) == 2 and env.unwrapped.violations == 0
    if agent_class is DQN:  # action 2 learned best, then 1: the best legal return
        assert mean == 9.0


class ShiftedBandit(gym.Env):
    """One step; the actions -1, 0 and 1 (``Discrete(3, start=-1)``) pay 1, 0 and 0.5. The
    actions taken are kept in ``taken``; one outside the space is a ValueError."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(3, start=-1)
        self.taken: list[int] = []

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.ones(1, np.float32), {}

    def step(self, action: int):
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        self.taken.append(int(action))
        return np.ones(1, np.float32), {-1: 1.0, 0: 0.0, 1: 0.5}[int(action)], True, False, {}


@pytest.mark.parametrize("agent_class", [DQN, REINFORCE])
def test_agents_act_in_a_discrete_space_that_starts_at_minus_1(agent_class, tmp_path):
    env = ShiftedBandit()
    settings = dict(learning_starts=20, batch_size=16) if agent_class is DQN else {}
    agent = agent_class(env, net_arch=(8,), learning_rate=1e-2, seed=0, **settings)
    agent.learn(300, progress_bar=False)
    assert sorted(set(env.taken)) == [-1, 0, 1]  # every action of the space tried, no other
    obs = np.ones(1, np.float32)
    assert agent.predict(obs) == (-1, None)  # the best action, as the env names it
    assert agent.predict(obs, action_mask=np.array([False, True, True]))[0] == 1  # masks index from start
    np.testing.assert_array_equal(agent.predict(obs[None].repeat(2, axis=0))[0], [-1, -1])
    loaded = agent_class.load(agent.save(tmp_path / "agent.pt"), env=ShiftedBandit())
    assert loaded.action_space == spaces.Discrete(3, start=-1) and loaded.predict(obs) == (-1, None)
    assert evaluate_agent(loaded, ShiftedBandit(), episodes=2, seed=0) == (1.0, 0.0, [1.0, 1.0])


def test_a_discrete_space_keeps_its_start_and_one_saved_without_starts_at_0():
    shifted = spaces.Discrete(3, start=-1)
    assert space_from_dict(space_to_dict(shifted)) == shifted
    assert space_from_dict({"type": "Discrete", "n": 3}) == spaces.Discrete(3)
