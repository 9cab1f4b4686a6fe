"""Reading, validating and writing fastMRI files; the ISMRMRD header."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from fastmri.data import SliceDataset, mri_data

from mri_rl.data.fastmri_files import (
    FastMRIDataError,
    FastMRISliceDataset,
    KspaceSlice,
    inspect_volume,
    list_volumes,
    resolve_split_folder,
    write_volume,
)
from mri_rl.data.hdf5_global_heap import global_heap_problem
from mri_rl.data.ismrmrd_header import build_header, parse_geometry
from mri_rl.kspace import KspaceGeometry

TARGET_KEY = {"singlecoil": "reconstruction_esc", "multicoil": "reconstruction_rss"}


def files_of(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.h5"))


# --------------------------------------------------------------------------- unmodified fastmri reads our files


@pytest.mark.parametrize("challenge", ["singlecoil", "multicoil"])
def test_fastmri_slice_dataset_reads_synthetic_files(request, challenge):
    root = request.getfixturevalue(f"{challenge}_root")
    folder = root / f"{challenge}_train"
    dataset = SliceDataset(folder, challenge, transform=None, use_dataset_cache=False)
    assert len(dataset) == 2 * 3
    expected_shape = (32, 16) if challenge == "singlecoil" else (3, 32, 16)
    volumes: dict[str, list] = {}
    for index in range(len(dataset)):
        kspace, mask, target, attrs, fname, slice_index = dataset[index]
        assert kspace.shape == expected_shape
        assert np.iscomplexobj(kspace) and kspace.dtype == np.complex64
        assert mask is None
        assert target.shape == (16, 16) and target.dtype == np.float32
        for key in ("max", "norm", "acquisition", "patient_id", "padding_left", "padding_right", "recon_size"):
            assert key in attrs
        assert attrs["acquisition"] == ("CORPD_FBK" if challenge == "singlecoil" else "AXT2")
        assert (attrs["padding_left"], attrs["padding_right"]) == (0, 16)
        assert tuple(attrs["recon_size"]) == (16, 16, 1)
        volumes.setdefault(fname, []).append((slice_index, target, attrs))
    assert sorted(volumes) == [p.name for p in files_of(folder)]
    for fname, slices in volumes.items():
        assert [s for s, _, _ in slices] == [0, 1, 2]
        target_volume = np.stack([t for _, t, _ in slices])
        attrs = slices[0][2]
        with h5py.File(folder / fname, "r") as hf:
            assert TARGET_KEY[challenge] in hf
            np.testing.assert_array_equal(target_volume, hf[TARGET_KEY[challenge]][()])
        assert attrs["max"] == pytest.approx(float(target_volume.max()), rel=1e-7)
        assert attrs["norm"] == pytest.approx(float(np.linalg.norm(target_volume)), rel=1e-6)


# --------------------------------------------------------------------------- FastMRISliceDataset round trip


@pytest.mark.parametrize("challenge", ["singlecoil", "multicoil"])
def test_slice_dataset_round_trip(request, challenge):
    root = request.getfixturevalue(f"{challenge}_root")
    folder = root / f"{challenge}_train"
    dataset = FastMRISliceDataset(folder, challenge)
    files = files_of(folder)
    assert len(dataset) == 6
    assert list(dataset.volumes) == files
    assert dataset.skipped == []
    coils = 1 if challenge == "singlecoil" else 3
    for index in range(len(dataset)):
        item = dataset[index]
        path, slice_index = files[index // 3], index % 3
        assert isinstance(item, KspaceSlice)
        with h5py.File(path, "r") as hf:
            kspace = hf["kspace"][slice_index]
            target = hf[TARGET_KEY[challenge]][slice_index]
            max_value = float(hf.attrs["max"])
        assert item.kspace.dtype == torch.complex64
        assert item.target.dtype == torch.float32
        assert tuple(item.kspace.shape) == ((32, 16) if coils == 1 else (coils, 32, 16))
        np.testing.assert_array_equal(item.kspace.numpy(), kspace)
        np.testing.assert_array_equal(item.target.numpy(), target)
        meta = item.metadata
        assert meta.file == path
        assert meta.slice_index == slice_index
        assert (meta.padding_left, meta.padding_right) == (0, 16)
        assert meta.recon_size == (16, 16)
        assert meta.max_value == max_value
        assert meta.num_coils == coils


def test_slice_dataset_applies_transform_and_ignores_other_files(tmp_path, singlecoil_volume, copy_volume):
    copy_volume(singlecoil_volume, tmp_path)
    (tmp_path / "README.txt").write_text("not a volume")
    (tmp_path / "notes.h5.bak").write_bytes(b"junk")
    seen = []

    def transform(item: KspaceSlice) -> tuple[int, float]:
        seen.append(item)
        return item.metadata.slice_index, float(item.target.max())

    dataset = FastMRISliceDataset(tmp_path, "singlecoil", transform=transform)
    assert len(dataset) == 3
    assert list(dataset.volumes) == [tmp_path / singlecoil_volume.name]
    index, maximum = dataset[2]
    assert index == 2
    assert isinstance(seen[0], KspaceSlice)
    assert maximum == pytest.approx(float(seen[0].target.max()))


def test_slice_dataset_never_writes_a_cache(tmp_path, singlecoil_volume, copy_volume, monkeypatch):
    copy_volume(singlecoil_volume, tmp_path / "data" / singlecoil_volume.name)
    monkeypatch.chdir(tmp_path)
    FastMRISliceDataset(tmp_path / "data", "singlecoil")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["data", singlecoil_volume.name]


def test_knee_geometry_loads(knee_geometry_file):
    dataset = FastMRISliceDataset(knee_geometry_file, "singlecoil", check_values=True)
    assert len(dataset) == 1
    item = dataset[0]
    assert tuple(item.kspace.shape) == (640, 368)
    assert tuple(item.target.shape) == (320, 320)
    assert item.metadata.padding_left == 17
    assert item.metadata.padding_right == 351
    assert item.metadata.recon_size == (320, 320)
    assert item.metadata.num_coils == 1
    # and fastMRI itself agrees
    _, _, _, attrs, _, _ = SliceDataset(knee_geometry_file, "singlecoil")[0]
    assert (attrs["padding_left"], attrs["padding_right"]) == (17, 351)
    assert tuple(attrs["encoding_size"]) == (640, 368, 1)


def test_file_without_target_loads_when_not_required(tmp_path, singlecoil_volume, make_bad_volume):
    path = make_bad_volume(singlecoil_volume, tmp_path, "no_target")
    with pytest.raises(FastMRIDataError) as raised:
        FastMRISliceDataset(tmp_path, "singlecoil")
    assert path.name in str(raised.value)
    assert "reconstruction_esc" in str(raised.value)
    dataset = FastMRISliceDataset(tmp_path, "singlecoil", require_target=False)
    assert len(dataset) == 3
    item = dataset[1]
    assert item.target is None
    assert tuple(item.kspace.shape) == (32, 16)
    info = inspect_volume(path, "singlecoil", require_target=False)
    assert info.has_target is False


def test_test_split_without_target_written_by_write_volume(tmp_path):
    geometry = KspaceGeometry((16, 8, 1), (8, 8, 1), 1, 7)
    kspace = (np.ones((2, 16, 8)) + 1j).astype(np.complex64)
    path = write_volume(tmp_path / "multi" / "vol.h5", kspace, None, "singlecoil", geometry, {"acquisition": "X"})
    with h5py.File(path, "r") as hf:
        assert sorted(hf.keys()) == ["ismrmrd_header", "kspace"]
        assert "max" not in hf.attrs and hf.attrs["acquisition"] == "X"
    info = inspect_volume(path, "singlecoil", require_target=False)
    assert info.max_value is None and info.num_slices == 2 and info.geometry == geometry
    item = FastMRISliceDataset(path.parent, "singlecoil", require_target=False)[0]
    assert item.target is None and item.metadata.max_value is None


# --------------------------------------------------------------------------- bad inputs


#: Bad kinds of ``make_bad_volume`` found at construction (without ``check_values``).
BAD_KINDS_IN_DATASET = [
    "not_hdf5",
    "truncated",
    "no_kspace",
    "float_kspace",
    "kspace_group",
    "kspace_broken_link",
    "huge_kspace",
    "too_many_slices",
    "no_header",
    "bad_header",
    "header_group",
    "header_numeric",
    "header_non_integer",
    "padding_too_wide",
    "no_target",
    "target_wrong_slices",
    "target_wrong_size",
    "target_group",
    "complex_target",
    "string_target",
    "huge_target",
    "huge_mask",
    "empty_mask",
    "max_zero",
    "max_nan",
    "max_inf",
    "max_negative",
    "max_tiny",
    "max_array",
    "max_string",
    "zero_target_without_max",
    "max_far_above",
    "max_uint64",
    "scaled_up",
    "scaled_down",
    "heap_loop",
    "damaged_kspace_type",
    "non_utf8_target_name",
    "dangling_link",
]
#: Bad kinds whose problem is in the middle slice 1 (conftest's SLICE_KINDS).
BAD_SLICE_KINDS = [
    "nan",
    "inf",
    "nan_target",
    "unreadable_chunk",
    "zero_target_slice",
    "zero_target_slice_with_max",
    "kspace_spike",
    "zero_kspace_slice",
    "tiny_slice_without_max",
    "target_negative_spike",
]
#: Bad kinds found at construction only with check_values (a file problem), else when slice 1 is read.
BAD_KINDS_FOUND_BY_CHECK_VALUES = ["middle_slice_above_max"]
#: How the data range is refused: float32 squares of intensities outside it under- or overflow.
RANGE_REASON = (
    "outside [1e-15, 1e+15] (MIN_DATA_RANGE, MAX_DATA_RANGE): float32 squares of such intensities under- or "
    "overflow; rescale the volume"
)
#: Why a 'max' far above the target is refused.
FAR_ABOVE_REASON = (
    "more than 1000 (MAX_RANGE_FACTOR) times the target's maximum 7.32802e-05; it must be the volume's maximum "
    "(the data range of the metrics): with it every reconstruction would score alike"
)

#: The exact problem (FastMRIDataError.problem) and slice of a bad copy of a singlecoil_volume.
EXACT_PROBLEMS: dict[str, tuple[str, int | None]] = {
    "kspace_group": ("'kspace' is an HDF5 group; expected a dataset of complex64 (slices, rows, cols)", None),
    "huge_kspace": (
        "'kspace' declares slices of shape (100000, 100000) complex64, 74.5 GiB each; "
        "the limit is 2 GiB (MAX_SLICE_BYTES): a damaged file?",
        None,
    ),
    "too_many_slices": ("'kspace' declares 10001 slices; the limit is 10000 (MAX_SLICES): a damaged file?", None),
    "header_group": ("'ismrmrd_header' is an HDF5 group; expected a dataset of one XML string", None),
    "header_numeric": ("'ismrmrd_header' is a dataset of int64 and shape (3,); expected one XML string", None),
    "header_non_integer": ("unusable ismrmrd_header: invalid literal for int() with base 10: '16.5'", None),
    "target_wrong_size": (
        "'reconstruction_esc' has shape (3, 16, 12); expected (3, 16, 16), the header's reconSpace matrix size",
        None,
    ),
    "target_group": ("'reconstruction_esc' is an HDF5 group; expected a dataset of float32 (3, 16, 16)", None),
    "complex_target": ("'reconstruction_esc' has dtype complex64; expected float32 (a real image)", None),
    "string_target": ("'reconstruction_esc' has dtype |S1; expected float32 (a real image)", None),
    "huge_target": (
        "'reconstruction_esc' declares slices of shape (100000, 100000) float32, 37.3 GiB each; "
        "the limit is 2 GiB (MAX_SLICE_BYTES): a damaged file?",
        None,
    ),
    "huge_mask": (
        "'mask' declares shape (100000, 100000) float32, 37.3 GiB; "
        "the limit is 2 GiB (MAX_SLICE_BYTES): a damaged file?",
        None,
    ),
    "nan": ("'kspace' contains NaN or Inf", 1),
    "nan_target": ("'reconstruction_esc' contains NaN or Inf", 1),
    "zero_target_slice": (
        "'reconstruction_esc' has no positive value (all zero?) and there is no 'max' attribute: no data range",
        1,
    ),
    "zero_target_without_max": (
        "'reconstruction_esc' has no positive value (all zero?) and there is no 'max' attribute: no data range",
        0,
    ),
    "max_far_above": (f"attribute 'max' is 1e+30, {FAR_ABOVE_REASON}", None),
    "max_uint64": (f"attribute 'max' is 1.84467e+19, {FAR_ABOVE_REASON}", None),
    "scaled_up": (f"attribute 'max' is 7.32802e+25, {RANGE_REASON}", None),
    "scaled_down": (f"attribute 'max' is 7.32802e-35, {RANGE_REASON}", None),
    "tiny_slice_without_max": (
        f"'reconstruction_esc' has maximum 7.32802e-35, its data range without 'max', {RANGE_REASON}",
        1,
    ),
    "heap_loop": (
        "HDF5 global heap collection at byte 20577 is damaged: object 0 at byte 88 of the collection declares "
        "0 bytes, which do not hold its own header (collection of 4096 bytes): a damaged file, which HDF5 would "
        "loop on or read past",
        None,
    ),
    "damaged_kspace_type": (
        "unreadable HDF5 structure (damaged file?): UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe4 in "
        "position 0: unexpected end of data",
        None,
    ),
    "non_utf8_target_name": (
        "no target dataset 'reconstruction_esc' (singlecoil); found b'r\\xe9construction_esc', ismrmrd_header, kspace",
        None,
    ),
    "zero_target_slice_with_max": (
        "'reconstruction_esc' is all zero: NMSE = ||x - target||^2 / ||target||^2 is undefined",
        1,
    ),
    "target_negative_spike": (
        "'reconstruction_esc' has a value of -7e+09, below minus its data range 7.32802e-05: fastMRI targets "
        "are magnitude images, within the data range",
        1,
    ),
    "middle_slice_above_max": (
        "attribute 'max' is 7.32802e-05, below the target's maximum 732802; it must be the volume's maximum "
        "(the data range of the metrics)",
        None,
    ),
    "kspace_spike": (
        "'kspace' holds a value of magnitude 1.7e+28, above 0.166 = 100 x the data range 7.33e-05 x "
        "sqrt(512 samples): by Parseval's theorem no k-space sample of an image within the data range exceeds "
        "data range x sqrt(samples) (a corrupt value?)",
        1,
    ),
}


def test_every_bad_kind_is_tested(bad_kinds, slice_kinds):
    assert sorted(BAD_KINDS_IN_DATASET + BAD_SLICE_KINDS + BAD_KINDS_FOUND_BY_CHECK_VALUES) == sorted(bad_kinds)
    assert sorted(BAD_SLICE_KINDS) == sorted(slice_kinds)


@pytest.mark.parametrize("kind", BAD_KINDS_IN_DATASET)
def test_bad_file_raises_naming_file_and_reason(tmp_path, singlecoil_volume, make_bad_volume, bad_kinds, kind):
    path = make_bad_volume(singlecoil_volume, tmp_path, kind, name=f"volume_{kind}.h5")
    with pytest.raises(FastMRIDataError) as raised:
        FastMRISliceDataset(tmp_path, "singlecoil")
    error = raised.value
    assert error.path == path
    assert path.name in str(error)
    assert bad_kinds[kind] in error.problem
    assert bad_kinds[kind] in str(error)
    assert "\n" not in str(error)
    assert error.slice_index == (0 if kind == "zero_target_without_max" else None)
    # inspect_volume gives the same error; reading every slice too (max_tiny then names the largest of all)
    with pytest.raises(FastMRIDataError) as inspected:
        inspect_volume(path, "singlecoil")
    assert str(inspected.value) == str(error)
    with pytest.raises(FastMRIDataError) as inspected:
        inspect_volume(path, "singlecoil", check_values=True)
    assert (inspected.value.path, inspected.value.slice_index) == (path, error.slice_index)
    assert bad_kinds[kind] in inspected.value.problem


@pytest.mark.parametrize("kind", sorted(EXACT_PROBLEMS))
def test_exact_problem_of_each_damage(tmp_path, singlecoil_volume, make_bad_volume, kind):
    problem, slice_index = EXACT_PROBLEMS[kind]
    path = make_bad_volume(singlecoil_volume, tmp_path, kind, name="v.h5")
    with pytest.raises(FastMRIDataError) as raised:
        inspect_volume(path, "singlecoil", check_values=True)
    assert (raised.value.problem, raised.value.slice_index) == (problem, slice_index)
    where = str(path) if slice_index is None else f"{path}, slice {slice_index}"
    assert str(raised.value) == f"{where}: {problem}"


def test_huge_declared_shapes_are_refused_before_any_read(tmp_path, singlecoil_volume, make_bad_volume, monkeypatch):
    """The huge_* files declare 37-75 GiB slices in files of a few kB: nothing is read."""
    reads = []
    original = h5py.Dataset.__getitem__
    monkeypatch.setattr(h5py.Dataset, "__getitem__", lambda self, key: reads.append(self.name) or original(self, key))
    for kind in ("huge_kspace", "huge_target", "too_many_slices"):
        path = make_bad_volume(singlecoil_volume, tmp_path / kind, kind)
        assert path.stat().st_size < 100_000
        reads.clear()
        with pytest.raises(FastMRIDataError, match="a damaged file"):
            inspect_volume(path, "singlecoil", check_values=True)
        assert "/kspace" not in reads and "/reconstruction_esc" not in reads


@pytest.mark.parametrize("kind", BAD_SLICE_KINDS)
def test_bad_slice_found_at_construction_with_check_values(
    tmp_path, singlecoil_volume, make_bad_volume, bad_kinds, kind
):
    path = make_bad_volume(singlecoil_volume, tmp_path, kind)
    with pytest.raises(FastMRIDataError) as raised:
        FastMRISliceDataset(tmp_path, "singlecoil", check_values=True)
    error = raised.value
    assert error.path == path and error.slice_index == 1
    assert str(error).startswith(f"{path}, slice 1: ")
    assert bad_kinds[kind] in error.problem


@pytest.mark.parametrize("kind", BAD_SLICE_KINDS)
def test_bad_slice_found_when_read_without_check_values(tmp_path, singlecoil_volume, make_bad_volume, bad_kinds, kind):
    path = make_bad_volume(singlecoil_volume, tmp_path, kind)
    dataset = FastMRISliceDataset(tmp_path, "singlecoil")  # check_values=False: first and last slices only
    assert len(dataset) == 3
    assert torch.isfinite(torch.view_as_real(dataset[0].kspace)).all()
    assert torch.isfinite(torch.view_as_real(dataset[2].kspace)).all()
    with pytest.raises(FastMRIDataError) as raised:
        dataset[1]
    error = raised.value
    assert error.path == path and error.slice_index == 1
    assert str(error).startswith(f"{path}, slice 1: ")
    assert bad_kinds[kind] in str(error)
    # the reader finds what inspect_volume finds
    with pytest.raises(FastMRIDataError) as inspected:
        inspect_volume(path, "singlecoil", check_values=True)
    assert inspected.value.slice_index == 1 and bad_kinds[kind] in inspected.value.problem


def test_a_datatype_damaged_after_construction_is_refused_when_read(
    tmp_path, singlecoil_volume, copy_volume, make_bad_volume
):
    """The reader's later reads turn h5py's ValueError on a damaged datatype into the error naming the slice."""
    volume = copy_volume(singlecoil_volume, tmp_path / "data" / "v.h5")
    dataset = FastMRISliceDataset(volume.parent, "singlecoil")
    damaged = make_bad_volume(singlecoil_volume, tmp_path / "bad", "damaged_kspace_type")
    volume.write_bytes(damaged.read_bytes())  # the same layout, one byte changed
    with pytest.raises(FastMRIDataError) as raised:
        dataset[0]
    assert (raised.value.path, raised.value.slice_index) == (volume, 0)
    assert raised.value.problem == (
        "cannot read the slice (truncated file or damaged chunk?): 'utf-8' codec can't decode byte 0xe4 in "
        "position 0: unexpected end of data"
    )


def _rewrite(hf: h5py.File, key: str, value: np.ndarray) -> None:
    del hf[key]
    hf[key] = value


def _as_compound(kspace: np.ndarray) -> np.ndarray:
    """``kspace`` as a compound of ("real", "imag") floats, which h5py does not read as complex."""
    pairs = np.zeros(kspace.shape, dtype=[("real", "<f4"), ("imag", "<f4")])
    pairs["real"], pairs["imag"] = kspace.real, kspace.imag
    return pairs


CHANGED = "the file changed since the reader checked it (rewritten?)"
#: A volume rewritten after the reader checked it -> the problem of its slice 2 when read.
REWRITES = {
    "one_slice_left": (
        lambda hf: [_rewrite(hf, key, hf[key][:1]) for key in ("kspace", "reconstruction_esc")],
        f"the slice is gone (Index (2) out of range for (0-0)): {CHANGED}",
    ),
    "narrower_kspace": (
        lambda hf: _rewrite(hf, "kspace", hf["kspace"][:, :, :8]),
        f"'kspace' slice is complex64 (32, 8), was complex (32, 16): {CHANGED}",
    ),
    "compound_kspace": (
        lambda hf: _rewrite(hf, "kspace", _as_compound(hf["kspace"][()])),
        f"'kspace' slice is [('real', '<f4'), ('imag', '<f4')] (32, 16), was complex (32, 16): {CHANGED}",
    ),
    "no_target": (lambda hf: hf.__delitem__("reconstruction_esc"), f"'reconstruction_esc' is gone: {CHANGED}"),
    "string_target": (
        lambda hf: _rewrite(hf, "reconstruction_esc", np.full((3, 16, 16), b"x")),
        f"'reconstruction_esc' slice is |S1 (16, 16), was float (16, 16): {CHANGED}",
    ),
}


@pytest.mark.parametrize("kind", sorted(REWRITES))
def test_a_file_rewritten_after_construction_is_refused_when_read(tmp_path, singlecoil_volume, copy_volume, kind):
    """A file rewritten while a reader holds it (e.g. synthetic data written again into the folder during a run)
    gives the error naming the slice, not h5py's IndexError, numpy's TypeError or a slice of another shape."""
    rewrite, problem = REWRITES[kind]
    volume = copy_volume(singlecoil_volume, tmp_path / "v.h5")
    dataset = FastMRISliceDataset(tmp_path, "singlecoil")
    with h5py.File(volume, "r+") as hf:
        rewrite(hf)
    with pytest.raises(FastMRIDataError) as raised:
        dataset[2]
    assert (raised.value.path, raised.value.slice_index, raised.value.problem) == (volume, 2, problem)


def test_a_compression_filter_hdf5_lacks_is_named(tmp_path, singlecoil_volume, copy_volume):
    """K-space compressed with a filter this HDF5 has no plugin for (blosc, 32001, as hdf5plugin writes it): every
    read fails, and the error names the filter and the way out instead of suggesting a damaged chunk."""
    volume = copy_volume(singlecoil_volume, tmp_path / "v.h5")
    with h5py.File(volume, "r+") as hf:
        kspace = hf["kspace"][()]
        del hf["kspace"]
        hf.create_dataset("kspace", data=kspace, chunks=(1, 32, 16), compression="gzip")
    data = bytearray(volume.read_bytes())
    deflate = b"\x01\x00\x08\x00\x01\x00\x01\x00deflate\x00"  # filter 1, 8-byte name, optional, 1 value
    assert data.count(deflate) == 1, "the filter pipeline is not where expected"
    start = data.index(deflate)
    data[start : start + len(deflate)] = b"\x01\x7d" + deflate[2:8] + b"blosc\x00\x00\x00"  # filter 32001
    volume.write_bytes(bytes(data))
    with pytest.raises(FastMRIDataError) as raised:
        FastMRISliceDataset(tmp_path, "singlecoil")
    assert (raised.value.path, raised.value.slice_index) == (volume, 0)
    assert raised.value.problem.startswith(
        "cannot read 'kspace' (compressed with HDF5 filter 32001 (blosc), which this HDF5 has no plugin for: "
        "point HDF5_PLUGIN_PATH at one, e.g. hdf5plugin's PLUGIN_PATH, or rewrite the file without it, "
        "h5repack -f NONE): "
    )
    info = inspect_volume(volume, "singlecoil", check_values=True, keep_bad_slices=True)
    assert [error.slice_index for error in info.bad_slices] == [0, 1, 2]


def test_a_middle_slice_above_max_is_refused_when_read(tmp_path, singlecoil_volume, make_bad_volume):
    """The default reader reads the first and last slices at construction; a middle slice brighter than 'max'
    (its values far outside the data range: SSIM's float32 moments would overflow) is refused when read, with
    the message data check gives the file."""
    path = make_bad_volume(singlecoil_volume, tmp_path, "middle_slice_above_max")
    dataset = FastMRISliceDataset(tmp_path, "singlecoil")
    assert len(dataset) == 3 and dataset[0].metadata.max_value == dataset[2].metadata.max_value
    with pytest.raises(FastMRIDataError) as raised:
        dataset[1]
    problem, _ = EXACT_PROBLEMS["middle_slice_above_max"]
    assert (raised.value.path, raised.value.slice_index, raised.value.problem) == (path, 1, problem)
    with pytest.warns(UserWarning, match="skipped 1 bad file"), pytest.raises(FileNotFoundError):
        FastMRISliceDataset(tmp_path, "singlecoil", on_bad_file="skip")


@pytest.mark.parametrize("kind", ["nan", "nan_target", "unreadable_chunk"])
def test_multicoil_bad_slice(tmp_path, multicoil_volume, make_bad_volume, bad_kinds, kind):
    path = make_bad_volume(multicoil_volume, tmp_path, kind, challenge="multicoil")
    with pytest.raises(FastMRIDataError, match="slice 1") as raised:
        FastMRISliceDataset(tmp_path, "multicoil", check_values=True)
    assert raised.value.path == path and bad_kinds[kind] in raised.value.problem
    with pytest.warns(UserWarning, match=r"skipped 0 bad file\(s\), and 1 bad slice\(s\) of 1 file"):
        dataset = FastMRISliceDataset(tmp_path, "multicoil", on_bad_file="skip")
    assert [dataset[i].metadata.slice_index for i in range(len(dataset))] == [0, 2]


def _fail_on_z(original):
    """fastmri's et_query, failing on the <z> fields, which mri_rl's own parsing reads too but accepts."""

    def et_query(root, qlist, namespace="http://www.ismrm.org/ISMRMRD"):
        if qlist[-1] == "z":
            raise RuntimeError("Element not found")
        return original(root, qlist, namespace)

    return et_query


def _other_center(original):
    """fastmri's et_query, reading another kspace_encoding_step_1 center than the file's."""

    def et_query(root, qlist, namespace="http://www.ismrm.org/ISMRMRD"):
        value = original(root, qlist, namespace)
        return str(int(value) + 1) if qlist[-2:] == ["kspace_encoding_step_1", "center"] else value

    return et_query


@pytest.mark.parametrize(
    ("patch", "problem"),
    [
        (_fail_on_z, "fastmri cannot read the file's header or attributes: RuntimeError: Element not found"),
        (
            _other_center,
            "fastmri reads padding and recon size (-1, 15, (16, 16, 1)) from the header, mri_rl (0, 16, (16, 16, 1))",
        ),
    ],
)
def test_a_header_that_fastmri_reads_otherwise_is_bad(
    tmp_path, singlecoil_volume, copy_volume, monkeypatch, patch, problem
):
    """Validation runs fastmri's own header parsing too: a header that passes mri_rl's but not
    fastmri's (or reads differently) is one FastMRIDataError, not a traceback in SliceDataset."""
    path = copy_volume(singlecoil_volume, tmp_path / "v.h5")
    monkeypatch.setattr(mri_data, "et_query", patch(mri_data.et_query))
    with pytest.raises(FastMRIDataError) as raised:
        FastMRISliceDataset(tmp_path, "singlecoil")
    assert str(raised.value) == f"{path}: {problem}"
    with pytest.warns(UserWarning, match="skipped 1 bad file"):
        with pytest.raises(FileNotFoundError, match="no usable fastMRI volume"):
            FastMRISliceDataset(tmp_path, "singlecoil", on_bad_file="skip")


def test_reader_uses_the_header_metadata_validation_read(tmp_path, singlecoil_volume, copy_volume):
    copy_volume(singlecoil_volume, tmp_path / "v.h5")
    dataset = FastMRISliceDataset(tmp_path, "singlecoil")
    info = dataset.volumes[tmp_path / "v.h5"]
    assert info.fastmri_metadata["recon_size"] == (16, 16, 1)
    assert all(sample.metadata is info.fastmri_metadata for sample in dataset.raw_samples)


def test_truncated_multicoil_file(tmp_path, multicoil_volume, make_bad_volume):
    path = make_bad_volume(multicoil_volume, tmp_path, "truncated", challenge="multicoil")
    with pytest.raises(FastMRIDataError, match="truncated") as raised:
        FastMRISliceDataset(tmp_path, "multicoil")
    assert path.name in str(raised.value)


def test_file_of_the_other_challenge_is_rejected(tmp_path, singlecoil_volume, multicoil_volume, copy_volume):
    single = copy_volume(singlecoil_volume, tmp_path / "single" / "a.h5")
    multi = copy_volume(multicoil_volume, tmp_path / "multi" / "b.h5")
    with pytest.raises(FastMRIDataError, match=r"a\.h5: 'kspace' has shape \(3, 32, 16\); multicoil expects 4"):
        FastMRISliceDataset(single.parent, "multicoil")
    with pytest.raises(FastMRIDataError, match=r"b\.h5: 'kspace' has shape \(3, 3, 32, 16\); singlecoil expects 3"):
        FastMRISliceDataset(multi.parent, "singlecoil")


def test_empty_kspace_is_rejected(tmp_path):
    geometry = KspaceGeometry((16, 8, 1), (8, 8, 1), 0, 8)
    path = write_volume(tmp_path / "empty.h5", np.zeros((0, 16, 8), np.complex64), None, "singlecoil", geometry)
    with pytest.raises(FastMRIDataError, match=r"empty\.h5: 'kspace' has no slices"):
        FastMRISliceDataset(tmp_path, "singlecoil", require_target=False)
    assert path.exists()


def test_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .h5 files") as raised:
        FastMRISliceDataset(tmp_path, "singlecoil")
    assert str(tmp_path) in str(raised.value)


def test_missing_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="does not exist") as raised:
        FastMRISliceDataset(missing, "singlecoil")
    assert "nowhere" in str(raised.value)


