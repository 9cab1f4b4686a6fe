"""Reading, validating and writing fastMRI ``.h5`` volumes.

A fastMRI volume holds ``kspace`` (complex64; (slices, rows, cols) single-coil or
(slices, coils, rows, cols) multi-coil), a target (``reconstruction_esc`` single-coil,
``reconstruction_rss`` multi-coil; absent in the challenge test splits), a namespaced
``ismrmrd_header`` and attributes such as ``max`` and ``norm``
(Zbontar et al., "fastMRI: An Open Dataset and Benchmarks for Accelerated MRI", 2018).

Reading goes through ``fastmri.data.SliceDataset``. Each file is validated first, so a
bad file gives one :class:`FastMRIDataError` naming it (and the slice) instead of an
h5py traceback, or is skipped with a warning when ``on_bad_file="skip"``.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from fastmri.data import SliceDataset

from mri_rl.data.ismrmrd_header import build_header, parse_geometry
from mri_rl.kspace import KspaceGeometry
from mri_rl.task import CHALLENGES, SPLITS

TARGET_KEYS = {"singlecoil": "reconstruction_esc", "multicoil": "reconstruction_rss"}
BAD_FILE_POLICIES = ("raise", "skip")


class FastMRIDataError(ValueError):
    """A fastMRI file (or slice) that cannot be used, with the reason.

    Attributes:
        path: the offending file.
        slice_index: the offending slice, if the problem is in one slice.
        problem: what is wrong and what was expected.
    """

    def __init__(self, path: str | Path, problem: str, slice_index: int | None = None) -> None:
        self.path = Path(path)
        self.slice_index = slice_index
        self.problem = problem
        where = str(self.path) if slice_index is None else f"{self.path}, slice {slice_index}"
        super().__init__(f"{where}: {problem}")


def check_challenge(challenge: str) -> str:
    """Return ``challenge`` if it is known, else raise a ValueError naming the choices."""
    if challenge not in CHALLENGES:
        raise ValueError(f"unknown challenge {challenge!r}; expected one of {', '.join(CHALLENGES)}")
    return challenge


@dataclass(frozen=True)
class VolumeInfo:
    """What :func:`inspect_volume` found in one file.

    Attributes:
        path: the file.
        num_slices: number of slices.
        slice_shape: k-space shape of one slice, (rows, cols) or (coils, rows, cols).
        num_coils: 1 for single-coil.
        geometry: sizes and padding from the ISMRMRD header.
        has_target: whether the challenge's target dataset is present.
        max_value: the ``max`` attribute (data range for metrics), if present.
    """

    path: Path
    num_slices: int
    slice_shape: tuple[int, ...]
    num_coils: int
    geometry: KspaceGeometry
    has_target: bool
    max_value: float | None


def inspect_volume(
    path: str | Path, challenge: str, require_target: bool = True, check_values: bool = False
) -> VolumeInfo:
    """Validate one fastMRI file and describe it.

    Checks that the file is readable HDF5, has complex ``kspace`` of the challenge's rank,
    a parsable header whose padding fits the k-space, a target of matching size (when
    ``require_target``), and that the first and last slices can be read (which catches
    truncated files). With ``check_values`` every slice of k-space and target is read and
    must be finite.

    Raises:
        FastMRIDataError: naming the file (and slice) and what was expected.
    """
    path = Path(path)
    check_challenge(challenge)
    try:
        hf = h5py.File(path, "r")
    except OSError as error:
        raise FastMRIDataError(path, f"not a readable HDF5 file (corrupt or truncated?): {error}") from None
    with hf:
        kspace = _checked_kspace(hf, path, challenge)
        geometry = _checked_geometry(hf, path, kspace.shape[-1])
        target = _checked_target(hf, path, challenge, kspace.shape[0], require_target)
        _check_slices(path, [kspace] if target is None else [kspace, target], check_values)
        max_value = _checked_max(hf, path, target)
        return VolumeInfo(
            path=path,
            num_slices=int(kspace.shape[0]),
            slice_shape=tuple(int(n) for n in kspace.shape[1:]),
            num_coils=1 if challenge == "singlecoil" else int(kspace.shape[1]),
            geometry=geometry,
            has_target=target is not None,
            max_value=max_value,
        )


def _checked_kspace(hf: h5py.File, path: Path, challenge: str) -> h5py.Dataset:
    """The ``kspace`` dataset: complex, of the challenge's rank, with at least one slice."""
    if "kspace" not in hf:
        raise FastMRIDataError(path, f"no 'kspace' dataset (found {sorted(hf.keys())})")
    kspace = hf["kspace"]
    if not np.issubdtype(kspace.dtype, np.complexfloating):
        raise FastMRIDataError(path, f"'kspace' has dtype {kspace.dtype}; expected complex64")
    expected_rank = 3 if challenge == "singlecoil" else 4
    if kspace.ndim != expected_rank:
        layout = "(slices, rows, cols)" if challenge == "singlecoil" else "(slices, coils, rows, cols)"
        raise FastMRIDataError(
            path, f"'kspace' has shape {kspace.shape}; {challenge} expects {expected_rank} dims {layout}"
        )
    if kspace.shape[0] == 0:
        raise FastMRIDataError(path, "'kspace' has no slices")
    return kspace


