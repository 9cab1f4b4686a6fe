"""Magnitude image sources read as 3-D volumes in RAS+ voxel order, for :mod:`mri_rl.data.image_import`.

Sources:

- a NIfTI file (``.nii``, ``.nii.gz``, read by nibabel), or a folder of them (each a source);
- a folder of ``.dcm`` files of one DICOM series (pydicom), sorted along the slice normal by
  ImagePositionPatient (which must be evenly spaced: no slice missing), else by InstanceNumber;
- a folder of 2-D PNG/TIFF/JPEG slices (Pillow), in natural name order (``2`` before ``10``).

Every source becomes one 3-D array in RAS+ voxel order (nibabel's ``as_closest_canonical`` of
the affine: from the NIfTI header, from the DICOM geometry, or, for image stacks and DICOM without
geometry, the images taken as axial slices with the first image inferior, the top row anterior and
the first column the patient's left), so the orientations mean the same anatomy for every source
(:data:`mri_rl.data.image_import.ORIENTATIONS`): axial slices are planes of constant S shown with
anterior at the top; coronal ones planes of constant A, superior at the top; sagittal ones planes
of constant R, superior at the top, anterior on the right. Image columns are the phase-encode
direction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm",)
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
#: How much (relative) a spacing of consecutive DICOM slices may exceed the smallest one (room for positions rounded
#: to 0.01 mm): more is a gap, missing slices, which the volume's one slice step (the mean spacing) would hide,
#: distorting coronal and sagittal slices. A missing slice doubles a spacing.
SLICE_SPACING_TOLERANCE = 0.05


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


def source_suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _kind_of_folder(folder: Path) -> tuple[str, list[Path]]:
    """("nifti" | "dicom" | "images", its files) of a folder holding one kind of source file."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    kinds = {
        "nifti": [p for p in files if source_suffix(p) in NIFTI_SUFFIXES],
        "dicom": [p for p in files if source_suffix(p) in DICOM_SUFFIXES],
        "images": [p for p in files if source_suffix(p) in IMAGE_SUFFIXES],
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
        elif source_suffix(path) in NIFTI_SUFFIXES:
            found = [path]
        elif source_suffix(path) in IMAGE_SUFFIXES + DICOM_SUFFIXES:
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
        _check_slice_spacing(folder, positions[order] @ normal)
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


def _check_slice_spacing(folder: Path, depth: np.ndarray) -> None:
    """Sorted slice positions along the normal (mm, (slices,)) must be distinct and evenly spaced (within
    :data:`SLICE_SPACING_TOLERANCE` of the smallest spacing): one volume with no slice missing."""
    spacings = np.diff(depth)
    if np.any(spacings < 1e-3):
        raise ImageImportError(
            folder, "holds several slices at one position (echoes or time points?); expected one volume"
        )
    smallest = float(spacings.min())
    gaps = np.flatnonzero(spacings > smallest * (1 + SLICE_SPACING_TOLERANCE))
    if gaps.size:
        where = ", ".join(f"{spacings[i]:g} mm between positions {depth[i]:g} and {depth[i + 1]:g} mm" for i in gaps)
        raise ImageImportError(
            folder,
            f"holds slices {smallest:g} mm apart along the slice normal but {where} (slices missing?); "
            "expected evenly spaced slices",
        )


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
