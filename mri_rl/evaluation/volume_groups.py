"""Shares of the LBCS-to-oracle room per kind of volume, the kinds read from a file attribute.

A split's share pools its volumes. When the volumes differ in kind, a policy may gain on one kind
and lose on another, and the pooled share hides it. fastMRI's knee files say their contrast in the
``acquisition`` attribute (``CORPD_FBK``, ``CORPDFS_FBK``); the MNI152 volumes of ``mri-rl data
anatomy`` say their ``orientation`` (axial, coronal, sagittal).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mri_rl.evaluation.report import VOLUMES, ResamplingUnits, room_share_table
from mri_rl.evaluation.resampling_units import file_attributes


def volume_kinds(folder: str | Path, files: Iterable[str], attribute: str, challenge: str) -> dict[str, str]:
    """File name -> the text of its ``attribute``, for the ``files`` (names, as in ``metrics.csv``) in ``folder``.

    Raises:
        FileNotFoundError: a file is not in ``folder``.
        ValueError: a file lacks the attribute (naming the file and the text attributes it has), or is
            not a readable fastMRI volume (:class:`~mri_rl.data.fastmri_files.FastMRIDataError`).
    """
    folder = Path(folder)
    kinds = {}
    for name, metadata in file_attributes(folder, files, challenge).items():
        if attribute not in metadata:
            have = ", ".join(sorted(key for key, value in metadata.items() if isinstance(value, str)))
            raise ValueError(f"{folder / name} has no attribute {attribute!r}; its text attributes: {have or 'none'}")
        kinds[name] = str(metadata[attribute])
    return kinds


def kind_of_each_slice(source: Any, attribute: str) -> list[str]:
    """The kind of each slice of ``source`` (a :class:`~mri_rl.envs.slice_source.SliceSource`), by
    slice index, read from its file's ``attribute``.

    Raises:
        ValueError: a file lacks the attribute (see :func:`volume_kinds`).
    """
    names = [source.describe(index)[0] for index in range(len(source))]
    kinds = volume_kinds(source.folder, names, attribute, source.challenge)
    return [kinds[name] for name in names]


def slices_of_each_kind(env: Any, attribute: str | None) -> dict[str, list[int]]:
    """Kind of volume -> the indices of its slices in the batched MRI ``env`` (its ``num_slices`` and
    ``episodes.source``), kinds in sorted order, read from the files' ``attribute`` (None: every slice,
    kind "all").

    Raises:
        ValueError: a file lacks the attribute (see :func:`volume_kinds`).
    """
    if attribute is None:
        return {"all": list(range(env.num_slices))}
    groups: dict[str, list[int]] = defaultdict(list)
    for index, kind in enumerate(kind_of_each_slice(env.episodes.source, attribute)):
        groups[kind].append(index)
    return dict(sorted(groups.items()))


def room_share_by_kind(
    rows: list[dict[str, Any]],
    kinds: dict[str, str],
    attribute: str,
    reference: str = "lbcs",
    oracle: str = "oracle",
    units: ResamplingUnits = VOLUMES,
) -> str:
    """Markdown: :func:`~mri_rl.evaluation.report.room_share_table` for all ``rows``, then for the rows
    of each kind of volume (``kinds``: file name -> kind, :func:`volume_kinds`), kinds in sorted order;
    the intervals resample ``units``.

    Raises:
        KeyError: a row's file has no kind.
    """
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[kinds[row["file"]]].append(row)
    sections = []
    for kind, group in [("all", rows), *sorted(groups.items())]:
        volumes = len({row["file"] for row in group})
        table = room_share_table(group, reference, oracle, units)
        table = table or f"(needs {reference} and {oracle} among the policies)\n"
        sections.append(f"## {attribute} = {kind} ({volumes} volume{'s' * (volumes != 1)})\n\n{table}")
    return "\n".join(sections)