def test_folder_that_is_a_file(singlecoil_volume):
    with pytest.raises(NotADirectoryError, match="not a directory"):
        list_volumes(singlecoil_volume)


def test_unknown_challenge(singlecoil_root):
    with pytest.raises(ValueError, match="'bogus'.*singlecoil, multicoil"):
        FastMRISliceDataset(singlecoil_root / "singlecoil_train", "bogus")
    with pytest.raises(ValueError, match="bogus"):
        inspect_volume(files_of(singlecoil_root / "singlecoil_train")[0], "bogus")


def test_invalid_on_bad_file(singlecoil_root):
    with pytest.raises(ValueError, match="on_bad_file.*'ignore'"):
        FastMRISliceDataset(singlecoil_root / "singlecoil_train", "singlecoil", on_bad_file="ignore")


def test_list_volumes_sorted_and_only_h5(tmp_path, singlecoil_volume, copy_volume):
    for name in ("c.h5", "a.h5", "b.h5"):
        copy_volume(singlecoil_volume, tmp_path / name)
    (tmp_path / "d.txt").write_text("x")
    (tmp_path / "e.h5").mkdir()
    (tmp_path / "f.h5").symlink_to(tmp_path / "e.h5")  # a link to a directory
    (tmp_path / "g.h5").symlink_to(tmp_path / "not_mounted" / "g.h5")  # a link to nothing: a bad file, listed
    assert list_volumes(tmp_path) == [tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5", tmp_path / "g.h5"]


def test_a_link_to_a_missing_file_is_a_bad_file(tmp_path, singlecoil_volume, copy_volume, make_bad_volume):
    """A volume on a disk not mounted is named, by "raise" and by "skip", not left out unsaid."""
    copy_volume(singlecoil_volume, tmp_path / "a_good.h5")
    link = make_bad_volume(singlecoil_volume, tmp_path, "dangling_link", name="b_link.h5")
    problem = (
        f"a link to {tmp_path / 'not_mounted' / 'b_link.h5'}, which does not exist "
        "(on a disk not mounted?); expected a fastMRI .h5 file"
    )
    with pytest.raises(FastMRIDataError) as raised:
        FastMRISliceDataset(tmp_path, "singlecoil")
    assert (raised.value.path, raised.value.problem, raised.value.slice_index) == (link, problem, None)
    with pytest.warns(UserWarning, match=r"skipped 1 bad file\(s\)"):
        dataset = FastMRISliceDataset(tmp_path, "singlecoil", on_bad_file="skip")
    assert list(dataset.volumes) == [tmp_path / "a_good.h5"]
    assert [str(error) for error in dataset.skipped] == [f"{link}: {problem}"]


def test_inspecting_a_missing_file(tmp_path):
    with pytest.raises(FastMRIDataError) as raised:
        inspect_volume(tmp_path / "gone.h5", "singlecoil")
    assert str(raised.value) == f"{tmp_path / 'gone.h5'}: no such file; expected a fastMRI .h5 file"


# --------------------------------------------------------------------------- on_bad_file="skip"


def test_skip_bad_files_and_bad_slices_warns_once(tmp_path, singlecoil_root, copy_volume, make_bad_volume):
    """ "skip" reads every slice: it leaves out the bad files and the bad middle slices of otherwise
    good files (keeping their good slices), with one warning listing them all."""
    good = files_of(singlecoil_root / "singlecoil_train")
    for path in good:
        copy_volume(path, tmp_path)
    source = good[0]
    bad_files = [
        make_bad_volume(source, tmp_path, "not_hdf5", name="0_random.h5"),
        make_bad_volume(source, tmp_path, "truncated", name="1_truncated.h5"),
        make_bad_volume(source, tmp_path, "no_kspace", name="2_no_kspace.h5"),
        make_bad_volume(source, tmp_path, "huge_kspace", name="3_huge.h5"),
        make_bad_volume(source, tmp_path, "zero_target_without_max", name="4_all_slices_bad.h5"),
    ]
    partly_bad = [make_bad_volume(source, tmp_path, kind, name=f"zz_{kind}.h5") for kind in ("nan", "unreadable_chunk")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = FastMRISliceDataset(tmp_path, "singlecoil", on_bad_file="skip")
    assert len(caught) == 1 and issubclass(caught[0].category, UserWarning)
    message = str(caught[0].message)
    header, *listing = message.split("\n  ")
    assert header == (
        f"skipped 5 bad file(s), and 2 bad slice(s) of 2 file(s) whose other slices are used, in {tmp_path}:"
    )
    assert listing == [str(error) for error in dataset.skipped]
    assert [(error.path.name, error.slice_index) for error in dataset.skipped] == [
        ("0_random.h5", None),
        ("1_truncated.h5", None),
        ("2_no_kspace.h5", None),
        ("3_huge.h5", None),
        ("4_all_slices_bad.h5", 0),
        ("4_all_slices_bad.h5", 1),
        ("4_all_slices_bad.h5", 2),
        ("zz_nan.h5", 1),
        ("zz_unreadable_chunk.h5", 1),
    ]
    assert f"{partly_bad[0]}, slice 1: 'kspace' contains NaN or Inf" in listing
    assert listing[-1].startswith(f"{partly_bad[1]}, slice 1: cannot read 'kspace' (truncated file or damaged chunk?)")
    assert not set(bad_files) & set(dataset.volumes)
    assert list(dataset.volumes) == [tmp_path / p.name for p in good] + partly_bad
    assert len(dataset) == 2 * 3 + 2 * 2
    items = [dataset[i] for i in range(len(dataset))]  # no slice left raises
    assert [(item.metadata.file.name, item.metadata.slice_index) for item in items[6:]] == [
        ("zz_nan.h5", 0),
        ("zz_nan.h5", 2),
        ("zz_unreadable_chunk.h5", 0),
        ("zz_unreadable_chunk.h5", 2),
    ]
    with h5py.File(source, "r") as hf:
        for item in items[6:]:
            np.testing.assert_array_equal(item.kspace.numpy(), hf["kspace"][item.metadata.slice_index])
            np.testing.assert_array_equal(item.target.numpy(), hf["reconstruction_esc"][item.metadata.slice_index])


def test_a_skipping_dataset_pickles(tmp_path, singlecoil_volume, copy_volume, make_bad_volume):
    """DataLoader workers started by spawn get a pickled dataset: its skipped errors included."""
    copy_volume(singlecoil_volume, tmp_path / "a_good.h5")
    make_bad_volume(singlecoil_volume, tmp_path, "nan", name="b_nan.h5")
    make_bad_volume(singlecoil_volume, tmp_path, "no_kspace", name="c_bad.h5")
    with pytest.warns(UserWarning, match="skipped 1 bad file"):
        dataset = FastMRISliceDataset(tmp_path, "singlecoil", on_bad_file="skip")
    copy = pickle.loads(pickle.dumps(dataset))
    assert [str(error) for error in copy.skipped] == [str(error) for error in dataset.skipped]
    assert [(e.path, e.slice_index, e.problem) for e in copy.skipped] == [
        (e.path, e.slice_index, e.problem) for e in dataset.skipped
    ]
    assert len(copy) == len(dataset) == 5
    assert torch.equal(copy[4].kspace, dataset[4].kspace) and copy[4].metadata == dataset[4].metadata


def test_raise_policy_raises_the_first_bad_slice(tmp_path, singlecoil_volume, copy_volume, make_bad_volume):
    copy_volume(singlecoil_volume, tmp_path / "a_good.h5")
    make_bad_volume(singlecoil_volume, tmp_path, "nan", name="b_nan.h5")
    make_bad_volume(singlecoil_volume, tmp_path, "no_kspace", name="c_bad.h5")
    with pytest.raises(FastMRIDataError) as raised:
        FastMRISliceDataset(tmp_path, "singlecoil", check_values=True)
    assert (raised.value.path.name, raised.value.slice_index) == ("b_nan.h5", 1)


def test_skip_with_no_bad_file_does_not_warn(singlecoil_root):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = FastMRISliceDataset(singlecoil_root / "singlecoil_val", "singlecoil", on_bad_file="skip")
    assert len(dataset) == 3 and dataset.skipped == []


def test_skip_when_all_files_are_bad_raises(tmp_path, singlecoil_volume, make_bad_volume):
    make_bad_volume(singlecoil_volume, tmp_path, "not_hdf5")
    make_bad_volume(singlecoil_volume, tmp_path, "no_kspace")
    make_bad_volume(singlecoil_volume, tmp_path, "zero_target_without_max")  # every slice bad
    with pytest.warns(UserWarning, match=r"skipped 3 bad file\(s\), and 0 bad slice\(s\) of 0 file\(s\)"):
        with pytest.raises(FileNotFoundError, match="no usable fastMRI volume"):
            FastMRISliceDataset(tmp_path, "singlecoil", on_bad_file="skip")


def test_raise_policy_stops_at_first_bad_file(tmp_path, singlecoil_volume, copy_volume, make_bad_volume):
    copy_volume(singlecoil_volume, tmp_path / "a_good.h5")
    make_bad_volume(singlecoil_volume, tmp_path, "no_kspace", name="b_bad.h5")
    make_bad_volume(singlecoil_volume, tmp_path, "not_hdf5", name="c_bad.h5")
    with pytest.raises(FastMRIDataError) as raised:
        FastMRISliceDataset(tmp_path, "singlecoil", on_bad_file="raise")
    assert raised.value.path.name == "b_bad.h5"


# --------------------------------------------------------------------------- resolve_split_folder


def test_resolve_split_folder_of_a_fastmri_root(singlecoil_root, multicoil_root):
    assert resolve_split_folder(singlecoil_root, "singlecoil", "train") == singlecoil_root / "singlecoil_train"
    assert resolve_split_folder(singlecoil_root, "singlecoil", "test") == singlecoil_root / "singlecoil_test"
    assert resolve_split_folder(str(multicoil_root), "multicoil", "val") == multicoil_root / "multicoil_val"


def test_resolve_split_folder_of_h5_files(singlecoil_root):
    folder = singlecoil_root / "singlecoil_val"
    for split in ("train", "val", "test"):
        assert resolve_split_folder(folder, "singlecoil", split) == folder


def test_resolve_split_folder_otherwise_fails(tmp_path, singlecoil_root):
    with pytest.raises(FileNotFoundError, match="multicoil_train"):
        resolve_split_folder(singlecoil_root, "multicoil", "train")  # root of the other challenge
    with pytest.raises(FileNotFoundError):
        resolve_split_folder(tmp_path, "singlecoil", "train")  # empty
    with pytest.raises(FileNotFoundError):
        resolve_split_folder(tmp_path / "missing", "singlecoil", "train")
    with pytest.raises(ValueError, match="split"):
        resolve_split_folder(singlecoil_root, "singlecoil", "validation")
    with pytest.raises(ValueError, match="challenge"):
        resolve_split_folder(singlecoil_root, "bogus", "train")


# --------------------------------------------------------------------------- inspect_volume


def test_inspect_volume_describes_a_good_file(multicoil_volume):
    info = inspect_volume(multicoil_volume, "multicoil", check_values=True)
    assert info.path == multicoil_volume
    assert info.num_slices == 3
    assert info.slice_shape == (3, 32, 16)
    assert info.num_coils == 3
    assert info.has_target is True
    with h5py.File(multicoil_volume, "r") as hf:
        assert info.max_value == float(hf.attrs["max"])
    assert info.geometry == KspaceGeometry((32, 16, 1), (16, 16, 1), 0, 16)


# --------------------------------------------------------------------------- ISMRMRD header


GEOMETRIES = [
    KspaceGeometry((640, 368, 1), (320, 320, 1), 17, 351),  # fastMRI knee
    KspaceGeometry((640, 320, 1), (320, 320, 1), 0, 320),  # fastMRI brain
    KspaceGeometry((32, 16, 1), (16, 16, 1), 0, 16),
    KspaceGeometry((32, 36, 1), (16, 16, 1), 3, 30),  # asymmetric padding
    KspaceGeometry((32, 17, 1), (16, 16, 1), 2, 15),  # odd width
]


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("num_coils", [1, 15])
def test_header_round_trip(geometry, num_coils):
    header = build_header(geometry, num_coils)
    assert isinstance(header, bytes)
    assert f"<receiverChannels>{num_coils}</receiverChannels>".encode() in header
    assert parse_geometry(header) == geometry
    assert parse_geometry(header.decode()) == geometry


@pytest.mark.parametrize("geometry", GEOMETRIES[2:])
def test_written_geometry_gives_fastmri_padding(tmp_path, geometry):
    rows, cols, _ = geometry.encoded_size
    rng = np.random.default_rng(0)
    kspace = (rng.standard_normal((2, rows, cols)) + 1j * rng.standard_normal((2, rows, cols))).astype(np.complex64)
    target = rng.random((2, 16, 16)).astype(np.float32)
    write_volume(tmp_path / "v.h5", kspace, target, "singlecoil", geometry)
    _, _, _, attrs, _, _ = SliceDataset(tmp_path, "singlecoil")[1]
    assert (attrs["padding_left"], attrs["padding_right"]) == (geometry.padding_left, geometry.padding_right)
    assert tuple(attrs["encoding_size"]) == geometry.encoded_size
    assert tuple(attrs["recon_size"]) == geometry.recon_size
    assert inspect_volume(tmp_path / "v.h5", "singlecoil").geometry == geometry
    item = FastMRISliceDataset(tmp_path, "singlecoil")[1]
    assert (item.metadata.padding_left, item.metadata.padding_right) == (geometry.padding_left, geometry.padding_right)


def test_parse_geometry_of_a_real_fastmri_style_header():
    """A header in the layout of real fastMRI knee files (extra fields, other limits)."""
    header = b"""<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD" xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <studyInformation><studyTime>12:00:00</studyTime></studyInformation>
  <encoding>
    <encodedSpace><matrixSize><x>640</x><y>372</y><z>1</z></matrixSize></encodedSpace>
    <reconSpace><matrixSize><x>320</x><y>320</y><z>1</z></matrixSize></reconSpace>
    <trajectory>cartesian</trajectory>
    <encodingLimits>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>334</maximum><center>168</center></kspace_encoding_step_1>
      <kspace_encoding_step_2><minimum>0</minimum><maximum>0</maximum><center>0</center></kspace_encoding_step_2>
    </encodingLimits>
  </encoding>
</ismrmrdHeader>"""
    geometry = parse_geometry(header)
    # fastMRI: padding_left = 372 // 2 - 168 = 18, padding_right = 18 + 334 + 1 = 353
    assert geometry == KspaceGeometry((640, 372, 1), (320, 320, 1), 18, 353)
    assert geometry.acquired_width == 335


def test_parse_geometry_names_a_missing_field():
    header = build_header(GEOMETRIES[2], 1).replace(
        b"<center>8</center></kspace_encoding_step_1>", b"</kspace_encoding_step_1>"
    )
    with pytest.raises(ValueError, match="kspace_encoding_step_1/center"):
        parse_geometry(header)


def test_parse_geometry_needs_the_namespace():
    header = build_header(GEOMETRIES[2], 1).replace(b' xmlns="http://www.ismrm.org/ISMRMRD"', b"")
    with pytest.raises(ValueError, match="namespace"):
        parse_geometry(header)


def test_parse_geometry_of_malformed_xml_raises_value_error():
    with pytest.raises(ValueError, match="XML"):
        parse_geometry(b"<ismrmrdHeader><encoding>")


def test_the_data_range_must_be_positive_and_finite():
    import torch

    from mri_rl.kspace import data_range

    assert data_range(None, torch.tensor([[0.0, 2.5]])) == 2.5
    assert data_range(3.0, torch.zeros(2, 2)) == 3.0
    for max_value, target in ((None, torch.zeros(2, 2)), (float("nan"), torch.ones(1)), (-1.0, torch.ones(1))):
        with pytest.raises(ValueError, match="data range .* is not a positive finite number"):
            data_range(max_value, target)


# --------------------------------------------------------------------------- the HDF5 global heap


def _collection(*objects: tuple[int, bytes], size: int = 4096) -> bytes:
    """A global heap collection (8-byte lengths) of ``objects`` (index, data), then its free space."""
    body = b"GCOL" + bytes([1, 0, 0, 0]) + size.to_bytes(8, "little")
    for index, data in objects:
        padded = data + bytes(-len(data) % 8)
        body += index.to_bytes(2, "little") + bytes(6) + len(data).to_bytes(8, "little") + padded
    free = size - len(body)
    return body + bytes(8) + free.to_bytes(8, "little") + bytes(free - 16)


def test_global_heap_problem_walks_the_objects_as_hdf5_does():
    sound = _collection((1, b"CORPD_FBK"), (2, b"synthetic-0-train-000"))
    assert global_heap_problem(sound) is None
    free_space = 16 + 16 + 16 + 16 + 24  # header, then two objects
    looping = sound[: free_space + 8] + bytes(8) + sound[free_space + 16 :]  # free space of size 0
    assert global_heap_problem(looping) == (
        "object 0 at byte 88 of the collection declares 0 bytes, which do not hold its own header "
        "(collection of 4096 bytes)"
    )
    past_end = sound[:24] + (5000).to_bytes(8, "little") + sound[32:]  # object 1 declares 5000 bytes
    assert global_heap_problem(past_end) == (
        "object 1 at byte 16 of the collection declares 5000 bytes, which run past its end (collection of 4096 bytes)"
    )


def test_the_bytes_that_hung_hdf5_give_an_error(tmp_path, singlecoil_volume):
    """9 random bytes at offset 20665 of this volume (found by scripts/bad_inputs.py) turn the free space of its
    global heap (the 'acquisition' and 'patient_id' strings) into an object 29028 followed by a zero-size free
    space: HDF5 2.0's H5HG__cache_heap_deserialize then loops forever in h5py's ``attrs[...]`` read (H5Aread),
    which fastmri's ``SliceDataset._retrieve_metadata`` does (``dict(hf.attrs)``)."""
    data = bytearray(singlecoil_volume.read_bytes())
    assert data.index(b"GCOL") == 20577 and data[20665:20673] == bytes(8)  # the free-space header the bytes hit
    data[20665:20674] = b"dq\xfb\x1bc\xeaiL\x1e"
    path = tmp_path / "damaged.h5"
    path.write_bytes(bytes(data))
    expected = (
        f"{path}: HDF5 global heap collection at byte 20577 is damaged: object 0 at byte 3976 of the collection "
        "declares 0 bytes, which do not hold its own header (collection of 4096 bytes): a damaged file, which "
        "HDF5 would loop on or read past"
    )
    with pytest.raises(FastMRIDataError) as raised:
        inspect_volume(path, "singlecoil", check_values=True, keep_bad_slices=True)
    assert str(raised.value) == expected
    with pytest.warns(UserWarning, match="skipped 1 bad file"), pytest.raises(FileNotFoundError):
        FastMRISliceDataset(tmp_path, "singlecoil", on_bad_file="skip")


def test_a_variable_length_header_and_string_attributes_pass_the_heap_check(tmp_path, singlecoil_volume, copy_volume):
    """Strings in the global heap (a variable-length ismrmrd_header, str attributes) are read and checked."""
    path = copy_volume(singlecoil_volume, tmp_path / "v.h5")
    with h5py.File(path, "r+") as hf:
        header = hf["ismrmrd_header"][()].decode()
        del hf["ismrmrd_header"]
        hf.create_dataset("ismrmrd_header", data=header, dtype=h5py.string_dtype())
        hf.attrs["comment"] = "GCOL in a string"
    assert inspect_volume(path, "singlecoil", check_values=True).num_slices == 3
    assert len(FastMRISliceDataset(tmp_path, "singlecoil")) == 3
