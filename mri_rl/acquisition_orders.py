"""A file of acquisition orders: the columns a policy acquired on each slice, in order.

``mri-rl orders`` writes one (:func:`mri_rl.evaluation.policy_orders.record_policy_orders`) and the
``orders`` mask sampler (:class:`mri_rl.reconstruct.training_masks.OrdersMaskSampler`) reads it, to
train a reconstructor on the masks a policy passes through rather than on random ones (one round of
alternating policy and reconstructor training; Zhang et al., CVPR 2019, train the two jointly).

The file is JSON::

    {"format": "mri_rl.acquisition_orders/1", "width": W, "initial_lines": L, "record": {...},
     "episodes": [{"file": "a.h5", "slice": 3, "order": [31, 33, 30, ...]}, ...]}

``record`` says how the orders were made (:func:`mri_rl.provenance.make_record`: the task, the data
and the policy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mri_rl.files import atomic_write_text

#: The ``format`` of the files this version writes and reads.
ORDERS_FORMAT = "mri_rl.acquisition_orders/1"


class AcquisitionOrdersError(ValueError):
    """An orders file that cannot be read, or orders that are not valid."""


@dataclass(frozen=True)
class AcquisitionOrders:
    """Recorded acquisition episodes.

    Attributes:
        width: W, the phase-encode columns of the k-space the orders index.
        initial_lines: the lowest-frequency lines acquired before the first column of each order.
        names: (file name, slice index) of each episode.
        orders: each episode's acquired columns in [0, W), in order, without repeats.
        record: how they were made (:func:`mri_rl.provenance.make_record`).
    """

    width: int
    initial_lines: int
    names: tuple[tuple[str, int], ...]
    orders: tuple[tuple[int, ...], ...]
    record: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Raises AcquisitionOrdersError: naming the first value that is not valid."""
        for name, value in (("width", self.width), ("initial_lines", self.initial_lines)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AcquisitionOrdersError(f"{name} must be an integer >= 1, got {value!r}")
        if self.initial_lines > self.width:
            raise AcquisitionOrdersError(
                f"initial_lines must be at most the width {self.width}, got {self.initial_lines}"
            )
        for file, index in self.names:
            if not isinstance(file, str) or isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise AcquisitionOrdersError(
                    f"each episode needs a file name and a slice index >= 0, got file {file!r}, slice {index!r}"
                )
        if not self.orders or len(self.names) != len(self.orders):
            raise AcquisitionOrdersError(
                f"need at least one episode and one name per order, got {len(self.orders)} order(s) and "
                f"{len(self.names)} name(s)"
            )
        for (file, index), order in zip(self.names, self.orders):
            columns_ok = all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < self.width for c in order)
            if not columns_ok or len(set(order)) != len(order):
                raise AcquisitionOrdersError(
                    f"the order of {file} slice {index} must hold distinct column indices in [0, {self.width}), "
                    f"got {list(order)}"
                )


def write_orders(path: str | Path, orders: AcquisitionOrders) -> Path:
    """Write ``orders`` to ``path`` (JSON, atomically: a temporary file, then a rename)."""
    episodes = [{"file": f, "slice": s, "order": list(o)} for (f, s), o in zip(orders.names, orders.orders)]
    contents = {
        "format": ORDERS_FORMAT,
        "width": orders.width,
        "initial_lines": orders.initial_lines,
        "record": orders.record,
        "episodes": episodes,
    }
    return atomic_write_text(path, json.dumps(contents, indent=1) + "\n")


def read_orders(path: str | Path) -> AcquisitionOrders:
    """Read an orders file written by :func:`write_orders`.

    Raises:
        FileNotFoundError: no such file.
        AcquisitionOrdersError: not JSON (e.g. truncated), another format, missing or bad entries;
            the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no acquisition orders file at {path} (write one with `mri-rl orders`)")
    try:
        contents = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AcquisitionOrdersError(f"{path} is not a JSON orders file (truncated or corrupt?): {error}") from None
    if not isinstance(contents, dict) or contents.get("format") != ORDERS_FORMAT:
        found = contents.get("format") if isinstance(contents, dict) else type(contents).__name__
        raise AcquisitionOrdersError(f"{path}: expected format {ORDERS_FORMAT!r}, got {found!r}")
    try:
        episodes = contents["episodes"]
        return AcquisitionOrders(
            width=contents["width"],
            initial_lines=contents["initial_lines"],
            names=tuple((e["file"], e["slice"]) for e in episodes),
            orders=tuple(tuple(e["order"]) for e in episodes),
            record=dict(contents.get("record") or {}),
        )
    except AcquisitionOrdersError as error:
        raise AcquisitionOrdersError(f"{path}: {error}") from None
    except (KeyError, TypeError, ValueError) as error:
        raise AcquisitionOrdersError(
            f"{path}: expected width, initial_lines and episodes of file, slice and order; missing or bad: {error!r}"
        ) from None
