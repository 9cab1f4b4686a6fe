"""DQN against known answers: a chain MDP's optimal Q-values, action masks, checkpoints, seeding."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from mri_rl.agents import DQN, REINFORCE
from mri_rl.checkpointing import CheckpointError, save_checkpoint

GAMMA = 0.9
N = 5
#: Quick-learning settings for the 5-state chain (one-hot observations).
CHAIN_HP: dict[str, Any] = dict(
    learning_rate=3e-3,
    buffer_size=5000,
    learning_starts=100,
    batch_size=32,
    gamma=GAMMA,
    train_freq=1,
    gradient_steps=1,
    target_update_interval=50,
    exploration_fraction=0.5,
    exploration_final_eps=0.05,
    net_arch=(32,),
    seed=0,
)
CHAIN_STEPS = 1000


def q_values(agent: DQN, observations: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return agent.q_network(torch.as_tensor(observations)).numpy()


def optimal_chain_values(n: int = N, gamma: float = GAMMA) -> np.ndarray:
    """V*(s) = gamma^(n-2-s) for the non-terminal states s = 0..n-2."""
    return np.array([gamma ** (n - 2 - s) for s in range(n - 1)])


# --------------------------------------------------------------------------- chain MDP
def test_dqn_learns_the_optimal_q_values_of_a_chain(chain_factory, chain_observations):
    agent = DQN(chain_factory(N, max_steps=20), **CHAIN_HP)
    agent.learn(CHAIN_STEPS, progress_bar=False)
    assert agent.num_timesteps == CHAIN_STEPS
    obs = chain_observations(N)[:-1]  # the goal state is terminal: never acted in
    actions, _ = agent.predict(obs, deterministic=True)
    np.testing.assert_array_equal(actions, np.ones(N - 1))  # right from every state
    q = q_values(agent, obs)
    # Known answer: Q*(0, right) = gamma^(n-2) = 0.729; and V*(s) for every state.
    assert q[0, 1] == pytest.approx(GAMMA ** (N - 2), abs=0.05)
    np.testing.assert_allclose(q.max(axis=1), optimal_chain_values(), atol=0.05)
    # Q*(s, left) = gamma * V*(s - 1) (state 0 stays at 0).
    left = GAMMA * optimal_chain_values()[np.maximum(np.arange(N - 1) - 1, 0)]
    np.testing.assert_allclose(q[:, 0], left, atol=0.1)
    assert agent.num_episodes == len(agent.episode_returns) > 0


@pytest.mark.parametrize(
    "variant",
    [
        {"double_q": False},
        {"dueling": True},
        {"n_step": 3},
        {"tau": 0.1, "target_update_interval": 1},
        {"num_envs": 2},
    ],
    ids=["single_q", "dueling", "n_step3", "polyak", "two_envs"],
)
def test_dqn_variants_learn_the_chain(variant, chain_factory, chain_observations):
    variant = dict(variant)
    num_envs = variant.pop("num_envs", 1)
    env = (
        chain_factory(N)
        if num_envs == 1
        else SyncVectorEnv([lambda: chain_factory(N) for _ in range(num_envs)], autoreset_mode=AutoresetMode.NEXT_STEP)
    )
    agent = DQN(env, **{**CHAIN_HP, **variant})
    assert agent.q_network.dueling == variant.get("dueling", False)
    agent.learn(CHAIN_STEPS, progress_bar=False)
    obs = chain_observations(N)[:-1]
    actions, _ = agent.predict(obs)
    np.testing.assert_array_equal(actions, np.ones(N - 1))
    # n-step returns of exploring behaviour are biased low (not off-policy corrected).
    tolerance = 0.1 if variant.get("n_step", 1) > 1 else 0.05
    assert q_values(agent, obs)[0, 1] == pytest.approx(GAMMA ** (N - 2), abs=tolerance)


def test_polyak_update_moves_target_by_tau(chain_factory):
    agent = DQN(chain_factory(), **{**CHAIN_HP, "tau": 0.25})
    with torch.no_grad():
        for p in agent.q_network.parameters():
            p.add_(1.0)
    before = [p.clone() for p in agent.target_network.parameters()]
    agent._update_target()
    for old, new, online in zip(before, agent.target_network.parameters(), agent.q_network.parameters()):
        torch.testing.assert_close(new, old + 0.25 * (online - old))


# ---------------------------------------------------------------------- action masks
@pytest.mark.parametrize("epsilon", [1.0, 0.0])
@pytest.mark.parametrize("num_envs", [1, 2])
def test_masked_actions_are_never_taken(epsilon, num_envs, masked_env_class):
    envs = [masked_env_class() for _ in range(num_envs)]
    env = (
        envs[0]
        if num_envs == 1
        else SyncVectorEnv([lambda e=e: e for e in envs], autoreset_mode=AutoresetMode.NEXT_STEP)
    )
    agent = DQN(
        env,
        learning_rate=1e-2,
        learning_starts=20,
        batch_size=16,
        buffer_size=1000,
        train_freq=1,
        target_update_interval=20,
        exploration_initial_eps=epsilon,
        exploration_final_eps=epsilon,
        net_arch=(16,),
        gamma=0.5,
        seed=1,
    )
    agent.learn(300, progress_bar=False)
    assert sum(e.steps_taken for e in envs) >= 300
    assert sum(e.violations for e in envs) == 0
    assert agent.buffer.has_illegal_actions
    if epsilon == 0.0:
        # Rewards equal the action index. Taking the best legal action earns 11.1 per episode
        # on average, a uniformly random legal one 7.5 (std of a 20-episode mean about 0.5).
        assert np.mean(agent.episode_returns[-20:]) > 9.0


def test_predict_respects_action_masks(masked_env_class):
    env = masked_env_class()
    agent = DQN(env, net_arch=(16,), seed=0)
    rng = np.random.default_rng(0)
    obs = rng.random((200, env.observation_space.shape[0])).astype(np.float32)
    masks = rng.random((200, 4)) < 0.4
    masks[~masks.any(axis=1), 2] = True
    for deterministic, epsilon in [(True, 0.0), (False, 1.0), (False, 0.5)]:
        agent.epsilon = epsilon
        actions, _ = agent.predict(obs, deterministic=deterministic, action_mask=masks)
        assert actions.shape == (200,)
        assert masks[np.arange(200), actions].all()
    # Exploring uniformly covers every legal action.
    agent.epsilon = 1.0
    only_two = np.zeros((400, 4), dtype=bool)
    only_two[:, [1, 3]] = True
    actions, _ = agent.predict(np.repeat(obs[:1], 400, axis=0), deterministic=False, action_mask=only_two)
    assert set(actions.tolist()) == {1, 3}
    # One observation: an int; a mask with no legal action is an error.
    action, state = agent.predict(obs[0], action_mask=np.array([0, 0, 1, 0], dtype=bool))
    assert action == 2 and isinstance(action, int) and state is None
    with pytest.raises(ValueError, match="no action"):
        agent.predict(obs[0], action_mask=np.zeros(4, dtype=bool))


class AliasedNextStateEnv(gym.Env):
    """Two steps. In A (obs [1, 0]) action 0 leads to B, action 1 to C, reward 0.

    B and C look alike (obs [0, 1]) but differ in their legal actions: in B only action 0
    is legal (reward 0), in C both are and action 1 gives reward 1; either ends the episode.
    So Q(b, 1) is learned as 1 (from C), yet from A the move to B is worth
    gamma * Q(B, 0) = 0: a bootstrap target that ignored B's mask would give gamma.
    """

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.state = "A"

    def _out(self):
        obs = np.array([1, 0] if self.state == "A" else [0, 1], dtype=np.float32)
        mask = np.array([1, 0] if self.state == "B" else [1, 1], dtype=np.int8)
        return obs, {"action_mask": mask}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = "A"
        return self._out()

    def step(self, action):
        action = int(action)
        if self.state == "A":
            self.state = "B" if action == 0 else "C"
            obs, info = self._out()
            return obs, 0.0, False, False, info
        assert not (self.state == "B" and action == 1), "illegal action taken"
        reward = 1.0 if self.state == "C" and action == 1 else 0.0
        obs, info = self._out()
        return obs, reward, True, False, info


@pytest.mark.parametrize("double_q", [False, True])
def test_bootstrap_target_uses_the_best_legal_action(double_q):
    agent = DQN(
        AliasedNextStateEnv(),
        learning_rate=5e-3,
        learning_starts=50,
        batch_size=32,
        buffer_size=2000,
        train_freq=1,
        target_update_interval=25,
        gamma=GAMMA,
        exploration_initial_eps=1.0,
        exploration_final_eps=1.0,
        net_arch=(16,),
        double_q=double_q,
        seed=0,
    )
    agent.learn(800, progress_bar=False)
    q = q_values(agent, np.array([[1, 0], [0, 1]], dtype=np.float32))
    assert q[1, 1] == pytest.approx(1.0, abs=0.1)  # learned from C
    assert q[1, 0] == pytest.approx(0.0, abs=0.1)
    assert q[0, 1] == pytest.approx(GAMMA, abs=0.1)  # A -> C -> action 1
    assert q[0, 0] == pytest.approx(0.0, abs=0.15)  # A -> B: only action 0 (worth 0) is legal there


# ---------------------------------------------------------------------- save and load
def test_save_load_round_trip(tmp_path, chain_factory, chain_observations):
    hp = {**CHAIN_HP, "dueling": True, "n_step": 2}
    agent = DQN(chain_factory(N), **hp)
    agent.learn(300, progress_bar=False)
    path = agent.save(tmp_path / "dqn.pt")
    rng = np.random.default_rng(0)
    obs = np.concatenate([chain_observations(N), rng.random((16, N)).astype(np.float32)])

    loaded = DQN.load(path)
    assert loaded.env is None
    np.testing.assert_array_equal(loaded.predict(obs)[0], agent.predict(obs)[0])
    np.testing.assert_array_equal(q_values(loaded, obs), q_values(agent, obs))
    for a, b in zip(agent.target_network.state_dict().values(), loaded.target_network.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert loaded.num_timesteps == agent.num_timesteps == 300
    assert loaded.num_episodes == agent.num_episodes
    assert loaded.episode_returns == agent.episode_returns
    assert loaded.settings == agent.settings
    assert loaded.settings.dueling is True and loaded.settings.n_step == 2
    assert loaded.seed == agent.seed
    assert loaded.observation_space == agent.observation_space and loaded.action_space == agent.action_space
    assert loaded.rng.random() == agent.rng.random()  # numpy stream restored

    # With an env of the same spaces the agent goes on training.
    resumed = DQN.load(path, env=chain_factory(N))
    resumed.learn(350, progress_bar=False)
    assert resumed.num_timesteps == 350


def recorded_updates(agent: DQN, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """The ("train" or "target", step count) of each gradient step and target update ``agent`` makes from now on."""
    made: list[tuple[str, int]] = []

    def recording(kind: str, method: Any) -> Any:
        def record() -> Any:
            made.append((kind, agent.num_timesteps))
            return method()

        return record

    monkeypatch.setattr(agent, "_train_step", recording("train", agent._train_step))
    monkeypatch.setattr(agent, "_update_target", recording("target", agent._update_target))
    return made


def test_a_resumed_agent_refills_its_replay_memory_before_its_next_gradient_step(tmp_path, chain_factory, monkeypatch):
    """The replay memory is not saved: an agent loaded at step 300 (learning_starts 100) makes its
    first gradient step at step 400, once the memory holds 100 transitions again, then one per step."""
    agent = DQN(chain_factory(N), **CHAIN_HP)
    agent.learn(300, progress_bar=False)
    resumed = DQN.load(agent.save(tmp_path / "dqn.pt", resumable=True), env=chain_factory(N))
    made = recorded_updates(resumed, monkeypatch)
    resumed.learn(200, progress_bar=False, reset_num_timesteps=False)
    trained = [step for kind, step in made if kind == "train"]
    assert trained[0] == 400 and trained[-1] == 500
    assert sorted(set(trained)) == list(range(400, 501))  # train_freq 1 (and reset steps train too)


def test_a_resumed_agent_updates_its_target_and_trains_on_the_steps_of_an_uninterrupted_run(
    tmp_path, masked_env_class, monkeypatch
):
    """The clock of train_freq and target_update_interval (the vector env's steps) is saved: resumed
    at step 320, the agent updates its target at steps 350, 400, 450 and 500 as the uninterrupted
    run does (not 370, 420, ...), and trains on the same steps once its replay memory is refilled.
    The episode outlasts the run, so no reset step moves the clock in either run."""
    hp = {**CHAIN_HP, "train_freq": 4}
    uninterrupted = DQN(masked_env_class(length=1000), **hp)
    made = recorded_updates(uninterrupted, monkeypatch)
    path = tmp_path / "dqn.pt"

    def save_at_320(agent: DQN) -> None:
        if agent.num_timesteps == 320:
            agent.save(path, resumable=True)

    uninterrupted.learn(500, callback=save_at_320, progress_bar=False)
    resumed = DQN.load(path, env=masked_env_class(length=1000))
    made_resumed = recorded_updates(resumed, monkeypatch)
    resumed.learn(180, progress_bar=False, reset_num_timesteps=False)
    targets = [step for kind, step in made_resumed if kind == "target"]
    assert targets == [step for kind, step in made if kind == "target" and step > 320] == [350, 400, 450, 500]
    trained = [step for kind, step in made_resumed if kind == "train"]
    assert trained == [step for kind, step in made if kind == "train" and step >= 420] == list(range(420, 501, 4))


def test_the_vector_step_count_is_saved_and_a_checkpoint_without_it_loads_with_0(tmp_path, chain_factory):
    agent = DQN(chain_factory(N, max_steps=4), **CHAIN_HP)
    agent.learn(50, progress_bar=False)
    assert agent.vector_steps > 50  # the reset steps after each episode count too
    assert DQN.load(agent.save(tmp_path / "dqn.pt")).vector_steps == agent.vector_steps
    older = agent.checkpoint()
    del older["counters"]["vector_steps"]
    assert DQN.load(save_checkpoint(older, tmp_path / "older.pt")).vector_steps == 0


@pytest.mark.parametrize("dueling", [False, True])
def test_an_empty_net_arch_is_a_linear_head(tmp_path, chain_factory, chain_observations, dueling):
    """net_arch=[]: no hidden layer, the Q-values (and the dueling value) are linear in the observation."""
    agent = DQN(chain_factory(N), **{**CHAIN_HP, "net_arch": [], "dueling": dueling})
    assert agent.settings.net_arch == () and not list(agent.q_network.body.parameters())
    assert agent.q_network.advantage.in_features == N
    agent.learn(200, progress_bar=False)
    loaded = DQN.load(agent.save(tmp_path / "linear.pt"))
    obs = chain_observations(N)
    np.testing.assert_array_equal(q_values(loaded, obs), q_values(agent, obs))
    assert loaded.settings.net_arch == () and loaded.settings.dueling is dueling


def test_load_rejects_other_spaces_algorithms_and_files(tmp_path, chain_factory, masked_env_class):
    path = DQN(chain_factory(N), **CHAIN_HP).save(tmp_path / "dqn.pt")
    with pytest.raises(ValueError, match="observation space"):
        DQN.load(path, env=chain_factory(N + 1))
    with pytest.raises(ValueError):
        DQN.load(path, env=masked_env_class())  # other action space too
    reinforce = REINFORCE(chain_factory(N), net_arch=(8,)).save(tmp_path / "reinforce.pt")
    with pytest.raises(ValueError, match="reinforce"):
        DQN.load(reinforce)
    with pytest.raises(ValueError, match="dqn"):
        REINFORCE.load(path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="cannot be loaded safely"):
        DQN.load(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="no content checksum"):
        DQN.load(foreign)
    other = save_checkpoint({"format": "mri_rl.reconstructor", "state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="format 'mri_rl.reconstructor'; expected 'mri_rl.agent'"):
        DQN.load(other)
    with pytest.raises(FileNotFoundError):
        DQN.load(tmp_path / "missing.pt")


# -------------------------------------------------------------------------- seeding
def _trained_weights(seed: int) -> dict[str, torch.Tensor]:
    agent = DQN(
        gym.make("CartPole-v1"),
        learning_starts=100,
        batch_size=32,
        buffer_size=1000,
        train_freq=4,
        target_update_interval=50,
        net_arch=(32,),
        seed=seed,
    )
    agent.learn(500, progress_bar=False)
    return {k: v.clone() for k, v in agent.q_network.state_dict().items()}


def test_same_seed_same_training_result():
    first, second, other = _trained_weights(3), _trained_weights(3), _trained_weights(4)
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)
    assert any(not torch.equal(first[k], other[k]) for k in first)


# ------------------------------------------------------------------ the learn loop
def test_learn_continues_to_total_and_callback_stops(chain_factory):
    agent = DQN(chain_factory(), **CHAIN_HP)
    agent.learn(120, progress_bar=False)
    assert agent.num_timesteps == 120
    agent.learn(200, progress_bar=False)  # a resumed run finishes the same total
    assert agent.num_timesteps == 200
    seen = []

    def stop_at_250(a: DQN) -> bool:
        seen.append(a.num_timesteps)
        return a.num_timesteps < 250

    agent.learn(1000, callback=stop_at_250, progress_bar=False)
    assert agent.num_timesteps == 250 and seen[-1] == 250
    # Epsilon decays linearly over exploration_fraction of the run.
    assert agent.epsilon == pytest.approx(1.0 + (0.05 - 1.0) * min(1.0, (249 / 1000) / 0.5))


@pytest.mark.parametrize("bad", [{"tau": 0.0}, {"tau": 1.5}, {"n_step": 0}, {"gamma": 1.5}])
def test_invalid_hyperparameters(bad, chain_factory):
    with pytest.raises(ValueError):
        DQN(chain_factory(), **bad)


@pytest.mark.parametrize(("buffer_size", "n_step", "num_envs"), [(1, 1, 1), (2, 2, 1), (5, 2, 2), (11, 3, 3)])
def test_a_replay_memory_too_small_for_an_n_step_transition_is_refused(buffer_size, n_step, num_envs, chain_factory):
    env = SyncVectorEnv([chain_factory] * num_envs, autoreset_mode=AutoresetMode.NEXT_STEP)
    expected = (
        f"buffer_size {buffer_size} is too small for n_step {n_step} .* buffer_size >= .* = {(n_step + 1) * num_envs}"
    )
    with pytest.raises(ValueError, match=expected):
        DQN(env, buffer_size=buffer_size, n_step=n_step)
    assert DQN(env, buffer_size=(n_step + 1) * num_envs, n_step=n_step).buffer.slots == n_step + 1


class CountingEnv(gym.Env):
    """Observation: how many observations the env has made (0, 1, 2, ... across episodes); reward:
    the observation acted on; never ends (a TimeLimit may truncate)."""

    observation_space = spaces.Box(-1e6, 1e6, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self) -> None:
        self.made = -1

    def _observation(self) -> np.ndarray:
        self.made += 1
        return np.array([self.made], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._observation(), {}

    def step(self, action):
        reward = float(self.made)
        return self._observation(), reward, False, False, {}


@pytest.mark.parametrize("n_step", [1, 2])
def test_a_second_learn_call_does_not_join_the_last_step_of_the_first_to_its_reset(n_step):
    agent = DQN(CountingEnv(), learning_starts=10**6, buffer_size=100, n_step=n_step, gamma=0.5)
    agent.learn(3, progress_bar=False)  # acts on 0, 1, 2; the step from 2 ends the run with observation 3
    agent.learn(3, progress_bar=False, reset_num_timesteps=False)  # resets to 4, acts on 4, 5, 6
    sample = agent.buffer.sample(400, np.random.default_rng(0), n_step=n_step, gamma=0.5)
    observed = sample.observations[:, 0].numpy()
    last = observed == 2
    assert last.any()
    # The step from 2 ended in 3 (reward 2), then the run stopped: bootstrap from 3 as after a
    # truncation, never from the new run's 4 or 5, nor with the new run's rewards.
    np.testing.assert_array_equal(sample.next_observations[last, 0].numpy(), 3.0)
    np.testing.assert_allclose(sample.returns[last].numpy(), 2.0)
    np.testing.assert_allclose(sample.bootstrap_discounts[last].numpy(), 0.5)
    # The steps of each run stay as they were: 1 goes on to 2 (and 3), 4 to 5 (and 6).
    for start, rewards in ((1, [1.0, 2.0]), (4, [4.0, 5.0])):
        rows = observed == start
        assert rows.any()
        np.testing.assert_array_equal(sample.next_observations[rows, 0].numpy(), start + n_step)
        expected = sum(0.5**k * r for k, r in enumerate(rewards[:n_step]))
        np.testing.assert_allclose(sample.returns[rows].numpy(), expected)
