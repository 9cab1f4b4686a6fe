"""Shared fixtures: one torch thread, small synthetic fastMRI roots, real-geometry volumes, bad-file factories.

Session-scoped fixtures write their files once per test session into pytest's temporary
folders; tests must not modify them (copy a volume with ``copy_volume`` first).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

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
    target_key = TARGET_KEYS[challenge]
    with h5py.File(path, "r+") as hf:
        if kind == "no_kspace":
            del hf["kspace"]
        elif kind == "float_kspace":
            magnitude = np.abs(hf["kspace"][()]).astype(np.float32)
            del hf["kspace"]
            hf["kspace"] = magnitude
        elif kind == "no_header":
            del hf["ismrmrd_header"]
        elif kind == "bad_header":
            del hf["ismrmrd_header"]
            hf["ismrmrd_header"] = np.bytes_(b"<ismrmrdHeader><encoding>not closed")
        elif kind == "padding_too_wide":
            header = hf["ismrmrd_header"][()].decode()
            # maximum of kspace_encoding_step_1 (acquired width - 1): twice the k-space width.
            width = hf["kspace"].shape[-1]
            step1 = header.index("<kspace_encoding_step_1>")
            start = header.index("<maximum>", step1) + len("<maximum>")
            end = header.index("</maximum>", start)
            header = header[:start] + str(2 * width) + header[end:]
            del hf["ismrmrd_header"]
            hf["ismrmrd_header"] = np.bytes_(header.encode())
        elif kind == "no_target":
            del hf[target_key]
        elif kind == "target_wrong_slices":
            target = hf[target_key][()]
            del hf[target_key]
            hf[target_key] = target[:-1]
        elif kind in ("nan", "inf"):
            kspace = hf["kspace"]
            index = (SLICE_KINDS[kind],) + (0,) * (kspace.ndim - 1)
            kspace[index] = np.nan if kind == "nan" else np.inf
    return path


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
