"""Magnitude images (NIfTI, DICOM series, stacks of 2-D images) imported as fastMRI-format volumes.

Most MRI data sets (IXI, BraTS, OASIS, HCP, clinical DICOM) hold magnitude images, not raw
k-space. Like Bakker et al. (NeurIPS 2020), k-space is simulated from them, here by the path the
synthetic phantoms use too (:mod:`mri_rl.data.simulated_kspace`): each slice is resized into the
N x N target (aspect kept, zero-padded) on the 2x-oversampled encoded grid, multiplied by a smooth
random phase (and coil maps for multicoil), Fourier transformed, given complex Gaussian noise and
zero-filled phase-encode edges; the target is fastMRI's (Zbontar et al., 2018): the centre crop of
|IFFT| (RSS for multicoil) of the stored k-space.

Sources are read by :mod:`mri_rl.data.image_sources` (NIfTI, DICOM series, 2-D image stacks) as RAS+
volumes, so the orientations (:data:`ORIENTATIONS`) mean the same anatomy for every source.

Splits never share a subject: sources are grouped by subject (a ``subject_pattern`` regex on the
path, else the DICOM PatientID, else each source is its own subject) and whole subjects are dealt
to the splits. With a single subject the split is by slab instead: along each orientation's
slicing axis the usable slices are cut into consecutive slabs (train, val, test in that order)
with ``guard_slices`` slices left out between neighbours. Slabs of *different* orientations cross
each other (an axial val slab and a coronal train slab share voxels), and a brain is nearly
left-right symmetric, so sagittal slabs on both sides of the midline are near mirror images:
slab splits hold out slices of the same subject, not a new subject. The settings file
``OUT_DIR/{challenge}_import_settings.json`` records every setting and where each file came from.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mri_rl.checks import check_int, check_number
from mri_rl.data.fastmri_files import CHALLENGES, SPLITS, write_volume
from mri_rl.data.image_sources import (
    NIFTI_SUFFIXES,
    ImageImportError,
    SourceVolume,
    discover_sources,
    load_source,
    source_suffix,
    subject_of,
)
from mri_rl.data.simulated_kspace import SimulationSpec, fit_to_grid, read_settings_record, simulate_kspace
from mri_rl.files import atomic_write_text

SETTINGS_FILE = "{challenge}_import_settings.json"
#: Orientation -> (slicing axis, row axis, column axis) of a RAS+ volume; rows run against their
#: axis (anterior or superior at the top), columns along theirs.
ORIENTATIONS = {"axial": (2, 1, 0), "coronal": (1, 2, 0), "sagittal": (0, 2, 1)}
#: A voxel is foreground when above this fraction of its volume's maximum.
FOREGROUND_LEVEL = 0.05
#: Each source volume is scaled so that its maximum is this (fastMRI knee images are of order 1e-4).
IMAGE_SCALE = 1e-4
DEFAULT_SPLIT = {"train": 0.8, "val": 0.1, "test": 0.1}


# ----------------------------------------------------------------------------- settings
def parse_split(text: str) -> dict[str, float]:
    """``"train=0.8,val=0.1,test=0.1"`` -> fractions per split (normalised to sum 1; missing splits get 0).

    Raises:
        ValueError: an unknown split, a repeated one, a value that is not a finite number >= 0, or all zero.
    """
    fractions: dict[str, float] = {}
    for part in text.split(","):
        name, equals, value = part.partition("=")
        name = name.strip()
        if not equals or name not in SPLITS:
            raise ValueError(f"split {text!r}: expected SPLIT=FRACTION pairs such as train=0.8,val=0.1,test=0.1")
        if name in fractions:
            raise ValueError(f"split {text!r}: {name} is given twice")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        fractions[name] = check_number(f"split fraction of {name}", number, 0)
    return normalised_split(fractions)


def normalised_split(fractions: Mapping[str, float]) -> dict[str, float]:
    """Split fractions over all of :data:`SPLITS` (missing ones 0), summing to 1."""
    unknown = set(fractions) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; expected some of {SPLITS}")
    checked = {split: check_number(f"split fraction of {split}", fractions.get(split, 0.0), 0) for split in SPLITS}
    total = sum(checked.values())
    if not total > 0:
        raise ValueError(f"split fractions {dict(fractions)} are all zero; give at least one positive fraction")
    return {split: value / total for split, value in checked.items()}


@dataclass(frozen=True)
class ImportSettings:
    """How sources are sliced and split (the acquisition is a :class:`SimulationSpec`).

    Attributes:
        orientations: slice orientations to write, each its own file (see :data:`ORIENTATIONS`).
        min_foreground: skip slices where fewer than this fraction of voxels are above
            :data:`FOREGROUND_LEVEL` of the volume maximum.
        split: fractions of subjects (or, for a single subject, of each slicing axis) per split.
        subject_pattern: regex searched in each source's path; its first group (or whole match)
            is the subject id. Default: the DICOM PatientID, else each source is its own subject.
        guard_slices: slices left out between neighbouring slabs of a single-subject split.
        seed: seed of the split assignment and of every file's phase, coil maps and noise.
    """

    orientations: tuple[str, ...] = ("axial",)
    min_foreground: float = 0.05
    split: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SPLIT))
    subject_pattern: str | None = None
    guard_slices: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        given = (self.orientations,) if isinstance(self.orientations, str) else self.orientations
        orientations = tuple(dict.fromkeys(given))  # unique, in order
        unknown = [o for o in orientations if o not in ORIENTATIONS]
        if not orientations or unknown:
            raise ValueError(f"orientations must be some of {tuple(ORIENTATIONS)}, got {self.orientations!r}")
        if self.subject_pattern is not None:
            try:
                re.compile(self.subject_pattern)
            except re.error as error:
                raise ValueError(
                    f"subject_pattern {self.subject_pattern!r} is not a regular expression: {error}"
                ) from None
        minimum = check_number("min_foreground", self.min_foreground, 0)
        if minimum > 1:
            raise ValueError(f"min_foreground: expected a fraction in [0, 1], got {minimum}")
        object.__setattr__(self, "orientations", orientations)
        object.__setattr__(self, "min_foreground", minimum)
        object.__setattr__(self, "split", normalised_split(self.split))
        object.__setattr__(self, "guard_slices", check_int("guard_slices", self.guard_slices, 0))
        object.__setattr__(self, "seed", check_int("seed", self.seed, 0))


# ----------------------------------------------------------------------------- slices and splits
def oriented_slices(
    data: np.ndarray, zooms: tuple[float, float, float], orientation: str
) -> tuple[np.ndarray, tuple[float, float]]:
    """The slices of a RAS+ volume in one orientation (:data:`ORIENTATIONS`).

    Returns:
        (a view (slices, rows, cols) of ``data``, the (row, column) pixel spacing).
    """
    slicing, row, column = ORIENTATIONS[orientation]
    slices = np.flip(np.transpose(data, (slicing, row, column)), axis=1)
    return slices, (zooms[row], zooms[column])


def foreground_fractions(slices: np.ndarray, volume_max: float) -> np.ndarray:
    """Per slice of (slices, rows, cols): the fraction of pixels above :data:`FOREGROUND_LEVEL` x ``volume_max``."""
    return (slices > FOREGROUND_LEVEL * volume_max).mean(axis=(1, 2))


def evenly_spaced(candidates: np.ndarray, count: int | None, offset: float = 0.5) -> np.ndarray:
    """At most ``count`` of ``candidates``, evenly spaced through them; all for None.

    ``candidates`` are cut into ``count`` equal intervals and one is taken from each, at ``offset`` in
    [0, 1) of its interval: 0.5 its middle (the middle candidate for ``count`` 1), a random offset a
    stratified sample (each interval, a different candidate for another offset).
    """
    if not 0 <= offset < 1:
        raise ValueError(f"offset must be in [0, 1), got {offset}")
    if count is None or count >= len(candidates):
        return candidates
    return candidates[np.floor((np.arange(count) + offset) * len(candidates) / count).astype(int)]


def split_counts(count: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """How many of ``count`` items (subjects, slab slices) go to each split: by the largest remainders of
    ``count`` times the (normalised) fractions, then each split with a positive fraction gets at least one
    while another split has more than one."""
    total = sum(fractions.get(split, 0.0) for split in SPLITS)
    quotas = {split: count * fractions.get(split, 0.0) / total for split in SPLITS}
    counts = {split: int(quota) for split, quota in quotas.items()}
    by_remainder = sorted(SPLITS, key=lambda s: (-(quotas[s] - counts[s]), SPLITS.index(s)))
    for split in by_remainder[: count - sum(counts.values())]:
        counts[split] += 1
    for split in SPLITS:
        donor = max(SPLITS, key=lambda s: counts[s])
        if quotas[split] > 0 and counts[split] == 0 and counts[donor] > 1:
            counts[donor] -= 1
            counts[split] += 1
    return counts


def assign_subjects(subjects: Sequence[str], fractions: Mapping[str, float], seed: int) -> dict[str, str]:
    """Subject -> split: the distinct subjects, sorted, shuffled by ``seed``, dealt by :func:`split_counts`."""
    distinct = sorted(set(subjects))
    order = np.random.default_rng([seed, len(distinct)]).permutation(len(distinct))
    counts = split_counts(len(distinct), fractions)
    splits = [split for split in SPLITS for _ in range(counts[split])]
    return {distinct[i]: split for i, split in zip(order, splits)}


def slab_ranges(first: int, stop: int, fractions: Mapping[str, float], guard: int) -> dict[str, tuple[int, int]]:
    """Consecutive slabs ``[lo, hi)`` of the slice range ``[first, stop)``, one per split with a positive
    fraction, in the order train, val, test, sized by :func:`split_counts` of the slices left after the
    ``guard`` slices between neighbours.

    Raises:
        ValueError: the range is too short for a slice per slab and the guard gaps.
    """
    active = [split for split in SPLITS if fractions.get(split, 0) > 0]
    usable = stop - first - guard * (len(active) - 1)
    if usable < len(active):
        raise ValueError(
            f"{stop - first} usable slice(s) cannot be cut into {len(active)} slabs with {guard}-slice guard gaps"
        )
    counts = split_counts(usable, fractions)
    ranges, lo = {}, first
    for split in active:
        ranges[split] = (lo, lo + counts[split])
        lo += counts[split] + guard
    return ranges


def slice_depths(indices: np.ndarray, count: int) -> np.ndarray:
    """Slice positions in [-1, 1] of ``indices`` among ``count`` slices (the smooth phase's depth term)."""
    return 2 * (np.asarray(indices, dtype=np.float64) + 0.5) / count - 1


# ----------------------------------------------------------------------------- writing
def import_images(
    sources: Sequence[str | Path],
    out_dir: str | Path,
    spec: SimulationSpec,
    settings: ImportSettings | None = None,
    progress: bool = True,
) -> list[Path]:
    """Import magnitude images as fastMRI-format volumes in ``out_dir/{challenge}_{split}/``.

    One file per source, orientation (and, for a single subject, slab), named
    ``{source number:03d}_{source name}_{orientation}[_{split}].h5``; ``spec.num_slices`` is the most
    slices a file takes, evenly spaced through its usable ones (None: all). The files are written
    into a temporary folder of ``out_dir`` and moved into place only when every source succeeded.

    Returns:
        The written files, in order. ``out_dir/{challenge}_import_settings.json`` records the spec,
        the settings and, per source, its subject, split and files (with slab ranges and slices).

    Raises:
        ImageImportError: a bad source, naming it. ValueError: a split folder of ``out_dir``
            already holds .h5 files (an earlier import's files could land in another split now).
    """
    settings = ImportSettings() if settings is None else settings
    paths = discover_sources(sources)
    out_dir = Path(out_dir)
    _check_no_volumes(out_dir, spec.challenge)
    subjects = [subject_of(path, settings.subject_pattern) for path in paths]
    by_subject = assign_subjects(subjects, settings.split, settings.seed) if len(set(subjects)) > 1 else None
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=out_dir))
    try:
        records = []
        for index, path in enumerate(tqdm(paths, desc="importing", unit="source", disable=not progress)):
            split = None if by_subject is None else by_subject[subjects[index]]
            records.append(_import_source(index, load_source(path), subjects[index], split, spec, settings, staging))
        written = [_move(staging, out_dir, record["file"]) for source in records for record in source["files"]]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    record = _settings_record(spec, settings, "subject" if by_subject is not None else "slab", records)
    atomic_write_text(out_dir / SETTINGS_FILE.format(challenge=spec.challenge), json.dumps(record, indent=1) + "\n")
    return written


