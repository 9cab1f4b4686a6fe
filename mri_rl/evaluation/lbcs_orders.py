"""The LBCS orders ``mri-rl evaluate`` rolls, learned on training slices and cached in its folder.

- ``lbcs``: one order for every volume (:func:`lbcs_order`; Gözcü et al., IEEE TMI 2018).
- ``lbcs_kind``: one order per kind of volume (:func:`lbcs_kind_orders`), the kinds read from a
  file attribute (fastMRI knee: ``acquisition``, PD or PDFS; ``mri-rl data anatomy``:
  ``orientation``), each learned on the training slices of its kind. A scanner knows the
  protocol before the first line, so this is a fixed reference a deployment could use. It is
  stronger than one order where the kinds differ in which columns matter, and weaker where each
  order fits its kind's training slices too closely.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from mri_rl.data.fastmri_files import resolve_split_folder
from mri_rl.distributed import ActorGroup, Workers
from mri_rl.envs.slice_source import SliceSource
from mri_rl.evaluation.setup import FRESH_START, EvaluationSetup, make_batched_env
from mri_rl.evaluation.volume_groups import kind_of_each_slice
from mri_rl.policies import cached_lbcs_order
from mri_rl.policies.lbcs import LBCSEpisodes, greedy_order
from mri_rl.provenance import data_fingerprint, make_record
from mri_rl.task import AcquisitionTask

#: The folder of an evaluation's ``lbcs_kind`` orders, one JSON cache per kind.
KIND_ORDERS = "lbcs_kind_orders"


def lbcs_train_folder(setup: EvaluationSetup) -> Path:
    """Where LBCS learns its order: ``lbcs_train_data``'s train split, or the root's."""
    if setup.lbcs_train_data is not None:
        return resolve_split_folder(setup.lbcs_train_data, setup.task.challenge, "train")
    candidate = Path(setup.data) / f"{setup.task.challenge}_train"
    if not candidate.is_dir():
        raise ValueError(
            f"the LBCS order (of lbcs, lbcs_kind and oracle_rollout) is learned on training slices: {candidate} does "
            "not exist; pass --lbcs-train-data"
        )
    return candidate


def training_source(folder: Path, task: AcquisitionTask) -> SliceSource:
    """The training slices of ``folder`` that LBCS learns on: those of ``task``'s k-space shape.

    Raises:
        ValueError: none has it, naming the folder, the shape and the shapes found.
    """
    try:
        return SliceSource(folder, task.challenge, kspace_shape=task.kspace_shape)
    except ValueError as error:
        raise ValueError(
            f"LBCS learns its order on training slices of the evaluated k-space shape, so that its columns mean the "
            f"same frequencies: {error}; pass --lbcs-train-data with slices of that shape"
        ) from None


class LBCSScorer:
    """The LBCS training episodes of one worker, scoring its share of the columns
    (:class:`~mri_rl.policies.lbcs.LBCSEpisodes` in an env of the setup's task)."""

    def __init__(self, setup: EvaluationSetup, folder: Path, indices: list[int], columns: list[int]) -> None:
        self.episodes = LBCSEpisodes(make_batched_env(setup, folder, setup.lbcs_slices), indices, columns)

    def mean_gains(self, order: list[int]) -> np.ndarray:
        return self.episodes.mean_gains(order)

    def acquire(self, column: int) -> None:
        self.episodes.acquire(column)


def lbcs_order(
    setup: EvaluationSetup,
    task: AcquisitionTask,
    folder: Path,
    cache_file: Path,
    progress: bool,
    workers: Workers | None = None,
    among: Sequence[int] | None = None,
    settings: dict[str, Any] | None = None,
) -> list[int]:
    """The LBCS order learned on up to ``setup.lbcs_slices`` training slices of ``folder``, spread
    evenly over ``among`` (slice indices; default: all), cached in ``cache_file``; with several
    ``workers``, each scores a contiguous share of the columns at every step. ``settings`` join the
    cache's record (e.g. the kind of volume). ``task`` is the evaluated env's, bound to its k-space
    shape: the order is learned on the training slices of that shape only, so that its columns mean
    the same frequencies where it is rolled (fastMRI knee mixes 368 and 372 columns).

    Raises:
        ValueError: no training slice of ``folder`` has the task's k-space shape.
        RecordMismatchError: the cache was learned under another task, data or slices.
    """
    workers = workers or Workers()
    setup = dataclasses.replace(setup, task=task)  # the scorers' envs keep the evaluated geometry
    source = training_source(folder, task)  # headers only: the slices and the width
    candidates = np.arange(len(source)) if among is None else np.asarray(among, dtype=np.int64)
    width, count = source.width, len(candidates)
    picks = np.unique(np.linspace(0, count - 1, min(setup.lbcs_slices, count)).round().astype(int))
    indices = candidates[picks].tolist()
    record = make_record(task, {"lbcs_train": data_fingerprint(folder)}, {"lbcs_slices": indices, **(settings or {})})

    def learn() -> list[int]:
        shares = [part.tolist() for part in np.array_split(np.arange(width), min(workers.count, width))]
        with ActorGroup(LBCSScorer, [(setup, folder, indices, share) for share in shares], workers) as scorers:
            return greedy_order(
                lambda order: np.concatenate(scorers.call("mean_gains", order)),
                lambda column: scorers.call("acquire", column),
                width if task.budget is None else task.budget,
                progress,
            )

    return cached_lbcs_order(cache_file, record, learn, FRESH_START)


class KindOrders(NamedTuple):
    """``lbcs_kind``'s orders (kind -> columns) and the kind of each evaluated slice, by slice index
    (:class:`~mri_rl.policies.baselines.LBCSByKindPolicy`'s arguments)."""

    orders: dict[str, tuple[int, ...]]
    slice_kinds: tuple[str, ...]


def kind_cache_file(out_dir: Path, attribute: str, kind: str) -> Path:
    """``OUT/lbcs_kind_orders/ATTRIBUTE=KIND.json``, characters other than letters, digits, ``_``, ``-``,
    ``.`` and ``=`` replaced by ``_``."""
    return out_dir / KIND_ORDERS / (re.sub(r"[^A-Za-z0-9_.=-]", "_", f"{attribute}={kind}") + ".json")


def kind_attribute(lbcs_by: str | None) -> str:
    """The file attribute ``lbcs_kind`` reads the kinds of volume from (an evaluation's ``lbcs_by``).

    Raises:
        ValueError: it is unset.
    """
    if lbcs_by is None:
        raise ValueError(
            "the lbcs_kind policy needs lbcs_by (--lbcs-by ATTRIBUTE): the file attribute whose kinds of volume get "
            "an order each, e.g. acquisition (fastMRI knee) or orientation (mri-rl data anatomy)"
        )
    return lbcs_by


def lbcs_kind_orders(
    setup: EvaluationSetup,
    task: AcquisitionTask,
    evaluated: SliceSource,
    out_dir: Path,
    progress: bool,
    workers: Workers | None = None,
) -> KindOrders:
    """One LBCS order per kind of volume among the ``evaluated`` slices (kinds: ``setup.lbcs_by``),
    each learned by :func:`lbcs_order` on the training slices of that kind and cached in
    :func:`kind_cache_file`.

    Raises:
        ValueError: ``setup.lbcs_by`` unset; a file lacks the attribute; an evaluated kind has no
            training volume; two kinds whose cache names collide.
        RecordMismatchError: a cache learned under another task, data, slices or kind.
    """
    attribute = kind_attribute(setup.lbcs_by)
    folder = lbcs_train_folder(setup)
    train_kinds = kind_of_each_slice(training_source(folder, task), attribute)
    slice_kinds = tuple(kind_of_each_slice(evaluated, attribute))
    kinds = sorted(set(slice_kinds))
    missing = [kind for kind in kinds if kind not in train_kinds]
    if missing:
        raise ValueError(
            f"lbcs_kind: no training volume in {folder} has {attribute} = {missing}, the kind of some evaluated "
            f"volumes (the training volumes' kinds: {sorted(set(train_kinds))})"
        )
    caches = {kind: kind_cache_file(out_dir, attribute, kind) for kind in kinds}
    if len(set(caches.values())) != len(kinds):
        raise ValueError(f"lbcs_kind: the kinds {kinds} of {attribute} do not make distinct file names")
    orders = {}
    for kind in kinds:
        among = [index for index, other in enumerate(train_kinds) if other == kind]
        settings = {"lbcs_by": attribute, "kind": kind}
        orders[kind] = tuple(lbcs_order(setup, task, folder, caches[kind], progress, workers, among, settings))
    return KindOrders(orders, slice_kinds)
