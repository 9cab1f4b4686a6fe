"""k-space conventions (mri_rl/kspace.py): column orders, initial masks, the centred FFT, the masked product."""

from __future__ import annotations

import numpy as np
import pytest

from mri_rl.kspace import initial_mask, low_frequency_order


def test_low_frequency_order_known_answers():
    np.testing.assert_array_equal(low_frequency_order(8), [4, 3, 5, 2, 6, 1, 7, 0])
    np.testing.assert_array_equal(low_frequency_order(7), [3, 2, 4, 1, 5, 0, 6])
    np.testing.assert_array_equal(low_frequency_order(1), [0])
    np.testing.assert_array_equal(low_frequency_order(2), [1, 0])
    assert low_frequency_order(8).dtype == np.int64


@pytest.mark.parametrize("width", [3, 16, 17, 368, 372])
def test_low_frequency_order_is_a_permutation_by_distance(width):
    order = low_frequency_order(width)
    assert sorted(order.tolist()) == list(range(width))
    assert order[0] == width // 2
    distance = np.abs(order - width // 2)
    assert (np.diff(distance) >= 0).all()


def test_initial_mask_without_padding():
    np.testing.assert_array_equal(initial_mask(8, 0, 8, 1), [0, 0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(initial_mask(8, 0, 8, 3), [0, 0, 0, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(initial_mask(7, 0, 7, 2), [0, 0, 1, 1, 0, 0, 0])
    assert initial_mask(8, 0, 8, 8).all()
    assert initial_mask(8, 0, 8, 3).dtype == bool


def test_initial_mask_with_padding():
    # zero-filled edges [0, 2) and [8, 10) are acquired; 3 lowest of the measurable columns
    np.testing.assert_array_equal(initial_mask(10, 2, 8, 3), [1, 1, 0, 0, 1, 1, 1, 0, 1, 1])
    # asymmetric padding: the centre (5) is not measurable, the nearest measurable columns are taken
    np.testing.assert_array_equal(initial_mask(10, 6, 10, 2), [1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
    # fastMRI knee geometry: 368 columns, measurable [17, 351)
    mask = initial_mask(368, 17, 351, 8)
    expected = np.zeros(368, dtype=bool)
    expected[:17] = expected[351:] = expected[180:188] = True
    np.testing.assert_array_equal(mask, expected)
    # more initial lines than measurable columns: every column acquired
    assert initial_mask(10, 2, 8, 20).all()
