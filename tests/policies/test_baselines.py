"""The non-learned baselines on hand-made action masks: known column orders, plans and draws."""

from __future__ import annotations

import numpy as np
import pytest

from mri_rl.policies import (
    EquispacedPolicy,
    FixedOrderPolicy,
    LBCSPolicy,
    LowToHighPolicy,
    RandomPolicy,
)


def free_mask(width: int, acquired=(), rows: int = 1) -> np.ndarray:
    """bool (rows, width): True where a column may still be acquired."""
    mask = np.ones((rows, width), dtype=bool)
    mask[:, list(acquired)] = False
    return mask


def acquisition_order(policy, masks: np.ndarray, steps: int | None = None) -> np.ndarray:
    """Step a policy on ``masks`` (acquiring what it picks) until no column is free: picks (rows, steps)."""
    masks = masks.copy()
    steps = int(masks.sum(axis=1).min()) if steps is None else steps
    picks = []
    for _ in range(steps):
        actions, state = policy.predict(None, deterministic=True, action_mask=masks)
        assert state is None
        actions = np.asarray(actions)
        assert actions.shape == (len(masks),)
        assert masks[np.arange(len(masks)), actions].all(), "picked an acquired column"
        masks[np.arange(len(masks)), actions] = False
        picks.append(actions)
    return np.stack(picks, axis=1)


# ------------------------------------------------------------------------- lowtohigh
def test_lowtohigh_from_an_empty_mask_alternates_around_the_centre():
    picks = acquisition_order(LowToHighPolicy(8), free_mask(8))
    np.testing.assert_array_equal(picks[0], [4, 3, 5, 2, 6, 1, 7, 0])


def test_lowtohigh_on_an_odd_width():
    picks = acquisition_order(LowToHighPolicy(7), free_mask(7))
    np.testing.assert_array_equal(picks[0], [3, 2, 4, 1, 5, 0, 6])


def test_lowtohigh_skips_acquired_columns_per_episode():
    masks = np.concatenate([free_mask(8, acquired=(4, 5)), free_mask(8, acquired=(3, 2, 7)), free_mask(8)])
    picks = acquisition_order(LowToHighPolicy(8), masks, steps=5)
    np.testing.assert_array_equal(picks, [[3, 2, 6, 1, 7], [4, 5, 6, 1, 0], [4, 3, 5, 2, 6]])


def test_lowtohigh_accepts_a_flat_mask_of_one_episode():
    actions, _ = LowToHighPolicy(8).predict(None, action_mask=free_mask(8, acquired=(4,))[0])
    np.testing.assert_array_equal(actions, [3])


# ------------------------------------------------------------------------ equispaced
def test_equispaced_plan_is_evenly_spaced_over_the_sorted_free_columns():
    free = free_mask(16, acquired=(8, 7, 9, 6))[0]  # the centre 4 columns acquired
    # sorted free columns [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15] (12 of them);
    # linspace(0, 11, 4) = 0, 3.67, 7.33, 11 -> positions 0, 4, 7, 11 -> columns 0, 4, 11, 15
    np.testing.assert_array_equal(EquispacedPolicy.plan(free, 4), [0, 4, 11, 15])
    assert np.allclose(np.linspace(0, 11, 4), [0, 11 / 3, 22 / 3, 11])
    # the whole free set when the budget covers it
    np.testing.assert_array_equal(EquispacedPolicy.plan(free, 12), np.flatnonzero(free))
    np.testing.assert_array_equal(EquispacedPolicy.plan(free, 20), np.flatnonzero(free))
    # two picks: the two ends
    np.testing.assert_array_equal(EquispacedPolicy.plan(free, 2), [0, 15])


def test_equispaced_acquires_the_plan_low_frequency_first_then_low_to_high():
    masks = free_mask(16, acquired=(8, 7, 9, 6))
    policy = EquispacedPolicy(16, budget=4)
    policy.reset(masks)
    np.testing.assert_array_equal(np.flatnonzero(policy.planned[0]), [0, 4, 11, 15])
    picks = acquisition_order(policy, masks)
    # planned {0, 4, 11, 15} by distance to the centre 8: 11 (3), 4 (4), 15 (7), 0 (8);
    # then the remaining free columns from low to high frequency (left first on ties).
    np.testing.assert_array_equal(picks[0], [11, 4, 15, 0, 10, 5, 12, 3, 13, 2, 14, 1])


def test_equispaced_plans_each_episode_from_its_own_free_columns():
    masks = np.concatenate([free_mask(16, acquired=(8, 7, 9, 6)), free_mask(16, acquired=range(4, 16))])
    policy = EquispacedPolicy(16, budget=2)
    policy.reset(masks)
    np.testing.assert_array_equal(np.flatnonzero(policy.planned[0]), [0, 15])
    np.testing.assert_array_equal(np.flatnonzero(policy.planned[1]), [0, 3])
    picks = acquisition_order(policy, masks, steps=4)
    np.testing.assert_array_equal(picks, [[15, 0, 10, 5], [3, 0, 2, 1]])


