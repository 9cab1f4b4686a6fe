"""Synthetic fastMRI-format volumes: physics, acquisition-likeness, determinism, spec validation."""

from __future__ import annotations

from pathlib import Path

import fastmri
import h5py
import numpy as np
import pytest
import torch
from fastmri.data.transforms import center_crop

from mri_rl.data.fastmri_files import FastMRISliceDataset, inspect_volume
from mri_rl.data.simulated_kspace import MAX_NOISE_LEVEL, SimulationSpec, acquire
from mri_rl.data.synthetic import (
    MAX_STRIATION,
    SyntheticSpec,
    _striation,
    read_synthetic_settings,
    simulate_volume,
    write_synthetic_dataset,
)


def read_volume(path: Path, target_key: str) -> tuple[np.ndarray, np.ndarray, dict]:
    with h5py.File(path, "r") as hf:
        return hf["kspace"][()], hf[target_key][()], dict(hf.attrs)


def image_from_kspace(kspace: np.ndarray) -> np.ndarray:
    """Complex image of centred k-space with fastMRI's orthonormal IFFT (complex128)."""
    image = fastmri.ifft2c(torch.view_as_real(torch.from_numpy(kspace.astype(np.complex128))))
    return torch.view_as_complex(image).numpy()


def hermitian_mirror(kspace: np.ndarray) -> np.ndarray:
    """conj(k(-kx, -ky)) on fastMRI's centred grid (frequency f sits at index f + N/2)."""
    return np.conj(np.roll(np.flip(kspace, axis=(-2, -1)), 1, axis=(-2, -1)))


def relative_asymmetry(kspace: np.ndarray) -> float:
    return float(np.linalg.norm(kspace - hermitian_mirror(kspace)) / np.linalg.norm(kspace))


