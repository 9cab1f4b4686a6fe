"""Orders files: the round trip, and the errors of files that are missing, truncated or not valid."""

from __future__ import annotations

import json

import pytest

from mri_rl.acquisition_orders import (
    ORDERS_FORMAT,
    AcquisitionOrders,
    AcquisitionOrdersError,
    read_orders,
    write_orders,
)

ORDERS = AcquisitionOrders(
    width=16,
    initial_lines=2,
    names=(("a.h5", 0), ("a.h5", 1), ("b.h5", 0)),
    orders=((5, 9, 2), (9, 5, 3), (15,)),
    record={"settings": {"policy": "runs/x/model.pt"}},
)


def test_write_then_read_gives_the_same_orders(tmp_path):
    path = write_orders(tmp_path / "sub" / "orders.json", ORDERS)
    assert read_orders(path) == ORDERS
    assert json.loads(path.read_text())["format"] == ORDERS_FORMAT
    assert [p.name for p in path.parent.iterdir()] == ["orders.json"]  # no temporary file left


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no acquisition orders file at .*nothing.json.*mri-rl orders"):
        read_orders(tmp_path / "nothing.json")


def test_a_truncated_file_is_named(tmp_path):
    path = write_orders(tmp_path / "orders.json", ORDERS)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(AcquisitionOrdersError, match=r"orders.json is not a JSON orders file \(truncated"):
        read_orders(path)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format": "other/9"}, r"expected format 'mri_rl.acquisition_orders/1', got 'other/9'"),
        ({"width": 0}, r"width must be an integer >= 1, got 0"),
        ({"episodes": []}, r"need at least one episode"),
        ({"episodes": [{"file": "a.h5", "slice": 2, "order": [3, 16]}]}, r"a.h5 slice 2 .*\[0, 16\), got \[3, 16\]"),
        ({"episodes": [{"file": "a.h5", "slice": 2, "order": [3, 3]}]}, r"distinct column indices"),
        ({"episodes": [{"file": "a.h5", "order": [3]}]}, r"missing or bad: KeyError\('slice'\)"),
        ({"initial_lines": 17}, r"initial_lines must be at most the width 16, got 17"),
        ({"episodes": [{"file": "a.h5", "slice": 3.7, "order": [3]}]}, r"got file 'a.h5', slice 3.7"),
        ({"episodes": [{"file": "a.h5", "slice": "2", "order": [3]}]}, r"got file 'a.h5', slice '2'"),
        ({"episodes": [{"file": 5, "slice": 2, "order": [3]}]}, r"got file 5, slice 2"),
    ],
)
def test_orders_that_are_not_valid_are_refused_naming_the_file(tmp_path, change, message):
    path = write_orders(tmp_path / "orders.json", ORDERS)
    path.write_text(json.dumps(json.loads(path.read_text()) | change))
    with pytest.raises(AcquisitionOrdersError, match=message) as error:
        read_orders(path)
    assert str(path) in str(error.value)
