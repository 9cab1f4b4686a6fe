"""Learning the LBCS order: the non-adaptive greedy mask over training slices.

Gözcü et al., "Learning-based compressive MRI", IEEE TMI 2018: starting from the
initial mask, repeatedly add the column that most improves the mean metric over the
training set. The order depends on the data, reconstructor, reward metric, budget and
initial lines; it is cached in a JSON file with the record of all of them, and a cache
made under another record is refused rather than reused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mri_rl.agents.collect import Collector
from mri_rl.files import atomic_write_text
from mri_rl.provenance import check_record, read_json_record
from mri_rl.threads import follow_free_cpus


class LBCSEpisodes:
    """LBCS's training episodes in one batched env, scoring ``columns`` (a share of them, when
    several workers score the columns of one step between them).

    Args:
        env: a batched acquisition env over the train split, with ``num_envs >= len(slice_indices)``
            (further episodes repeat the last slice and are left out of the mean).
        slice_indices: the training slices to average over.
        columns: the columns this instance scores (default: all).
    """

    def __init__(self, env: Any, slice_indices: list[int], columns: Sequence[int] | None = None) -> None:
        if not 0 < len(slice_indices) <= env.num_envs:
            raise ValueError(f"the env has {env.num_envs} episodes for {len(slice_indices)} slices")
        self.env = env
        self.width = int(env.single_action_space.n)
        self.columns = np.arange(self.width) if columns is None else np.asarray(columns, dtype=np.int64)
        self.collector = Collector(env, self.width)
        padding = [slice_indices[-1]] * (env.num_envs - len(slice_indices))
        self.collector.reset(options={"indices": [*slice_indices, *padding]})
        self.counted = np.arange(env.num_envs) < len(slice_indices)

    def mean_gains(self, order: Sequence[int]) -> np.ndarray:
        """float64 (len(columns),): each column's reward averaged over the episodes still running;
        -inf for a column of ``order`` or one no running episode can acquire.

        An episode that ended (every column acquired) restarts on a random slice at the next
        step (next-step autoreset): only rows still in their first episode count. A full slice
        gains nothing from any column, so leaving it out does not change which column is best.
        """
        running = self.collector.in_first_episode & self.counted
        free = self.env.unwrapped.action_masks()[:, self.columns] & running[:, None]
        if not free.any():
            return np.full(len(self.columns), -np.inf)
        scores = self.env.unwrapped.look_ahead(np.tile(self.columns, (self.env.num_envs, 1)))
        gains = scores[running].mean(axis=0)
        gains[~free.any(axis=0) | np.isin(self.columns, list(order))] = -np.inf
        return gains

    def acquire(self, column: int) -> None:
        """Acquire ``column`` in every episode."""
        self.collector.step(np.full(self.env.num_envs, column))


def greedy_order(
    mean_gains: Callable[[list[int]], np.ndarray], acquire: Callable[[int], object], steps: int, progress: bool = True
) -> list[int]:
    """Up to ``steps`` columns, each the best of ``mean_gains(order so far)`` (all columns), then
    acquired; stops early when no column gains (all -inf)."""
    order: list[int] = []
    for _ in tqdm(range(steps), desc="lbcs order", disable=not progress):
        follow_free_cpus()
        gains = mean_gains(order)
        if not np.isfinite(gains).any():
            break
        column = int(np.argmax(gains))
        order.append(column)
        acquire(column)
    return order


def learn_lbcs_order(env: Any, slice_indices: list[int], budget: int | None, progress: bool = True) -> list[int]:
    """Greedy fixed order of ``budget`` columns (None: until no column is left), best first, learned
    in one env (see :class:`LBCSEpisodes` for ``env`` and ``slice_indices``)."""
    episodes = LBCSEpisodes(env, slice_indices)
    return greedy_order(episodes.mean_gains, episodes.acquire, episodes.width if budget is None else budget, progress)


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
