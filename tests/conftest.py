"""Shared fixtures: one torch thread, small synthetic fastMRI roots, real-geometry volumes, bad-file factories.

Session-scoped fixtures write their files once per test session into pytest's temporary
folders; tests must not modify them (copy a volume with ``copy_volume`` first).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch

from mri_rl.data.fastmri_files import TARGET_KEYS
from mri_rl.data.synthetic import SyntheticSpec, write_synthetic_dataset

#: Volumes per split written by the ``singlecoil_root`` / ``multicoil_root`` fixtures.
SMALL_VOLUMES = {"train": 2, "val": 1, "test": 1}
SMALL_SLICES = 3
SMALL_SIZE = 16
MULTICOIL_COILS = 3


@pytest.fixture(autouse=True, scope="session")
def single_torch_thread():
    """One intra-op torch thread for the whole session, restored at its end: the tensors are
    tiny, the machine has 2 cores, and torch's thread pool slows down badly under contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def copy_volume_file(src: str | Path, dst: str | Path) -> Path:
    """Copy a volume to ``dst`` (a file path, or a folder to copy into); returns the new path."""
    src, dst = Path(src), Path(dst)
    if dst.is_dir():
        dst = dst / src.name
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


# Kinds of bad file that ``make_bad_volume`` can write, with a keyword that the error
# message (FastMRIDataError.problem) must contain.
BAD_KINDS: dict[str, str] = {
    "not_hdf5": "HDF5",
    "truncated": "truncated",
    "no_kspace": "kspace",
    "float_kspace": "dtype",
    "no_header": "ismrmrd_header",
    "bad_header": "ismrmrd_header",
    "padding_too_wide": "padding",
    "no_target": "target",
    "target_wrong_slices": "shape",
    "nan": "NaN",
    "inf": "Inf",
    "max_zero": "'max' is 0.0",
    "max_nan": "'max' is nan",
    "max_inf": "'max' is inf",
    "max_negative": "'max' is -5.0",
    "max_tiny": "below the target's maximum",
    "max_array": "'max' is array",
    "max_string": "'max' is",
    "zero_target_without_max": "all zero",
}

#: The ``max`` attribute each max_* kind writes.
MAX_VALUES = {
    "max_zero": 0.0,
    "max_nan": float("nan"),
    "max_inf": float("inf"),
    "max_negative": -5.0,
    "max_tiny": 1e-30,
    "max_array": np.array([1.0, 2.0]),
    "max_string": "large",
}

#: Kinds whose problem is in one slice (the error names the slice).
SLICE_KINDS = {"nan": 1, "inf": 1}


