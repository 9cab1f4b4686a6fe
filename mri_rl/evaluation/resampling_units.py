"""Which images of a split are independent: the units that the room shares' bootstrap intervals
resample (:class:`~mri_rl.evaluation.report.ResamplingUnits`), read from the files' attributes.

A bootstrap interval is only as wide as the units it resamples are independent (the cluster
bootstrap; Davison & Hinkley, *Bootstrap Methods and their Application*, 1997, §3.8):

- volumes of ``mri-rl data anatomy`` are all cut from one template brain, each under a small random
  affine, and each records which template slice each of its slices reads (``template_slices``, with
  its ``orientation``). Twenty-four test volumes of 8 slices may read fewer than thirty distinct
  template slices, so volumes are not independent. Neither are neighbouring template slices (1 mm
  apart, nearly the same image): the units are runs of the slices read, per orientation, each slice
  at most :data:`ADJACENT_PLANES` from its run's first (:func:`plane_runs`; an interleaved layout's
  block of 3 is one run);
- volumes that say their subject (``patient_id``, as fastMRI's files and ``mri-rl data import``'s
  do), where some subject has more than one volume: the subjects;
- otherwise each volume (file) is one unit.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mri_rl.data.fastmri_files import inspect_volume
from mri_rl.evaluation.report import VOLUMES, ResamplingUnits

#: Template slices (1 mm apart) at most this far from their run's first are one unit: their images are
#: nearly the same (neighbours correlated at 0.985 on the MNI152 template, 3 apart at 0.94).
ADJACENT_PLANES = 2
TEMPLATE_SLICES = ResamplingUnits(
    "runs of neighbouring template slices",
    reason=(
        "the volumes are slices of one template brain, each under a small random affine: slices that read one "
        f"template slice, or ones at most {ADJACENT_PLANES} mm apart, share their anatomy whichever volume they are "
        "in, so neither volumes nor single template slices are independent"
    ),
)
SUBJECTS = ResamplingUnits("subjects", reason="the volumes of one subject are not independent")


def file_attributes(folder: Path, names: Iterable[str], challenge: str) -> dict[str, dict[str, Any]]:
    """File name -> its attributes (as fastmri reads them), for the ``names`` in ``folder``.

    Raises:
        FileNotFoundError: a file is not in ``folder``.
        FastMRIDataError: a file that is not a readable fastMRI volume.
    """
    attributes = {}
    for name in sorted(set(names)):
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the evaluation rolled {name}, which is not in {folder}")
        attributes[name] = inspect_volume(path, challenge, require_target=False).fastmri_metadata
    return attributes


def template_slice_units(
    folder: Path, images: list[tuple[str, int]], attributes: dict[str, dict[str, Any]]
) -> ResamplingUnits:
    """:data:`TEMPLATE_SLICES` for ``images`` ``(file, slice)``: each image's unit is the run
    (:func:`plane_runs`) of its file's ``(orientation, template slice)``.

    Raises:
        ValueError: a slice beyond its file's ``template_slices``, naming the file.
    """
    planes = {}
    for name, index in images:
        recorded = attributes[name]["template_slices"]
        if not 0 <= index < len(recorded):
            raise ValueError(
                f"{folder / name}: slice {index} was rolled, but template_slices records {len(recorded)} slices"
            )
        planes[(name, index)] = (str(attributes[name].get("orientation", "")), int(recorded[index]))
    runs = plane_runs(set(planes.values()))
    return TEMPLATE_SLICES._replace(of={image: runs[plane] for image, plane in planes.items()})


def plane_runs(planes: set[tuple[str, int]], gap: int = ADJACENT_PLANES) -> dict[tuple[str, int], tuple[str, int]]:
    """Each ``(orientation, template slice)`` of ``planes`` -> its run's ``(orientation, first slice)``:
    per orientation, the slices in order, a new run starting at one more than ``gap`` from the run's
    first, so that a run spans at most ``gap + 1`` slices (slices read densely through a slab are
    several runs, not one chain)."""
    runs: dict[tuple[str, int], tuple[str, int]] = {}
    start = ("", 0)
    for orientation, plane in sorted(planes):
        if not runs or start[0] != orientation or plane - start[1] > gap:
            start = (orientation, plane)
        runs[(orientation, plane)] = start
    return runs


def resampling_units(folder: str | Path, images: Iterable[tuple[str, int]], challenge: str) -> ResamplingUnits:
    """The independent units of the rolled ``images`` ``(file name, slice)`` of ``folder``: runs of
    neighbouring template slices, subjects or volumes, as the module docstring says.

    Raises:
        FileNotFoundError: a file is not in ``folder``.
        ValueError: a file that is not a readable fastMRI volume, or whose ``template_slices`` do not
            cover its rolled slices.
    """
    folder, images = Path(folder), sorted(set(images))
    attributes = file_attributes(folder, (name for name, _ in images), challenge)
    if attributes and all("template_slices" in attrs for attrs in attributes.values()):
        return template_slice_units(folder, images, attributes)
    subjects = {name: attrs.get("patient_id") for name, attrs in attributes.items()}
    if None not in subjects.values() and len(set(subjects.values())) < len(subjects):
        return SUBJECTS._replace(of={(name, index): str(subjects[name]) for name, index in images})
    return VOLUMES
