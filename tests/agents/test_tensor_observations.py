"""Observations from the batched MRI env to an agent on the env's device as torch tensors (no host
round trip): the Collector asks for them, training gives the same agent as with numpy, and the
env is given back its numpy observations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from mri_rl.agents import DQN, REINFORCE, DAgger, GreedyREINFORCE
from mri_rl.agents.collect import Collector

AGENTS = {
    "dqn": (DQN, dict(learning_starts=8, buffer_size=64, batch_size=8, train_freq=2, net_arch=(8,))),
    "reinforce": (REINFORCE, dict(episodes_per_update=2, net_arch=(8,))),
    "greedy_reinforce": (GreedyREINFORCE, dict(episodes_per_update=2, samples=2, net_arch=(8,))),
    "dagger": (DAgger, dict(learning_starts=8, batch_size=8, net_arch=(8,))),
}


def test_a_collector_on_the_env_device_gets_tensors_and_gives_numpy_back(make_mri_vec_env):
    env = make_mri_vec_env(2)
    collector = Collector(env, 16, device="cpu")
    assert collector.tensor_observations and env.unwrapped.tensor_observations
    observations, legal, _ = collector.reset(seed=0)
    assert all(isinstance(value, torch.Tensor) for value in observations.values())
    assert isinstance(legal, np.ndarray)
    step = collector.step(np.array([5, 6]))
    assert isinstance(step.observations["reconstruction"], torch.Tensor) and isinstance(step.rewards, np.ndarray)
    collector.close()
    assert isinstance(env.reset(seed=0)[0]["reconstruction"], np.ndarray)


def test_a_collector_without_a_device_or_on_an_env_without_the_option_keeps_numpy(make_mri_vec_env, chain_factory):
    env = make_mri_vec_env(2)
    env.unwrapped.tensor_observations = True  # left over: a Collector without a device sets numpy
    assert not Collector(env, 16).tensor_observations
    assert isinstance(env.reset(seed=0)[0]["acquired"], np.ndarray)
    chains = SyncVectorEnv([lambda: chain_factory(4)], autoreset_mode=AutoresetMode.NEXT_STEP)
    collector = Collector(chains, 2, device="cpu")
    assert not collector.tensor_observations
    assert isinstance(collector.reset(seed=0)[0], np.ndarray)
    collector.close()


def train(name: str, env):
    """An agent trained 24 steps on ``env``; and whether each observation the env made was tensors."""
    seen: list[bool] = []
    observation = env.unwrapped.episodes.observation
    env.unwrapped.episodes.observation = lambda as_tensors=False: seen.append(as_tensors) or observation(as_tensors)
    cls, settings = AGENTS[name]
    agent = cls(env, seed=0, **settings)
    agent.learn(24, progress_bar=False)
    return agent, seen


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_training_on_tensor_observations_gives_the_agent_numpy_ones_give(name, make_mri_vec_env, monkeypatch):
    agent, seen = train(name, make_mri_vec_env(2, reward_metric="ssim"))
    with monkeypatch.context() as patch:  # the reference: a Collector told no device, numpy observations
        patch.setattr("mri_rl.agents.base.Collector", lambda env, num_actions, device: Collector(env, num_actions))
        reference, seen_numpy = train(name, make_mri_vec_env(2, reward_metric="ssim"))
    assert seen and all(seen) and not any(seen_numpy)
    assert agent.episode_returns == reference.episode_returns
    for (key, mine), theirs in zip(agent._state().items(), reference._state().values()):
        if key != "optimizer":
            for tensor_name, value in mine.items():
                torch.testing.assert_close(value, theirs[tensor_name], rtol=0, atol=0, msg=tensor_name)
    assert agent.env.unwrapped.tensor_observations is False  # given back after learn
    if name == "dqn":
        np.testing.assert_array_equal(agent.buffer.observations["acquired"], reference.buffer.observations["acquired"])
        assert agent.buffer.observations["reconstruction"].any()
