"""Magnitude images (NIfTI, DICOM series, stacks of 2-D images) imported as fastMRI-format volumes.

Most MRI data sets (IXI, BraTS, OASIS, HCP, clinical DICOM) hold magnitude images, not raw
k-space. Like Bakker et al. (NeurIPS 2020), k-space is simulated from them, here by the path the
synthetic phantoms use too (:mod:`mri_rl.data.simulated_kspace`): each slice is resized into the
N x N target (aspect kept, zero-padded) on the 2x-oversampled encoded grid, multiplied by a smooth
random phase (and coil maps for multicoil), Fourier transformed, given complex Gaussian noise and
zero-filled phase-encode edges; the target is fastMRI's (Zbontar et al., 2018): the centre crop of
|IFFT| (RSS for multicoil) of the stored k-space.

Sources:

- a NIfTI file (``.nii``, ``.nii.gz``, read by nibabel), or a folder of them (each a source);
- a folder of ``.dcm`` files of one DICOM series (pydicom), sorted along the slice normal by
  ImagePositionPatient, else by InstanceNumber;
- a folder of 2-D PNG/TIFF/JPEG slices (Pillow), in natural name order (``2`` before ``10``).

Every source becomes one 3-D array in RAS+ voxel order (nibabel's ``as_closest_canonical`` of
the affine: from the NIfTI header, from the DICOM geometry, or, for image stacks and DICOM without
geometry, the images taken as axial slices with the first image inferior, the top row anterior and
the first column the patient's left), so the orientations mean the same anatomy for every source
(:data:`ORIENTATIONS`): axial slices are planes of constant S shown with anterior at the top;
coronal ones planes of constant A, superior at the top; sagittal ones planes of constant R,
superior at the top, anterior on the right. Image columns are the phase-encode direction.

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
from mri_rl.data.simulated_kspace import SimulationSpec, fit_to_grid, simulate_kspace
from mri_rl.files import atomic_write_text

SETTINGS_FILE = "{challenge}_import_settings.json"
NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm",)
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
#: Orientation -> (slicing axis, row axis, column axis) of a RAS+ volume; rows run against their
#: axis (anterior or superior at the top), columns along theirs.
ORIENTATIONS = {"axial": (2, 1, 0), "coronal": (1, 2, 0), "sagittal": (0, 2, 1)}
#: A voxel is foreground when above this fraction of its volume's maximum.
FOREGROUND_LEVEL = 0.05
#: Each source volume is scaled so that its maximum is this (fastMRI knee images are of order 1e-4).
IMAGE_SCALE = 1e-4
DEFAULT_SPLIT = {"train": 0.8, "val": 0.1, "test": 0.1}


class ImageImportError(ValueError):
    """A source that cannot be imported, naming the file (or folder) and what was expected.

    Attributes:
        path: the offending file or folder.
        problem: what is wrong and what was expected.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[type[ImageImportError], tuple[Path, str]]:
        return type(self), (self.path, self.problem)


def _require(module: str) -> Any:
    """Import an optional dependency of the ``imaging`` extra, or an ImportError saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"importing images needs {module}: pip install mri_rl[imaging]") from None


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


# ----------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class SourceVolume:
    """One source as a 3-D magnitude volume.

    Attributes:
        path: the file or folder.
        kind: "nifti", "dicom" or "images".
        data: float32 (x, y, z) in RAS+ voxel order, finite, non-negative, with a positive maximum.
        zooms: voxel sizes (mm, or 1 where unknown) along x, y, z.
    """

    path: Path
    kind: str
    data: np.ndarray
    zooms: tuple[float, float, float]


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _kind_of_folder(folder: Path) -> tuple[str, list[Path]]:
    """("nifti" | "dicom" | "images", its files) of a folder holding one kind of source file."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    kinds = {
        "nifti": [p for p in files if _suffix(p) in NIFTI_SUFFIXES],
        "dicom": [p for p in files if _suffix(p) in DICOM_SUFFIXES],
        "images": [p for p in files if _suffix(p) in IMAGE_SUFFIXES],
    }
    found = [kind for kind, members in kinds.items() if members]
    if not found:
        raise ImageImportError(
            folder,
            "holds no .nii/.nii.gz, .dcm or PNG/TIFF/JPEG file; expected NIfTI volumes, one DICOM series "
            "or the 2-D slices of one volume",
        )
    if len(found) > 1:
        raise ImageImportError(folder, f"mixes {' and '.join(found)} files; expected one kind of source per folder")
    return found[0], kinds[found[0]]


