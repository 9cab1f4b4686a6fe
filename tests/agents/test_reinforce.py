"""REINFORCE against known answers: a two-armed bandit, reward-to-go, importance weights, masks, greedy,
starting from a saved policy."""

from __future__ import annotations

import copy
import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from mri_rl.agents import DQN, REINFORCE, DAgger, GreedyREINFORCE
from mri_rl.agents.reinforce import Episode
from mri_rl.checkpointing import CheckpointError


class TwoArmedBandit(gym.Env):
    """One step, constant observation; arm 1 pays 1, arm 0 pays 0."""

    observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, np.float32), {}

    def step(self, action):
        return np.ones(1, np.float32), float(action), True, False, {}


def prob_of(agent: REINFORCE, obs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(agent.policy(torch.as_tensor(obs)), dim=-1).numpy()


@pytest.mark.parametrize("baseline", ["none", "mean", "value"])
def test_policy_gradient_moves_to_the_better_arm(baseline):
    agent = REINFORCE(
        TwoArmedBandit(),
        learning_rate=0.02,
        baseline=baseline,
        normalize_advantages=False,
        episodes_per_update=8,
        net_arch=(16,),
        seed=0,
    )
    initial = prob_of(agent, np.ones((1, 1), np.float32))[0, 1]
    assert initial < 0.5  # seed 0 starts out preferring the worse arm
    agent.learn(160, progress_bar=False)
    assert agent.num_timesteps == 160 and agent.num_episodes == 160
    assert prob_of(agent, np.ones((1, 1), np.float32))[0, 1] > 0.9
    assert np.mean(agent.episode_returns[-40:]) > 0.8
    assert agent.predict(np.ones(1, np.float32))[0] == 1


def test_reuse_epochs_learn_the_bandit():
    agent = REINFORCE(
        TwoArmedBandit(), learning_rate=0.02, reuse_epochs=3, episodes_per_update=8, net_arch=(16,), seed=0
    )
    agent.learn(80, progress_bar=False)
    assert prob_of(agent, np.ones((1, 1), np.float32))[0, 1] > 0.9


# --------------------------------------------------------------------- reward-to-go
BOX = spaces.Box(0.0, 1.0, (1,), np.float32)


def _offline(**hyperparameters) -> REINFORCE:
    return REINFORCE(None, observation_space=BOX, action_space=spaces.Discrete(2), net_arch=(8,), **hyperparameters)


def test_returns_to_go_are_discounted_sums():
    agent = _offline(gamma=0.5, baseline="none")
    episode = Episode(rewards=[1.0, 2.0, 3.0])
    # G_2 = 3, G_1 = 2 + 0.5 * 3, G_0 = 1 + 0.5 * 2 + 0.25 * 3
    np.testing.assert_allclose(agent._returns_to_go(episode), [2.75, 3.5, 3.0])
    # Without a value head a truncated episode cannot bootstrap: the same sums.
    episode.bootstrap_observation = np.ones(1, np.float32)
    np.testing.assert_allclose(agent._returns_to_go(episode), [2.75, 3.5, 3.0])


def test_truncated_episode_bootstraps_from_the_value_head():
    agent = _offline(gamma=0.5, baseline="value")
    last = agent.policy.value[-1]
    with torch.no_grad():  # V(s) = 10 everywhere
        last.weight.zero_()
        last.bias.fill_(10.0)
    truncated = Episode(rewards=[1.0, 2.0, 3.0], bootstrap_observation=np.ones(1, np.float32))
    # G_2 = 3 + 0.5 * 10 = 8, G_1 = 2 + 0.5 * 8 = 6, G_0 = 1 + 0.5 * 6 = 4
    np.testing.assert_allclose(agent._returns_to_go(truncated), [4.0, 6.0, 8.0])
    terminated = Episode(rewards=[1.0, 2.0, 3.0])
    np.testing.assert_allclose(agent._returns_to_go(terminated), [2.75, 3.5, 3.0])


def test_learn_keeps_the_final_observation_of_truncated_episodes(chain_factory):
    # A 3-state chain cut after 3 steps: episodes either reach the goal or are truncated.
    agent = REINFORCE(chain_factory(3, max_steps=3), episodes_per_update=4, net_arch=(8,), seed=0)
    batches: list[list[Episode]] = []
    agent._update = lambda episodes: batches.append(list(episodes)) or 0.0
    agent.learn(120, progress_bar=False)
    episodes = [ep for batch in batches for ep in batch]
    assert len(episodes) >= 20
    kinds = set()
    for ep in episodes:
        state = 0
        for action in ep.actions:
            state = min(state + 1, 2) if action == 1 else max(state - 1, 0)
        reached = state == 2
        assert len(ep.rewards) == len(ep.actions) == len(ep.observations) == len(ep.legal)
        assert sum(ep.rewards) == float(reached)
        if reached:
            assert ep.bootstrap_observation is None
        else:
            assert len(ep.actions) == 3
            np.testing.assert_array_equal(ep.bootstrap_observation, np.eye(3, dtype=np.float32)[state])
        kinds.add(reached)
    assert kinds == {True, False}


# ------------------------------------------------------------------ importance weights
def _recorded_steps(agent: REINFORCE) -> list[tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """Patch the optimiser to record (parameters, gradients) before every step."""
    steps = []
    original = agent.optimizer.step

    def step(*args, **kwargs):
        params = list(agent.policy.parameters())
        steps.append(
            (
                [p.detach().clone() for p in params],
                [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params],
            )
        )
        return original(*args, **kwargs)

    agent.optimizer.step = step
    return steps


def _episodes(rng: np.random.Generator, num_actions: int, obs_dim: int, greedy: int = 0) -> list[Episode]:
    episodes = []
    for length in (3, 5, 2):
        shape = (length, greedy) if greedy else (length,)
        episodes.append(
            Episode(
                observations=list(rng.random((length, obs_dim)).astype(np.float32)),
                legal=list(np.ones((length, num_actions), dtype=bool)),
                actions=list(rng.integers(num_actions, size=shape)),
                rewards=list(rng.normal(size=shape)),
            )
        )
    return episodes


def _manual_gradient(policy: torch.nn.Module, params: list[torch.Tensor], loss_fn) -> list[torch.Tensor]:
    net = copy.deepcopy(policy)
    with torch.no_grad():
        for p, value in zip(net.parameters(), params):
            p.copy_(value)
    net.zero_grad()
    loss_fn(net).backward()
    return [torch.zeros_like(p) if p.grad is None else p.grad for p in net.parameters()]


def test_reused_batches_are_importance_weighted_and_the_first_epoch_is_plain_reinforce():
    space = spaces.Box(0.0, 1.0, (3,), np.float32)
    agent = REINFORCE(
        None,
        observation_space=space,
        action_space=spaces.Discrete(3),
        gamma=0.9,
        baseline="none",
        normalize_advantages=False,
        reuse_epochs=3,
        max_grad_norm=1e9,
        max_importance_weight=1.05,
        learning_rate=0.05,
        net_arch=(8,),
        seed=0,
    )
    episodes = _episodes(np.random.default_rng(0), 3, 3)
    obs = torch.as_tensor(np.stack([o for ep in episodes for o in ep.observations]))
    actions = torch.as_tensor(np.stack([a for ep in episodes for a in ep.actions]))
    returns = torch.as_tensor(np.concatenate([agent._returns_to_go(ep) for ep in episodes]), dtype=torch.float32)
    steps = _recorded_steps(agent)
    agent._update(episodes)
    assert len(steps) == 3

    def log_probs(net):
        return torch.distributions.Categorical(logits=net(obs)).log_prob(actions)

    first_params, first_grads = steps[0]
    # Epoch 1: the plain REINFORCE gradient of -mean(G_t log pi(a_t | s_t)).
    expected = _manual_gradient(agent.policy, first_params, lambda net: -(returns * log_probs(net)).mean())
    for got, want in zip(first_grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    # Later epochs: -mean(min(pi / pi_old, 1.05) G_t) with pi_old the policy of epoch 1.
    old = _manual_copy_log_probs(agent.policy, first_params, log_probs)
    for params, grads in steps[1:]:
        weighted = _manual_gradient(
            agent.policy, params, lambda net: -(torch.exp(log_probs(net) - old).clamp(max=1.05) * returns).mean()
        )
        plain = _manual_gradient(agent.policy, params, lambda net: -(returns * log_probs(net)).mean())
        for got, want in zip(grads, weighted):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        assert any(not torch.allclose(g, p, rtol=1e-3, atol=1e-6) for g, p in zip(grads, plain))


def _manual_copy_log_probs(policy, params, log_probs) -> torch.Tensor:
    net = copy.deepcopy(policy)
    with torch.no_grad():
        for p, value in zip(net.parameters(), params):
            p.copy_(value)
        return log_probs(net)


def test_greedy_update_uses_leave_one_out_baselines():
    space = spaces.Box(0.0, 1.0, (3,), np.float32)
    k = 4
    agent = GreedyREINFORCE(
        None,
        observation_space=space,
        action_space=spaces.Discrete(5),
        samples=k,
        normalize_advantages=False,
        max_grad_norm=1e9,
        net_arch=(8,),
        seed=0,
    )
    assert agent.policy.value is None  # the greedy variant needs no value head
    episodes = _episodes(np.random.default_rng(1), 5, 3, greedy=k)
    obs = torch.as_tensor(np.stack([o for ep in episodes for o in ep.observations]))
    actions = torch.as_tensor(np.stack([a for ep in episodes for a in ep.actions]))  # (T, K)
    rewards = torch.as_tensor(np.stack([r for ep in episodes for r in ep.rewards]), dtype=torch.float32)
    steps = _recorded_steps(agent)
    agent._update(episodes)
    params, grads = steps[0]
    advantages = rewards - (rewards.sum(dim=1, keepdim=True) - rewards) / (k - 1)

    def loss(net):
        log_probs = torch.stack(
            [torch.distributions.Categorical(logits=net(obs)).log_prob(actions[:, j]) for j in range(k)], dim=1
        )
        return -(advantages * log_probs).mean()

    for got, want in zip(grads, _manual_gradient(agent.policy, params, loss)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------- action masks
def test_masked_actions_are_never_sampled(masked_env_class):
    env = masked_env_class()
    agent = REINFORCE(env, episodes_per_update=4, entropy_coef=0.01, net_arch=(16,), seed=0)
    agent.learn(300, progress_bar=False)
    assert env.steps_taken >= 300 and env.violations == 0
    rng = np.random.default_rng(0)
    obs = rng.random((300, env.observation_space.shape[0])).astype(np.float32)
    masks = rng.random((300, 4)) < 0.4
    masks[~masks.any(axis=1), 0] = True
    for deterministic in (True, False):
        actions, _ = agent.predict(obs, deterministic=deterministic, action_mask=masks)
        assert masks[np.arange(300), actions].all()


# ----------------------------------------------------------------- greedy on the MRI env
def _check_candidates(env, legal, bad: list) -> None:
    """Record candidates scored by the look-ahead that are already acquired (for rows still running)."""
    target = env.unwrapped
    original = target.look_ahead

    def look_ahead(candidates):
        candidates = np.atleast_2d(candidates)
        mask = np.atleast_2d(legal())
        for row, cands in enumerate(candidates):
            if mask[row].any() and not mask[row, cands].all():
                bad.append((row, cands.tolist()))
        return original(candidates if isinstance(env, gym.vector.VectorEnv) else candidates[0])

    target.look_ahead = look_ahead


@pytest.mark.parametrize("num_envs", [1, 2])
def test_greedy_reinforce_on_the_mri_env_never_reacquires(num_envs, make_mri_env, make_mri_vec_env, guard_steps):
    env = make_mri_env() if num_envs == 1 else make_mri_vec_env(num_envs)
    legal = env.unwrapped.action_masks
    violations = guard_steps(env, legal)
    bad_candidates: list = []
    _check_candidates(env, legal, bad_candidates)
    agent = GreedyREINFORCE(env, samples=4, episodes_per_update=4, learning_rate=1e-3, net_arch=(16,), seed=0)
    agent.learn(200, progress_bar=False)
    assert agent.num_timesteps >= 200
    assert agent.num_episodes >= 200 // 4 - num_envs  # budget 4: four steps per episode
    assert violations == [] and bad_candidates == []
    assert np.isfinite(agent.last_loss)


def test_greedy_needs_an_env_with_look_ahead():
    with pytest.raises(TypeError, match="look_ahead"):
        GreedyREINFORCE(gym.make("CartPole-v1"), samples=4)


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"baseline": "median"}, "baseline: expected one of 'none', 'mean', 'value', got 'median'"),
        ({"episodes_per_update": 0}, "episodes_per_update: must be >= 1, got 0"),
        ({"reuse_epochs": 0}, "reuse_epochs: must be >= 1, got 0"),
        ({"gamma": 1.5}, "gamma: must be <= 1, got 1.5"),
        ({"value_coef": -1.0}, "value_coef: must be >= 0, got -1.0"),
    ],
)
def test_invalid_settings(bad, named):
    with pytest.raises(ValueError, match=re.escape(f"REINFORCESettings: {named}")):
        _offline(**bad)


