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

from mri_rl.data.fastmri_files import MAX_SLICES, TARGET_KEYS
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
    "kspace_group": "'kspace' is an HDF5 group",
    "kspace_broken_link": "'kspace' cannot be opened",
    "huge_kspace": "GiB",
    "too_many_slices": "MAX_SLICES",
    "no_header": "ismrmrd_header",
    "bad_header": "ismrmrd_header",
    "header_group": "'ismrmrd_header' is an HDF5 group",
    "header_numeric": "expected one XML string",
    "header_non_integer": "ismrmrd_header",
    "padding_too_wide": "padding",
    "no_target": "target",
    "target_wrong_slices": "shape",
    "target_wrong_size": "reconSpace",
    "target_group": "is an HDF5 group",
    "complex_target": "dtype complex64",
    "string_target": "expected float32",
    "huge_target": "GiB",
    "huge_mask": "GiB",
    "empty_mask": "'mask' is an empty dataset",
    "nan": "NaN",
    "inf": "Inf",
    "nan_target": "NaN",
    "unreadable_chunk": "damaged chunk",
    "zero_target_slice": "all zero",
    "max_zero": "'max' is 0.0",
    "max_nan": "'max' is nan",
    "max_inf": "'max' is inf",
    "max_negative": "'max' is -5.0",
    "max_tiny": "below the target's maximum",
    "max_array": "'max' is array",
    "max_string": "'max' is",
    "zero_target_without_max": "all zero",
    "max_far_above": "MAX_RANGE_FACTOR",
    "max_uint64": "MAX_RANGE_FACTOR",
    "scaled_up": "outside [1e-15, 1e+15]",
    "scaled_down": "outside [1e-15, 1e+15]",
    "heap_loop": "global heap collection",
    "damaged_kspace_type": "unreadable HDF5 structure",
    "non_utf8_target_name": "no target dataset",
    "dangling_link": "which does not exist",
    "zero_target_slice_with_max": "all zero: NMSE",
    "kspace_spike": "Parseval",
    "zero_kspace_slice": "'kspace' is all zero",
    "tiny_slice_without_max": "its data range without 'max', outside [1e-15, 1e+15]",
    "target_negative_spike": "below minus its data range",
    "middle_slice_above_max": "below the target's maximum",
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
    "max_far_above": 1e30,
    "max_uint64": np.uint64(2**64 - 1),
}

#: The factor by which the scaled_* kinds scale k-space and target (and 'max' with them; tiny_slice_without_max:
#: its slice, and no 'max').
SCALES = {"scaled_up": 1e30, "scaled_down": 1e-30, "tiny_slice_without_max": 1e-30}

#: Kinds whose problem is in one middle slice (kind -> that slice): the file passes construction
#: without ``check_values`` and fails when the slice is read; "skip" keeps its other slices.
SLICE_KINDS = {
    "nan": 1,
    "inf": 1,
    "nan_target": 1,
    "unreadable_chunk": 1,
    "zero_target_slice": 1,
    "zero_target_slice_with_max": 1,
    "kspace_spike": 1,
    "zero_kspace_slice": 1,
    "tiny_slice_without_max": 1,
    "target_negative_spike": 1,
}
#: Kinds whose problem is in slice 1 but a problem of the whole file: found at construction only by reading every
#: slice (``check_values``, "skip", data check), else when slice 1 is read.
CHECK_VALUES_KINDS = {"middle_slice_above_max": 1}
#: zero_target_without_max: every slice lacks a data range; the first one read is slice 0.

#: Declared sizes of the huge_* and too_many_slices kinds (chunked, nothing written: tiny files).
HUGE = 100_000


