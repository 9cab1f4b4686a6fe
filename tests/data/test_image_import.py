"""Importing magnitude images (NIfTI, DICOM, image stacks) as fastMRI volumes of simulated k-space:
readable by fastmri and our validation, physics, content and orientation, splits, determinism, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import fastmri
import h5py
import numpy as np
import pytest
import torch
from fastmri.data import SliceDataset
from fastmri.data.transforms import center_crop

from mri_rl import cli
from mri_rl.cli.data import ORIENTATION_CHOICES
from mri_rl.data.fastmri_files import inspect_volume
from mri_rl.data.image_import import (
    IMAGE_SCALE,
    ORIENTATIONS,
    ImportSettings,
    evenly_spaced,
    import_images,
    parse_split,
    read_import_settings,
    slab_ranges,
    split_counts,
)
from mri_rl.data.image_sources import ImageImportError, load_source
from mri_rl.data.simulated_kspace import SimulationSpec

nib = pytest.importorskip("nibabel")

TARGET_KEYS = {"singlecoil": "reconstruction_esc", "multicoil": "reconstruction_rss"}


def phantom(shape: tuple[int, int, int] = (16, 16, 12), seed: int = 0) -> np.ndarray:
    """A positive, asymmetric blob (x, y, z) with texture; the first and last z slices are empty."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    body = (x / 0.85) ** 2 + (y / 0.7) ** 2 + (z / 0.8) ** 2 < 1
    texture = 1 + 0.5 * np.sin(4 * x + 2 * y + z) + 0.4 * (x > 0.3) + 0.2 * rng.random(shape)
    return (1000 * body * texture).astype(np.float32)


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
    return path


