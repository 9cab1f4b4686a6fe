"""The MNI152 template as a built-in anatomy source: valid files, different volumes, determinism, honest slabs."""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import sys
import weakref

import h5py
import numpy as np
import pytest

from mri_rl import cli
from mri_rl.data import anatomy
from mri_rl.data.anatomy import (
    GUARD_SLICES,
    INTERLEAVE_GUARD,
    ORIENTATION_CYCLE,
    read_anatomy_settings,
    template_blocks,
    template_slabs,
    template_slices,
    transformed_slab,
    write_anatomy_dataset,
)
from mri_rl.data.fastmri_files import FastMRISliceDataset, inspect_volume
from mri_rl.data.image_import import oriented_slices
from mri_rl.data.image_sources import ImageImportError
from mri_rl.data.simulated_kspace import SimulationSpec

pytest.importorskip("nilearn")

SPEC = SimulationSpec(challenge="multicoil", num_slices=2, size=16, kspace_width=20, padding=1, num_coils=2)
VOLUMES = {"train": 3, "val": 3, "test": 3}


@pytest.fixture(scope="module")
def anatomy_root(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("anatomy")
    return root, write_anatomy_dataset(root, SPEC, VOLUMES, seed=0, progress=False)


def read(path):
    with h5py.File(path, "r") as hf:
        return hf["kspace"][()], hf["reconstruction_rss"][()], dict(hf.attrs)


def test_files_pass_the_readers_validation(anatomy_root):
    root, written = anatomy_root
    assert [p.name for p in written[:4]] == [
        "anatomy_s0_train_000.h5",
        "anatomy_s0_train_001.h5",
        "anatomy_s0_train_002.h5",
        "anatomy_s0_val_000.h5",
    ]
    for path in written:
        info = inspect_volume(path, "multicoil", check_values=True)
        assert info.num_slices == 2 and info.slice_shape == (2, 32, 20)
        assert (info.geometry.padding_left, info.geometry.padding_right) == (1, 19)
    assert len(FastMRISliceDataset(root / "multicoil_val", "multicoil", check_values=True)) == 6


def test_volumes_differ_and_cycle_through_the_orientations(anatomy_root):
    _, written = anatomy_root
    volumes = [read(path) for path in written]
    assert [attrs["orientation"] for _, _, attrs in volumes[:3]] == list(ORIENTATION_CYCLE)
    targets = [target for _, target, _ in volumes]
    for a in range(len(targets)):
        for b in range(a + 1, len(targets)):
            assert np.abs(targets[a] - targets[b]).max() > 0.05 * targets[a].max()
    for _, target, _ in volumes:
        assert np.abs(target[0] - target[1]).max() > 0.05 * target.max()  # two different slices


def test_slices_come_from_their_splits_slab_and_slabs_are_disjoint(anatomy_root):
    root, written = anatomy_root
    settings = read_anatomy_settings(root, "multicoil")
    assert "not different subjects" in settings["note"] and settings["seed"] == 0 and settings["size"] == 16
    for orientation in ORIENTATION_CYCLE:
        slabs = template_slabs(orientation)
        assert settings["slabs"][orientation] == {split: list(r) for split, r in slabs.items()}
        ordered = [slabs[split] for split in ("train", "val", "test")]
        for (_, hi), (lo, _) in zip(ordered, ordered[1:]):
            assert lo - hi >= GUARD_SLICES
    assert template_slabs("sagittal")["test"][1] <= 99  # left hemisphere and the midline (x = 98) only
    for path in written:
        split = path.parent.name.split("_")[1]
        _, _, attrs = read(path)
        lo, hi = template_slabs(attrs["orientation"])[split]
        assert all(lo <= k < hi for k in attrs["template_slices"])


def test_interleaved_blocks_are_disjoint_guarded_and_every_split_spans_the_brain():
    for orientation in ORIENTATION_CYCLE:
        blocks = template_blocks(orientation)
        slabs = template_slabs(orientation)
        first, stop = slabs["train"][0], slabs["test"][1]
        every = sorted((lo, hi, split) for split, ranges in blocks.items() for lo, hi in ranges)
        assert every[0][0] == first and every[-1][1] <= stop
        for (_, hi, _), (lo, _, _) in zip(every, every[1:]):
            assert lo - hi == INTERLEAVE_GUARD
        extent = stop - first
        for split, ranges in blocks.items():
            assert ranges[0][0] - first < extent / 4 and stop - ranges[-1][1] < extent / 4, (orientation, split)


def test_interleaved_volumes_draw_from_their_splits_blocks_and_record_the_layout(tmp_path):
    spec = dataclasses.replace(SPEC, num_slices=4)
    written = write_anatomy_dataset(tmp_path, spec, {"train": 3, "test": 3}, progress=False, layout="interleaved")
    settings = read_anatomy_settings(tmp_path, "multicoil")
    assert settings["layout"] == "interleaved" and settings["interleave_guard"] == INTERLEAVE_GUARD
    for path in written:
        split = path.parent.name.split("_")[1]
        _, _, attrs = read(path)
        ranges = template_blocks(attrs["orientation"])[split]
        assert settings["blocks"][attrs["orientation"]][split] == [list(r) for r in ranges]
        assert all(any(lo <= k < hi for lo, hi in ranges) for k in attrs["template_slices"])
        if split == "test":  # evenly spaced through the blocks: not all from one block
            assert (
                len({next(i for i, (lo, hi) in enumerate(ranges) if lo <= k < hi) for k in attrs["template_slices"]})
                > 1
            )
    with pytest.raises(ValueError, match="layout: expected one of"):
        write_anatomy_dataset(tmp_path / "bad", spec, {"train": 1}, progress=False, layout="checkerboard")
    assert not (tmp_path / "bad").exists()


def test_identity_affine_gives_the_template_slices():
    slices, _, _ = template_slices("coronal")
    lo, hi = template_slabs("coronal")["val"]
    planes, positions, _ = transformed_slab("coronal", [(lo, hi)], np.eye(2), np.zeros(2))
    assert len(planes) > 0 and positions.min() >= lo and positions.max() < hi
    np.testing.assert_allclose(planes, slices[positions], atol=1e-6)
    full, _ = oriented_slices(*anatomy.load_template(), "coronal")  # the crop holds the whole brain
    assert np.isclose(full[positions].sum(), slices[positions].sum(), rtol=1e-6)


def test_same_seed_byte_identical_other_seed_different(tmp_path, anatomy_root):
    root, written = anatomy_root
    again = write_anatomy_dataset(tmp_path / "again", SPEC, {"train": 2, "val": 1}, seed=0, progress=False)
    for path in again:
        assert path.read_bytes() == (root / path.relative_to(tmp_path / "again")).read_bytes()
    (other,) = write_anatomy_dataset(tmp_path / "other", SPEC, {"train": 1}, seed=1, progress=False)
    _, first, _ = read(written[0])
    _, second, _ = read(other)
    assert np.abs(first - second).max() > 0.05 * first.max()


def test_a_rewrite_with_other_settings_refuses_to_keep_the_earlier_splits_beside_it(tmp_path):
    """Writing train only (val and test 0 volumes) into a root of slab-layout volumes with the interleaved
    layout left the slab val and test files under a record saying interleaved, and the new train volumes
    read test template slices (axial 143 in both). With the same settings the other splits are kept."""
    spec = dataclasses.replace(SPEC, num_slices=4)
    write_anatomy_dataset(tmp_path, spec, {"train": 1, "val": 1, "test": 1}, progress=False)
    before = {path: path.read_bytes() for path in sorted(tmp_path.rglob("*.h5"))}
    with pytest.raises(FileExistsError, match=r"multicoil_test already holds .*anatomy_s0_test_000.h5.*one data set"):
        write_anatomy_dataset(tmp_path, spec, {"train": 1}, progress=False, layout="interleaved")
    assert {path: path.read_bytes() for path in sorted(tmp_path.rglob("*.h5"))} == before
    assert "layout" not in read_anatomy_settings(tmp_path, "multicoil")
    assert write_anatomy_dataset(tmp_path, spec, {"train": 2}, progress=False)[0] in before  # same settings: kept


def test_too_many_slices_for_a_slab_is_one_clear_error(tmp_path):
    spec = SimulationSpec(num_slices=40, size=16)
    with pytest.raises(ValueError, match="usable slice"):
        write_anatomy_dataset(tmp_path, spec, {"test": 3}, progress=False)


def test_missing_nilearn_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    anatomy.load_template.cache_clear()
    monkeypatch.setitem(sys.modules, "nilearn.datasets", None)
    try:
        with pytest.raises(ImportError, match=r"the MNI152 source needs nilearn: pip install mri_rl\[anatomy\]"):
            write_anatomy_dataset(tmp_path, SimulationSpec(num_slices=1, size=16), {"train": 1}, progress=False)
        assert cli.main(["data", "anatomy", str(tmp_path), "--no-progress"]) == 2
        assert "pip install mri_rl[anatomy]" in capsys.readouterr().err
        assert not any(tmp_path.iterdir())
    finally:
        anatomy.load_template.cache_clear()


def test_cli_writes_the_anatomy_dataset(tmp_path, capsys):
    argv = ["data", "anatomy", str(tmp_path), "--volumes", "2", "--val-volumes", "1", "--test-volumes", "0"]
    assert cli.main([*argv, "--slices", "1", "--size", "16", "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "singlecoil_train").iterdir()) == [
        "anatomy_s0_train_000.h5",
        "anatomy_s0_train_001.h5",
    ]
    assert read_anatomy_settings(tmp_path)["num_slices"] == 1
    assert "wrote 3 file(s)" in capsys.readouterr().out


def test_cli_layout_flag_writes_the_interleaved_layout(tmp_path):
    argv = ["data", "anatomy", str(tmp_path), "--volumes", "1", "--val-volumes", "0", "--test-volumes", "0"]
    assert cli.main([*argv, "--slices", "1", "--size", "16", "--layout", "interleaved", "--no-progress"]) == 0
    assert read_anatomy_settings(tmp_path)["layout"] == "interleaved"
    offset = ["--slice-offset", "random", "--no-progress"]
    assert cli.main([*argv[:2], str(tmp_path / "drawn"), *argv[3:], "--slices", "1", "--size", "16", *offset]) == 0
    assert read_anatomy_settings(tmp_path / "drawn")["slice_offset"] == "random"


def test_a_random_slice_offset_reads_other_template_slices_per_volume_and_is_recorded(tmp_path):
    # six axial train volumes (every third of eighteen) of 2 slices: with the centre offset every volume
    # reads nearly the same two template slices (its affine moves them by a slice or two at most); with
    # a random offset per volume, the six together read many more
    spec = dataclasses.replace(SPEC, num_slices=2)
    volumes = {"train": 18}

    def axial_slices(root, offset):
        written = write_anatomy_dataset(root, spec, volumes, progress=False, layout="interleaved", slice_offset=offset)
        return {int(k) for path in written[::3] for k in read(path)[2]["template_slices"]}

    centre, drawn = axial_slices(tmp_path / "centre", "centre"), axial_slices(tmp_path / "random", "random")
    assert len(drawn) >= len(centre) + 4
    assert "slice_offset" not in read_anatomy_settings(tmp_path / "centre", "multicoil")  # as before the option
    assert read_anatomy_settings(tmp_path / "random", "multicoil")["slice_offset"] == "random"
    again = write_anatomy_dataset(
        tmp_path / "again", spec, volumes, progress=False, layout="interleaved", slice_offset="random"
    )
    assert (
        read(again[0])[2]["template_slices"].tolist()
        == read(sorted((tmp_path / "random").rglob("*.h5"))[0])[2]["template_slices"].tolist()
    )
    with pytest.raises(ValueError, match=r"slice_offset: expected one of \('centre', 'random'\), got 'edge'"):
        write_anatomy_dataset(tmp_path / "bad", spec, volumes, progress=False, slice_offset="edge")
    assert not (tmp_path / "bad").exists()


def test_the_displacement_field_is_smooth_and_as_long_as_asked():
    field = anatomy.displacement_field((90, 70), (1.0, 2.0), 6.0, np.random.default_rng(0))
    assert field.shape == (2, 90, 70)
    length_mm = np.sqrt((field[0] * 1.0) ** 2 + (field[1] * 2.0) ** 2)  # pixels back to mm, per axis
    assert length_mm.max() == pytest.approx(6.0)
    assert length_mm.mean() > 1.0  # displaced throughout, not at one pixel
    # smooth: neighbouring pixels move alike (sigma 16 mm), far pixels independently
    assert np.abs(np.diff(field[0], axis=0)).max() < 0.1 * np.abs(field[0]).max()
    again = anatomy.displacement_field((90, 70), (1.0, 2.0), 6.0, np.random.default_rng(0))
    np.testing.assert_array_equal(field, again)


def test_deformed_planes_read_each_pixel_at_its_displacement():
    # on a linear ramp, linear interpolation is exact: the warped ramp minus the ramp is the field itself
    shape, spacing = (60, 50), (1.0, 1.0)
    rows, cols = np.indices(shape, dtype=np.float64)
    ramps = np.stack([rows, cols]).astype(np.float32)
    warped = anatomy.deformed(ramps, spacing, 3.0, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    fields = [anatomy.displacement_field(shape, spacing, 3.0, rng) for _ in range(2)]  # one field per plane, in turn
    inner = (slice(4, -4), slice(4, -4))  # clear of the zero fill outside
    np.testing.assert_allclose(warped[0][inner] - rows[inner], fields[0][0][inner], atol=1e-4)
    np.testing.assert_allclose(warped[1][inner] - cols[inner], fields[1][1][inner], atol=1e-4)


def test_a_deformation_warps_the_same_template_slices_and_is_recorded(tmp_path):
    volumes = {"train": 2}
    plain = write_anatomy_dataset(tmp_path / "plain", SPEC, volumes, progress=False, slice_offset="random")
    warped = write_anatomy_dataset(
        tmp_path / "warped", SPEC, volumes, progress=False, slice_offset="random", deform_mm=6.0
    )
    for before, after in zip(plain, warped, strict=True):
        (_, target_before, attrs_before), (_, target_after, attrs_after) = read(before), read(after)
        assert attrs_after["template_slices"].tolist() == attrs_before["template_slices"].tolist()
        assert target_after.shape == target_before.shape
        change = np.abs(target_after - target_before).mean() / np.abs(target_before).mean()
        assert 0.02 < change < 0.5  # another view of the same slices, not another image
        inspect_volume(after, "multicoil", check_values=True)
    assert read_anatomy_settings(tmp_path / "warped", "multicoil")["deform"] == {
        "max_displacement_mm": 6.0,
        "smoothness_mm": anatomy.DEFORM_SMOOTHNESS_MM,
    }
    assert "deform" not in read_anatomy_settings(tmp_path / "plain", "multicoil")  # as before the option
    again = write_anatomy_dataset(tmp_path / "again", SPEC, volumes, progress=False, slice_offset="random", deform_mm=6)
    assert [read(p)[1].tobytes() for p in again] == [read(p)[1].tobytes() for p in warped]


@pytest.mark.parametrize("deform_mm", [-1.0, float("nan"), float("inf")])
def test_a_bad_deformation_is_refused_before_anything_is_written(tmp_path, deform_mm):
    with pytest.raises(ValueError, match=rf"deform_mm: expected a finite number of mm >= 0, got {deform_mm!r}"):
        write_anatomy_dataset(tmp_path / "bad", SPEC, {"train": 1}, progress=False, deform_mm=deform_mm)
    assert not (tmp_path / "bad").exists()


def test_cli_deform_flag_reaches_the_writer_and_refuses_negatives(tmp_path, capsys):
    argv = ["data", "anatomy", "--volumes", "1", "--val-volumes", "0", "--test-volumes", "0", "--slices", "1"]
    assert cli.main([*argv, str(tmp_path / "w"), "--size", "16", "--deform-mm", "4", "--no-progress"]) == 0
    assert read_anatomy_settings(tmp_path / "w")["deform"]["max_displacement_mm"] == 4.0
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, str(tmp_path / "n"), "--size", "16", "--deform-mm", "-2", "--no-progress"])
    assert exit_info.value.code == 2
    assert "--deform-mm: expected" in capsys.readouterr().err
    assert not (tmp_path / "n").exists()


def test_another_brain_from_a_file_is_sliced_as_the_built_in_one(tmp_path, doubled_template):
    volumes = {"train": 2, "val": 1}
    built_in = write_anatomy_dataset(tmp_path / "mni", SPEC, volumes, progress=False, layout="interleaved")
    from_file = write_anatomy_dataset(
        tmp_path / "file", SPEC, volumes, progress=False, layout="interleaved", template=str(doubled_template)
    )
    assert [p.name for p in from_file] == [
        "anatomy_doubled_s0_train_000.h5",
        "anatomy_doubled_s0_train_001.h5",
        "anatomy_doubled_s0_val_000.h5",
    ]
    for mine, theirs in zip(from_file, built_in, strict=True):
        kspace, target, attrs = read(mine)
        kspace_mni, target_mni, attrs_mni = read(theirs)
        np.testing.assert_allclose(kspace, kspace_mni, rtol=1e-5, atol=1e-5 * np.abs(kspace_mni).max())
        np.testing.assert_allclose(target, target_mni, rtol=1e-5, atol=1e-5 * target_mni.max())
        np.testing.assert_array_equal(attrs["template_slices"], attrs_mni["template_slices"])
        assert (attrs["acquisition"], attrs["patient_id"][:9]) == ("DOUBLED_T1", "doubled-0")
    settings = read_anatomy_settings(tmp_path / "file", "multicoil")
    settings_mni = read_anatomy_settings(tmp_path / "mni", "multicoil")
    assert settings["blocks"] == settings_mni["blocks"] and "nilearn_version" not in settings
    assert settings["source"] == str(doubled_template.resolve())
    assert settings["source_sha256"] == hashlib.sha256(doubled_template.read_bytes()).hexdigest()


def test_an_unreadable_or_flat_brain_is_refused_naming_it_before_anything_is_written(tmp_path):
    import nibabel

    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a NIfTI file")
    flat = tmp_path / "flat.nii"
    nibabel.save(nibabel.Nifti1Image(np.ones((8, 8, 1), np.float32), np.eye(4)), flat)
    for path, problem in ((broken, "not a readable NIfTI file"), (flat, "2-D image where a 3-D volume")):
        with pytest.raises(ImageImportError, match=problem) as raised:
            write_anatomy_dataset(
                tmp_path / "out",
                SimulationSpec(num_slices=1, size=16),
                {"train": 1},
                progress=False,
                template=str(path),
            )
        assert raised.value.path == path
    assert not (tmp_path / "out").exists()


def test_cli_template_flag_reaches_the_writer(tmp_path, doubled_template, capsys):
    argv = ["data", "anatomy", str(tmp_path), "--volumes", "1", "--val-volumes", "0", "--test-volumes", "0"]
    assert cli.main([*argv, "--slices", "1", "--size", "16", "--template", str(doubled_template), "--no-progress"]) == 0
    assert [p.name for p in (tmp_path / "singlecoil_train").iterdir()] == ["anatomy_doubled_s0_train_000.h5"]
    assert cli.main([*argv[:2], str(tmp_path / "bad"), *argv[3:], "--template", str(tmp_path / "none.nii")]) == 2
    assert "none.nii" in capsys.readouterr().err


def test_a_brain_file_rewritten_in_place_is_read_again(tmp_path, doubled_template):
    import nibabel

    path = tmp_path / "brain.nii.gz"
    path.write_bytes(doubled_template.read_bytes())
    volumes = {"train": 1}
    (before,) = write_anatomy_dataset(tmp_path / "before", SPEC, volumes, progress=False, template=str(path))
    data, zooms = anatomy.load_template()
    flipped = np.ascontiguousarray(np.flip(data, axis=1))  # anterior and posterior swapped: another brain
    nibabel.save(nibabel.Nifti1Image(flipped, np.diag([*zooms, 1.0])), path)
    (after,) = write_anatomy_dataset(tmp_path / "after", SPEC, volumes, progress=False, template=str(path))
    np.testing.assert_array_equal(anatomy.load_template(str(path))[0], flipped)
    assert not np.allclose(read(before)[1], read(after)[1])
    recorded = read_anatomy_settings(tmp_path / "after", "multicoil")["source_sha256"]
    assert recorded == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_rewritten_brain_file_leaves_no_earlier_version_in_the_caches(tmp_path, doubled_template):
    import nibabel

    path = tmp_path / "brain.nii.gz"
    path.write_bytes(doubled_template.read_bytes())
    data, zooms = anatomy.load_template(str(path))
    earlier = weakref.ref(data)
    anatomy.template_blocks("axial", str(path))  # fills every brain cache from the first version
    flipped = np.ascontiguousarray(np.flip(data, axis=1))
    del data
    nibabel.save(nibabel.Nifti1Image(flipped, np.diag([*zooms, 1.0])), path)
    anatomy.template_blocks("axial", str(path))
    gc.collect()
    assert earlier() is None
    np.testing.assert_array_equal(anatomy.load_template(str(path))[0], flipped)