def files_of(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.h5"))


# --------------------------------------------------------------------------- target = IFFT(k-space)


@pytest.mark.parametrize("challenge", ["singlecoil", "multicoil"])
def test_stored_target_is_the_reconstruction_of_stored_kspace(request, challenge):
    root = request.getfixturevalue(f"{challenge}_root")
    target_key = "reconstruction_esc" if challenge == "singlecoil" else "reconstruction_rss"
    files = files_of(root / f"{challenge}_train") + files_of(root / f"{challenge}_test")
    assert len(files) == 3
    for path in files:
        kspace, target, _ = read_volume(path, target_key)
        image = fastmri.ifft2c(torch.view_as_real(torch.from_numpy(kspace)))
        magnitude = fastmri.complex_abs(image)
        if challenge == "multicoil":
            magnitude = fastmri.rss(magnitude, dim=1)
        expected = center_crop(magnitude, target.shape[-2:]).numpy()
        assert expected.shape == target.shape == (3, 16, 16)
        assert target.max() > 0
        np.testing.assert_allclose(target, expected, rtol=0, atol=1e-5 * target.max())


def test_target_of_padded_kspace_is_the_reconstruction(tmp_path):
    spec = SyntheticSpec(num_slices=2, size=16, kspace_width=24, padding=3)
    (path,) = write_synthetic_dataset(tmp_path, spec, {"train": 1}, seed=5, progress=False)
    kspace, target, _ = read_volume(path, "reconstruction_esc")
    assert kspace.shape == (2, 32, 24)
    magnitude = fastmri.complex_abs(fastmri.ifft2c(torch.view_as_real(torch.from_numpy(kspace))))
    expected = center_crop(magnitude, (16, 16)).numpy()
    np.testing.assert_allclose(target, expected, rtol=0, atol=1e-5 * target.max())


# --------------------------------------------------------------------------- looks like an acquisition


def test_hermitian_mirror_helper_detects_a_real_image():
    """Known answer for the helper: the k-space of a real image is exactly Hermitian."""
    rng = np.random.default_rng(0)
    real_image = rng.standard_normal((32, 16))
    kspace = torch.view_as_complex(fastmri.fft2c(torch.view_as_real(torch.from_numpy(real_image + 0j)))).numpy()
    assert relative_asymmetry(kspace) < 1e-12
    assert relative_asymmetry(kspace * np.exp(0.3j)) > 0.5  # a constant phase breaks it too


@pytest.mark.parametrize("challenge", ["singlecoil", "multicoil"])
def test_kspace_is_not_hermitian_symmetric(request, challenge):
    root = request.getfixturevalue(f"{challenge}_root")
    for path in files_of(root / f"{challenge}_train"):
        with h5py.File(path, "r") as hf:
            kspace = hf["kspace"][()]
        for slice_kspace in kspace:
            assert relative_asymmetry(slice_kspace) > 0.3


def test_image_phase_is_not_constant(singlecoil_root):
    for path in files_of(singlecoil_root / "singlecoil_train"):
        kspace, _, _ = read_volume(path, "reconstruction_esc")
        for image in image_from_kspace(kspace):
            magnitude = np.abs(image)
            inside = magnitude > 0.2 * magnitude.max()
            assert inside.sum() > 20
            phasors = image[inside] / magnitude[inside]
            # phase relative to the mean phase; a constant phase (plus 1% noise) would
            # spread by a few hundredths of a radian.
            relative_phase = np.angle(phasors * np.conj(phasors.mean()))
            assert relative_phase.std() > 0.15
            assert np.ptp(relative_phase) > 0.5


@pytest.mark.parametrize("challenge", ["singlecoil", "multicoil"])
def test_slices_and_volumes_differ(request, challenge):
    root = request.getfixturevalue(f"{challenge}_root")
    target_key = "reconstruction_esc" if challenge == "singlecoil" else "reconstruction_rss"
    volumes = [read_volume(p, target_key) for p in files_of(root / f"{challenge}_train")]
    assert len(volumes) == 2
    for kspace, target, _ in volumes:
        scale = target.max()
        for a in range(len(target)):
            for b in range(a + 1, len(target)):
                assert np.abs(target[a] - target[b]).max() > 0.05 * scale
                assert not np.array_equal(kspace[a], kspace[b])
    (k0, t0, attrs0), (k1, t1, attrs1) = volumes
    assert np.abs(t0 - t1).max() > 0.05 * max(t0.max(), t1.max())
    assert not np.array_equal(k0, k1)
    assert attrs0["max"] != attrs1["max"]
    assert attrs0["patient_id"] != attrs1["patient_id"]


def test_multicoil_coils_differ(multicoil_volume):
    kspace, _, _ = read_volume(multicoil_volume, "reconstruction_rss")
    images = np.abs(image_from_kspace(kspace[0]))  # (coils, H, W)
    assert images.shape == (3, 32, 16)
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.abs(images[a] - images[b]).max() > 0.1 * images.max()


def test_padded_columns_are_zero_and_acquired_ones_are_not(tmp_path):
    spec = SyntheticSpec(challenge="multicoil", num_slices=2, size=16, kspace_width=22, padding=3, num_coils=2)
    (path,) = write_synthetic_dataset(tmp_path, spec, {"val": 1}, seed=1, progress=False)
    assert path.parent.name == "multicoil_val"
    with h5py.File(path, "r") as hf:
        kspace = hf["kspace"][()]
    assert kspace.shape == (2, 2, 32, 22)
    assert np.all(kspace[..., :3] == 0)
    assert np.all(kspace[..., 19:] == 0)
    column_energy = np.abs(kspace[..., 3:19]).sum(axis=-2)  # (slices, coils, acquired columns)
    assert np.all(column_energy > 0)


def test_knee_geometry_padding_is_zero(knee_geometry_file):
    (path,) = files_of(knee_geometry_file)
    with h5py.File(path, "r") as hf:
        kspace = hf["kspace"][()]
    assert kspace.shape == (1, 640, 368)
    assert kspace.dtype == np.complex64
    assert np.all(kspace[..., :17] == 0) and np.all(kspace[..., 351:] == 0)
    assert np.all(np.abs(kspace[..., 17:351]).sum(axis=-2) > 0)


# --------------------------------------------------------------------------- determinism


def test_same_seed_writes_byte_identical_files(tmp_path):
    spec = SyntheticSpec(challenge="multicoil", num_slices=2, size=16, num_coils=2)
    first = write_synthetic_dataset(tmp_path / "a", spec, {"train": 2, "test": 1}, seed=3, progress=False)
    second = write_synthetic_dataset(tmp_path / "b", spec, {"train": 2, "test": 1}, seed=3, progress=False)
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    assert len(first) == 3
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()


def test_different_seed_gives_different_kspace(tmp_path):
    spec = SyntheticSpec(num_slices=2, size=16)
    (a,) = write_synthetic_dataset(tmp_path / "a", spec, {"train": 1}, seed=0, progress=False)
    (b,) = write_synthetic_dataset(tmp_path / "b", spec, {"train": 1}, seed=1, progress=False)
    assert a.name != b.name  # the seed is part of the name
    ka, _, _ = read_volume(a, "reconstruction_esc")
    kb, _, _ = read_volume(b, "reconstruction_esc")
    assert ka.shape == kb.shape
    assert np.abs(ka - kb).max() > 0.1 * np.abs(ka).max()


def test_volume_does_not_depend_on_how_many_are_written(tmp_path, singlecoil_root):
    spec = SyntheticSpec(challenge="singlecoil", num_slices=3, size=16)
    (single,) = write_synthetic_dataset(tmp_path, spec, {"train": 1}, seed=0, progress=False)
    # singlecoil_root wrote 2 train + 1 val + 1 test volumes with the same spec and seed.
    from_root = singlecoil_root / "singlecoil_train" / single.name
    assert from_root.exists()
    assert single.read_bytes() == from_root.read_bytes()


def test_volume_i_same_with_one_or_three_volumes(tmp_path):
    spec = SyntheticSpec(num_slices=2, size=16)
    one = write_synthetic_dataset(tmp_path / "one", spec, {"val": 1}, seed=7, progress=False)
    three = write_synthetic_dataset(tmp_path / "three", spec, {"val": 3}, seed=7, progress=False)
    assert len(one) == 1 and len(three) == 3
    assert one[0].read_bytes() == three[0].read_bytes()
    assert three[1].read_bytes() != three[0].read_bytes()


def test_splits_hold_different_volumes(singlecoil_root):
    train = files_of(singlecoil_root / "singlecoil_train")[0]
    val = files_of(singlecoil_root / "singlecoil_val")[0]
    kt, _, _ = read_volume(train, "reconstruction_esc")
    kv, _, _ = read_volume(val, "reconstruction_esc")
    assert not np.array_equal(kt, kv)


# --------------------------------------------------------------------------- written files


def test_written_layout_and_attributes(singlecoil_root):
    counts = {split: len(files_of(singlecoil_root / f"singlecoil_{split}")) for split in ("train", "val", "test")}
    assert counts == {"train": 2, "val": 1, "test": 1}
    assert sorted(p.name for p in singlecoil_root.iterdir()) == [
        "singlecoil_synthetic_settings.json",
        "singlecoil_test",
        "singlecoil_train",
        "singlecoil_val",
    ]
    # no temporary files left behind
    assert not list(singlecoil_root.rglob("*.tmp"))
    path = files_of(singlecoil_root / "singlecoil_train")[1]
    assert path.name == "synthetic_s0_train_001.h5"
    kspace, target, attrs = read_volume(path, "reconstruction_esc")
    assert kspace.dtype == np.complex64 and target.dtype == np.float32
    assert attrs["acquisition"] == "CORPD_FBK"
    assert attrs["patient_id"] == "synthetic-0-train-001"
    assert attrs["max"] == pytest.approx(float(target.max()), rel=1e-7)
    assert attrs["norm"] == pytest.approx(float(np.linalg.norm(target)), rel=1e-6)
    # fastMRI knee images are of order 1e-4; the synthetic scale follows.
    assert 1e-6 < attrs["max"] < 1e-2


def test_empty_split_writes_nothing(tmp_path):
    written = write_synthetic_dataset(
        tmp_path, SyntheticSpec(num_slices=1, size=8), {"train": 0, "val": 1}, progress=False
    )
    assert [p.parent.name for p in written] == ["singlecoil_val"]
    assert not (tmp_path / "singlecoil_train").exists()


def test_unknown_split_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="validation"):
        write_synthetic_dataset(tmp_path, SyntheticSpec(num_slices=1, size=8), {"validation": 1}, progress=False)
    assert not any(tmp_path.iterdir())