def _checked_geometry(hf: h5py.File, path: Path, width: int) -> KspaceGeometry:
    """The header's geometry, whose padding must fit the k-space ``width``."""
    if "ismrmrd_header" not in hf:
        raise FastMRIDataError(path, "no 'ismrmrd_header' dataset (fastMRI files carry one)")
    try:
        geometry = parse_geometry(hf["ismrmrd_header"][()])
    except Exception as error:  # malformed XML or a missing field
        raise FastMRIDataError(path, f"unusable ismrmrd_header: {error}") from None
    if not 0 <= geometry.padding_left < geometry.padding_right <= width:
        raise FastMRIDataError(
            path,
            f"header padding [{geometry.padding_left}, {geometry.padding_right}) does not fit "
            f"the k-space width {width}",
        )
    return geometry


def _checked_target(
    hf: h5py.File, path: Path, challenge: str, num_slices: int, require_target: bool
) -> h5py.Dataset | None:
    """The target dataset (None if absent and not required), one image per k-space slice."""
    target_key = TARGET_KEYS[challenge]
    if target_key not in hf:
        if require_target:
            raise FastMRIDataError(path, f"no target dataset '{target_key}' ({challenge}); found {sorted(hf.keys())}")
        return None
    target = hf[target_key]
    if target.ndim != 3 or target.shape[0] != num_slices:
        raise FastMRIDataError(path, f"'{target_key}' has shape {target.shape}; expected ({num_slices}, rows, cols)")
    return target


def _checked_max(hf: h5py.File, path: Path, target: h5py.Dataset | None) -> float | None:
    """The ``max`` attribute, the data range of every metric: one positive finite number, not
    below the target's own maximum (checked on the first and last slices); None when absent.
    Without it the target's maximum is the data range, so the target must not be all zero."""
    peak = None if target is None else max(float(np.max(target[i])) for i in {0, target.shape[0] - 1})
    if "max" not in hf.attrs:
        if peak is not None and not peak > 0:
            raise FastMRIDataError(path, "the target is all zero and there is no 'max' attribute: no data range")
        return None
    raw = hf.attrs["max"]
    value = np.asarray(raw)
    expected = "expected one positive finite number (the data range of the metrics)"
    if value.ndim != 0 or value.dtype.kind not in "iuf":
        raise FastMRIDataError(path, f"attribute 'max' is {raw!r}; {expected}")
    number = float(value)
    if not (np.isfinite(number) and number > 0):
        raise FastMRIDataError(path, f"attribute 'max' is {number}; {expected}")
    if peak is not None and peak > number * (1 + 1e-3):
        raise FastMRIDataError(
            path,
            f"attribute 'max' is {number:g}, below the target's maximum {peak:g}; it "
            "must be the volume's maximum (the data range of the metrics)",
        )
    return number


