"""Learned policies as a product of experts: the low-to-high frequency prior's known choices on
hand-made log-probabilities and its two limits (the policy alone, the ``lowtohigh`` order), an
ensemble's geometric pooling, a real policy network's log-probabilities and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from mri_rl.agents import DQN, REINFORCE
from mri_rl.kspace import low_frequency_order
from mri_rl.policies import LowToHighPolicy
from mri_rl.policies.product_of_experts import ProductOfExpertsPolicy

WIDTH = 8


class FixedLogProbabilities:
    """An agent whose log-probabilities are one given row (W,), the same for every observation."""

    def __init__(self, row: np.ndarray) -> None:
        self.row = np.asarray(row, dtype=np.float64)

    def log_probabilities(self, obs, action_mask: np.ndarray) -> np.ndarray:
        return np.where(action_mask, self.row, -np.inf)


def pick(policy, acquired=()) -> int:
    mask = np.ones((1, WIDTH), dtype=bool)
    mask[0, list(acquired)] = False
    return int(policy.predict(None, action_mask=mask)[0][0])


def test_the_prior_trades_log_probability_against_rank_by_its_weight():
    rank = np.argsort(low_frequency_order(WIDTH))
    centre, far = int(np.argmin(rank)), int(np.argmax(rank))  # ranks 0 and 7
    row = np.full(WIDTH, np.log(0.02))
    row[far] = np.log(0.5)  # the policy prefers the far column by log(0.5 / 0.02) = 3.2 nats
    agent = FixedLogProbabilities(row)
    assert pick(ProductOfExpertsPolicy([agent], WIDTH, 0.0)) == far
    assert pick(ProductOfExpertsPolicy([agent], WIDTH, 0.4)) == far  # 7 ranks cost 2.8 nats < 3.2
    assert pick(ProductOfExpertsPolicy([agent], WIDTH, 0.5)) == centre  # 3.5 nats > 3.2
    # with the centre acquired, the next free rank is 1: the far column costs 6 ranks, 3.0 nats < 3.2
    assert pick(ProductOfExpertsPolicy([agent], WIDTH, 0.5), acquired=[centre]) == far


def test_a_large_weight_is_the_lowtohigh_order_and_weight_zero_the_policy():
    rng = np.random.default_rng(0)
    agent = FixedLogProbabilities(np.log(rng.dirichlet(np.ones(WIDTH))))
    lowtohigh, heavy = LowToHighPolicy(WIDTH), ProductOfExpertsPolicy([agent], WIDTH, 1e3)
    plain = ProductOfExpertsPolicy([agent], WIDTH, 0.0)
    acquired: list[int] = []
    for _ in range(WIDTH):
        assert pick(heavy, acquired) == pick(lowtohigh, acquired)
        free = [c for c in range(WIDTH) if c not in acquired]
        assert pick(plain, acquired) == free[int(np.argmax(agent.row[free]))]
        acquired.append(pick(heavy, acquired))


def test_a_policy_network_gives_log_probabilities_over_the_legal_actions_only():
    space = spaces.Dict({"mask": spaces.Box(0, 1, (WIDTH,), np.float32)})
    agent = REINFORCE(None, observation_space=space, action_space=spaces.Discrete(WIDTH), net_arch=(8,), seed=0)
    obs = {"mask": np.random.default_rng(1).random((3, WIDTH)).astype(np.float32)}
    legal = np.ones((3, WIDTH), dtype=bool)
    legal[0, :3] = False
    legal[2, 5] = False
    log_probs = agent.log_probabilities(obs, legal)
    assert log_probs.shape == (3, WIDTH)
    assert np.isneginf(log_probs[~legal]).all() and np.isfinite(log_probs[legal]).all()
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(log_probs.argmax(axis=1), agent.predict(obs, action_mask=legal)[0])
    weighted = ProductOfExpertsPolicy([agent], WIDTH, 0.0).predict(obs, action_mask=legal)[0]
    np.testing.assert_array_equal(weighted, agent.predict(obs, action_mask=legal)[0])


@pytest.mark.parametrize("weight", [-0.1, float("nan"), float("inf")])
def test_a_bad_weight_is_refused(weight):
    with pytest.raises(ValueError, match=f"weight must be a finite number >= 0, got {weight}"):
        ProductOfExpertsPolicy([FixedLogProbabilities(np.zeros(WIDTH))], WIDTH, weight)


def test_an_agent_without_log_probabilities_is_refused():
    space = spaces.Box(0, 1, (WIDTH,), np.float32)
    dqn = DQN(None, observation_space=space, action_space=spaces.Discrete(WIDTH), net_arch=(8,))
    with pytest.raises(ValueError, match="needs policy-network agents .* not DQN"):
        ProductOfExpertsPolicy([dqn], WIDTH, 0.1)
    with pytest.raises(ValueError, match="at least one learned policy"):
        ProductOfExpertsPolicy([], WIDTH)


def test_an_ensemble_acquires_the_column_of_largest_geometric_mean_probability():
    """Members that each prefer another end agree on the column both find fairly likely: its geometric
    mean 0.35 beats sqrt(0.6 * 0.02) = 0.11, although the arithmetic mean would tie at 0.31."""
    first, second = np.full(WIDTH, np.log(0.01)), np.full(WIDTH, np.log(0.01))
    first[[0, 3, 7]] = np.log([0.6, 0.35, 0.02])
    second[[0, 3, 7]] = np.log([0.02, 0.35, 0.6])
    members = [FixedLogProbabilities(first), FixedLogProbabilities(second)]
    assert pick(ProductOfExpertsPolicy(members[:1], WIDTH)) == 0
    assert pick(ProductOfExpertsPolicy(members[1:], WIDTH)) == 7
    ensemble = ProductOfExpertsPolicy(members, WIDTH)
    assert pick(ensemble) == 3
    assert pick(ensemble, acquired=[3]) in (0, 7)  # then the two ends tie
    np.testing.assert_allclose(ensemble.scores(None, np.ones((1, WIDTH), bool))[0], (first + second) / 2)


def test_an_ensemble_of_one_policy_twice_is_that_policy():
    rng = np.random.default_rng(2)
    agent = FixedLogProbabilities(np.log(rng.dirichlet(np.ones(WIDTH))))
    acquired: list[int] = []
    for _ in range(WIDTH):
        twice, once = ProductOfExpertsPolicy([agent, agent], WIDTH, 0.3), ProductOfExpertsPolicy([agent], WIDTH, 0.3)
        assert pick(twice, acquired) == pick(once, acquired)
        acquired.append(pick(once, acquired))