def _check_no_volumes(out_dir: Path, challenge: str) -> None:
    for split in SPLITS:
        folder = out_dir / f"{challenge}_{split}"
        if folder.is_dir() and any(folder.glob("*.h5")):
            raise ValueError(
                f"{folder} already holds .h5 files; import into a folder without them (files of an earlier "
                "import could otherwise end up in another split than their subject's now)"
            )


def _move(staging: Path, out_dir: Path, relative: str) -> Path:
    target = out_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    (staging / relative).replace(target)
    return target


def _import_source(
    index: int,
    source: SourceVolume,
    subject: str,
    split: str | None,
    spec: SimulationSpec,
    settings: ImportSettings,
    staging: Path,
) -> dict[str, Any]:
    """Write one source's files into ``staging``: per orientation one file (subject split) or one per slab."""
    volume_max = float(source.data.max())
    files = []
    for orientation in settings.orientations:
        slices, spacing = oriented_slices(source.data, source.zooms, orientation)
        usable = np.flatnonzero(foreground_fractions(slices, volume_max) >= settings.min_foreground)
        if usable.size == 0:
            raise ImageImportError(
                source.path,
                f"no {orientation} slice has {settings.min_foreground:.0%} of its voxels above "
                f"{FOREGROUND_LEVEL:.0%} of the volume maximum (lower --min-foreground?)",
            )
        parts = _parts(source.path, usable, orientation, split, settings)
        for part_split, (candidates, slab) in parts.items():
            chosen = evenly_spaced(candidates, spec.num_slices)
            name = _file_name(index, source.path, orientation, part_split if split is None else None)
            relative = f"{spec.challenge}_{part_split}/{name}"
            key = [settings.seed, CHALLENGES.index(spec.challenge), index, list(ORIENTATIONS).index(orientation)]
            rng = np.random.default_rng(key + [SPLITS.index(part_split)])
            magnitudes = fit_to_grid(slices[chosen] * (IMAGE_SCALE / volume_max), spacing, spec)
            kspace, target = simulate_kspace(magnitudes, slice_depths(chosen, len(slices)), spec, rng)
            attrs = {
                "acquisition": f"IMPORTED_{source.kind.upper()}",
                "patient_id": subject,
                "source": source.path.as_posix(),
                "orientation": orientation,
                "simulated_kspace": True,
            }
            write_volume(staging / relative, kspace, target, spec.challenge, spec.geometry, attrs)
            files.append(
                {
                    "file": relative,
                    "split": part_split,
                    "orientation": orientation,
                    "slab": slab,
                    "slices": [int(i) for i in chosen],
                }
            )
    return {"path": source.path.as_posix(), "kind": source.kind, "subject": subject, "split": split, "files": files}