def _check_slices(path: Path, datasets: list[h5py.Dataset], check_values: bool) -> None:
    """Read the first and last slices (every slice, checked finite, with ``check_values``)."""
    num_slices = datasets[0].shape[0]
    slices = range(num_slices) if check_values else sorted({0, num_slices - 1})
    for index in slices:
        for dataset in datasets:
            try:
                values = dataset[index]
            except (OSError, RuntimeError) as error:
                raise FastMRIDataError(
                    path, f"cannot read '{dataset.name}' (truncated file?): {error}", index
                ) from None
            if check_values and not np.isfinite(values).all():
                raise FastMRIDataError(path, f"'{dataset.name}' contains NaN or Inf", index)


def list_volumes(folder: str | Path) -> list[Path]:
    """The ``.h5`` files of a folder, sorted.

    Raises:
        FileNotFoundError: the folder does not exist or holds no ``.h5`` file.
        NotADirectoryError: ``folder`` is a file.
    """
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"data folder {folder} does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(f"data folder {folder} is not a directory")
    files = sorted(p for p in folder.iterdir() if p.suffix == ".h5" and p.is_file())
    if not files:
        raise FileNotFoundError(
            f"data folder {folder} holds no .h5 files; expected fastMRI volumes "
            "(write synthetic ones with `mri-rl data synth`)"
        )
    return files


def resolve_split_folder(data: str | Path, challenge: str, split: str) -> Path:
    """The folder of ``.h5`` files for a split.

    ``data`` is either a fastMRI root holding ``{challenge}_{split}`` folders or a
    folder of ``.h5`` files itself.
    """
    check_challenge(challenge)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    data = Path(data)
    candidate = data / f"{challenge}_{split}"
    if candidate.is_dir():
        return candidate
    if data.is_dir() and any(p.suffix == ".h5" for p in data.iterdir()):
        return data
    raise FileNotFoundError(
        f"{data} is neither a folder of .h5 files nor a fastMRI root with a {candidate.name}/ folder"
    )


@dataclass(frozen=True)
class SliceMetadata:
    """Where a slice comes from and its geometry.

    Attributes:
        file: path of the volume.
        slice_index: slice within the volume.
        padding_left, padding_right: acquired phase-encode columns are [left, right).
        recon_size: (rows, cols) of the target.
        max_value: volume maximum of the target (fastMRI's data range for SSIM/PSNR).
        num_coils: 1 for single-coil.
    """

    file: Path
    slice_index: int
    padding_left: int
    padding_right: int
    recon_size: tuple[int, int]
    max_value: float | None
    num_coils: int


@dataclass(frozen=True)
class KspaceSlice:
    """One slice of a fastMRI volume.

    Attributes:
        kspace: complex64 tensor, (rows, cols) single-coil or (coils, rows, cols) multi-coil.
        target: float32 tensor (recon rows, recon cols), or None when the file has none.
        metadata: file, slice, padding, sizes.
    """

    kspace: torch.Tensor
    target: torch.Tensor | None
    metadata: SliceMetadata


