"""Evaluation split into shards: (policy, seed, slice range) tasks that workers roll independently.

A shard covers whole batches of slices, so each of its batches holds the same slices (and
the same padding) as in a single-process run: the batched reconstructor sees the same
inputs and the rows are the same numbers. Each shard stores its rows in ``partial/`` with
its record (an interrupted run keeps its finished shards); when every shard of a
(policy, seed) rollout is done, their files are joined, in slice order, into the one file
a single-process run writes, ``partial/{policy}_seed{seed}.csv``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from mri_rl.files import atomic_write_text
from mri_rl.provenance import sidecar_path


@dataclass(frozen=True)
class Shard:
    """The slices ``[start, stop)`` of the split, rolled with one policy and seed."""

    policy: str
    seed: int
    start: int
    stop: int

    def path(self, partial: Path, num_slices: int) -> Path:
        """Its rows' CSV in ``partial``; a shard of all the slices is the rollout's own file."""
        stem = f"{self.policy}_seed{self.seed}"
        if self.start == 0 and self.stop == num_slices:
            return partial / f"{stem}.csv"
        return partial / f"{stem}.slices{self.start}-{self.stop}.csv"


def plan_shards(policy: str, seed: int, num_slices: int, batch_size: int, parts: int) -> list[Shard]:
    """At most ``parts`` shards of whole batches (``batch_size`` slices) covering ``num_slices`` slices,
    as even as whole batches allow (fewer when there are fewer batches)."""
    batches = math.ceil(num_slices / batch_size)
    parts = max(min(parts, batches), 1)
    bounds = [min(round(i * batches / parts) * batch_size, num_slices) for i in range(parts + 1)]
    return [Shard(policy, seed, start, stop) for start, stop in zip(bounds, bounds[1:])]


def join_shards(shards: list[Shard], partial: Path, num_slices: int, record_text: str) -> Path:
    """Join the shards' CSVs (one header) into the rollout's file with ``record_text`` as its record,
    then delete the shard files. Nothing to do for a single shard of all the slices.

    Returns:
        The rollout's file.
    """
    whole = Shard(shards[0].policy, shards[0].seed, 0, num_slices).path(partial, num_slices)
    if len(shards) == 1 and shards[0].path(partial, num_slices) == whole:
        return whole
    parts = [shard.path(partial, num_slices).read_text() for shard in shards]
    header, _, _ = parts[0].partition("\n")
    if any(not text.startswith(header + "\n") for text in parts):
        raise ValueError(f"the shards of {whole} have different columns; delete {partial} and evaluate again")
    sidecar_path(whole).unlink(missing_ok=True)
    atomic_write_text(whole, parts[0] + "".join(text[len(header) + 1 :] for text in parts[1:]))
    atomic_write_text(sidecar_path(whole), record_text)
    for shard in shards:
        sidecar_path(shard.path(partial, num_slices)).unlink(missing_ok=True)
        shard.path(partial, num_slices).unlink()
    return whole


def stale_shard_files(partial: Path, policy: str, seed: int, keep: set[Path]) -> list[Path]:
    """Shard files of a (policy, seed) rollout other than ``keep`` (left by a run with other
    ``--workers``): their slice ranges no longer match, so they are not reused."""
    return [
        path
        for path in partial.glob(f"{policy}_seed{seed}.slices*-*.csv*")
        if path not in keep and path.with_name(path.name.removesuffix(".record.json")) not in keep
    ]


__all__ = ["Shard", "join_shards", "plan_shards", "stale_shard_files"]