def make_bad_volume_file(
    src: str | Path, folder: str | Path, kind: str, name: str | None = None, challenge: str = "singlecoil"
) -> Path:
    """Write a bad copy of the good volume ``src`` into ``folder``.

    Args:
        src: a good synthetic volume of ``challenge`` with at least 3 slices (16 x 16 targets).
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
    if kind == "dangling_link":  # a volume on a disk not mounted
        path.symlink_to(folder / "not_mounted" / path.name)
        return path
    copy_volume_file(src, path)
    if kind in _BYTE_DAMAGE:
        _BYTE_DAMAGE[kind](path)
        return path
    with h5py.File(path, "r+") as hf:
        if kind in MAX_VALUES:
            hf.attrs["max"] = MAX_VALUES[kind]
        else:
            _DAMAGE[kind](hf, TARGET_KEYS[challenge], kind)
    return path


def _truncate(path: Path) -> None:
    """The file cut to half its size."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)


def _zero_heap_free_space(path: Path) -> None:
    """The free-space object of the file's global heap collection (which holds its string attributes) given
    size 0, so that HDF5 loops forever parsing it: what 9 random bytes at offset 20665 of a ``singlecoil_volume``
    did (object headers: 2-byte index, 2-byte count, 4 reserved bytes, 8-byte size; the free space has index 0)."""
    data = bytearray(path.read_bytes())
    position = data.index(b"GCOL") + 16
    while int.from_bytes(data[position : position + 2], "little") != 0:
        size = int.from_bytes(data[position + 8 : position + 16], "little")
        position += 16 + -(-size // 8) * 8
    data[position + 8 : position + 16] = bytes(8)
    path.write_bytes(bytes(data))


def _damage_kspace_type(path: Path) -> None:
    """The name of the first member ("r") of the k-space's compound datatype (h5py's complex64: version 1,
    2 members, 8 bytes) overwritten with 0xE4, which is not UTF-8: h5py's ``.dtype`` then raises."""
    data = bytearray(path.read_bytes())
    compound = b"\x16\x02\x00\x00\x08\x00\x00\x00r\x00"  # class and version, members, size, first name
    assert data.count(compound) == 1, "the k-space datatype is not where expected"
    data[data.index(compound) + 8] = 0xE4
    path.write_bytes(bytes(data))


#: Kinds made by damaging the bytes of the copy.
_BYTE_DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "heap_loop": _zero_heap_free_space,
    "damaged_kspace_type": _damage_kspace_type,
}


def _replace(hf: h5py.File, key: str, value: Any) -> None:
    del hf[key]
    hf[key] = value


def _group(hf: h5py.File, key: str) -> None:
    """``key`` as an HDF5 group (holding one small dataset) instead of a dataset."""
    del hf[key]
    hf.create_group(key)["data"] = np.zeros(3, np.float32)


def _broken_link(hf: h5py.File, key: str) -> None:
    """``key`` as a soft link to nothing."""
    del hf[key]
    hf[key] = h5py.SoftLink("/nowhere")


def _non_utf8_name(hf: h5py.File, key: str) -> None:
    """``key`` renamed with its ASCII "e" replaced by the latin-1 byte 0xE9 (not UTF-8): h5py lists it as bytes."""
    hf.move(key, key.encode().replace(b"e", b"\xe9", 1))


def _declare(hf: h5py.File, key: str, shape: tuple[int, ...], dtype: Any) -> None:
    """``key`` as a chunked dataset of a (huge) declared ``shape`` with nothing written."""
    if key in hf:
        del hf[key]
    hf.create_dataset(
        key, shape=shape, dtype=dtype, chunks=(1,) * (len(shape) - 2) + tuple(min(n, 64) for n in shape[-2:])
    )


def _set_header_field(hf: h5py.File, section: str, field: str, value: str) -> None:
    """Write ``value`` into the first ``<field>`` after ``<section>`` of the ISMRMRD header."""
    header = hf["ismrmrd_header"][()].decode()
    start = header.index(f"<{field}>", header.index(f"<{section}>")) + len(f"<{field}>")
    end = header.index(f"</{field}>", start)
    _replace(hf, "ismrmrd_header", np.bytes_((header[:start] + value + header[end:]).encode()))


def _padding_too_wide(hf: h5py.File, target_key: str, kind: str) -> None:
    """The maximum of kspace_encoding_step_1 (acquired width - 1) set to twice the k-space width."""
    _set_header_field(hf, "kspace_encoding_step_1", "maximum", str(2 * hf["kspace"].shape[-1]))