@pytest.mark.parametrize(
    ("bad", "named"),
    [({"samples": 1}, "samples: must be >= 2, got 1"), ({"samples": 2.5}, "samples: expected an integer, got 2.5")],
)
def test_invalid_greedy_settings(bad, named):
    with pytest.raises(ValueError, match=re.escape(f"GreedyREINFORCESettings: {named}")):
        GreedyREINFORCE(None, observation_space=BOX, action_space=spaces.Discrete(2), **bad)


def test_an_unknown_setting_is_refused():
    with pytest.raises(TypeError, match=r"unknown reinforce setting\(s\) \['greedy_samples'\]"):
        _offline(greedy_samples=4)


# ---------------------------------------------------------------------- save and load
def test_save_load_round_trip(tmp_path, chain_factory, chain_observations):
    agent = REINFORCE(
        chain_factory(5, max_steps=10),
        baseline="value",
        gamma=0.9,
        episodes_per_update=2,
        reuse_epochs=2,
        net_arch=(16,),
        seed=4,
    )
    agent.learn(100, progress_bar=False)
    path = agent.save(tmp_path / "reinforce.pt")
    loaded = REINFORCE.load(path)
    obs = np.concatenate([chain_observations(5), np.random.default_rng(0).random((8, 5)).astype(np.float32)])
    np.testing.assert_array_equal(loaded.predict(obs)[0], agent.predict(obs)[0])
    np.testing.assert_array_equal(prob_of(loaded, obs), prob_of(agent, obs))
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.policy.state_value(torch.as_tensor(obs)),
            agent.policy.state_value(torch.as_tensor(obs)),
            rtol=0,
            atol=0,
        )
    assert loaded.settings == agent.settings
    assert loaded.num_timesteps == agent.num_timesteps == 100
    assert loaded.num_episodes == agent.num_episodes > 0
    assert loaded.episode_returns == agent.episode_returns
    assert loaded.optimizer.state_dict()["state"].keys() == agent.optimizer.state_dict()["state"].keys()
    resumed = REINFORCE.load(path, env=chain_factory(5, max_steps=10))
    resumed.learn(40, progress_bar=False, reset_num_timesteps=False)  # SB3: 40 more steps
    assert resumed.num_timesteps == 140
    with pytest.raises(ValueError):
        REINFORCE.load(path, env=chain_factory(4))


