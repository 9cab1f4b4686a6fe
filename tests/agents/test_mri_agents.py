"""DQN, REINFORCE and DAgger on the active-acquisition env (tiny 16 x 16 synthetic data, budget 4)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from mri_rl.agents import DQN, REINFORCE, DAgger, GreedyREINFORCE, evaluate_agent

STEPS = 200
AGENTS = {
    "dqn": (
        DQN,
        dict(
            learning_starts=40,
            buffer_size=400,
            batch_size=16,
            train_freq=4,
            target_update_interval=40,
            exploration_fraction=0.5,
            net_arch=(16,),
            seed=0,
        ),
    ),
    "reinforce": (REINFORCE, dict(episodes_per_update=4, net_arch=(16,), seed=0)),
    "dagger": (DAgger, dict(learning_starts=16, batch_size=16, net_arch=(16,), seed=0)),
    "dagger_per_action": (
        DAgger,
        dict(learning_starts=16, batch_size=16, net_arch=(8, 8), per_action_head=True, seed=0),
    ),
}


def _env(num_envs, make_mri_env, make_mri_vec_env, **overrides):
    return make_mri_env(**overrides) if num_envs == 1 else make_mri_vec_env(num_envs, **overrides)


@pytest.mark.parametrize("num_envs", [1, 2])
@pytest.mark.parametrize("name", sorted(AGENTS))
def test_agents_train_on_the_mri_env_and_act_legally(name, num_envs, make_mri_env, make_mri_vec_env, guard_steps):
    cls, hp = AGENTS[name]
    env = _env(num_envs, make_mri_env, make_mri_vec_env)
    violations = guard_steps(env, env.unwrapped.action_masks)
    agent = cls(env, **hp)
    assert agent.num_actions == 16
    agent.learn(STEPS, progress_bar=False)
    assert agent.num_timesteps >= STEPS
    # Budget 4: every episode is 4 acquisitions, none re-acquires a column.
    assert agent.num_episodes >= STEPS // 4 - num_envs
    assert violations == []
    assert all(np.isfinite(agent.episode_returns))
    if name == "dqn":
        assert agent.buffer.observations["reconstruction"].dtype == np.float16
        assert agent.buffer.observations["acquired"].dtype == np.int8
        assert agent.buffer.num_envs == num_envs
        assert np.isfinite(agent.last_loss)
    if name.startswith("dagger"):
        assert agent.labelled.size == agent.num_timesteps  # every real transition's state, labelled once
        assert np.isfinite(agent.last_loss)

    # predict: legal actions for one observation and for a batch, greedy and exploring.
    single = make_mri_env()
    obs, info = single.reset(seed=1)
    mask = info["action_mask"].astype(bool)
    for deterministic in (True, False):
        action, _ = agent.predict(obs, deterministic=deterministic, action_mask=mask)
        assert isinstance(action, int) and mask[action]
    batch_env = make_mri_vec_env(3)
    obs, infos = batch_env.reset(seed=2)
    masks = infos["action_mask"].astype(bool)
    for deterministic in (True, False):
        actions, _ = agent.predict(obs, deterministic=deterministic, action_mask=masks)
        assert actions.shape == (3,) and masks[np.arange(3), actions].all()
    # A deterministic evaluation acquires distinct columns.
    eval_violations = guard_steps(single, single.unwrapped.action_masks)
    mean, std, returns = evaluate_agent(agent, single, episodes=2, seed=0)
    assert len(returns) == 2 and np.isfinite(mean) and eval_violations == []


@pytest.mark.parametrize("num_envs", [1, 2])
@pytest.mark.parametrize("name", sorted(AGENTS))
def test_agents_run_without_a_budget(name, num_envs, make_mri_env, make_mri_vec_env):
    """Without a budget an episode ends with every column acquired: the final observation
    allows no action, yet the autoreset step that follows must not break the agents."""
    cls, hp = AGENTS[name]
    env = _env(num_envs, make_mri_env, make_mri_vec_env, budget=None)
    agent = cls(env, **{**hp, "learning_starts": 10} if name == "dqn" else hp)
    agent.learn(60, progress_bar=False)
    assert agent.num_episodes >= 60 // 14 - num_envs  # 16 columns, 2 initial lines: 14 steps
    assert agent.num_timesteps >= 60


def test_greedy_reinforce_without_a_budget(make_mri_vec_env):
    agent = GreedyREINFORCE(make_mri_vec_env(2, budget=None), samples=3, episodes_per_update=2, net_arch=(8,))
    agent.learn(60, progress_bar=False)
    assert agent.num_episodes >= 2


def test_dqn_q_network_sees_image_and_mask(make_mri_env):
    agent = DQN(make_mri_env(), net_arch=(16,))
    encoders = agent.q_network.encoder.encoders
    assert set(encoders) == {"reconstruction", "acquired"}
    obs, _ = make_mri_env().reset(seed=0)
    with torch.no_grad():
        q = agent.q_network(agent.to_tensor({k: v[None] for k, v in obs.items()}))
    assert q.shape == (1, 16) and torch.isfinite(q).all()


@pytest.mark.parametrize("column_spectrum", [False, True])
@pytest.mark.parametrize("name", sorted(AGENTS))
def test_save_load_round_trip_on_the_mri_env(name, column_spectrum, tmp_path, make_mri_env, make_mri_vec_env):
    cls, hp = AGENTS[name]
    agent = cls(make_mri_vec_env(2, column_spectrum=column_spectrum), **hp)
    agent.learn(60, progress_bar=False)
    path = agent.save(tmp_path / f"{name}.pt")
    # the MultiBinary and spectrum spaces must survive weights_only loading
    loaded = cls.load(path, env=make_mri_env(column_spectrum=column_spectrum))
    assert ("column_spectrum" in loaded.observation_space.spaces) is column_spectrum
    assert loaded.observation_space == agent.observation_space and loaded.settings == agent.settings
    assert loaded.num_timesteps == agent.num_timesteps
    obs, infos = make_mri_vec_env(3, column_spectrum=column_spectrum).reset(seed=5)
    masks = infos["action_mask"].astype(bool)
    np.testing.assert_array_equal(loaded.predict(obs, action_mask=masks)[0], agent.predict(obs, action_mask=masks)[0])
    loaded.learn(20, progress_bar=False, reset_num_timesteps=False)
    assert loaded.num_timesteps >= agent.num_timesteps + 20
    with pytest.raises(ValueError, match="observation space"):  # the spectrum changes the observation
        cls.load(path, env=make_mri_env(column_spectrum=not column_spectrum))


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_an_agent_records_its_env_task_and_data_through_save_and_load(name, tmp_path, make_mri_env, make_mri_vec_env):
    cls, hp = AGENTS[name]
    for env in (make_mri_env(), make_mri_vec_env(2)):  # a single env is wrapped: the record comes from the env itself
        agent = cls(env, **hp)
        assert agent.record == env.unwrapped.record()
        assert agent.record["task"] == env.unwrapped.task.to_dict() and agent.record["task"]["budget"] == 4
        assert agent.record["data"]["train"]["files"] == sorted(
            p.name for p in env.unwrapped.episodes.source.folder.glob("*.h5")
        )
    agent.record = {**agent.record, "settings": {"note": "set by a training run"}}
    assert cls.load(agent.save(tmp_path / "agent.pt")).record == agent.record
    if not name.startswith("dagger"):  # DAgger refuses an env without a look-ahead (test_dagger.py)
        assert cls(gym.make("CartPole-v1"), **hp).record is None  # an env without a task records nothing