def discover_sources(paths: Sequence[str | Path]) -> list[Path]:
    """The sources named by ``paths``: NIfTI files, DICOM-series folders and image-stack folders
    (a folder of NIfTI files gives each file), without repeats, sorted.

    Raises:
        ImageImportError: a missing path, an empty folder, a folder of mixed kinds, a single 2-D image.
    """
    sources: dict[Path, Path] = {}
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise ImageImportError(path, "does not exist")
        if path.is_dir():
            kind, files = _kind_of_folder(path)
            found = files if kind == "nifti" else [path]
        elif _suffix(path) in NIFTI_SUFFIXES:
            found = [path]
        elif _suffix(path) in IMAGE_SUFFIXES + DICOM_SUFFIXES:
            raise ImageImportError(
                path, "is a single 2-D image where a 3-D volume is needed; give the folder holding all its slices"
            )
        else:
            raise ImageImportError(
                path,
                "unknown kind of file; expected .nii/.nii.gz, a folder of one DICOM series (.dcm) or a folder "
                "of PNG/TIFF/JPEG slices",
            )
        for source in found:
            sources.setdefault(source.resolve(), source)
    if not sources:
        raise ValueError("no source given; expected NIfTI files or folders of DICOM or image slices")
    return sorted(sources.values(), key=lambda p: p.as_posix())


def load_source(path: str | Path) -> SourceVolume:
    """Read one source (see :func:`discover_sources`) into a checked RAS+ volume.

    Raises:
        ImageImportError: unreadable, not 3-D, NaN or Inf voxels, all zero; naming the file.
    """
    path = Path(path)
    if path.is_dir():
        kind, files = _kind_of_folder(path)
        if kind == "nifti":
            raise ImageImportError(path, "is a folder of NIfTI files; each file is a source of its own")
        source = _read_dicom_series(path, files) if kind == "dicom" else _read_image_stack(path, files)
    else:
        source = _read_nifti(path)
    return _checked(source)


def _checked(source: SourceVolume) -> SourceVolume:
    """The source with its volume checked: 3-D, finite, a positive maximum; negative voxels set to zero."""
    data = source.data
    if data.ndim != 3 or min(data.shape) < 2:
        raise ImageImportError(
            source.path,
            f"holds an image of shape {data.shape}, a 2-D image where a 3-D volume (several slices) is needed",
        )
    bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise ImageImportError(source.path, f"holds {bad} NaN or Inf voxel(s); expected finite magnitudes")
    if not data.max() > 0:
        raise ImageImportError(source.path, "is all zero (no positive voxel); expected a magnitude image")
    np.maximum(data, 0, out=data)  # interpolation undershoot of processed images: magnitudes are >= 0
    return source