# ------------------------------------------------------------ starting from a saved policy
def _bandit_expert(tmp_path) -> tuple[REINFORCE, object]:
    """A REINFORCE agent that has learned the bandit's better arm, and its saved model."""
    expert = REINFORCE(TwoArmedBandit(), learning_rate=0.02, baseline="mean", net_arch=(16,), seed=0)
    expert.learn(160, progress_bar=False)
    return expert, expert.save(tmp_path / "expert.pt")


def test_fine_tuning_starts_from_the_saved_policy_and_not_from_its_own_seed(tmp_path):
    expert, path = _bandit_expert(tmp_path)
    obs = np.ones((1, 1), np.float32)
    assert prob_of(expert, obs)[0, 1] > 0.9
    tuned = REINFORCE(TwoArmedBandit(), baseline="value", net_arch=(16,), init_policy=str(path), seed=0)
    assert prob_of(tuned, obs)[0, 1] < 0.5  # seed 0's fresh network, until training starts
    fresh_value = copy.deepcopy(tuned.policy.value.state_dict())
    tuned.learn(0, progress_bar=False)
    np.testing.assert_array_equal(prob_of(tuned, obs), prob_of(expert, obs))  # the expert's logits, exactly
    for key, weight in tuned.policy.value.state_dict().items():  # the expert has no value head: its own
        torch.testing.assert_close(weight, fresh_value[key], rtol=0, atol=0)
    tuned.learn(16, progress_bar=False)
    assert tuned.num_timesteps == 16 and np.mean(tuned.episode_returns) > 0.8  # acts as the expert from step 1
    resumed = REINFORCE.load(tuned.save(tmp_path / "tuned.pt"), env=TwoArmedBandit())
    path.unlink()  # a resumed run does not read the policy it started from again
    before = prob_of(resumed, obs)
    resumed.learn(0, progress_bar=False, reset_num_timesteps=False)
    np.testing.assert_array_equal(prob_of(resumed, obs), before)


