"""A third-party client: stable-baselines3 trains and predicts on the single environment."""

from __future__ import annotations

import numpy as np
import pytest

sb3 = pytest.importorskip("stable_baselines3")

from stable_baselines3 import DQN  # noqa: E402
from stable_baselines3.common.env_checker import check_env as sb3_check_env  # noqa: E402


def test_sb3_env_checker_accepts_env(make_env, singlecoil_train):
    sb3_check_env(make_env(singlecoil_train).unwrapped, warn=False)


def test_dqn_learns_and_predicts(make_env, singlecoil_train):
    env = make_env(singlecoil_train, budget=4)
    model = DQN(
        "MultiInputPolicy",
        env,
        learning_starts=50,
        buffer_size=1000,
        batch_size=16,
        train_freq=4,
        target_update_interval=50,
        policy_kwargs={"net_arch": [32]},
        seed=0,
        device="cpu",
        verbose=0,
    )
    model.learn(total_timesteps=300)
    assert model.num_timesteps == 300
    assert model.replay_buffer.size() == 300
    # episodes of a budget of 4 steps: 300 steps are 75 episodes
    rewards = model.replay_buffer.rewards[:300, 0]
    dones = model.replay_buffer.dones[:300, 0]
    assert dones.sum() == 75
    assert np.isfinite(rewards).all() and (rewards != 0).any()
    obs, _ = env.reset(seed=1)
    for _ in range(4):
        action, _ = model.predict(obs, deterministic=True)
        assert env.action_space.contains(int(action))
        obs, reward, terminated, truncated, _ = env.step(int(action))
    assert terminated
