"""Learning the LBCS order: the non-adaptive greedy mask over training slices.

Gözcü et al., "Learning-based compressive MRI", IEEE TMI 2018: starting from the
initial mask, repeatedly add the column that most improves the mean metric over the
training set. The order depends on the data, reconstructor, reward metric, budget and
initial lines; it is cached in a JSON file with the record of all of them, and a cache
made under another record is refused rather than reused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mri_rl.agents.collect import Collector
from mri_rl.files import atomic_write_text
from mri_rl.provenance import check_record, read_json_record


def learn_lbcs_order(env: Any, slice_indices: list[int], budget: int | None, progress: bool = True) -> list[int]:
    """Greedy fixed order of ``budget`` columns.

    Args:
        env: a batched acquisition env over the train split, with ``num_envs >= len(slice_indices)``
            (further episodes repeat the last slice and are left out of the mean).
        slice_indices: the training slices to average over.
        budget: columns in the order (None: until no column is left).

    Returns:
        Column indices, best first.
    """
    if not 0 < len(slice_indices) <= env.num_envs:
        raise ValueError(f"the env has {env.num_envs} episodes for {len(slice_indices)} slices")
    width = env.single_action_space.n
    collector = Collector(env, width)
    padding = [slice_indices[-1]] * (env.num_envs - len(slice_indices))
    collector.reset(options={"indices": [*slice_indices, *padding]})
    counted = np.arange(env.num_envs) < len(slice_indices)
    order: list[int] = []
    # An episode that ended (every column acquired) restarts on a random slice at the next
    # step (next-step autoreset): only rows still in their first episode count. A full slice
    # gains nothing from any column, so leaving it out does not change which column is best.
    for _ in tqdm(range(width if budget is None else budget), desc="lbcs order", disable=not progress):
        running = collector.in_first_episode & counted
        free = env.unwrapped.action_masks() & running[:, None]
        if not free.any():
            break
        scores = env.unwrapped.look_ahead(np.tile(np.arange(width), (env.num_envs, 1)))
        mean_gain = scores[running].mean(axis=0)
        mean_gain[~free.any(axis=0)] = -np.inf
        mean_gain[order] = -np.inf
        if not np.isfinite(mean_gain).any():
            break
        column = int(np.argmax(mean_gain))
        order.append(column)
        collector.step(np.full(env.num_envs, column))
    return order


def cached_lbcs_order(
    cache_file: str | Path, record: dict[str, Any], learn: Callable[[], list[int]], fresh_start: str
) -> list[int]:
    """The order stored in ``cache_file`` if it was learned under ``record``, else ``learn()``
    written there (atomically) with ``record``.

    Args:
        cache_file: the JSON cache, ``{"record": ..., "order": [...]}``.
        record: how the order is made (:func:`mri_rl.provenance.make_record`: task, training
            data, slices).
        learn: computes the order when there is no cache.
        fresh_start: how to start fresh, for the mismatch message.

    Raises:
        RecordMismatchError: the cache holds an order learned under another record.
    """
    cache_file = Path(cache_file)
    if cache_file.is_file():
        check_record(read_json_record(cache_file), record, cache_file, fresh_start)
        return [int(c) for c in json.loads(cache_file.read_text())["order"]]
    order = learn()
    atomic_write_text(cache_file, json.dumps({"record": record, "order": order}, indent=1))
    return order