class FastMRISliceDataset(SliceDataset):
    """``fastmri.data.SliceDataset`` over the validated ``.h5`` files of one folder.

    Items are :class:`KspaceSlice` (or ``transform(KspaceSlice)``). Files other than
    ``*.h5`` are ignored. The dataset cache of fastmri (a pickle) is never used.

    Args:
        folder: folder of fastMRI volumes (one split).
        challenge: "singlecoil" or "multicoil".
        require_target: a file without the target dataset is bad.
        on_bad_file: "raise" (default) raises the first :class:`FastMRIDataError`;
            "skip" warns once with the list of skipped files and keeps the good ones.
        check_values: read every slice at construction and reject files whose k-space
            or target holds NaN or Inf. Without it (faster on large folders), each slice
            is still checked when read and raises :class:`FastMRIDataError`.
        transform: applied to each :class:`KspaceSlice`.
    """

    def __init__(
        self,
        folder: str | Path,
        challenge: str,
        require_target: bool = True,
        on_bad_file: str = "raise",
        check_values: bool = False,
        transform: Callable[[KspaceSlice], Any] | None = None,
    ) -> None:
        check_challenge(challenge)
        if on_bad_file not in BAD_FILE_POLICIES:
            raise ValueError(f"on_bad_file must be one of {BAD_FILE_POLICIES}, got {on_bad_file!r}")
        self.folder = Path(folder)
        self.require_target = require_target
        self.volumes: dict[Path, VolumeInfo] = {}
        self.skipped: list[FastMRIDataError] = []
        for path in list_volumes(self.folder):
            try:
                self.volumes[path] = inspect_volume(path, challenge, require_target, check_values)
            except FastMRIDataError as error:
                if on_bad_file == "raise":
                    raise
                self.skipped.append(error)
        if self.skipped:
            listing = "\n  ".join(str(error) for error in self.skipped)
            warnings.warn(f"skipped {len(self.skipped)} bad file(s) in {self.folder}:\n  {listing}", stacklevel=2)
        if not self.volumes:
            raise FileNotFoundError(f"data folder {self.folder} holds no usable fastMRI volume")
        super().__init__(root=self.folder, challenge=challenge, transform=None, use_dataset_cache=False)
        self.slice_transform = transform

    def _retrieve_metadata(self, fname: Path) -> tuple[dict, int]:
        """fastmri's header parsing for validated files; zero slices for any other file."""
        if Path(fname) not in self.volumes:
            return {}, 0
        return super()._retrieve_metadata(fname)

    def __getitem__(self, index: int) -> Any:
        fname, slice_index, _ = self.raw_samples[index]
        try:
            kspace, _, target, attrs, _, _ = super().__getitem__(index)
        except (OSError, RuntimeError, KeyError) as error:
            raise FastMRIDataError(fname, f"cannot read slice: {error}", slice_index) from None
        if not np.isfinite(kspace).all():
            raise FastMRIDataError(fname, "k-space contains NaN or Inf", slice_index)
        if target is not None and not np.isfinite(target).all():
            raise FastMRIDataError(fname, f"{self.recons_key} contains NaN or Inf", slice_index)
        info = self.volumes[Path(fname)]
        metadata = SliceMetadata(
            file=Path(fname),
            slice_index=int(slice_index),
            padding_left=int(attrs["padding_left"]),
            padding_right=int(attrs["padding_right"]),
            recon_size=(int(attrs["recon_size"][0]), int(attrs["recon_size"][1])),
            max_value=info.max_value,
            num_coils=info.num_coils,
        )
        item = KspaceSlice(
            kspace=torch.from_numpy(kspace.astype(np.complex64)),
            target=None if target is None else torch.from_numpy(target.astype(np.float32)),
            metadata=metadata,
        )
        return item if self.slice_transform is None else self.slice_transform(item)


def write_volume(
    path: str | Path,
    kspace: np.ndarray,
    target: np.ndarray | None,
    challenge: str,
    geometry: KspaceGeometry,
    attrs: dict[str, Any] | None = None,
) -> Path:
    """Write one volume in fastMRI's format, atomically (temporary file, then rename).

    Args:
        path: destination ``.h5`` file (parent folders are created).
        kspace: complex (slices, rows, cols) or (slices, coils, rows, cols).
        target: float (slices, recon rows, recon cols), or None (like the challenge test split).
        challenge: decides the target dataset name.
        geometry: recorded in the ISMRMRD header.
        attrs: extra file attributes (``acquisition``, ``patient_id``, ...); ``max`` and
            ``norm`` are computed from the target.

    Returns:
        ``path``.
    """
    check_challenge(challenge)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    num_coils = 1 if challenge == "singlecoil" else kspace.shape[1]
    handle, temporary = tempfile.mkstemp(suffix=".h5.tmp", dir=path.parent)
    os.close(handle)
    try:
        with h5py.File(temporary, "w") as hf:
            hf.create_dataset("kspace", data=kspace.astype(np.complex64), track_times=False)
            hf.create_dataset("ismrmrd_header", data=np.bytes_(build_header(geometry, num_coils)), track_times=False)
            if target is not None:
                target = target.astype(np.float32)
                hf.create_dataset(TARGET_KEYS[challenge], data=target, track_times=False)
                hf.attrs["max"] = float(target.max())
                hf.attrs["norm"] = float(np.linalg.norm(target))
            for key, value in (attrs or {}).items():
                hf.attrs[key] = value
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
