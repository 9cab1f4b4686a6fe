"""The ``orders`` mask sampler: the masks a recorded policy passes through, and the record of a
reconstructor trained on them."""

from __future__ import annotations

import numpy as np
import pytest

from mri_rl.acquisition_orders import AcquisitionOrders, write_orders
from mri_rl.kspace import initial_mask
from mri_rl.provenance import checkpoint_fingerprint
from mri_rl.reconstruct.train import reconstructor_record
from mri_rl.reconstruct.training_masks import (
    MixtureMaskSampler,
    OrdersMaskSampler,
    build_mask_sampler,
    orders_files,
)
from mri_rl.task import AcquisitionTask

WIDTH, LEFT, RIGHT = 16, 1, 15
ORDERS = AcquisitionOrders(width=WIDTH, initial_lines=2, names=(("a.h5", 0), ("a.h5", 1)), orders=((5, 9, 2), (12,)))


@pytest.fixture
def orders_file(tmp_path):
    return write_orders(tmp_path / "orders.json", ORDERS)


def test_every_mask_is_the_initial_lines_and_a_prefix_of_a_recorded_order(orders_file):
    sampler = OrdersMaskSampler(str(orders_file), initial_lines=2)
    initial = initial_mask(WIDTH, LEFT, RIGHT, 2)
    prefixes = {
        (order, k): initial | np.isin(np.arange(WIDTH), order[:k])
        for order in ORDERS.orders
        for k in range(len(order) + 1)
    }
    seen = set()
    for seed in range(300):
        mask = sampler(WIDTH, LEFT, RIGHT, seed)
        matches = [key for key, expected in prefixes.items() if np.array_equal(mask, expected)]
        assert matches, f"seed {seed} drew {np.flatnonzero(mask)}, not a prefix of a recorded order"
        seen.update(matches)
        np.testing.assert_array_equal(sampler(WIDTH, LEFT, RIGHT, seed), mask)  # the seed decides the mask
    assert seen == set(prefixes)  # every prefix of every episode is drawn


def test_orders_of_another_width_or_other_initial_lines_are_refused(orders_file):
    with pytest.raises(ValueError, match=r"orders.json index 16 columns, but the k-space has 20"):
        OrdersMaskSampler(str(orders_file))(20, 0, 20, 0)
    with pytest.raises(ValueError, match=r"start from 2 initial lines, but the task acquires 4"):
        build_mask_sampler({"kind": "orders", "path": str(orders_file)}, AcquisitionTask(initial_lines=4, budget=3))
    with pytest.raises(FileNotFoundError, match="mri-rl orders"):
        build_mask_sampler({"kind": "orders", "path": str(orders_file.parent / "missing.json")})


def test_orders_mix_with_other_masks_and_the_record_fingerprints_their_file(orders_file, singlecoil_root):
    config = {
        "kind": "mixture",
        "components": [
            {"weight": 0.5, "kind": "acquisition", "budget": 6},
            {"weight": 0.5, "kind": "orders", "path": str(orders_file)},
        ],
    }
    task = AcquisitionTask(initial_lines=2, budget=6)
    assert isinstance(build_mask_sampler(config, task), MixtureMaskSampler)
    assert orders_files(config) == [str(orders_file)] and orders_files({"kind": "acquisition"}) == []
    record = reconstructor_record(
        task, singlecoil_root / "singlecoil_train", singlecoil_root / "singlecoil_val", {"masks": {"train": config}}, 1
    )
    assert record["settings"]["orders_files"] == {str(orders_file): checkpoint_fingerprint(orders_file)}
    write_orders(orders_file, AcquisitionOrders(WIDTH, 2, (("a.h5", 0),), ((7,),)))  # other orders, same path
    again = reconstructor_record(
        task, singlecoil_root / "singlecoil_train", singlecoil_root / "singlecoil_val", {"masks": {"train": config}}, 1
    )
    assert again["settings"]["orders_files"] != record["settings"]["orders_files"]
