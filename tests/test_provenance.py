"""mri_rl.provenance: data fingerprints, file hashes, records and the check before reuse."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from mri_rl import __version__
from mri_rl.provenance import (
    RECORD_KEYS,
    RecordMismatchError,
    check_record,
    checkpoint_fingerprint,
    data_fingerprint,
    file_sha256,
    make_record,
    read_json_record,
    record_differences,
    record_problem,
    sidecar_path,
)
from mri_rl.task import DEFAULT_TASK

MIB = 2**20
FRESH = "pass --overwrite or choose a new --out"


def write_folder(folder: Path, sizes: dict[str, int], seed: int = 0) -> Path:
    """A folder of files of random bytes, one per name, of the given sizes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, size in sizes.items():
        (folder / name).write_bytes(rng.bytes(size))
    return folder


def flip_byte(path: Path, offset: int) -> None:
    """Change one byte of a file in place, keeping its size."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_folder(tmp_path / "data", {"b.h5": 3000, "a.h5": 1000, "c.h5": 10})


def test_fingerprint_lists_sorted_names_and_absolute_folder(folder):
    found = data_fingerprint(folder)
    assert found["files"] == ["a.h5", "b.h5", "c.h5"]
    assert found["folder"] == str(folder.resolve())
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", found["digest"])


def test_fingerprint_of_copied_folder_matches(folder, tmp_path):
    copy = tmp_path / "elsewhere" / "copy"
    copy.mkdir(parents=True)
    for path in folder.glob("*.h5"):
        shutil.copy(path, copy / path.name)
    assert data_fingerprint(copy)["digest"] == data_fingerprint(folder)["digest"]
    assert data_fingerprint(copy)["folder"] != data_fingerprint(folder)["folder"]


def test_fingerprint_ignores_other_files(folder):
    before = data_fingerprint(folder)
    (folder / "notes.txt").write_text("not data")
    (folder / "a.h5.bak").write_bytes(b"x" * 10)
    (folder / "sub.h5").mkdir()
    after = data_fingerprint(folder)
    assert after["digest"] == before["digest"]
    assert after["files"] == ["a.h5", "b.h5", "c.h5"]


def test_fingerprint_changes_with_content(folder):
    before = data_fingerprint(folder)["digest"]
    size = (folder / "b.h5").stat().st_size
    flip_byte(folder / "b.h5", 1500)
    assert (folder / "b.h5").stat().st_size == size
    assert data_fingerprint(folder)["digest"] != before


def test_fingerprint_changes_with_rename_add_remove(folder):
    before = data_fingerprint(folder)["digest"]
    (folder / "c.h5").rename(folder / "d.h5")
    renamed = data_fingerprint(folder)
    assert renamed["files"] == ["a.h5", "b.h5", "d.h5"] and renamed["digest"] != before
    (folder / "d.h5").rename(folder / "c.h5")
    assert data_fingerprint(folder)["digest"] == before
    (folder / "e.h5").write_bytes(b"new")
    assert data_fingerprint(folder)["digest"] != before
    (folder / "e.h5").unlink()
    assert data_fingerprint(folder)["digest"] == before
    (folder / "a.h5").unlink()
    removed = data_fingerprint(folder)
    assert removed["files"] == ["b.h5", "c.h5"] and removed["digest"] != before


def test_fingerprint_of_missing_or_empty_folder(tmp_path):
    missing = data_fingerprint(tmp_path / "missing")
    empty = data_fingerprint(tmp_path)
    assert missing["files"] == [] and empty["files"] == []
    assert missing["digest"] == empty["digest"] == "sha256:" + hashlib.sha256().hexdigest()[:16]


def test_large_file_edges_are_read_but_not_its_middle(tmp_path):
    size = 3 * MIB + 123
    folder = write_folder(tmp_path / "large", {"big.h5": size})
    big = folder / "big.h5"
    original = data_fingerprint(folder)["digest"]
    flip_byte(big, MIB // 2)  # in the first MiB: seen
    assert data_fingerprint(folder)["digest"] != original
    flip_byte(big, MIB // 2)
    assert data_fingerprint(folder)["digest"] == original
    flip_byte(big, size - 10)  # in the last MiB: seen
    assert data_fingerprint(folder)["digest"] != original
    flip_byte(big, size - 10)
    # Documented limitation (module docstring, README): a same-size change in the middle
    # of a file larger than 2 MiB is not seen.
    flip_byte(big, size // 2)
    assert big.stat().st_size == size
    assert data_fingerprint(folder)["digest"] == original


def test_file_between_one_and_two_mib_is_read_whole(tmp_path):
    size = MIB + MIB // 2
    folder = write_folder(tmp_path / "medium", {"m.h5": size})
    original = data_fingerprint(folder)["digest"]
    flip_byte(folder / "m.h5", MIB + 100)
    assert data_fingerprint(folder)["digest"] != original


def test_file_sha256_and_checkpoint_fingerprint(tmp_path):
    data = np.random.default_rng(3).bytes(5 * MIB + 17)  # more than one 4 MiB read block
    path = tmp_path / "model.pt"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert file_sha256(path) == expected
    assert file_sha256(str(path)) == expected
    fingerprint = checkpoint_fingerprint(path)
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", fingerprint)
    assert fingerprint == "sha256:" + expected[:16]
    other = tmp_path / "other.pt"
    other.write_bytes(b"other")
    assert checkpoint_fingerprint(other) == "sha256:" + hashlib.sha256(b"other").hexdigest()[:16]


def test_fingerprint_digests_each_file_by_its_content(folder, tmp_path):
    """One digest per file, in the order of the names: a copy under another name has the same one (what
    check_disjoint compares); the digests are informational, so a record made before they were kept still matches."""
    found = data_fingerprint(folder)
    assert len(found["file_digests"]) == 3 and len(set(found["file_digests"])) == 3
    assert all(re.fullmatch(r"[0-9a-f]{16}", digest) for digest in found["file_digests"])
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    shutil.copy(folder / "b.h5", renamed / "z.h5")
    assert data_fingerprint(renamed)["file_digests"] == [found["file_digests"][1]]
    older = {key: value for key, value in found.items() if key != "file_digests"}
    assert record_differences(make_record(data={"train": older}), make_record(data={"train": found})) == []


def record(folder: Path, task=DEFAULT_TASK, **settings) -> dict:
    return make_record(task, {"train": data_fingerprint(folder)}, {"max_epochs": 20, "lr": 1e-3, **settings})


def test_make_record_contents(folder):
    made = make_record(DEFAULT_TASK, {"train": data_fingerprint(folder)}, {"shape": (2, 3), "path": Path("x")})
    assert made["mri_rl_version"] == __version__
    assert made["task"] == DEFAULT_TASK.to_dict()
    assert made["data"]["train"]["digest"] == data_fingerprint(folder)["digest"]
    assert made["settings"] == {"shape": [2, 3], "path": "x"}
    assert json.loads(json.dumps(made)) == made
    assert make_record() == {"mri_rl_version": __version__}


def test_equal_records_pass(folder, tmp_path):
    recorded = json.loads(json.dumps(record(folder)))  # as stored in a JSON file
    assert record_differences(recorded, record(folder)) == []
    check_record(recorded, record(folder), tmp_path / "run", FRESH)


def test_informational_keys_are_not_compared(folder, tmp_path):
    recorded = record(folder)
    now = record(folder)
    now["data"]["train"]["folder"] = str(tmp_path / "elsewhere")
    now["data"]["train"]["files"] = ["something", "else"]
    assert record_differences(recorded, now) == []
    now["data"]["train"]["digest"] = "sha256:0000000000000000"
    assert record_differences(recorded, now) == [
        f"data.train.digest: {recorded['data']['train']['digest']} vs sha256:0000000000000000"
    ]


@pytest.mark.parametrize(
    "change, keys",
    [
        ("task", ["task.budget: 16 vs 8"]),
        ("data", ["data.train.digest"]),
        ("settings", ["settings.lr: 0.001 vs 0.01"]),
        (
            "several",
            ["task.reward_metric: ssim vs psnr", "settings.max_epochs: 20 vs 30", "settings.extra: (none) vs 1"],
        ),
    ],
)
def test_mismatch_names_each_differing_key(folder, tmp_path, change, keys):
    recorded = record(folder)
    if change == "task":
        now = record(folder, task=DEFAULT_TASK.with_changes(budget=8))
    elif change == "data":
        flip_byte(folder / "a.h5", 10)
        now = record(folder)
    elif change == "settings":
        now = record(folder, lr=1e-2)
    else:
        now = record(folder, task=DEFAULT_TASK.with_changes(reward_metric="psnr"), max_epochs=30, extra=1)
    artifact = tmp_path / "run" / "last.ckpt"
    with pytest.raises(RecordMismatchError) as raised:
        check_record(recorded, now, artifact, FRESH)
    message = str(raised.value)
    assert message.startswith(f"{artifact} was made under other settings than this run (")
    assert "recorded vs now" in message
    assert message.endswith("To start fresh, " + FRESH)
    for key in keys:
        assert key in message
    assert len(record_differences(recorded, now)) == len(keys)


def test_missing_record_is_a_mismatch(folder, tmp_path):
    with pytest.raises(RecordMismatchError, match=r"no record of how it was made.*recorded vs now") as raised:
        check_record(None, record(folder), tmp_path / "summary.json", FRESH)
    assert str(raised.value).endswith(FRESH)
    assert len(record_differences(None, record(folder))) == 1


def test_task_present_on_one_side_only(folder):
    with_task, without = record(folder), record(folder, task=None)
    assert "task" not in without
    found = record_differences(with_task, without)
    assert len(found) == 1 and found[0].startswith("task: {") and found[0].endswith(" vs None")


def test_ignore_skips_that_key_only(folder, tmp_path):
    recorded = record(folder)
    now = record(folder, max_epochs=40)
    assert record_differences(recorded, now) == ["settings.max_epochs: 20 vs 40"]
    assert record_differences(recorded, now, ignore=("settings.max_epochs",)) == []
    check_record(recorded, now, tmp_path / "run", FRESH, ignore=("settings.max_epochs",))
    both = record(folder, max_epochs=40, lr=0.5)
    with pytest.raises(RecordMismatchError, match=r"settings\.lr: 0\.001 vs 0\.5; recorded vs now") as raised:
        check_record(recorded, both, tmp_path / "run", FRESH, ignore=("settings.max_epochs",))
    assert "max_epochs" not in str(raised.value)
    # a prefix of a key name is not a parent key
    assert record_differences(recorded, now, ignore=("settings.max",)) == ["settings.max_epochs: 20 vs 40"]
    # a parent key skips everything under it
    assert record_differences(recorded, both, ignore=("settings",)) == []


def test_sidecar_path(tmp_path):
    assert sidecar_path(tmp_path / "metrics.csv") == tmp_path / "metrics.csv.record.json"
    assert sidecar_path("runs/lbcs.npz") == Path("runs/lbcs.npz.record.json")


def test_read_json_record(tmp_path):
    assert read_json_record(tmp_path / "missing.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert read_json_record(bad) is None
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([{"record": {"a": 1}}]))
    assert read_json_record(listed) is None
    no_record = tmp_path / "plain.json"
    no_record.write_text(json.dumps({"ssim": 0.9}))
    assert read_json_record(no_record) is None
    good = tmp_path / "summary.json"
    stored = make_record(DEFAULT_TASK, settings={"seeds": [0, 1]})
    good.write_text(json.dumps({"ssim": 0.9, "record": stored}))
    assert read_json_record(good) == stored
    assert read_json_record(tmp_path) is None  # a folder, not a file


def test_records_as_make_record_writes_them_have_the_shape(folder):
    assert record_problem(None) is None  # no record: allowed (an artifact made without one)
    assert record_problem(make_record()) is None
    full = make_record(DEFAULT_TASK.with_changes(kspace_shape=(16, 16)), {"train": data_fingerprint(folder)}, {"a": 1})
    assert record_problem(full) is None
    assert record_problem(json.loads(json.dumps(full))) is None  # as read back from JSON


FINGERPRINT = {"folder": "/data", "files": ["a.h5"], "digest": "sha256:0"}
V = {"mri_rl_version": "0"}
A_RECORD = f"not a record (a mapping of {list(RECORD_KEYS)})"
A_FINGERPRINT = "a data fingerprint has a {} here"
#: Stored records that are not records: (record, the key named, the problem stated).
NOT_RECORDS: list[tuple[object, str, str]] = [
    (3, "record", f"is of type int, {A_RECORD}"),
    ("x", "record", f"is of type str, {A_RECORD}"),
    ({}, "record.mri_rl_version", "is None, not a version string"),
    ({"mri_rl_version": 1}, "record.mri_rl_version", "is 1, not a version string"),
    ({**V, "x": 1}, "record", f"has unknown key(s) ['x']; a record has {list(RECORD_KEYS)}"),
    ({**V, "task": 3}, "record.task", "is no task: the task must be a mapping of its fields, got int"),
    (
        {**V, "task": {"challenge": "x"}},
        "record.task",
        "is no task: task challenge must be one of singlecoil, multicoil, got 'x'",
    ),
    ({**V, "settings": []}, "record.settings", "is of type list, not a mapping"),
    ({**V, "data": "x"}, "record.data", "is of type str, not a mapping of data fingerprints"),
    ({**V, "data": {"train": 3}}, "record.data.train", "is of type int, not a data fingerprint"),
    (
        {**V, "data": {"train": {**FINGERPRINT, "files": "a.h5"}}},
        "record.data.train.files",
        "is 'a.h5'; " + A_FINGERPRINT.format("list"),
    ),
    (
        {**V, "data": {"train": {**FINGERPRINT, "files": [1]}}},
        "record.data.train.files",
        "is [1]; " + A_FINGERPRINT.format("list"),
    ),
    (
        {**V, "data": {"val": {**FINGERPRINT, "digest": None}}},
        "record.data.val.digest",
        "is None; " + A_FINGERPRINT.format("str"),
    ),
]


@pytest.mark.parametrize(("record", "key", "problem"), NOT_RECORDS)
def test_a_stored_record_of_another_shape_is_named(record, key, problem):
    assert record_problem(record) == (key, problem)
    assert record_problem(record, "checkpoint record") == (key.replace("record", "checkpoint record", 1), problem)