def _zero_target(hf: h5py.File, target_key: str, kind: str) -> None:
    """The whole target (zero_target_without_max) or slice 1 of it set to 0, and no ``max``."""
    hf[target_key][SLICE_KINDS.get(kind, slice(None))] = 0.0
    del hf.attrs["max"]


def _non_finite(hf: h5py.File, target_key: str, kind: str) -> None:
    """One NaN or Inf in the k-space (nan, inf) or the target (nan_target) of the kind's slice."""
    dataset = hf[target_key] if kind == "nan_target" else hf["kspace"]
    dataset[(SLICE_KINDS[kind],) + (0,) * (dataset.ndim - 1)] = np.inf if kind == "inf" else np.nan


def _scale(hf: h5py.File, target_key: str, kind: str) -> None:
    """K-space and target (of the kind's slice, or all) multiplied by SCALES[kind]; 'max' with them, or deleted."""
    index = SLICE_KINDS.get(kind, slice(None))
    for key in ("kspace", target_key):
        hf[key][index] = hf[key][index] * SCALES[kind]
    if kind.endswith("without_max"):
        del hf.attrs["max"]
    else:
        hf.attrs["max"] = float(np.max(hf[target_key][()]))


def _unreadable_chunk(hf: h5py.File, target_key: str, kind: str) -> None:
    """The k-space rewritten gzip-compressed, one chunk per slice, with garbage in slice 1's chunk."""
    kspace = hf["kspace"][()]
    del hf["kspace"]
    dataset = hf.create_dataset("kspace", data=kspace, chunks=(1,) + kspace.shape[1:], compression="gzip")
    dataset.id.write_direct_chunk((SLICE_KINDS[kind],) + (0,) * (kspace.ndim - 1), b"not gzip data" * 8)


