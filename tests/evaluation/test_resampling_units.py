"""The units a share's interval resamples, read from real files: template slices for volumes cut from
one template, subjects where a subject has several volumes, else volumes; clear errors for a missing
file or a slice the file does not record."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from mri_rl.evaluation.report import VOLUMES
from mri_rl.evaluation.resampling_units import resampling_units


def copied_volumes(tmp_path: Path, singlecoil_root: Path, attributes: list[dict]) -> list[str]:
    """The two train volumes of ``singlecoil_root`` (3 slices each), copied, each with its ``attributes`` set."""
    sources = sorted((singlecoil_root / "singlecoil_train").glob("*.h5"))
    for path, attrs in zip(sources, attributes, strict=True):
        copy = tmp_path / path.name
        shutil.copy2(path, copy)
        with h5py.File(copy, "r+") as hf:
            for key, value in attrs.items():
                hf.attrs[key] = value
    return [path.name for path in sources]


def all_images(names: list[str]) -> set[tuple[str, int]]:
    return {(name, index) for name in names for index in range(3)}


def template_volumes(tmp_path: Path, singlecoil_root: Path, orientations: tuple[str, str], slices: list[list[int]]):
    """The units of two copied volumes cut from one template: each file's orientation and template slices."""
    attributes = [
        {"orientation": orientation, "template_slices": np.array(recorded)}
        for orientation, recorded in zip(orientations, slices, strict=True)
    ]
    names = copied_volumes(tmp_path, singlecoil_root, attributes)
    return names, resampling_units(tmp_path, all_images(names), "singlecoil")


def test_volumes_of_one_template_are_resampled_by_the_template_slice_they_read(tmp_path, singlecoil_root):
    names, units = template_volumes(tmp_path, singlecoil_root, ("axial", "axial"), [[10, 20, 30], [20, 30, 40]])
    assert units.name == "runs of neighbouring template slices"
    assert units.unit((names[0], 1)) == units.unit((names[1], 0)) == ("axial", 20)  # one anatomy, two volumes
    assert units.unit((names[1], 2)) == ("axial", 40)
    assert len({units.unit(image) for image in all_images(names)}) == 4
    assert "one template brain" in units.reason


def test_neighbouring_template_slices_are_one_unit(tmp_path, singlecoil_root):
    """Slices at most 2 from their run's first are one unit (an interleaved layout's 3-slice block,
    read by volumes with random offsets); one 3 or more from it starts another, so that slices read
    densely (60, 61, 63: a chain of neighbours) are not all one unit."""
    names, units = template_volumes(tmp_path, singlecoil_root, ("axial", "axial"), [[33, 35, 60], [34, 61, 63]])
    of = {image: units.unit(image) for image in all_images(names)}
    assert of[(names[0], 0)] == of[(names[0], 1)] == of[(names[1], 0)] == ("axial", 33)
    assert of[(names[0], 2)] == of[(names[1], 1)] == ("axial", 60)
    assert of[(names[1], 2)] == ("axial", 63)
    assert len(set(of.values())) == 3


def test_the_same_template_slice_in_another_orientation_is_another_unit(tmp_path, singlecoil_root):
    names, units = template_volumes(tmp_path, singlecoil_root, ("axial", "sagittal"), [[10, 20, 30]] * 2)
    assert units.unit((names[0], 0)) != units.unit((names[1], 0))


def test_volumes_of_one_subject_are_one_unit(tmp_path, singlecoil_root):
    names = copied_volumes(tmp_path, singlecoil_root, [{"patient_id": "s1"}, {"patient_id": "s1"}])
    units = resampling_units(tmp_path, all_images(names), "singlecoil")
    assert units.name == "subjects"
    assert {units.unit(image) for image in all_images(names)} == {"s1"}


def test_a_subject_per_volume_or_no_attributes_means_volumes(tmp_path, singlecoil_root):
    names = copied_volumes(tmp_path, singlecoil_root, [{"patient_id": "s1"}, {"patient_id": "s2"}])
    assert resampling_units(tmp_path, all_images(names), "singlecoil") == VOLUMES
    assert resampling_units(singlecoil_root / "singlecoil_train", all_images(names), "singlecoil") == VOLUMES
    assert VOLUMES.unit((names[0], 2)) == names[0]


def test_a_slice_the_file_does_not_record_or_a_missing_file_is_refused(tmp_path, singlecoil_root):
    names = copied_volumes(
        tmp_path,
        singlecoil_root,
        [{"template_slices": np.array([10, 20])}, {"template_slices": np.array([10, 20, 30])}],
    )
    with pytest.raises(ValueError, match=rf"{names[0]}: slice 2 was rolled, but template_slices records 2 slices"):
        resampling_units(tmp_path, all_images(names), "singlecoil")
    with pytest.raises(FileNotFoundError, match="the evaluation rolled gone.h5, which is not in"):
        resampling_units(tmp_path, {("gone.h5", 0)}, "singlecoil")