def test_brain_geometry_multicoil_volume_loads(tmp_path):
    spec = SyntheticSpec(challenge="multicoil", size=320, num_coils=4, num_slices=1)
    write_synthetic_dataset(tmp_path, spec, {"train": 1}, seed=0, progress=False)
    dataset = FastMRISliceDataset(tmp_path / "multicoil_train", "multicoil", check_values=True)
    assert len(dataset) == 1
    item = dataset[0]
    assert tuple(item.kspace.shape) == (4, 640, 320)
    assert item.kspace.dtype == torch.complex64
    assert tuple(item.target.shape) == (320, 320)
    assert (item.metadata.padding_left, item.metadata.padding_right) == (0, 320)
    assert item.metadata.num_coils == 4
    info = inspect_volume(item.metadata.file, "multicoil")
    assert info.slice_shape == (4, 640, 320)


# --------------------------------------------------------------------------- spec validation


def test_spec_geometry():
    spec = SyntheticSpec(size=320, kspace_width=368, padding=17)
    assert spec.width == 368
    geometry = spec.geometry
    assert geometry.encoded_size == (640, 368, 1)
    assert geometry.recon_size == (320, 320, 1)
    assert (geometry.padding_left, geometry.padding_right) == (17, 351)
    assert geometry.acquired_width == 334
    assert SyntheticSpec(size=16).width == 16


