"""Tests for mri_rl.tabular against hand-computed and known optimal answers."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from mri_rl.tabular import (
    FiniteMDP,
    action_values,
    policy_evaluation,
    policy_iteration,
    q_learning,
    value_iteration,
)


def _rollout(env: gym.Env, policy: np.ndarray, seed: int, max_steps: int = 200) -> tuple[float, int]:
    """Run a deterministic policy in ``env``; return (undiscounted return, steps)."""
    state, _ = env.reset(seed=seed)
    total = 0.0
    for step in range(1, max_steps + 1):
        state, reward, terminated, truncated, _ = env.step(int(policy[state]))
        total += float(reward)
        if terminated or truncated:
            return total, step
    return total, max_steps


def _two_state_mdp(gamma: float) -> FiniteMDP:
    """s0: stay (r=1) or try s1 (r=0, succeeds w.p. 0.8); s1: stay (r=2) or go to s0 (r=0)."""
    transitions = np.zeros((2, 2, 2))
    transitions[0, 0, 0] = 1.0
    transitions[0, 1] = [0.2, 0.8]
    transitions[1, 0, 1] = 1.0
    transitions[1, 1, 0] = 1.0
    rewards = np.array([[1.0, 0.0], [2.0, 0.0]])
    return FiniteMDP(transitions, rewards, gamma)


def _chain_mdp(gamma: float) -> FiniteMDP:
    """s0 -a0 (r=1)-> s1 -a0 (r=2)-> s2 (terminal); a1 stays put with reward 0."""
    transitions = np.zeros((3, 2, 3))
    transitions[0, 0, 1] = transitions[1, 0, 2] = 1.0
    transitions[0, 1, 0] = transitions[1, 1, 1] = 1.0
    transitions[2, :, 2] = 1.0
    rewards = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    return FiniteMDP(transitions, rewards, gamma, terminal=np.array([False, False, True]))


# --- dynamic programming -------------------------------------------------------------


@pytest.mark.parametrize("gamma", [0.9, 0.99])
@pytest.mark.parametrize("slippery", [False, True])
def test_policy_iteration_matches_value_iteration_on_frozenlake(slippery: bool, gamma: float) -> None:
    mdp = FiniteMDP.from_gymnasium(gym.make("FrozenLake-v1", is_slippery=slippery), gamma)
    assert mdp.n_states == 17 and mdp.n_actions == 4 and mdp.terminal_mask[16]
    pi_policy, pi_values, pi_iterations = policy_iteration(mdp)
    vi_policy, vi_values, _ = value_iteration(mdp, tol=1e-10)
    np.testing.assert_allclose(pi_values, vi_values, atol=1e-6, rtol=0)
    q = action_values(mdp, vi_values)
    states = np.arange(mdp.n_states)
    assert np.all(q[states, pi_policy] >= q.max(axis=1) - 1e-6)  # PI policy is greedy w.r.t. V*
    np.testing.assert_allclose(policy_evaluation(mdp, vi_policy), pi_values, atol=1e-6, rtol=0)
    assert 1 <= pi_iterations < 50
    assert pi_values[16] == 0.0  # absorbing state after termination


def test_from_gymnasium_redirects_terminated_transitions_to_absorbing_state() -> None:
    mdp = FiniteMDP.from_gymnasium(gym.make("FrozenLake-v1", is_slippery=False), 0.9)
    right, goal_neighbour, hole, absorbing = 2, 14, 5, 16
    assert mdp.transitions[goal_neighbour, right, absorbing] == 1.0
    assert mdp.rewards[goal_neighbour, right] == 1.0
    np.testing.assert_array_equal(mdp.transitions[hole, :, absorbing], 1.0)  # hole ends the episode
    np.testing.assert_array_equal(mdp.rewards[hole], 0.0)
    slippery = FiniteMDP.from_gymnasium(gym.make("FrozenLake-v1", is_slippery=True), 0.9)
    # From 14, action right slips down (stays at 14), right (goal) or up (10), 1/3 each.
    np.testing.assert_allclose(slippery.transitions[goal_neighbour, right, [10, 14, absorbing]], 1 / 3)
    np.testing.assert_allclose(slippery.rewards[goal_neighbour, right], 1 / 3)


@pytest.mark.parametrize("gamma", [0.9, 0.99])
def test_deterministic_frozenlake_optimal_value_and_rollout(gamma: float) -> None:
    env = gym.make("FrozenLake-v1", is_slippery=False)
    mdp = FiniteMDP.from_gymnasium(env, gamma)
    policy, values, _ = policy_iteration(mdp)
    # Shortest safe path from (0, 0) to (3, 3) is L = 6 moves (Manhattan distance 3 + 3,
    # e.g. down, down, right, right, down, right); the reward 1 arrives on move L, so
    # V(start) = gamma ** (L - 1) = gamma ** 5.
    assert values[0] == pytest.approx(gamma**5, abs=1e-12)
    assert value_iteration(mdp)[1][0] == pytest.approx(gamma**5, abs=1e-9)
    assert _rollout(env, policy, seed=0) == (1.0, 6)


def test_cliffwalking_undiscounted_optimal_return() -> None:
    env = gym.make("CliffWalking-v1")
    mdp = FiniteMDP.from_gymnasium(env, 1.0)
    policy, values, _ = value_iteration(mdp)
    start = 36
    assert values[start] == -13.0  # up, 11 x right, down along the cliff edge
    assert _rollout(env, policy, seed=0) == (-13.0, 13)


def test_taxi_value_iteration_policy_solves_episodes() -> None:
    env = gym.make("Taxi-v4")
    mdp = FiniteMDP.from_gymnasium(env, 0.9)
    assert mdp.n_states == 501 and mdp.n_actions == 6
    policy, values, _ = value_iteration(mdp)
    for seed in range(5):
        state, _ = env.reset(seed=seed)
        total, steps = _rollout(env, policy, seed=seed)
        # Every step costs -1 and the drop-off pays +20: return = 20 - (steps - 1).
        assert total == 20 - (steps - 1) and steps <= 20
        # V(start) is the discounted version of the same path.
        discounted = 20 * 0.9 ** (steps - 1) - sum(0.9**k for k in range(steps - 1))
        assert values[state] == pytest.approx(discounted)


@pytest.mark.parametrize("gamma", [0.3, 0.9])
def test_two_state_mdp_closed_form(gamma: float) -> None:
    mdp = _two_state_mdp(gamma)
    v1 = 2.0 / (1.0 - gamma)  # stay in s1 forever
    stay0 = 1.0 / (1.0 - gamma)  # stay in s0 forever
    go0 = 0.8 * gamma * v1 / (1.0 - 0.2 * gamma)  # V0 = gamma * (0.2 V0 + 0.8 V1)
    expected = np.array([max(stay0, go0), v1])
    expected_policy = np.array([0 if stay0 > go0 else 1, 0])
    for policy, values, _ in (policy_iteration(mdp), value_iteration(mdp)):
        np.testing.assert_allclose(values, expected, atol=1e-8, rtol=0)
        np.testing.assert_array_equal(policy, expected_policy)
    assert expected_policy[0] == (1 if gamma == 0.9 else 0)  # both regimes are covered


def test_undiscounted_mdp_with_terminal_state() -> None:
    # s0: a0 -> s1 (r=-1) or a1 -> T (r=-5); s1: a0 -> T (r=-1) or a1 -> s0 (r=0).
    transitions = np.zeros((3, 2, 3))
    transitions[0, 0, 1] = transitions[0, 1, 2] = 1.0
    transitions[1, 0, 2] = transitions[1, 1, 0] = 1.0
    transitions[2, :, 2] = 1.0
    rewards = np.array([[-1.0, -5.0], [-1.0, 0.0], [0.0, 0.0]])
    mdp = FiniteMDP(transitions, rewards, 1.0, terminal=np.array([False, False, True]))
    for policy, values, _ in (policy_iteration(mdp), value_iteration(mdp)):
        np.testing.assert_allclose(values, [-2.0, -1.0, 0.0], atol=1e-9)
        np.testing.assert_array_equal(policy[:2], [0, 0])
    with pytest.raises(ValueError, match="terminal state"):  # s0 <-> s1 loop never ends
        policy_evaluation(mdp, np.array([0, 1, 0]))


@pytest.mark.parametrize("gamma", [0.5, 0.9, 1.0])
def test_policy_evaluation_on_chain(gamma: float) -> None:
    mdp = _chain_mdp(gamma)
    np.testing.assert_allclose(policy_evaluation(mdp, np.array([0, 0, 0])), [1.0 + gamma * 2.0, 2.0, 0.0], atol=1e-12)
    # Stochastic: in s0 move on or stay with probability 1/2 each:
    # V0 = 0.5 (1 + gamma V1) + 0.5 gamma V0  =>  V0 = 0.5 (1 + 2 gamma) / (1 - 0.5 gamma).
    stochastic = np.array([[0.5, 0.5], [1.0, 0.0], [1.0, 0.0]])
    v0 = 0.5 * (1.0 + 2.0 * gamma) / (1.0 - 0.5 * gamma)
    np.testing.assert_allclose(policy_evaluation(mdp, stochastic), [v0, 2.0, 0.0], atol=1e-12)


def test_policy_evaluation_rejects_bad_policies() -> None:
    mdp = _chain_mdp(0.9)
    with pytest.raises(ValueError, match="shape"):
        policy_evaluation(mdp, np.array([0, 0]))
    with pytest.raises(ValueError, match="actions must be in"):
        policy_evaluation(mdp, np.array([0, 2, 0]))
    with pytest.raises(ValueError, match="sums to"):
        policy_evaluation(mdp, np.array([[0.5, 0.4], [1.0, 0.0], [1.0, 0.0]]))


# --- validation ----------------------------------------------------------------------


def _valid_arrays() -> tuple[np.ndarray, np.ndarray]:
    return _two_state_mdp(0.9).transitions.copy(), _two_state_mdp(0.9).rewards.copy()


def test_invalid_mdps_raise_value_error() -> None:
    transitions, rewards = _valid_arrays()
    bad = transitions.copy()
    bad[1, 0] = [0.3, 0.6]
    with pytest.raises(ValueError, match=r"transitions\[1, 0\] sums to 0.9"):
        FiniteMDP(bad, rewards, 0.9)
    bad = transitions.copy()
    bad[0, 1] = [-0.2, 1.2]
    with pytest.raises(ValueError, match=r"transitions\[0, 1, 0\] is a negative probability: -0.2"):
        FiniteMDP(bad, rewards, 0.9)
    with pytest.raises(ValueError, match=r"shape \(S, A, S\)"):
        FiniteMDP(transitions[:, :, :1], rewards, 0.9)
    with pytest.raises(ValueError, match=r"shape \(S, A, S\)"):
        FiniteMDP(transitions[0], rewards, 0.9)
    with pytest.raises(ValueError, match="rewards must have shape"):
        FiniteMDP(transitions, rewards[:, :1], 0.9)
    with pytest.raises(ValueError, match="terminal must be a bool array"):
        FiniteMDP(transitions, rewards, 0.9, terminal=np.array([True, False, False]))
    for gamma in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="discount must be in"):
            FiniteMDP(transitions, rewards, gamma)
    with pytest.raises(ValueError, match="discount 1 requires"):
        FiniteMDP(transitions, rewards, 1.0)
    with pytest.raises(ValueError, match="terminal state 0 is not absorbing"):
        FiniteMDP(transitions, rewards, 1.0, terminal=np.array([True, False]))


def test_mdp_arrays_are_read_only_copies() -> None:
    transitions, rewards = _valid_arrays()
    mdp = FiniteMDP(transitions, rewards, 0.9)
    transitions[0, 0] = [0.0, 1.0]
    assert mdp.transitions[0, 0, 0] == 1.0
    with pytest.raises(ValueError):
        mdp.rewards[0, 0] = 5.0


# --- Q-learning ----------------------------------------------------------------------


def _greedy(q: np.ndarray) -> np.ndarray:
    return np.argmax(q, axis=1)


def test_q_learning_deterministic_frozenlake_reaches_goal() -> None:
    env = gym.make("FrozenLake-v1", is_slippery=False)
    q, returns = q_learning(env, episodes=1500, alpha=0.5, gamma=0.95, epsilon=(1.0, 0.05, 0.5), seed=0)
    assert q.shape == (16, 4) and len(returns) == 1500
    assert _rollout(env, _greedy(q), seed=0) == (1.0, 6)


def test_q_learning_cliffwalking_learns_optimal_path() -> None:
    env = gym.make("CliffWalking-v1", max_episode_steps=500)
    q, returns = q_learning(env, episodes=500, alpha=0.5, gamma=1.0, epsilon=(0.1, 0.1, 0.0), seed=0)
    assert len(returns) == 500
    assert _rollout(env, _greedy(q), seed=0) == (-13.0, 13)


class _OneStateEnv(gym.Env[int, int]):
    """One state, one action, reward 1; every step terminates or truncates."""

    observation_space = spaces.Discrete(1)
    action_space = spaces.Discrete(1)

    def __init__(self, terminate: bool) -> None:
        self.terminate = terminate

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        return 0, 1.0, self.terminate, not self.terminate, {}


@pytest.mark.parametrize(("terminate", "expected"), [(True, 1.0), (False, 2.0)])
def test_q_learning_bootstraps_on_truncation_only(terminate: bool, expected: float) -> None:
    # Terminated: target r = 1. Truncated: target r + gamma Q, fixed point 1 / (1 - 0.5) = 2.
    q, returns = q_learning(_OneStateEnv(terminate), episodes=200, alpha=0.5, gamma=0.5, seed=0)
    assert q[0, 0] == pytest.approx(expected, abs=1e-12)
    assert returns == [1.0] * 200


def test_q_learning_rejects_non_discrete_spaces() -> None:
    with pytest.raises(ValueError, match="observation space must be Discrete"):
        q_learning(gym.make("CartPole-v1"), episodes=1)