def _parts(
    path: Path, usable: np.ndarray, orientation: str, split: str | None, settings: ImportSettings
) -> dict[str, tuple[np.ndarray, list[int] | None]]:
    """Split -> (its candidate slices, its slab ``[lo, hi)`` or None): the whole volume for a subject split,
    else slabs of the usable range along the slicing axis."""
    if split is not None:
        return {split: (usable, None)}
    try:
        slabs = slab_ranges(int(usable[0]), int(usable[-1]) + 1, settings.split, settings.guard_slices)
    except ValueError as error:
        raise ImageImportError(path, f"single-subject slab split of the {orientation} slices: {error}") from None
    parts: dict[str, tuple[np.ndarray, list[int] | None]] = {}
    for name, (lo, hi) in slabs.items():
        candidates = usable[(usable >= lo) & (usable < hi)]
        if candidates.size == 0:
            raise ImageImportError(
                path, f"the {name} slab [{lo}, {hi}) of the {orientation} slices has no usable slice"
            )
        parts[name] = (candidates, [lo, hi])
    return parts


def _file_name(index: int, path: Path, orientation: str, split: str | None) -> str:
    stem = path.name[: -len(source_suffix(path))] if source_suffix(path) in NIFTI_SUFFIXES else path.name
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "source"
    return f"{index:03d}_{stem}_{orientation}" + ("" if split is None else f"_{split}") + ".h5"


def _settings_record(
    spec: SimulationSpec, settings: ImportSettings, split_by: str, sources: list[dict[str, Any]]
) -> dict[str, Any]:
    record: dict[str, Any] = {
        **asdict(spec),
        **{key: (list(value) if isinstance(value, tuple) else value) for key, value in asdict(settings).items()},
        "image_scale": IMAGE_SCALE,
        "foreground_level": FOREGROUND_LEVEL,
        "split_by": split_by,
    }
    if split_by == "slab":
        record["note"] = (
            "one subject: each orientation's slicing axis is cut into slabs with guard gaps; slabs of different "
            "orientations cross, so the splits hold different slices of the same subject, not different subjects"
        )
    record["sources"] = sources
    return record


def read_import_settings(root: str | Path, challenge: str) -> dict | None:
    """What ``root``'s ``challenge`` volumes were last imported with (see :func:`import_images`), or None."""
    return read_settings_record(root, SETTINGS_FILE, challenge)