@pytest.mark.parametrize(
    ("kwargs", "keyword"),
    [
        ({"challenge": "dualcoil"}, "challenge"),
        ({"size": 4}, "size"),
        ({"num_slices": 0}, "num_slices"),
        ({"size": 16, "kspace_width": 12}, "kspace_width"),
        ({"size": 16, "padding": 8}, "padding"),
        ({"size": 16, "kspace_width": 20, "padding": 10}, "padding"),
        ({"padding": -1}, "padding"),
        ({"challenge": "multicoil", "num_coils": 1}, "coils"),
        ({"noise_level": -0.1}, "noise_level"),
        ({"striation": -0.2}, "striation"),
    ],
)
def test_invalid_spec_raises(kwargs, keyword):
    with pytest.raises(ValueError, match=keyword):
        SyntheticSpec(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"noise_level": float("nan")}, "noise_level: expected a finite number >= 0, got nan"),
        ({"noise_level": float("inf")}, "noise_level: expected a finite number >= 0, got inf"),
        ({"noise_level": np.float32("nan")}, "noise_level: expected a finite number >= 0, got nan"),
        ({"noise_level": "0.1"}, "noise_level: expected a finite number >= 0, got '0.1'"),
        ({"striation": float("nan")}, "striation: expected a finite number >= 0, got nan"),
        ({"striation": -float("inf")}, "striation: expected a finite number >= 0, got -inf"),
        (
            {"noise_level": 1e308},
            "noise_level: expected a number in [0, 10] (k-space noise std relative to the image maximum), got 1e+308",
        ),
        (
            {"noise_level": 10.5},
            "noise_level: expected a number in [0, 10] (k-space noise std relative to the image maximum), got 10.5",
        ),
        (
            {"striation": 1e308},
            "striation: expected a number in [0, 10] (amplitude of the stripes relative to the phantom), got 1e+308",
        ),
        ({"size": 16.0}, "size: expected an integer >= 8, got 16.0"),
        ({"size": True}, "size: expected an integer >= 8, got True"),
        ({"num_slices": 2.5}, "num_slices: expected an integer >= 1, got 2.5"),
        ({"kspace_width": 0}, "kspace_width: expected an integer >= 1, got 0"),
        ({"padding": 1.5}, "padding: expected an integer >= 0, got 1.5"),
        ({"num_coils": 0}, "num_coils: expected an integer >= 1, got 0"),
        (
            {"challenge": "multicoil", "num_coils": 1},
            "num_coils of a multicoil volume: expected an integer >= 2, got 1",
        ),
    ],
)
def test_non_finite_or_non_integer_spec_values_are_refused_naming_them(kwargs, message):
    with pytest.raises(ValueError) as raised:
        SyntheticSpec(**kwargs)
    assert str(raised.value) == message


def test_numpy_numbers_in_a_spec_become_python_ones(tmp_path):
    """They are written into the JSON settings file."""
    spec = SyntheticSpec(num_slices=np.int64(1), size=np.uint16(16), noise_level=np.float32(0.5), striation=0)
    assert [type(value) for value in (spec.num_slices, spec.size, spec.noise_level, spec.striation)] == [
        int,
        int,
        float,
        float,
    ]
    write_synthetic_dataset(tmp_path, spec, {"val": 1}, progress=False)
    assert read_synthetic_settings(tmp_path)["size"] == 16


def test_largest_noise_and_striation_write_files_that_pass_the_validation(tmp_path):
    """noise_level and striation of 10 (MAX_NOISE_LEVEL, MAX_STRIATION) give finite files that data check passes."""
    assert (MAX_NOISE_LEVEL, MAX_STRIATION) == (10.0, 10.0)
    for challenge in ("singlecoil", "multicoil"):
        spec = SyntheticSpec(challenge=challenge, num_slices=2, size=16, num_coils=2, noise_level=10, striation=10)
        (path,) = write_synthetic_dataset(tmp_path, spec, {"val": 1}, progress=False)
        info = inspect_volume(path, challenge, check_values=True, keep_bad_slices=True)
        assert info.bad_slices == () and info.max_value is not None


