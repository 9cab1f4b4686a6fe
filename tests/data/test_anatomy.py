"""The MNI152 template as a built-in anatomy source: valid files, different volumes, determinism, honest slabs."""

from __future__ import annotations

import dataclasses
import sys

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
