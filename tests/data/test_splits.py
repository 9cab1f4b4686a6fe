"""mri_rl.data.splits: split names of folders, refusing the wrong split and overlapping files."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from mri_rl.data.splits import check_disjoint, check_split_folder, split_named_by
from mri_rl.provenance import data_fingerprint


@pytest.mark.parametrize(
    "name, split",
    [
        ("singlecoil_train", "train"),
        ("multicoil_val", "val"),
        ("knee_validation", "val"),
        ("brain_test", "test"),
        ("Training-Set", "train"),
        ("valid", "val"),
        ("knee_testing", "test"),
        ("my_data", None),
        ("train_and_test", None),
        ("trainval", None),
        ("contest", None),
        ("val_validation", "val"),
    ],
)
def test_split_named_by(tmp_path, name, split):
    assert split_named_by(tmp_path / name) == split
    assert split_named_by(str(tmp_path / name)) == split


def test_split_named_by_reads_the_last_folder_only(tmp_path):
    assert split_named_by(tmp_path / "train" / "data") is None
    assert split_named_by(tmp_path / "my_data" / "singlecoil_val") == "val"


def test_folder_named_for_another_split_is_refused(tmp_path):
    folder = tmp_path / "singlecoil_train"
    with pytest.raises(
        ValueError,
        match=re.escape(str(folder)) + r" is named as the train split, but the val "
        r"split was asked for: .*--any-folder",
    ):
        check_split_folder(folder, "val")
    with pytest.raises(ValueError, match=r"named as the val split, but the test split was asked for"):
        check_split_folder(tmp_path / "knee_validation", "test")


def test_folders_that_pass(tmp_path):
    check_split_folder(tmp_path / "singlecoil_train", "val", any_folder=True)
    check_split_folder(tmp_path / "my_data", "val")
    check_split_folder(tmp_path / "train_and_test", "val")
    check_split_folder(tmp_path / "singlecoil_train", "train")
    check_split_folder(tmp_path / "multicoil_val", "val")
    check_split_folder(tmp_path / "brain_test", "test")


def test_unknown_split_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"unknown split 'validation'; expected one of train, val, test"):
        check_split_folder(tmp_path / "my_data", "validation")
    with pytest.raises(ValueError, match=r"unknown split 'eval'"):
        check_split_folder(tmp_path / "my_data", "eval", any_folder=True)


def fingerprint(folder: str, names: list[str]) -> dict:
    return {"folder": folder, "files": names, "digest": "sha256:0000000000000000"}


def test_check_disjoint_passes():
    check_disjoint(None, fingerprint("/data/val", ["a.h5"]), "the agent")
    check_disjoint(fingerprint("/data/train", ["a.h5", "b.h5"]), fingerprint("/data/val", ["c.h5"]), "the agent")
    check_disjoint(fingerprint("/data/train", []), fingerprint("/data/val", ["c.h5"]), "the agent")


def test_check_disjoint_lists_few_shared_files():
    training = fingerprint("/data/train", ["a.h5", "b.h5", "c.h5"])
    evaluated = fingerprint("/data/test", ["c.h5", "a.h5", "z.h5"])
    with pytest.raises(ValueError) as raised:
        check_disjoint(training, evaluated, "runs/dqn")
    message = str(raised.value)
    assert message.startswith("2 file(s) of /data/test are also in the training set of runs/dqn (/data/train): ")
    assert "a.h5, c.h5. Evaluate on held-out files" in message
    assert "more" not in message and "z.h5" not in message and "b.h5" not in message


def test_check_disjoint_lists_at_most_five_shared_files():
    names = [f"file_{i:02d}.h5" for i in range(8)]
    training = fingerprint("/data/train", names)
    evaluated = fingerprint("/data/val", list(reversed(names)) + ["held_out.h5"])
    with pytest.raises(
        ValueError,
        match=r"^8 file\(s\) of /data/val are also in the training set of the "
        r"reconstructor \(/data/train\): file_00\.h5, file_01\.h5, file_02\.h5, "
        r"file_03\.h5, file_04\.h5 and 3 more\. Evaluate on held-out files$",
    ):
        check_disjoint(training, evaluated, "the reconstructor")


def test_check_disjoint_exactly_five_has_no_more():
    names = [f"f{i}.h5" for i in range(5)]
    with pytest.raises(ValueError, match=r": f0\.h5, f1\.h5, f2\.h5, f3\.h5, f4\.h5\. Evaluate") as raised:
        check_disjoint(fingerprint("/t", names), fingerprint("/v", names), "x")
    assert "more" not in str(raised.value)


def test_check_disjoint_finds_a_training_file_under_another_name(tmp_path):
    """A held-out folder holding a copy of a training volume under another name (bytes alike: the first and last
    MiB that data_fingerprint hashes) is refused, the message naming both; a name match is still listed by name."""
    rng = np.random.default_rng(0)
    train, val = tmp_path / "train", tmp_path / "val"
    for folder, names in ((train, ["a.h5", "b.h5", "c.h5"]), (val, ["d.h5"])):
        folder.mkdir()
        for name in names:
            (folder / name).write_bytes(rng.bytes(3000))
    check_disjoint(data_fingerprint(train), data_fingerprint(val), "runs/dqn")
    shutil.copyfile(train / "b.h5", val / "file1000042.h5")
    shutil.copyfile(train / "c.h5", val / "c.h5")
    with pytest.raises(ValueError) as raised:
        check_disjoint(data_fingerprint(train), data_fingerprint(val), "runs/dqn")
    assert str(raised.value) == (
        f"2 file(s) of {val} are also in the training set of runs/dqn ({train}): c.h5, "
        "file1000042.h5 (the content of b.h5). Evaluate on held-out files"
    )