def make_bad_volume_file(
    src: str | Path, folder: str | Path, kind: str, name: str | None = None, challenge: str = "singlecoil"
) -> Path:
    """Write a bad copy of the good volume ``src`` into ``folder``.

    Args:
        src: a good synthetic volume of ``challenge`` with at least 2 slices.
        folder: where to write (created if needed).
        kind: one of :data:`BAD_KINDS`.
        name: file name (default ``bad_{kind}.h5``).
        challenge: decides the target dataset name.

    Returns:
        path of the bad file.
    """
    if kind not in BAD_KINDS:
        raise KeyError(f"unknown bad kind {kind!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"bad_{kind}.h5")
    if kind == "not_hdf5":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
        return path
    copy_volume_file(src, path)
    if kind == "truncated":
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.truncate(size // 2)
        return path
    with h5py.File(path, "r+") as hf:
        if kind in MAX_VALUES:
            hf.attrs["max"] = MAX_VALUES[kind]
        else:
            _DAMAGE[kind](hf, TARGET_KEYS[challenge], kind)
    return path


def _replace(hf: h5py.File, key: str, value: Any) -> None:
    del hf[key]
    hf[key] = value


def _padding_too_wide(hf: h5py.File, target_key: str, kind: str) -> None:
    """The maximum of kspace_encoding_step_1 (acquired width - 1) set to twice the k-space width."""
    header = hf["ismrmrd_header"][()].decode()
    step1 = header.index("<kspace_encoding_step_1>")
    start = header.index("<maximum>", step1) + len("<maximum>")
    end = header.index("</maximum>", start)
    _replace(
        hf, "ismrmrd_header", np.bytes_((header[:start] + str(2 * hf["kspace"].shape[-1]) + header[end:]).encode())
    )


def _zero_target_without_max(hf: h5py.File, target_key: str, kind: str) -> None:
    hf[target_key][...] = 0.0
    del hf.attrs["max"]


def _non_finite(hf: h5py.File, target_key: str, kind: str) -> None:
    kspace = hf["kspace"]
    kspace[(SLICE_KINDS[kind],) + (0,) * (kspace.ndim - 1)] = np.nan if kind == "nan" else np.inf


#: How each kind (besides not_hdf5, truncated and the max_* ones) damages an open copy: (hf, target key, kind).
_DAMAGE: dict[str, Callable[[h5py.File, str, str], None]] = {
    "no_kspace": lambda hf, target_key, kind: hf.__delitem__("kspace"),
    "float_kspace": lambda hf, target_key, kind: _replace(hf, "kspace", np.abs(hf["kspace"][()]).astype(np.float32)),
    "no_header": lambda hf, target_key, kind: hf.__delitem__("ismrmrd_header"),
    "bad_header": lambda hf, target_key, kind: _replace(
        hf, "ismrmrd_header", np.bytes_(b"<ismrmrdHeader><encoding>not closed")
    ),
    "padding_too_wide": _padding_too_wide,
    "no_target": lambda hf, target_key, kind: hf.__delitem__(target_key),
    "target_wrong_slices": lambda hf, target_key, kind: _replace(hf, target_key, hf[target_key][()][:-1]),
    "zero_target_without_max": _zero_target_without_max,
    "nan": _non_finite,
    "inf": _non_finite,
}


@pytest.fixture(scope="session")
def copy_volume() -> Callable[[str | Path, str | Path], Path]:
    """The helper ``copy_volume(src, dst) -> Path`` (see :func:`copy_volume_file`)."""
    return copy_volume_file


@pytest.fixture(scope="session")
def make_bad_volume() -> Callable[..., Path]:
    """The factory ``make_bad_volume(src, folder, kind, name=None, challenge="singlecoil")``."""
    return make_bad_volume_file


@pytest.fixture(scope="session")
def bad_kinds() -> dict[str, str]:
    """Bad-file kinds of ``make_bad_volume`` -> keyword expected in the error message."""
    return dict(BAD_KINDS)


@pytest.fixture(scope="session")
def singlecoil_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fastMRI root with singlecoil_{train,val,test}: 2/1/1 volumes of 3 slices, 16x16 target, k-space 32x16."""
    root = tmp_path_factory.mktemp("singlecoil_root")
    spec = SyntheticSpec(challenge="singlecoil", num_slices=SMALL_SLICES, size=SMALL_SIZE)
    write_synthetic_dataset(root, spec, SMALL_VOLUMES, seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def multicoil_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fastMRI root with multicoil_{train,val,test}: 2/1/1 volumes, 3 slices, 3 coils, k-space 32x16."""
    root = tmp_path_factory.mktemp("multicoil_root")
    spec = SyntheticSpec(challenge="multicoil", num_slices=SMALL_SLICES, size=SMALL_SIZE, num_coils=MULTICOIL_COILS)
    write_synthetic_dataset(root, spec, SMALL_VOLUMES, seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def singlecoil_volume(singlecoil_root: Path) -> Path:
    """One good single-coil volume (3 slices) of ``singlecoil_root`` (do not modify it)."""
    return sorted((singlecoil_root / "singlecoil_train").glob("*.h5"))[0]


@pytest.fixture(scope="session")
def multicoil_volume(multicoil_root: Path) -> Path:
    """One good multi-coil volume (3 slices, 3 coils) of ``multicoil_root`` (do not modify it)."""
    return sorted((multicoil_root / "multicoil_train").glob("*.h5"))[0]


@pytest.fixture(scope="session")
def knee_geometry_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with one single-coil volume of fastMRI knee geometry.

    K-space 640 x 368 with 17 zero-filled columns on each side (acquired [17, 351)),
    target 320 x 320, one slice. Returns the ``singlecoil_train`` folder.
    """
    root = tmp_path_factory.mktemp("knee_geometry")
    spec = SyntheticSpec(challenge="singlecoil", size=320, kspace_width=368, padding=17, num_slices=1)
    write_synthetic_dataset(root, spec, {"train": 1}, seed=0, progress=False)
    return root / "singlecoil_train"


@pytest.fixture(scope="session")
def singlecoil_train(singlecoil_root: Path) -> Path:
    """The singlecoil_train folder of ``singlecoil_root``: 2 volumes x 3 slices, 16 x 16, k-space 32 x 16."""
    return singlecoil_root / "singlecoil_train"


@pytest.fixture(scope="session")
def multicoil_train(multicoil_root: Path) -> Path:
    """The multicoil_train folder of ``multicoil_root``: 2 volumes x 3 slices, 3 coils."""
    return multicoil_root / "multicoil_train"


@pytest.fixture(scope="session")
def mixed_padding_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of two volumes with the same k-space width but different zero-filled edges
    (as fastMRI knee files), so episodes of one batch run out of columns at different steps.

    K-space 32 x 24, 16 x 16 targets. ``synthetic_s1_train_000.h5`` (2 slices) measures columns
    [3, 21), ``synthetic_s2_train_000.h5`` (3 slices) [5, 19): with 2 initial lines, 16 and 12
    free columns. Slice indices 0, 1 are s1's, 2, 3, 4 are s2's.
    """
    root = tmp_path_factory.mktemp("mixed_padding")
    folder = root / "mixed"
    folder.mkdir()
    for seed, padding, slices in [(1, 3, 2), (2, 5, 3)]:
        spec = SyntheticSpec(challenge="singlecoil", num_slices=slices, size=16, kspace_width=24, padding=padding)
        written = write_synthetic_dataset(root / f"s{seed}", spec, {"train": 1}, seed=seed, progress=False)
        for path in written:
            Path(path).rename(folder / Path(path).name)
    assert sorted(p.name for p in folder.iterdir()) == ["synthetic_s1_train_000.h5", "synthetic_s2_train_000.h5"]
    return folder
