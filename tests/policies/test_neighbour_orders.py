"""The nearest-neighbour teacher-order policy: known orders on hand-made banks, the teacher's own
episodes repeated on its own slices, and the errors of a bank that cannot be used."""

from __future__ import annotations

import numpy as np
import pytest

from mri_rl.evaluation.rollout import rollout_policy
from mri_rl.evaluation.teacher_orders import collect_teacher_orders
from mri_rl.policies import BalancedOraclePolicy, NeighbourOrderPolicy, TeacherOrders

WIDTH = 8


def images(*patterns: list[float]) -> np.ndarray:
    """float32 (N, 2, 2) images from flat patterns of 4 pixels."""
    return np.array(patterns, dtype=np.float32).reshape(-1, 2, 2)


def observation(reconstructions: np.ndarray) -> dict[str, np.ndarray]:
    return {"reconstruction": reconstructions[:, None]}


def picks(policy: NeighbourOrderPolicy, reconstructions: np.ndarray, steps: int, initial=(3, 4)) -> np.ndarray:
    """int (N, steps): the columns ``policy`` acquires from a reset, the observation staying ``reconstructions``."""
    masks = np.ones((len(reconstructions), WIDTH), dtype=bool)
    masks[:, list(initial)] = False
    policy.reset(masks)
    chosen = []
    for _ in range(steps):
        actions, _ = policy.predict(observation(reconstructions), action_mask=masks)
        masks[np.arange(len(masks)), actions] = False
        chosen.append(actions)
    return np.stack(chosen, axis=1)


@pytest.fixture
def bank() -> TeacherOrders:
    """Two slices: a bright left column (order 0, 1) and a bright top row (order 7, 6)."""
    return TeacherOrders(images([1, 0, 1, 0], [1, 1, 0, 0]), np.array([[0, 1], [7, 6]]))


def test_each_episode_takes_its_nearest_slice_s_order_then_the_fallback_then_low_to_high(bank):
    policy = NeighbourOrderPolicy(WIDTH, bank, fallback=[5, 1])
    # scaled copies and a noisy copy: distances are between unit-norm images
    queries = images([3, 0, 3, 0.2], [0.5, 0.5, 0, 0])
    np.testing.assert_array_equal(picks(policy, queries, steps=6), [[0, 1, 5, 2, 6, 7], [7, 6, 5, 1, 2, 0]])


def test_the_order_is_chosen_once_per_episode_from_its_first_observation(bank):
    policy = NeighbourOrderPolicy(WIDTH, bank, fallback=[])
    masks = np.ones((1, WIDTH), dtype=bool)
    policy.reset(masks)
    first, _ = policy.predict(observation(images([1, 0, 1, 0])), action_mask=masks)
    masks[0, first] = False
    second, _ = policy.predict(observation(images([1, 1, 0, 0])), action_mask=masks)  # now nearer slice 1
    assert (first[0], second[0]) == (0, 1)
    policy.reset(np.ones((1, WIDTH), dtype=bool))
    after_reset, _ = policy.predict(observation(images([1, 1, 0, 0])), action_mask=np.ones((1, WIDTH), dtype=bool))
    assert after_reset[0] == 7


def test_rolled_on_its_own_slices_the_policy_repeats_the_teacher(make_vec_env, test_folder):
    env = make_vec_env(test_folder, 2)  # 3 slices, 2 at a time: a padded second batch
    teacher = collect_teacher_orders(BalancedOraclePolicy(env), env, 3, [2, 0, 1])
    assert teacher.orders.shape == (3, 3) and teacher.observations.shape == (3, 16, 16)
    rows = rollout_policy(BalancedOraclePolicy(env), env, 3, "oracle_ssim_psnr", 0, [2, 0, 1], progress=False)
    expected = {}
    for row in sorted(rows, key=lambda row: row["step"]):
        if row["step"]:
            expected.setdefault(row["slice"], []).append(row["column"])
    np.testing.assert_array_equal(teacher.orders, [expected[2], expected[0], expected[1]])
    obs, _ = env.reset(options={"indices": [0, 1]})
    np.testing.assert_array_equal(teacher.observations[1:], obs["reconstruction"][:, 0])

    policy = NeighbourOrderPolicy(env.single_action_space.n, teacher, fallback=[])
    rows = rollout_policy(policy, env, 3, "neighbour_orders", 0, [0, 1, 2], progress=False)
    got = {}
    for row in sorted(rows, key=lambda row: row["step"]):
        if row["step"]:
            got.setdefault(row["slice"], []).append(row["column"])
    assert got == expected
    with pytest.raises(ValueError, match=r"distinct slices, got \[0, 0\]"):
        collect_teacher_orders(BalancedOraclePolicy(env), env, 3, [0, 0])


@pytest.mark.parametrize(
    "observations, orders, message",
    [
        (np.zeros((2, 2, 2)), np.zeros((3, 2), dtype=int), r"for the same S slices, got \(2, 2, 2\) and \(3, 2\)"),
        (np.zeros((2, 4)), np.zeros((2, 2), dtype=int), r"observations \(S, h, w\)"),
        (np.zeros((0, 2, 2)), np.zeros((0, 2), dtype=int), "at least one slice"),
    ],
)
def test_a_malformed_bank_is_refused(observations, orders, message):
    with pytest.raises(ValueError, match=message):
        TeacherOrders(observations, orders)


def test_columns_outside_the_width_and_observations_of_another_size_are_refused(bank):
    with pytest.raises(ValueError, match=r"columns in \[0, 4\), got 0 .. 7"):
        NeighbourOrderPolicy(4, bank, fallback=[])
    policy = NeighbourOrderPolicy(WIDTH, bank, fallback=[])
    with pytest.raises(ValueError, match=r"shape \(3, 3\) cannot be matched against .* on \(2, 2\)"):
        policy.predict(observation(np.zeros((1, 3, 3), dtype=np.float32)), action_mask=np.ones((1, WIDTH), dtype=bool))