def _canonical(stack_xyz: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A voxel array (x, y, z) with its voxel-to-RAS affine, reordered to RAS+: (float32 data, zooms)."""
    nib = _require("nibabel")
    image = nib.as_closest_canonical(nib.Nifti1Image(stack_xyz, affine))
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    return np.asarray(image.dataobj, dtype=np.float32), (zooms[0], zooms[1], zooms[2])


def stack_affine(row_spacing: float, column_spacing: float, slice_spacing: float) -> np.ndarray:
    """Voxel-to-RAS affine of a stack transposed to (column, row, image): images are axial slices,
    the first inferior, the top row anterior, the first column the patient's left."""
    return np.diag([column_spacing, -row_spacing, slice_spacing, 1.0])


def _read_nifti(path: Path) -> SourceVolume:
    """A NIfTI file as RAS+ float32; a 4-D file must hold a single volume."""
    nib = _require("nibabel")
    try:
        image = nib.load(path)
        shape = tuple(int(n) for n in image.shape)
        while len(shape) > 3 and shape[-1] == 1:
            shape = shape[:-1]
        if len(shape) > 3:
            raise ImageImportError(
                path, f"holds a {len(shape)}-D image of shape {shape}; expected one 3-D volume (split it first)"
            )
        if len(shape) < 3 or min(shape) < 2:
            raise ImageImportError(path, f"holds an image of shape {shape}, a 2-D image where a 3-D volume is needed")
        image = nib.as_closest_canonical(nib.squeeze_image(image))
        data = np.asarray(image.get_fdata(dtype=np.float32)).reshape(image.shape[:3])
    except ImageImportError:
        raise
    except Exception as error:  # nibabel's many errors of a damaged or foreign file
        raise ImageImportError(path, f"not a readable NIfTI file: {type(error).__name__}: {error}") from None
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    return SourceVolume(path, "nifti", data, (zooms[0], zooms[1], zooms[2]))


def _natural_key(path: Path) -> list[Any]:
    """Sort key putting ``slice2`` before ``slice10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _grey(image: Any) -> np.ndarray:
    """A Pillow image as a float32 (rows, cols) grey-level array (luminance of colour images)."""
    if image.mode in ("1", "L", "I", "F") or image.mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32)
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _read_image_stack(folder: Path, files: list[Path]) -> SourceVolume:
    """A folder of 2-D images, one slice each, in natural name order."""
    from PIL import Image, UnidentifiedImageError

    slices = []
    for path in sorted(files, key=_natural_key):
        try:
            with Image.open(path) as image:
                if getattr(image, "n_frames", 1) > 1:
                    raise ImageImportError(path, "holds several frames; expected one 2-D slice per file")
                slices.append(_grey(image))
        except (OSError, UnidentifiedImageError, ValueError) as error:
            if isinstance(error, ImageImportError):
                raise
            raise ImageImportError(path, f"not a readable image: {error}") from None
        if slices[-1].shape != slices[0].shape:
            raise ImageImportError(path, f"is {slices[-1].shape[::-1]} pixels, the first slice {slices[0].shape[::-1]}")
    if len(slices) < 2:
        raise ImageImportError(folder, "holds one 2-D image, a 2-D image where a 3-D volume (several slices) is needed")
    data, zooms = _canonical(np.stack(slices).transpose(2, 1, 0), stack_affine(1.0, 1.0, 1.0))
    return SourceVolume(folder, "images", data, zooms)


def _read_dicom_files(folder: Path, files: list[Path]) -> list[Any]:
    """The datasets of a folder's ``.dcm`` files, which must be one series of equal-sized 2-D images."""
    pydicom = _require("pydicom")
    datasets = []
    for path in files:
        try:
            datasets.append(pydicom.dcmread(path))
        except Exception as error:  # InvalidDicomError, a truncated file
            raise ImageImportError(path, f"not a readable DICOM file: {type(error).__name__}: {error}") from None
    series = sorted({str(ds.get("SeriesInstanceUID", "")) for ds in datasets})
    if len(series) > 1:
        raise ImageImportError(
            folder,
            f"mixes {len(series)} DICOM series (SeriesInstanceUID {', '.join(series)}); expected one series per folder",
        )
    for path, ds in zip(files, datasets):
        if "PixelData" not in ds:
            raise ImageImportError(path, "holds no pixel data; expected an image slice")
        if (ds.get("Rows"), ds.get("Columns")) != (datasets[0].get("Rows"), datasets[0].get("Columns")):
            raise ImageImportError(
                path,
                f"is {ds.get('Rows')} x {ds.get('Columns')}, the first slice of the series "
                f"{datasets[0].get('Rows')} x {datasets[0].get('Columns')}",
            )
    if len(datasets) < 2:
        raise ImageImportError(folder, "holds one DICOM slice, a 2-D image where a 3-D volume (a series) is needed")
    return datasets


def _dicom_pixels(path: Path, ds: Any) -> np.ndarray:
    """One slice's stored values through its rescale slope and intercept, float32 (rows, cols)."""
    try:
        pixels = np.asarray(ds.pixel_array, dtype=np.float32)
    except Exception as error:  # missing decoder, damaged pixel data
        raise ImageImportError(path, f"cannot decode the pixel data: {type(error).__name__}: {error}") from None
    if pixels.ndim != 2:
        raise ImageImportError(path, f"holds pixel data of shape {pixels.shape}; expected one 2-D slice per file")
    return pixels * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)