def test_equispaced_predict_before_reset_raises():
    policy = EquispacedPolicy(16, budget=4)
    with pytest.raises(RuntimeError, match="reset"):
        policy.predict(None, action_mask=free_mask(16))
    policy.reset(free_mask(16, rows=2))
    with pytest.raises(RuntimeError, match="reset"):  # a batch of another size than the one reset
        policy.predict(None, action_mask=free_mask(16, rows=3))


# ---------------------------------------------------------------------------- random
def test_random_is_uniform_over_the_legal_columns_only():
    legal = [0, 2, 3, 6]
    rows = 4000
    masks = np.zeros((rows, 8), dtype=bool)
    masks[:, legal] = True
    actions, _ = RandomPolicy(8, seed=0).predict(None, action_mask=masks)
    assert set(np.unique(actions)) == set(legal)
    counts = np.bincount(actions, minlength=8)
    # 1000 expected per legal column, binomial std ~27: +-150 is over 5 std
    assert np.all(np.abs(counts[legal] - rows / len(legal)) < 150), counts


def test_random_differs_per_episode_and_step_but_stays_legal():
    masks = free_mask(8, acquired=(4, 3), rows=64)
    picks = acquisition_order(RandomPolicy(8, seed=3), masks)
    assert all(sorted(row) == [0, 1, 2, 5, 6, 7] for row in picks.tolist())
    assert len({tuple(row) for row in picks.tolist()}) > 1


def test_random_is_reproducible_by_seed_and_differs_across_seeds():
    masks = free_mask(16, acquired=(8, 7), rows=8)
    first = acquisition_order(RandomPolicy(16, seed=0), masks, steps=5)
    again = acquisition_order(RandomPolicy(16, seed=0), masks, steps=5)
    other = acquisition_order(RandomPolicy(16, seed=1), masks, steps=5)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_random_order_of_a_slice_does_not_depend_on_its_batch():
    """Seeded by (seed, slice): slice 7 gets the same order alone, in a batch at another row, or
    in another batch, and another slice or seed gets another order."""

    def order(slice_ids, row, seed=0):
        policy = RandomPolicy(16, seed=seed)
        masks = free_mask(16, acquired=(8,), rows=len(slice_ids))
        policy.reset(masks, slice_ids)
        return acquisition_order(policy, masks, steps=6)[row]

    alone = order([7], 0)
    np.testing.assert_array_equal(alone, order([3, 9, 7, 1], 2))
    np.testing.assert_array_equal(alone, order([7, 7], 1))
    assert not np.array_equal(alone, order([6], 0))
    assert not np.array_equal(alone, order([7], 0, seed=1))


# ------------------------------------------------------------------ fixed order, LBCS
@pytest.mark.parametrize("policy_class", [FixedOrderPolicy, LBCSPolicy])
def test_fixed_order_is_followed_then_low_to_high(policy_class):
    policy = policy_class(8, [3, 0, 5])
    picks = acquisition_order(policy, free_mask(8))
    # the order, then the rest by frequency: 4, (3), (5), 2, 6, 1, 7, (0)
    np.testing.assert_array_equal(picks[0], [3, 0, 5, 4, 2, 6, 1, 7])


@pytest.mark.parametrize("policy_class", [FixedOrderPolicy, LBCSPolicy])
def test_fixed_order_skips_acquired_columns_of_the_order(policy_class):
    policy = policy_class(8, [3, 0, 5])
    masks = np.concatenate([free_mask(8, acquired=(0, 4)), free_mask(8, acquired=(3,))])
    picks = acquisition_order(policy, masks, steps=3)
    np.testing.assert_array_equal(picks, [[3, 5, 2], [0, 5, 4]])


@pytest.mark.parametrize("policy_class", [FixedOrderPolicy, LBCSPolicy])
@pytest.mark.parametrize("order", [[1, 2, 1], [0, 8], [-1, 2], [3, 3]])
def test_fixed_order_rejects_invalid_orders(policy_class, order):
    with pytest.raises(ValueError, match="distinct columns"):
        policy_class(8, order)


def test_lbcs_policy_name():
    assert LBCSPolicy(8, [1]).name == "lbcs"
    assert LBCSPolicy(8, np.array([1, 2])).order == [1, 2]


# ------------------------------------------------------------------------- interface
@pytest.mark.parametrize(
    "make_policy",
    [
        lambda: RandomPolicy(8, seed=0),
        lambda: LowToHighPolicy(8),
        lambda: FixedOrderPolicy(8, [1, 2]),
        lambda: LBCSPolicy(8, [1, 2]),
        lambda: EquispacedPolicy(8, budget=2),
    ],
    ids=["random", "lowtohigh", "fixed", "lbcs", "equispaced"],
)
def test_predict_without_action_mask_raises(make_policy):
    policy = make_policy()
    policy.reset(free_mask(8))
    with pytest.raises(ValueError, match="action mask"):
        policy.predict(None)
    with pytest.raises(ValueError, match="action mask"):
        policy.predict(None, deterministic=True, action_mask=None)


def test_equispaced_without_a_budget_plans_every_free_column():
    free = np.array([False, True, True, False, True, True])
    np.testing.assert_array_equal(EquispacedPolicy.plan(free, None), [1, 2, 4, 5])
    np.testing.assert_array_equal(EquispacedPolicy.plan(free, 2), [1, 5])
