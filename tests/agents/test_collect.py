"""The one collection loop (Collector) and the SB3 habits of every agent: counters that continue,
callback objects."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from stable_baselines3.common.callbacks import BaseCallback

from mri_rl.agents import DQN, REINFORCE
from mri_rl.agents.collect import Collector


def chain_vector_env(chain_factory) -> SyncVectorEnv:
    """Two 5-state chains walked always right: row 0 is cut after 2 steps (return 0), row 1
    reaches the goal after 4 (return 1)."""
    envs = [lambda: chain_factory(5, max_steps=2), lambda: chain_factory(5, max_steps=10)]
    return SyncVectorEnv(envs, autoreset_mode=AutoresetMode.NEXT_STEP)


def test_the_collector_marks_autoreset_steps_and_counts_returns(chain_factory):
    env = chain_vector_env(chain_factory)
    collector = Collector(env, 2)
    _, legal, _ = collector.reset(seed=0)
    assert legal.shape == (2, 2) and legal.all()  # no masks: every action legal
    valid, first, finished = [], [], []
    for _ in range(6):
        step = collector.step(np.ones(2, dtype=np.int64))
        valid.append(step.valid.tolist())
        first.append(step.in_first_episode.tolist())
        finished.append(step.finished_returns)
    # row 0: steps 1-2 its first episode, step 3 an autoreset (no transition), steps 4-5 the next episode
    assert [v[0] for v in valid] == [True, True, False, True, True, False]
    assert [f[0] for f in first] == [True, True, False, False, False, False]
    # row 1: steps 1-4 its first episode, step 5 an autoreset
    assert [v[1] for v in valid] == [True, True, True, True, False, True]
    assert [f[1] for f in first] == [True, True, True, True, False, False]
    assert finished == [[], [0.0], [], [1.0], [0.0], []]
    assert not collector.in_first_episode.any()
    collector.reset(seed=0)
    assert collector.in_first_episode.all() and not collector.autoresetting.any()


def test_the_collector_reads_legal_actions_and_frees_rows_without_any(masked_env_class):
    env = SyncVectorEnv([masked_env_class], autoreset_mode=AutoresetMode.NEXT_STEP)
    collector = Collector(env, 4)
    _, legal, infos = collector.reset(seed=0)
    np.testing.assert_array_equal(legal, infos["action_mask"].astype(bool))
    empty = {"action_mask": np.zeros((1, 4), dtype=np.int8)}
    from mri_rl.agents.collect import legal_actions

    assert legal_actions(env, empty, 4).all()  # a final observation with no legal action: any action


@pytest.mark.parametrize("agent_class", [DQN, REINFORCE])
def test_learn_continues_the_counters_when_asked_as_in_sb3(agent_class, chain_factory):
    settings = {"learning_starts": 50} if agent_class is DQN else {"episodes_per_update": 2}
    agent = agent_class(chain_factory(4, max_steps=8), net_arch=(8,), seed=0, **settings)
    agent.learn(200, progress_bar=False)
    assert agent.num_timesteps == 200
    episodes = agent.num_episodes
    agent.learn(200, progress_bar=False, reset_num_timesteps=False)
    assert agent.num_timesteps == 400 and agent.num_episodes > episodes
    agent.learn(100, progress_bar=False)  # reset_num_timesteps=True: counters start again
    assert agent.num_timesteps == 100


class StopAfter(BaseCallback):
    """An SB3 callback that records what it saw and stops training after ``calls`` steps."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls, self.started, self.ended = calls, False, False

    def _on_training_start(self) -> None:
        self.started = True

    def _on_step(self) -> bool:
        return self.n_calls < self.calls

    def _on_training_end(self) -> None:
        self.ended = True


@pytest.mark.parametrize("agent_class", [DQN, REINFORCE])
def test_sb3_callback_objects_drive_training(agent_class, chain_factory):
    agent = agent_class(gym.make("CartPole-v1"), net_arch=(8,), seed=0)
    callback = StopAfter(calls=30)
    agent.learn(1000, callback=callback, progress_bar=False)
    assert callback.model is agent and callback.training_env is agent.get_env()
    assert callback.started and callback.ended
    # 30 vector steps; an autoreset step after an episode's end is no transition
    assert callback.n_calls == 30 and 25 <= agent.num_timesteps == callback.num_timesteps <= 30


def test_a_plain_function_callback_stops_on_false(chain_factory):
    agent = DQN(chain_factory(4), net_arch=(8,), seed=0)
    agent.learn(1000, callback=lambda a: a.num_timesteps < 25, progress_bar=False)
    assert agent.num_timesteps == 25


def test_a_checkpoint_with_settings_this_version_lacks_fails_clearly(chain_factory, tmp_path):
    import torch

    from mri_rl.checkpointing import CheckpointError, save_checkpoint

    path = DQN(chain_factory(4), net_arch=(8,), seed=0).save(tmp_path / "dqn.pt")
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["settings"]["image_spectrum"] = True  # a setting of an older version
    save_checkpoint(checkpoint, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match=r"old.pt was written with dqn settings \['image_spectrum'\].*train the"):
        DQN.load(tmp_path / "old.pt")