def write_dicom_series(
    folder: Path, stack: np.ndarray, patient: str = "P1", series: str = "1.2.3.4", z_order: list[int] | None = None
) -> Path:
    """Axial DICOM slices of ``stack`` (slices, rows, cols), slice k at z = 2k mm, written in ``z_order`` with
    file names and InstanceNumbers that do not follow the position."""
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ImplicitVRLittleEndian, SecondaryCaptureImageStorage

    folder.mkdir(parents=True, exist_ok=True)
    order = list(range(len(stack)))[::-1] if z_order is None else z_order
    for written, k in enumerate(order):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
        meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        meta.TransferSyntaxUID = ImplicitVRLittleEndian
        path = folder / f"img{(7 * written) % len(stack):03d}_{k}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.PatientID, ds.SeriesInstanceUID, ds.InstanceNumber = patient, series, written + 1
        ds.ImagePositionPatient = [-10.0, -20.0, 2.0 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [1.0, 1.0]
        ds.Rows, ds.Columns = stack.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = stack[k].astype(np.uint16).tobytes()
        ds.save_as(path, enforce_file_format=True)
    return folder


def axial(data: np.ndarray, k: int) -> np.ndarray:
    """Axial slice k of a RAS volume as the import shows it: anterior (high y) at the top, x along columns."""
    return np.flip(data[:, :, k].T, axis=0)


def read(path: Path, challenge: str = "singlecoil") -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as hf:
        return hf["kspace"][()], hf[TARGET_KEYS[challenge]][()]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def quiet_spec(**changes) -> SimulationSpec:
    return SimulationSpec(**{"size": 16, "num_slices": None, "noise_level": 0.0, **changes})


# --------------------------------------------------------------------------- readable files


@pytest.mark.parametrize("challenge", ["singlecoil", "multicoil"])
def test_nifti_and_dicom_import_to_files_fastmri_and_our_validation_read(tmp_path, challenge):
    nifti = write_nifti(tmp_path / "sub-01.nii.gz", phantom())
    dicom = write_dicom_series(tmp_path / "dicom", phantom((12, 16, 16), 1).astype(np.uint16), patient="P2")
    spec = SimulationSpec(challenge=challenge, size=16, kspace_width=20, padding=2, num_coils=2, num_slices=3)
    written = import_images([nifti, dicom], tmp_path / "out", spec, ImportSettings(split={"train": 1}), False)
    assert len(written) == 2
    for path in written:
        info = inspect_volume(path, challenge, check_values=True)
        assert info.num_slices == 3
        assert info.slice_shape == ((32, 20) if challenge == "singlecoil" else (2, 32, 20))
        assert (info.geometry.padding_left, info.geometry.padding_right) == (2, 18)
    dataset = SliceDataset(root=tmp_path / "out" / f"{challenge}_train", challenge=challenge, use_dataset_cache=False)
    assert len(dataset) == 6
    kspace, _, target, attrs, _, _ = dataset[0]
    assert target.shape == (16, 16) and attrs["padding_left"] == 2 and attrs["padding_right"] == 18
    assert np.all(kspace[..., :2] == 0) and np.all(np.abs(kspace[..., 2:18]).sum(axis=-2) > 0)


# --------------------------------------------------------------------------- physics and content


@pytest.mark.parametrize("challenge", ["singlecoil", "multicoil"])
def test_target_is_the_reconstruction_of_the_stored_kspace(tmp_path, challenge):
    source = write_nifti(tmp_path / "a.nii", phantom())
    spec = quiet_spec(challenge=challenge, num_coils=3, kspace_width=20)
    (path,) = import_images([source], tmp_path / "out", spec, ImportSettings(split={"test": 1}), False)
    kspace, target = read(path, challenge)
    magnitude = fastmri.complex_abs(fastmri.ifft2c(torch.view_as_real(torch.from_numpy(kspace))))
    if challenge == "multicoil":
        magnitude = fastmri.rss(magnitude, dim=1)
    expected = center_crop(magnitude, (16, 16)).numpy()
    assert np.abs(target - expected).max() < 1e-3 * target.max()


def test_imported_image_is_the_source_slice(tmp_path):
    data = phantom()
    source = write_nifti(tmp_path / "a.nii", data)
    (path,) = import_images([source], tmp_path / "out", quiet_spec(), ImportSettings(split={"train": 1}), False)
    _, target = read(path)
    slices = read_import_settings(tmp_path / "out", "singlecoil")["sources"][0]["files"][0]["slices"]
    fractions = (data > 0.05 * data.max()).mean(axis=(0, 1))
    assert slices == [k for k in range(12) if fractions[k] >= 0.05] and 0 < len(slices) < 12  # empty ends skipped
    for image, k in zip(target, slices):
        expected = axial(data, k) * (IMAGE_SCALE / data.max())  # each volume's maximum becomes IMAGE_SCALE
        assert correlation(image, expected) > 0.9999
        np.testing.assert_allclose(image, expected, rtol=0, atol=1e-4 * IMAGE_SCALE)


def test_resize_keeps_the_aspect_ratio_and_zero_pads(tmp_path):
    """A 24 x 12 mm axial field of view fills 16 x 8 pixels of the 16 x 16 target, centred."""
    from skimage.transform import resize

    data = phantom((24, 12, 8))
    source = write_nifti(tmp_path / "wide.nii.gz", data)
    settings = ImportSettings(split={"train": 1}, min_foreground=0.0)
    (path,) = import_images([source], tmp_path / "out", quiet_spec(num_slices=2), settings, False)
    _, target = read(path)
    assert np.all(target[:, :4] < 1e-6 * target.max()) and np.all(target[:, 12:] < 1e-6 * target.max())
    slices = read_import_settings(tmp_path / "out", "singlecoil")["sources"][0]["files"][0]["slices"]
    for image, k in zip(target, slices):
        expected = resize(axial(data, k).astype(np.float64), (8, 16), order=1, anti_aliasing=True)
        assert correlation(image[4:12], expected) > 0.999


def test_voxel_size_decides_the_aspect_ratio(tmp_path):
    """16 x 8 voxels of 1 x 2 mm are a square field of view: the image fills the target."""
    data = phantom((16, 8, 6))
    source = write_nifti(tmp_path / "a.nii", data, np.diag([1.0, 2.0, 1.0, 1.0]))
    settings = ImportSettings(split={"train": 1}, min_foreground=0.0)
    (path,) = import_images([source], tmp_path / "out", quiet_spec(num_slices=1), settings, False)
    _, target = read(path)
    rows = np.flatnonzero(target[0].max(axis=1) > 0.01 * target.max())
    assert rows[0] <= 3 and rows[-1] >= 12  # without the 2 mm rows: 8 rows, about 5 to 10


def test_orientation_follows_the_affine_not_the_voxel_order(tmp_path):
    """The same anatomy stored flipped and with permuted axes (and the matching affine) imports to the same data."""
    data = phantom((16, 14, 12))
    ras = write_nifti(tmp_path / "ras.nii", data)
    flipped = np.flip(data, axis=0).transpose(2, 0, 1)  # voxel (k, i, j) holds RAS (15 - i, j, k)
    affine = np.array([[0, -1, 0, 15], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    other = write_nifti(tmp_path / "other.nii", np.ascontiguousarray(flipped), affine)
    settings = ImportSettings(orientations=tuple(ORIENTATIONS), split={"val": 1})
    first = import_images([ras], tmp_path / "a", quiet_spec(noise_level=0.01), settings, False)
    second = import_images([other], tmp_path / "b", quiet_spec(noise_level=0.01), settings, False)
    assert len(first) == len(second) == 3
    for a, b in zip(first, second):
        for dataset_a, dataset_b in zip(read(a), read(b)):
            np.testing.assert_array_equal(dataset_a, dataset_b)


def test_dicom_slices_are_sorted_by_position_and_use_the_patient_axes(tmp_path):
    """Files and InstanceNumbers in another order than ImagePositionPatient; LPS columns become RAS+."""
    stack = phantom((8, 16, 16), 3)  # (slices, rows, cols)
    folder = write_dicom_series(tmp_path / "series", stack.astype(np.uint16), z_order=[3, 0, 7, 1, 6, 2, 5, 4])
    settings = ImportSettings(split={"train": 1}, min_foreground=0.0)
    (path,) = import_images([folder], tmp_path / "out", quiet_spec(), settings, False)
    _, target = read(path)
    assert target.shape[0] == 8
    for k, image in enumerate(target):
        if stack[k].max() == 0:
            continue
        # DICOM rows run anterior to posterior like ours; its columns run to the patient's left, ours to the right.
        expected = np.fliplr(stack[k].astype(np.uint16).astype(np.float64))
        assert correlation(image, expected) > 0.9999


def _move_slice(folder: Path, k: int, dz: float) -> None:
    """Slice k of a :func:`write_dicom_series` folder moved by ``dz`` mm along z."""
    pydicom = pytest.importorskip("pydicom")
    (path,) = folder.glob(f"*_{k}.dcm")
    ds = pydicom.dcmread(path)
    ds.ImagePositionPatient = [-10.0, -20.0, 2.0 * k + dz]
    ds.save_as(path)


def test_dicom_series_with_a_missing_slice_is_refused(tmp_path):
    """Slices at z = 0, 2, 4, 8, 10, 14 mm: stacked at their mean spacing the volume would be distorted."""
    folder = write_dicom_series(tmp_path / "series", phantom((8, 8, 8)).astype(np.uint16))
    for k in (3, 6):
        next(folder.glob(f"*_{k}.dcm")).unlink()
    with pytest.raises(ImageImportError) as raised:
        load_source(folder)
    assert raised.value.path == folder
    assert raised.value.problem == (
        "holds slices 2 mm apart along the slice normal but 4 mm between positions 4 and 8 mm, "
        "4 mm between positions 10 and 14 mm (slices missing?); expected evenly spaced slices"
    )


def test_dicom_positions_rounded_to_a_hundredth_of_a_mm_are_evenly_spaced(tmp_path):
    folder = write_dicom_series(tmp_path / "series", phantom((6, 8, 8)).astype(np.uint16))
    _move_slice(folder, 2, 0.01)
    _move_slice(folder, 3, -0.01)
    assert load_source(folder).zooms == pytest.approx((1.0, 1.0, 2.0))


def test_image_stack_in_natural_order(tmp_path):
    from PIL import Image

    stack = (phantom((12, 16, 16), 4) / 1000 * 120).astype(np.uint8)  # (slices, rows, cols)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for k, image in enumerate(stack):
        Image.fromarray(image).save(folder / f"slice{k + 1}.png")  # slice10 sorts after slice9
    settings = ImportSettings(split={"train": 1}, min_foreground=0.0)
    (path,) = import_images([folder], tmp_path / "out", quiet_spec(), settings, False)
    _, target = read(path)
    for k, image in enumerate(target):
        if stack[k].max() > 0:
            assert correlation(image, stack[k].astype(np.float64)) > 0.9999


def test_min_foreground_and_slices_per_volume(tmp_path):
    source = write_nifti(tmp_path / "a.nii", phantom())
    settings = ImportSettings(split={"train": 1}, min_foreground=0.3)
    import_images([source], tmp_path / "out", quiet_spec(num_slices=3), settings, False)
    files = read_import_settings(tmp_path / "out", "singlecoil")["sources"][0]["files"]
    fractions = (phantom() > 0.05 * phantom().max()).mean(axis=(0, 1))
    usable = [int(k) for k in np.flatnonzero(fractions >= 0.3)]
    assert 3 < len(usable) < 10
    assert files[0]["slices"] == [int(k) for k in evenly_spaced(np.array(usable), 3)]
    assert np.all(np.diff(files[0]["slices"]) >= 1)


# --------------------------------------------------------------------------- splits


def test_sources_and_subjects_never_share_a_split(tmp_path):
    names = ["sub-01_run-1", "sub-01_run-2", "sub-02_run-1", "sub-03_run-1", "sub-04_run-1", "sub-05_run-1"]
    sources = [write_nifti(tmp_path / f"{name}.nii.gz", phantom(seed=i)) for i, name in enumerate(names)]
    settings = ImportSettings(split=parse_split("train=0.6,val=0.2,test=0.2"), subject_pattern=r"(sub-\d+)")
    written = import_images(sources, tmp_path / "out", quiet_spec(num_slices=2), settings, False)
    record = read_import_settings(tmp_path / "out", "singlecoil")
    assert record["split_by"] == "subject" and len(written) == 6
    split_of = {}
    for source in record["sources"]:
        assert {f["split"] for f in source["files"]} == {source["split"]}
        assert split_of.setdefault(source["subject"], source["split"]) == source["split"]
        for file in source["files"]:
            assert (tmp_path / "out" / file["file"]).parent.name == f"singlecoil_{source['split']}"
    assert split_of.keys() == {"sub-01", "sub-02", "sub-03", "sub-04", "sub-05"}
    assert sorted(split_of.values()) == ["test", "train", "train", "train", "val"]


def test_dicom_patient_id_is_the_subject(tmp_path):
    first = write_dicom_series(tmp_path / "t1", phantom((6, 16, 16)).astype(np.uint16), "P7", "1.1")
    second = write_dicom_series(tmp_path / "t2", phantom((6, 16, 16), 1).astype(np.uint16), "P7", "1.2")
    others = [write_nifti(tmp_path / f"n{i}.nii", phantom(seed=i)) for i in range(2)]
    import_images([first, second, *others], tmp_path / "out", quiet_spec(num_slices=1), progress=False)
    sources = read_import_settings(tmp_path / "out", "singlecoil")["sources"]
    by_path = {Path(s["path"]).name: s for s in sources}
    assert by_path["t1"]["subject"] == by_path["t2"]["subject"] == "P7"
    assert by_path["t1"]["split"] == by_path["t2"]["split"]


def test_single_source_is_split_by_disjoint_slabs_with_a_guard_gap(tmp_path):
    source = write_nifti(tmp_path / "one.nii", phantom((16, 40, 40)))
    settings = ImportSettings(orientations=("axial", "coronal"), split={"train": 0.6, "val": 0.2, "test": 0.2})
    written = import_images([source], tmp_path / "out", quiet_spec(), settings, False)
    record = read_import_settings(tmp_path / "out", "singlecoil")
    assert record["split_by"] == "slab" and "not different subjects" in record["note"]
    assert len(written) == 6 and {p.parent.name for p in written} == {
        f"singlecoil_{s}" for s in ("train", "val", "test")
    }
    for orientation in ("axial", "coronal"):
        files = {f["split"]: f for f in record["sources"][0]["files"] if f["orientation"] == orientation}
        slabs = [files[split]["slab"] for split in ("train", "val", "test")]
        for (_, hi), (lo, _) in zip(slabs, slabs[1:]):
            assert lo - hi >= settings.guard_slices
        for file in files.values():
            lo, hi = file["slab"]
            assert file["slices"] and all(lo <= k < hi for k in file["slices"])
        used = [set(file["slices"]) for file in files.values()]
        assert not (used[0] & used[1] or used[0] & used[2] or used[1] & used[2])


def test_split_helpers():
    assert parse_split("train=8,val=1,test=1") == pytest.approx({"train": 0.8, "val": 0.1, "test": 0.1})
    assert parse_split("train=1") == {"train": 1.0, "val": 0.0, "test": 0.0}
    for bad in ("train=0.8,validation=0.2", "train=-1", "train=nan", "train=0", "train=0.5,train=0.5", "train"):
        with pytest.raises(ValueError):
            parse_split(bad)
    fractions = {"train": 0.8, "val": 0.1, "test": 0.1}
    assert split_counts(2, fractions) == {"train": 1, "val": 1, "test": 0}
    assert split_counts(10, fractions) == {"train": 8, "val": 1, "test": 1}
    slabs = slab_ranges(0, 100, fractions, 3)
    assert slabs == {"train": (0, 75), "val": (78, 88), "test": (91, 100)}  # 94 usable slices: 75, 10, 9
    with pytest.raises(ValueError, match="slabs"):
        slab_ranges(0, 5, fractions, 3)


# --------------------------------------------------------------------------- determinism


def test_same_seed_byte_identical_different_seed_different_phase_and_noise(tmp_path):
    source = write_nifti(tmp_path / "one.nii", phantom((16, 16, 20)))
    spec = SimulationSpec(challenge="multicoil", num_coils=2, size=16, num_slices=2, noise_level=0.0)
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        written = import_images([source], tmp_path / name, spec, ImportSettings(seed=seed), False)
        runs[name] = written + [tmp_path / name / "multicoil_import_settings.json"]
    assert len(runs["a"]) == 4
    for a, b in zip(runs["a"], runs["b"]):
        assert a.relative_to(tmp_path / "a") == b.relative_to(tmp_path / "b") and a.read_bytes() == b.read_bytes()
    for a, c in zip(runs["a"][:3], runs["c"][:3]):
        (ka, _), (kc, _) = read(a, "multicoil"), read(c, "multicoil")
        assert np.abs(ka - kc).max() > 0.1 * np.abs(ka).max()  # another phase and other coil maps
    noisy = SimulationSpec(challenge="singlecoil", size=16, num_slices=2, noise_level=0.05)
    for name, seed in (("d", 0), ("e", 1)):
        import_images([source], tmp_path / name, noisy, ImportSettings(seed=seed, split={"train": 1}), False)
    (_, td), (_, te) = (read(next((tmp_path / n / "singlecoil_train").glob("*.h5"))) for n in "de")
    assert np.abs(td - te).max() > 1e-3 * td.max()  # other noise, in the target too


def test_existing_volumes_are_refused_and_a_failed_import_leaves_nothing(tmp_path):
    good = write_nifti(tmp_path / "a.nii", phantom())
    bad = write_nifti(tmp_path / "b.nii", np.zeros((8, 8, 6), dtype=np.float32))
    out = tmp_path / "out"
    with pytest.raises(ImageImportError, match="b.nii"):
        import_images([good, bad], out, quiet_spec(), progress=False)
    assert not list(out.rglob("*.h5")) and not [p for p in out.iterdir() if p.name.startswith(".import")]
    (out / "singlecoil_val").mkdir()
    (out / "singlecoil_val" / "old.h5").write_bytes(b"")
    with pytest.raises(ValueError, match="already holds"):
        import_images([good], out, quiet_spec(), progress=False)


# --------------------------------------------------------------------------- bad inputs


def _random_bytes(folder: Path) -> Path:
    path = folder / "noise.nii"
    path.write_bytes(np.random.default_rng(0).bytes(2000))
    return path


def _nifti_of(shape: tuple[int, ...], fill: float = 1.0, nan: bool = False):
    def make(folder: Path) -> Path:
        data = np.full(shape, fill, dtype=np.float32)
        if nan:
            data[1, 1, 1] = np.nan
        return write_nifti(folder / "volume.nii.gz", data)

    return make


def _empty_folder(folder: Path) -> Path:
    (folder / "empty").mkdir()
    return folder / "empty"


def _mixed_series(folder: Path) -> Path:
    series = folder / "series"
    write_dicom_series(series, phantom((3, 8, 8)).astype(np.uint16), series="1.1", z_order=[0, 1, 2])
    other = write_dicom_series(folder / "other", phantom((3, 8, 8)).astype(np.uint16), series="1.2")
    next(other.iterdir()).rename(series / "stray.dcm")
    return series


def _not_dicom(folder: Path) -> Path:
    series = write_dicom_series(folder / "series", phantom((3, 8, 8)).astype(np.uint16))
    (series / "broken.dcm").write_bytes(b"not a dicom file at all" * 10)
    return series


def _single_png(folder: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.full((8, 8), 200, dtype=np.uint8)).save(folder / "one.png")
    return folder / "one.png"


def _folder_of_one_png(folder: Path) -> Path:
    (folder / "pngs").mkdir()
    _single_png(folder / "pngs")
    return folder / "pngs"


BAD_INPUTS = {
    "random bytes named .nii": (_random_bytes, "noise.nii", "not a readable NIfTI"),
    "2-D NIfTI": (_nifti_of((8, 8)), "volume.nii.gz", "2-D image where a 3-D volume"),
    "one-slice NIfTI": (_nifti_of((8, 8, 1)), "volume.nii.gz", "2-D image where a 3-D volume"),
    "4-D NIfTI": (_nifti_of((8, 8, 6, 3)), "volume.nii.gz", "4-D"),
    "all-zero volume": (_nifti_of((8, 8, 6), 0.0), "volume.nii.gz", "all zero"),
    "NaN voxels": (_nifti_of((8, 8, 6), 1.0, nan=True), "volume.nii.gz", "1 NaN or Inf voxel"),
    "empty folder": (_empty_folder, "empty", "holds no .nii"),
    "DICOM folder mixing series": (_mixed_series, "series", "mixes 2 DICOM series"),
    "not DICOM named .dcm": (_not_dicom, "broken.dcm", "not a readable DICOM"),
    "single PNG": (_single_png, "one.png", "single 2-D image"),
    "folder of one PNG": (_folder_of_one_png, "pngs", "2-D image where a 3-D volume"),
}


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_input_gives_one_error_naming_the_file(tmp_path, kind):
    make, name, problem = BAD_INPUTS[kind]
    source = make(tmp_path)
    with pytest.raises(ImageImportError) as raised:
        import_images([source], tmp_path / "out", quiet_spec(), progress=False)
    assert raised.value.path.name == name
    assert name in str(raised.value) and problem in str(raised.value)


def test_cli_prints_a_bad_input_as_one_line(tmp_path, capsys):
    source = _random_bytes(tmp_path)
    assert cli.main(["data", "import", str(source), str(tmp_path / "out"), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "noise.nii: not a readable NIfTI file" in error


def test_settings_validation():
    with pytest.raises(ValueError, match="orientations"):
        ImportSettings(orientations=("transverse",))
    with pytest.raises(ValueError, match="min_foreground"):
        ImportSettings(min_foreground=1.5)
    with pytest.raises(ValueError, match="subject_pattern"):
        ImportSettings(subject_pattern="(")
    assert ImportSettings(orientations=("axial", "axial")).orientations == ("axial",)
    assert tuple(ORIENTATIONS) == ORIENTATION_CHOICES  # the parser's choices, kept without importing the module


# --------------------------------------------------------------------------- knee-like geometry, end to end


def test_knee_geometry_import_of_the_mni_template_passes_data_check(tmp_path, capsys):
    datasets = pytest.importorskip("nilearn.datasets")
    out = tmp_path / "knee"
    argv = ["data", "import", str(datasets.MNI152_FILE_PATH), str(out), "--size", "320", "--kspace-width", "368"]
    assert cli.main([*argv, "--padding", "20", "--slices-per-volume", "1", "--no-progress"]) == 0
    for split in ("train", "val", "test"):
        assert cli.main(["data", "check", str(out / f"singlecoil_{split}"), "--challenge", "singlecoil"]) == 0
        (path,) = (out / f"singlecoil_{split}").glob("*.h5")
        kspace, target = read(path)
        assert kspace.shape == (1, 640, 368) and target.shape == (1, 320, 320)
        assert np.all(kspace[..., :20] == 0) and np.all(kspace[..., 348:] == 0)
    assert "0 bad" in capsys.readouterr().out
    record = json.loads((out / "singlecoil_import_settings.json").read_text())
    assert record["split_by"] == "slab" and record["padding"] == 20


@pytest.mark.parametrize(("offset", "expected"), [(0.5, [2, 7]), (0.0, [0, 5]), (0.99, [4, 9]), (0.3, [1, 6])])
def test_evenly_spaced_takes_one_candidate_per_interval_at_the_offset(offset, expected):
    assert evenly_spaced(np.arange(10), 2, offset).tolist() == expected
    assert evenly_spaced(np.arange(10), None, offset).tolist() == list(range(10))


@pytest.mark.parametrize("offset", [1.0, -0.1, float("nan")])
def test_evenly_spaced_refuses_an_offset_outside_the_unit_interval(offset):
    with pytest.raises(ValueError, match=r"offset must be in \[0, 1\)"):
        evenly_spaced(np.arange(10), 2, offset)