def test_the_simulation_refuses_non_finite_kspace(tmp_path):
    """Images beyond float32's range (e.g. an imported stack of huge values) give a ValueError, not a
    file of infinite k-space."""
    spec = SimulationSpec(challenge="singlecoil", num_slices=1, size=16)
    with pytest.raises(ValueError) as raised:
        acquire(np.full((1, 32, 16), 1e39 + 0j), spec, np.random.default_rng(0))
    assert str(raised.value) == (
        "the simulated k-space or target is not finite (largest image magnitude 1e+39, noise_level 0.01): "
        "values beyond float32's range; refusing to write it"
    )


def test_largest_valid_padding_is_accepted():
    spec = SyntheticSpec(size=16, padding=7)
    assert spec.geometry.acquired_width == 2
    assert SyntheticSpec(challenge="singlecoil", num_coils=1).num_coils == 1  # coils ignored for singlecoil


@pytest.mark.parametrize("wavevector", [(0.0, 0.25), (0.1, -0.15), (-0.05, 0.125)])
def test_striation_spectrum_peaks_at_its_wave_vector(wavevector):
    shape = (64, 64)
    field = _striation(np.random.default_rng(0), shape, wavevector)
    power = np.abs(np.fft.fft2(field)) ** 2
    peak_y, peak_x = np.unravel_index(np.argmax(power), shape)
    frequency = np.array([np.fft.fftfreq(64)[peak_y], np.fft.fftfreq(64)[peak_x]])
    wave = np.array(wavevector)
    nearest = min(np.abs(frequency - wave).max(), np.abs(frequency + wave).max())  # the field is real: +-k
    assert nearest <= 2 / 64
    assert field.std() == pytest.approx(1.0)


def column_energy_off_centre(kspace: np.ndarray, min_offset: int) -> float:
    """Share of the k-space energy (slices, H, W) in columns at least ``min_offset`` from the centre."""
    energy = (np.abs(kspace) ** 2).sum(axis=(0, 1))
    offset = np.abs(np.arange(kspace.shape[-1]) - kspace.shape[-1] // 2)
    return float(energy[offset >= min_offset].sum() / energy.sum())


def test_striation_moves_energy_away_from_the_centre_columns():
    shares = {}
    for striation in (0.0, 0.3):
        spec = SyntheticSpec(num_slices=2, size=64, noise_level=0.0, striation=striation)
        kspace, _ = simulate_volume(spec, np.random.default_rng(5))
        shares[striation] = column_energy_off_centre(kspace, 8)
    assert shares[0.3] > 2 * shares[0.0]


def test_written_settings_round_trip(tmp_path):
    spec = SyntheticSpec(num_slices=1, size=16, striation=0.35, noise_level=0.02)
    assert read_synthetic_settings(tmp_path) is None
    write_synthetic_dataset(tmp_path, spec, {"val": 1}, seed=7, progress=False)
    recorded = read_synthetic_settings(tmp_path)
    assert recorded.pop("seed") == 7
    assert SyntheticSpec(**recorded) == spec
    assert read_synthetic_settings(tmp_path, "multicoil") is None  # each challenge keeps its own record


def test_a_folder_holds_one_data_set(tmp_path):
    """Writing again with the same settings replaces the files; a write that would leave other
    volumes beside its own (another seed, fewer volumes) is refused and changes nothing."""
    spec = SyntheticSpec(num_slices=1, size=8)
    first = write_synthetic_dataset(tmp_path, spec, {"train": 2}, seed=0, progress=False)
    before = {path: path.read_bytes() for path in first}
    assert write_synthetic_dataset(tmp_path, spec, {"train": 2}, seed=0, progress=False) == first
    for volumes, seed, stray in (({"train": 2}, 1, "synthetic_s0_train_000.h5"), ({"train": 1}, 0, "_001.h5")):
        with pytest.raises(FileExistsError, match=rf"singlecoil_train already holds .*{stray}.*one data set"):
            write_synthetic_dataset(tmp_path, spec, volumes, seed=seed, progress=False)
    assert sorted((tmp_path / "singlecoil_train").iterdir()) == sorted(first)
    assert {path: path.read_bytes() for path in first} == before
    assert read_synthetic_settings(tmp_path)["seed"] == 0