def _dicom_geometry(folder: Path, datasets: list[Any]) -> tuple[list[int], np.ndarray]:
    """Slice order and the voxel-to-RAS affine of (column, row, slice) voxels.

    Along the slice normal by ImagePositionPatient when every slice has it (and ImageOrientationPatient);
    else by InstanceNumber (else file order) with :func:`stack_affine`.
    """
    first = datasets[0]
    row_spacing, column_spacing = (float(s) for s in first.get("PixelSpacing", [1.0, 1.0]))
    if all("ImagePositionPatient" in ds and "ImageOrientationPatient" in ds for ds in datasets):
        cosines = np.asarray(first.ImageOrientationPatient, dtype=float)
        along_row, along_column = cosines[:3], cosines[3:]
        normal = np.cross(along_row, along_column)
        positions = np.array([np.asarray(ds.ImagePositionPatient, dtype=float) for ds in datasets])
        order = [int(i) for i in np.argsort(positions @ normal, kind="stable")]
        depth = positions[order] @ normal
        if np.any(np.diff(depth) < 1e-3):
            raise ImageImportError(
                folder, "holds several slices at one position (echoes or time points?); expected one volume"
            )
        step = (positions[order[-1]] - positions[order[0]]) / (len(order) - 1)
        lps = np.eye(4)
        lps[:3, 0], lps[:3, 1], lps[:3, 2] = along_row * column_spacing, along_column * row_spacing, step
        lps[:3, 3] = positions[order[0]]
        return order, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # DICOM's patient axes are LPS
    numbers = [ds.get("InstanceNumber") for ds in datasets]
    order = list(range(len(datasets)))
    if all(n is not None for n in numbers):
        order = sorted(order, key=lambda i: int(numbers[i]))
    thickness = float(first.get("SpacingBetweenSlices", first.get("SliceThickness", 1.0)) or 1.0)
    return order, stack_affine(row_spacing, column_spacing, thickness)


def _read_dicom_series(folder: Path, files: list[Path]) -> SourceVolume:
    """A folder of one DICOM series as a RAS+ volume."""
    datasets = _read_dicom_files(folder, files)
    order, affine = _dicom_geometry(folder, datasets)
    stack = np.stack([_dicom_pixels(files[i], datasets[i]) for i in order])
    data, zooms = _canonical(stack.transpose(2, 1, 0), affine)
    return SourceVolume(folder, "dicom", data, zooms)


def subject_of(path: Path, pattern: str | None) -> str:
    """The subject id of a source: ``pattern``'s first group (or match) in its path, else the DICOM
    PatientID, else the source itself (its path)."""
    if pattern is not None:
        match = re.search(pattern, path.as_posix())
        if match is None:
            raise ImageImportError(path, f"subject pattern {pattern!r} does not match its path")
        return match.group(1) if match.groups() else match.group(0)
    if path.is_dir() and _kind_of_folder(path)[0] == "dicom":
        pydicom = _require("pydicom")
        first = _kind_of_folder(path)[1][0]
        try:
            patient = str(pydicom.dcmread(first, stop_before_pixels=True).get("PatientID", "") or "").strip()
        except Exception as error:
            raise ImageImportError(first, f"not a readable DICOM file: {type(error).__name__}: {error}") from None
        if patient:
            return patient
    return path.as_posix()


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


def evenly_spaced(candidates: np.ndarray, count: int | None) -> np.ndarray:
    """At most ``count`` of ``candidates``, evenly spaced through them (the middle one for 1); all for None."""
    if count is None or count >= len(candidates):
        return candidates
    return candidates[np.floor((np.arange(count) + 0.5) * len(candidates) / count).astype(int)]


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
    stem = path.name[: -len(_suffix(path))] if _suffix(path) in NIFTI_SUFFIXES else path.name
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
    path = Path(root) / SETTINGS_FILE.format(challenge=challenge)
    return json.loads(path.read_text()) if path.is_file() else None
