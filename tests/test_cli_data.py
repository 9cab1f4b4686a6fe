"""``mri-rl data synth`` and ``mri-rl data check``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from fastmri.data import mri_data

from mri_rl.cli import main
from mri_rl.data.fastmri_files import FastMRISliceDataset
from mri_rl.kspace import data_range

SMALL = ["--slices", "2", "--size", "16", "--no-progress"]


def files_of(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.h5"))


# --------------------------------------------------------------------------- data synth


def test_synth_writes_fastmri_layout(tmp_path, capsys):
    out = tmp_path / "root"
    status = main(["data", "synth", str(out), "--volumes", "3", "--val-volumes", "1", "--test-volumes", "2", *SMALL])
    assert status == 0
    counts = {p.name: len(files_of(p)) for p in out.iterdir() if p.is_dir()}
    assert counts == {"singlecoil_train": 3, "singlecoil_val": 1, "singlecoil_test": 2}
    stdout = capsys.readouterr().out
    assert f"{out / 'singlecoil_train'}: 3 volume(s)" in stdout
    assert "wrote 6 file(s): 2 slices each, k-space (32, 16), target 16x16" in stdout
    dataset = FastMRISliceDataset(out / "singlecoil_train", "singlecoil", check_values=True)
    assert len(dataset) == 3 * 2
    assert tuple(dataset[0].kspace.shape) == (32, 16)


def test_synth_multicoil_with_padding(tmp_path, capsys):
    status = main(
        [
            "data",
            "synth",
            str(tmp_path),
            "--challenge",
            "multicoil",
            "--coils",
            "2",
            "--volumes",
            "1",
            "--val-volumes",
            "0",
            "--test-volumes",
            "0",
            "--kspace-width",
            "20",
            "--padding",
            "2",
            "--seed",
            "4",
            *SMALL,
        ]
    )
    assert status == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multicoil_synthetic_settings.json", "multicoil_train"]
    (path,) = files_of(tmp_path / "multicoil_train")
    assert path.name == "synthetic_s4_train_000.h5"
    with h5py.File(path, "r") as hf:
        assert hf["kspace"].shape == (2, 2, 32, 20)
        assert hf["reconstruction_rss"].shape == (2, 16, 16)
        assert (hf["kspace"][..., :2] == 0).all() and (hf["kspace"][..., 18:] == 0).all()
    assert "wrote 1 file(s)" in capsys.readouterr().out


def test_synth_is_reproducible(tmp_path):
    args = ["--volumes", "1", "--val-volumes", "0", "--test-volumes", "0", *SMALL]
    assert main(["data", "synth", str(tmp_path / "a"), *args]) == 0
    assert main(["data", "synth", str(tmp_path / "b"), *args]) == 0
    (a,) = files_of(tmp_path / "a" / "singlecoil_train")
    (b,) = files_of(tmp_path / "b" / "singlecoil_train")
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    ("args", "keyword"),
    [
        (["--padding", "8"], "padding"),
        (["--size", "4"], "size"),
        (["--striation", "-0.5"], "striation"),
        (["--striation", "1e308"], "striation: expected a number in [0, 10]"),
        (["--noise", "1e308"], "noise_level: expected a number in [0, 10]"),
    ],
)
def test_synth_invalid_arguments_fail_cleanly(tmp_path, capsys, args, keyword):
    status = main(["data", "synth", str(tmp_path / "out"), *SMALL, *args])
    assert status == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("mri-rl: error:")
    assert keyword in captured.err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- data check


def test_check_good_folder(singlecoil_root, capsys):
    folder = singlecoil_root / "singlecoil_train"
    assert main(["data", "check", str(folder), "--challenge", "singlecoil", "--require-target"]) == 0
    lines = capsys.readouterr().out.splitlines()
    files = files_of(folder)
    assert len(lines) == len(files) + 1
    for line, path in zip(lines, files):
        assert line == (f"OK  {path.name}: slices=3 kspace=(32, 16) coils=1 padding=[0,16) target=yes")
    assert lines[-1] == "2 file(s), 0 bad"


def test_check_good_multicoil_and_knee_folders(multicoil_root, knee_geometry_file, capsys):
    assert main(["data", "check", str(multicoil_root / "multicoil_val"), "--challenge", "multicoil"]) == 0
    assert main(["data", "check", str(knee_geometry_file), "--challenge", "singlecoil"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"OK  \S+\.h5: slices=3 kspace=\(3, 32, 16\) coils=3 padding=\[0,16\) target=yes", lines[0])
    assert lines[1] == "1 file(s), 0 bad"
    assert re.fullmatch(r"OK  \S+\.h5: slices=1 kspace=\(640, 368\) coils=1 padding=\[17,351\) target=yes", lines[2])


def test_check_wrong_challenge_is_bad(multicoil_root, capsys):
    assert main(["data", "check", str(multicoil_root / "multicoil_val"), "--challenge", "singlecoil"]) == 1
    out = capsys.readouterr().out
    assert "BAD " in out and "singlecoil expects 3 dims" in out


def _lines_by_file(lines: list[str]) -> dict[str, list[str]]:
    """The output lines of `data check` but the last, grouped by file name."""
    by_file: dict[str, list[str]] = {}
    for line in lines:
        by_file.setdefault(line[4:].split(":")[0], []).append(line)
    return by_file


def test_check_folder_with_bad_files(
    tmp_path, singlecoil_volume, copy_volume, make_bad_volume, bad_kinds, slice_kinds, capsys
):
    good = copy_volume(singlecoil_volume, tmp_path / "good.h5")
    bad = {kind: make_bad_volume(singlecoil_volume, tmp_path, kind) for kind in bad_kinds}
    (tmp_path / "notes.txt").write_text("ignored")

    status = main(["data", "check", str(tmp_path), "--challenge", "singlecoil", "--require-target"])
    assert status == 1
    lines = capsys.readouterr().out.splitlines()
    by_file = _lines_by_file(lines[:-1])
    assert set(by_file) == {good.name} | {p.name for p in bad.values()}
    assert len(by_file[good.name]) == 1 and by_file[good.name][0].startswith("OK  good.h5: slices=3")
    for kind, path in bad.items():
        file_lines = by_file[path.name]
        slices = [0, 1, 2] if kind == "zero_target_without_max" else [slice_kinds[kind]] if kind in slice_kinds else []
        assert len(file_lines) == max(1, len(slices))
        for line, index in zip(file_lines, slices or [None]):
            assert line.startswith(f"BAD {path.name}: ")
            assert bad_kinds[kind] in line
            assert line.endswith("" if index is None else f" (slice {index})")
    assert lines[-1] == f"{len(bad) + 1} file(s), {len(bad)} bad"


def test_check_prints_exact_lines(tmp_path, singlecoil_volume, copy_volume, make_bad_volume, capsys):
    copy_volume(singlecoil_volume, tmp_path / "a_good.h5")
    make_bad_volume(singlecoil_volume, tmp_path, "target_wrong_size", name="b_size.h5")
    make_bad_volume(singlecoil_volume, tmp_path, "kspace_group", name="c_group.h5")
    make_bad_volume(singlecoil_volume, tmp_path, "huge_kspace", name="d_huge.h5")
    make_bad_volume(singlecoil_volume, tmp_path, "nan_target", name="e_nan.h5")
    assert main(["data", "check", str(tmp_path), "--challenge", "singlecoil"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "OK  a_good.h5: slices=3 kspace=(32, 16) coils=1 padding=[0,16) target=yes",
        "BAD b_size.h5: 'reconstruction_esc' has shape (3, 16, 12); expected (3, 16, 16), "
        "the header's reconSpace matrix size",
        "BAD c_group.h5: 'kspace' is an HDF5 group; expected a dataset of complex64 (slices, rows, cols)",
        "BAD d_huge.h5: 'kspace' declares slices of shape (100000, 100000) complex64, 74.5 GiB each; "
        "the limit is 2 GiB (MAX_SLICE_BYTES): a damaged file?",
        "BAD e_nan.h5: 'reconstruction_esc' contains NaN or Inf (slice 1)",
        "5 file(s), 4 bad",
    ]


def test_check_names_a_link_to_a_missing_file_and_goes_on(
    tmp_path, singlecoil_volume, copy_volume, make_bad_volume, capsys
):
    copy_volume(singlecoil_volume, tmp_path / "a_good.h5")
    make_bad_volume(singlecoil_volume, tmp_path, "dangling_link", name="b_link.h5")
    copy_volume(singlecoil_volume, tmp_path / "c_good.h5")
    assert main(["data", "check", str(tmp_path), "--challenge", "singlecoil"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "OK  a_good.h5: slices=3 kspace=(32, 16) coils=1 padding=[0,16) target=yes",
        f"BAD b_link.h5: a link to {tmp_path / 'not_mounted' / 'b_link.h5'}, which does not exist "
        "(on a disk not mounted?); expected a fastMRI .h5 file",
        "OK  c_good.h5: slices=3 kspace=(32, 16) coils=1 padding=[0,16) target=yes",
        "3 file(s), 1 bad",
    ]


def test_check_finds_exactly_what_the_readers_skip(
    tmp_path, singlecoil_volume, make_bad_volume, bad_kinds, slice_kinds, capsys
):
    """`data check` runs the readers' validation: its BAD lines are exactly the files and slices that
    on_bad_file="skip" leaves out, and every slice the reader keeps reads and has a data range."""
    folder = tmp_path / "data"
    for kind in bad_kinds:
        make_bad_volume(singlecoil_volume, folder, kind)
    assert main(["data", "check", str(folder), "--challenge", "singlecoil", "--require-target"]) == 1
    found = set()
    for line in capsys.readouterr().out.splitlines()[:-1]:
        match = re.fullmatch(r"BAD (\S+): .*?(?: \(slice (\d+)\))?", line)
        assert match, line
        found.add((match[1], None if match[2] is None else int(match[2])))
    with pytest.warns(UserWarning, match="skipped"):
        dataset = FastMRISliceDataset(folder, "singlecoil", on_bad_file="skip")
    assert {(error.path.name, error.slice_index) for error in dataset.skipped} == found
    assert len(dataset) == 2 * len(slice_kinds)  # the two good slices of each partly bad file
    for index in range(len(dataset)):
        item = dataset[index]
        assert data_range(item.metadata.max_value, item.target) > 0


def test_check_runs_fastmri_header_parsing(tmp_path, singlecoil_volume, copy_volume, monkeypatch, capsys):
    """A header that mri_rl parses but fastmri's SliceDataset would not is BAD, not a later traceback."""
    copy_volume(singlecoil_volume, tmp_path / "v.h5")
    original = mri_data.et_query

    def et_query(root, qlist, namespace="http://www.ismrm.org/ISMRMRD"):
        if qlist[-1] == "z":
            raise RuntimeError("Element not found")
        return original(root, qlist, namespace)

    monkeypatch.setattr(mri_data, "et_query", et_query)
    assert main(["data", "check", str(tmp_path), "--challenge", "singlecoil"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "BAD v.h5: fastmri cannot read the file's header or attributes: RuntimeError: Element not found",
        "1 file(s), 1 bad",
    ]


def test_check_without_require_target_accepts_test_split_files(tmp_path, singlecoil_volume, make_bad_volume, capsys):
    path = make_bad_volume(singlecoil_volume, tmp_path, "no_target", name="test_volume.h5")
    assert main(["data", "check", str(tmp_path), "--challenge", "singlecoil"]) == 0
    assert f"OK  {path.name}: slices=3 kspace=(32, 16) coils=1 padding=[0,16) target=no" in capsys.readouterr().out
    assert main(["data", "check", str(tmp_path), "--challenge", "singlecoil", "--require-target"]) == 1
    assert f"BAD {path.name}: no target dataset 'reconstruction_esc'" in capsys.readouterr().out


@pytest.mark.parametrize("which", ["missing", "empty", "file"])
def test_check_missing_or_empty_folder(tmp_path, singlecoil_volume, capsys, which):
    folder = {"missing": tmp_path / "missing", "empty": tmp_path, "file": singlecoil_volume}[which]
    assert main(["data", "check", str(folder), "--challenge", "singlecoil"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("mri-rl: error: data folder")
    assert str(folder) in captured.err
    keyword = {"missing": "does not exist", "empty": "no .h5 files", "file": "not a directory"}[which]
    assert keyword in captured.err


def test_check_unknown_challenge_is_a_usage_error(singlecoil_root, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["data", "check", str(singlecoil_root / "singlecoil_train"), "--challenge", "bogus"])
    assert raised.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_check_requires_challenge(singlecoil_root, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["data", "check", str(singlecoil_root / "singlecoil_train")])
    assert raised.value.code == 2
    assert "--challenge" in capsys.readouterr().err


def test_data_without_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["data"])
    assert raised.value.code == 2


# --------------------------------------------------------------------------- python -m mri_rl


def test_module_entry_point_help():
    result = subprocess.run(
        [sys.executable, "-m", "mri_rl", "data", "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "synth" in result.stdout and "check" in result.stdout
    assert result.stdout.startswith("usage: mri-rl data")


def test_synth_striation_flag_reaches_the_data(tmp_path):
    args = ["--volumes", "1", "--val-volumes", "0", "--test-volumes", "0", *SMALL]
    assert main(["data", "synth", str(tmp_path / "plain"), *args, "--striation", "0"]) == 0
    assert main(["data", "synth", str(tmp_path / "striated"), *args]) == 0
    (plain,) = files_of(tmp_path / "plain" / "singlecoil_train")
    (striated,) = files_of(tmp_path / "striated" / "singlecoil_train")
    with h5py.File(plain) as a, h5py.File(striated) as b:
        assert a["kspace"].shape == b["kspace"].shape
        assert not (a["kspace"][()] == b["kspace"][()]).all()