def test_starting_from_a_policy_that_does_not_fit_is_refused(tmp_path, chain_factory):
    _, path = _bandit_expert(tmp_path)
    with pytest.raises(FileNotFoundError):
        REINFORCE(TwoArmedBandit(), init_policy=str(tmp_path / "none.pt")).learn(0, progress_bar=False)
    wider = REINFORCE(TwoArmedBandit(), net_arch=(32,), init_policy=str(path))
    with pytest.raises(CheckpointError, match=r"expert\.pt.*state\.policy\.policy"):
        wider.learn(0, progress_bar=False)
    with pytest.raises(ValueError, match=r"expert\.pt was trained with observation_space"):
        REINFORCE(chain_factory(5), net_arch=(16,), init_policy=str(path)).learn(0, progress_bar=False)
    q_learner = DQN(TwoArmedBandit(), net_arch=(16,)).save(tmp_path / "dqn.pt")
    with pytest.raises(CheckpointError, match=r"dqn\.pt.*'dqn' agent has no policy network"):
        REINFORCE(TwoArmedBandit(), net_arch=(16,), init_policy=str(q_learner)).learn(0, progress_bar=False)


def test_an_mri_dagger_student_fine_tuned_by_reinforce_on_its_task(tmp_path, make_mri_vec_env):
    student = DAgger(make_mri_vec_env(2), learning_starts=8, batch_size=8, net_arch=(8,), seed=0)
    student.learn(16, progress_bar=False)
    path = student.save(tmp_path / "student.pt")
    env = make_mri_vec_env(2, reward_metric="psnr")  # another reward: still the student's task
    tuned = REINFORCE(env, baseline="value", net_arch=(8,), init_policy=str(path), seed=1)
    tuned.learn(0, progress_bar=False)
    obs, info = env.reset(seed=3)
    legal = info["action_mask"].astype(bool)
    np.testing.assert_array_equal(tuned.log_probabilities(obs, legal), student.log_probabilities(obs, legal))
    other_budget = REINFORCE(make_mri_vec_env(2, budget=3), net_arch=(8,), init_policy=str(path))
    with pytest.raises(ValueError, match=r"student\.pt was trained on another task \(budget: 4 vs 3"):
        other_budget.learn(0, progress_bar=False)