#: How each kind (besides not_hdf5, the _BYTE_DAMAGE and the max_* ones) damages an open copy: (hf, target key, kind).
_DAMAGE: dict[str, Callable[[h5py.File, str, str], None]] = {
    "no_kspace": lambda hf, target_key, kind: hf.__delitem__("kspace"),
    "float_kspace": lambda hf, target_key, kind: _replace(hf, "kspace", np.abs(hf["kspace"][()]).astype(np.float32)),
    "kspace_group": lambda hf, target_key, kind: _group(hf, "kspace"),
    "kspace_broken_link": lambda hf, target_key, kind: _broken_link(hf, "kspace"),
    "non_utf8_target_name": lambda hf, target_key, kind: _non_utf8_name(hf, target_key),
    "huge_kspace": lambda hf, target_key, kind: _declare(
        hf, "kspace", hf["kspace"].shape[:-2] + (HUGE, HUGE), np.complex64
    ),
    "too_many_slices": lambda hf, target_key, kind: _declare(
        hf, "kspace", (MAX_SLICES + 1,) + hf["kspace"].shape[1:], np.complex64
    ),
    "no_header": lambda hf, target_key, kind: hf.__delitem__("ismrmrd_header"),
    "bad_header": lambda hf, target_key, kind: _replace(
        hf, "ismrmrd_header", np.bytes_(b"<ismrmrdHeader><encoding>not closed")
    ),
    "header_group": lambda hf, target_key, kind: _group(hf, "ismrmrd_header"),
    "header_numeric": lambda hf, target_key, kind: _replace(hf, "ismrmrd_header", np.arange(3)),
    "header_non_integer": lambda hf, target_key, kind: _set_header_field(hf, "reconSpace", "x", "16.5"),
    "padding_too_wide": _padding_too_wide,
    "no_target": lambda hf, target_key, kind: hf.__delitem__(target_key),
    "target_wrong_slices": lambda hf, target_key, kind: _replace(hf, target_key, hf[target_key][()][:-1]),
    "target_wrong_size": lambda hf, target_key, kind: _replace(hf, target_key, hf[target_key][()][:, :, :-4]),
    "target_group": lambda hf, target_key, kind: _group(hf, target_key),
    "complex_target": lambda hf, target_key, kind: _replace(hf, target_key, hf[target_key][()].astype(np.complex64)),
    "string_target": lambda hf, target_key, kind: _replace(hf, target_key, np.full(hf[target_key].shape, b"x")),
    "huge_target": lambda hf, target_key, kind: _declare(hf, target_key, (hf[target_key].shape[0], HUGE, HUGE), "f4"),
    "huge_mask": lambda hf, target_key, kind: _declare(hf, "mask", (HUGE, HUGE), "f4"),
    "empty_mask": lambda hf, target_key, kind: hf.__setitem__("mask", h5py.Empty("f4")),
    "zero_target_without_max": _zero_target,
    "zero_target_slice": _zero_target,
    "nan": _non_finite,
    "inf": _non_finite,
    "nan_target": _non_finite,
    "unreadable_chunk": _unreadable_chunk,
    "scaled_up": _scale,
    "scaled_down": _scale,
    "tiny_slice_without_max": _scale,
    "zero_target_slice_with_max": lambda hf, target_key, kind: hf[target_key].__setitem__(SLICE_KINDS[kind], 0.0),
    "kspace_spike": lambda hf, target_key, kind: hf["kspace"].__setitem__((SLICE_KINDS[kind], ..., 5, 5), 1.7e28),
    "zero_kspace_slice": lambda hf, target_key, kind: hf["kspace"].__setitem__(SLICE_KINDS[kind], 0),
    "target_negative_spike": lambda hf, target_key, kind: hf[target_key].__setitem__((SLICE_KINDS[kind], 0, 0), -7e9),
    "middle_slice_above_max": lambda hf, target_key, kind: hf[target_key].__setitem__(
        CHECK_VALUES_KINDS[kind], hf[target_key][CHECK_VALUES_KINDS[kind]] * 1e10
    ),
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
def slice_kinds() -> dict[str, int]:
    """Bad kinds whose problem is in one middle slice -> that slice (see :data:`SLICE_KINDS`)."""
    return dict(SLICE_KINDS)


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
    folder = write_mixed_padding(tmp_path_factory.mktemp("mixed_padding"), seeds=(1, 2))
    assert sorted(p.name for p in folder.iterdir()) == ["synthetic_s1_train_000.h5", "synthetic_s2_train_000.h5"]
    return folder


@pytest.fixture(scope="session")
def mixed_padding_writer() -> Callable[[Path, tuple[int, int]], Path]:
    """The helper ``write_mixed_padding(root, seeds) -> Path`` (see :func:`write_mixed_padding`)."""
    return write_mixed_padding


def write_mixed_padding(root: Path, seeds: tuple[int, int]) -> Path:
    """Write ``root/mixed``: the two volumes of :func:`mixed_padding_folder`, of synthetic seeds ``seeds``
    (padding 3, then 5), named ``synthetic_s{seed}_train_000.h5``; returns the folder."""
    folder = root / "mixed"
    folder.mkdir()
    for seed, padding, slices in [(seeds[0], 3, 2), (seeds[1], 5, 3)]:
        spec = SyntheticSpec(challenge="singlecoil", num_slices=slices, size=16, kspace_width=24, padding=padding)
        written = write_synthetic_dataset(root / f"s{seed}", spec, {"train": 1}, seed=seed, progress=False)
        for path in written:
            Path(path).rename(folder / Path(path).name)
    return folder


@pytest.fixture(scope="session")
def doubled_template(tmp_path_factory: pytest.TempPathFactory):
    """The MNI152 template at twice its intensity in a NIfTI file of its own: the same brain, read from a file."""
    nibabel = pytest.importorskip("nibabel")
    pytest.importorskip("nilearn")
    from mri_rl.data import anatomy

    data, zooms = anatomy.load_template()
    path = tmp_path_factory.mktemp("brain") / "doubled.nii.gz"
    nibabel.save(nibabel.Nifti1Image(2 * np.asarray(data), np.diag([*zooms, 1.0])), path)
    yield path
    anatomy.load_template.cache_clear()
