"""Shares per kind of volume: kinds read from real files, each kind's table from its own rows, and
clear errors for a missing file or attribute."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import h5py
import pytest
from test_report import volume_rows  # pytest puts this folder (no __init__.py) on sys.path

from mri_rl.envs import ENV_ID
from mri_rl.evaluation.report import room_share_table, write_rows_csv
from mri_rl.evaluation.volume_groups import room_share_by_kind, slices_of_each_kind, volume_kinds
from mri_rl.provenance import make_record, sidecar_path
from mri_rl.task import DEFAULT_TASK


@pytest.fixture
def two_kinds(tmp_path: Path, singlecoil_root: Path) -> Path:
    """The two train volumes of ``singlecoil_root``, copied, their ``acquisition`` set to PD and PDFS."""
    for path, kind in zip(sorted((singlecoil_root / "singlecoil_train").glob("*.h5")), ("PD", "PDFS"), strict=True):
        copy = tmp_path / path.name
        shutil.copy2(path, copy)
        with h5py.File(copy, "r+") as hf:
            hf.attrs["acquisition"] = kind
    return tmp_path


def test_volume_kinds_reads_each_file_s_attribute(two_kinds: Path):
    first, second = sorted(path.name for path in two_kinds.glob("*.h5"))
    assert volume_kinds(two_kinds, [second, first, first], "acquisition", "singlecoil") == {
        first: "PD",
        second: "PDFS",
    }


def test_volume_kinds_names_the_file_and_what_it_has(two_kinds: Path):
    name = sorted(path.name for path in two_kinds.glob("*.h5"))[0]
    with pytest.raises(ValueError, match=rf"{name} has no attribute 'orientation'; its text attributes: .*acquisition"):
        volume_kinds(two_kinds, [name], "orientation", "singlecoil")
    with pytest.raises(FileNotFoundError, match="the evaluation rolled gone.h5, which is not in"):
        volume_kinds(two_kinds, ["gone.h5"], "acquisition", "singlecoil")


def test_each_kind_gets_the_table_of_its_own_rows():
    # kind PD (x.h5): the policy is LBCS, share 0; kind PDFS (y.h5): the policy is the oracle, share 1
    rows = volume_rows(
        {("lbcs", "x.h5"): [0.2] * 4, ("oracle", "x.h5"): [0.6] * 4, ("p", "x.h5"): [0.2] * 4,
         ("lbcs", "y.h5"): [0.2], ("oracle", "y.h5"): [0.6], ("p", "y.h5"): [0.6]}
    )  # fmt: skip
    text = room_share_by_kind(rows, {"x.h5": "PD", "y.h5": "PDFS"}, "acquisition")
    sections = text.split("## ")[1:]
    assert [section.splitlines()[0] for section in sections] == [
        "acquisition = all (2 volumes)",
        "acquisition = PD (1 volume)",
        "acquisition = PDFS (1 volume)",
    ]
    assert room_share_table(rows) in sections[0]
    assert "| p | +0% | n/a | +0.0000 (0/4) |" in sections[1]
    assert "| p | +100% | n/a | +0.2000 (1/1) |" in sections[2]
    with pytest.raises(KeyError):
        room_share_by_kind(rows, {"x.h5": "PD"}, "acquisition")  # y.h5 has no kind


def test_slices_of_each_kind_groups_the_env_s_slices_by_their_file(two_kinds: Path):
    env = gym.make_vec(
        ENV_ID, num_envs=1, vectorization_mode="vector_entry_point", data_path=two_kinds, reconstructor="zero_filled"
    )
    files = [env.unwrapped.slice_name(index)[0] for index in range(env.unwrapped.num_slices)]
    first, second = sorted(set(files))
    groups = slices_of_each_kind(env.unwrapped, "acquisition")
    assert list(groups) == ["PD", "PDFS"]
    assert groups["PD"] == [index for index, name in enumerate(files) if name == first]
    assert groups["PDFS"] == [index for index, name in enumerate(files) if name == second]
    assert slices_of_each_kind(env.unwrapped, None) == {"all": list(range(len(files)))}
    with pytest.raises(ValueError, match="has no attribute 'orientation'"):
        slices_of_each_kind(env.unwrapped, "orientation")
    env.close()


def run_share_script(*args: str) -> subprocess.CompletedProcess:
    script = Path(__file__).parents[2] / "scripts" / "share_by_attribute.py"
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120)


def test_the_script_takes_shares_against_rows_joined_per_kind(tmp_path: Path, two_kinds: Path):
    """``scripts/share_by_attribute.py --join``: an order per kind, rolled in two other evaluations, as
    the reference; p is that order on the PD volume and 0.2 above it on the PDFS volume."""
    pd_file, pdfs_file = sorted(path.name for path in two_kinds.glob("*.h5"))
    main_rows = volume_rows({(policy, file): [value] for file in (pd_file, pdfs_file) for policy, value in
                             (("lbcs", 0.2), ("oracle", 0.6), ("p", 0.4))})  # fmt: skip
    write_rows_csv(tmp_path / "metrics.csv", main_rows)
    joins = []
    for file, value in ((pd_file, 0.4), (pdfs_file, 0.2)):
        write_rows_csv(tmp_path / f"{file}.csv", volume_rows({("lbcs", file): [value]}))
        joins += ["--join", f"per_kind={tmp_path / f'{file}.csv'}"]
    common = [str(tmp_path / "metrics.csv"), "--data", str(two_kinds), "--attribute", "acquisition", *joins]
    done = run_share_script(*common, "--reference", "per_kind")
    assert done.returncode == 0, done.stderr
    sections = done.stdout.split("## ")[1:]
    assert "| p | +33% |" in sections[0]  # gains 0 and 0.2 over rooms 0.2 and 0.4
    assert "| p | +0% |" in sections[1] and "| p | +50% |" in sections[2]  # PD, PDFS
    against_lbcs = run_share_script(*common).stdout.split("## ")[1]
    assert "| per_kind | +25% |" in against_lbcs and "| p | +50% |" in against_lbcs


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--join", "per_kind"], "--join 'per_kind': expected NAME=METRICS.csv"),
        (["--join", "k=gone.csv"], "gone.csv"),
        (["--reference", "lbcs_kind"], "--reference 'lbcs_kind' is not among the policies ['lbcs', 'oracle']"),
    ],
)
def test_the_script_refuses_a_bad_join_or_reference_in_one_line(tmp_path: Path, options: list[str], expected: str):
    write_rows_csv(tmp_path / "metrics.csv", volume_rows({("lbcs", "x.h5"): [0.2], ("oracle", "x.h5"): [0.6]}))
    done = run_share_script(str(tmp_path / "metrics.csv"), "--data", str(tmp_path), *options)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert expected in done.stderr.strip().splitlines()[-1]


def test_the_script_refuses_rows_rolled_under_another_task(tmp_path: Path):
    """A joined evaluation whose record has another budget (e.g. another regime) is one usage error
    naming the file and the difference; with the same task it is joined."""
    rows = volume_rows({("lbcs", "x.h5"): [0.2], ("oracle", "x.h5"): [0.6]})
    for name, task in (("metrics", DEFAULT_TASK), ("same", DEFAULT_TASK), ("other", replace(DEFAULT_TASK, budget=24))):
        write_rows_csv(tmp_path / f"{name}.csv", rows if name == "metrics" else volume_rows({("lbcs", "x.h5"): [0.3]}))
        sidecar_path(tmp_path / f"{name}.csv").write_text(json.dumps({"record": make_record(task)}))
    common = [str(tmp_path / "metrics.csv"), "--data", str(tmp_path), "--attribute", "acquisition"]
    refused = run_share_script(*common, "--join", f"k={tmp_path / 'other.csv'}")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "other.csv was rolled under another task than" in refused.stderr and "budget" in refused.stderr
    joined = run_share_script(*common, "--join", f"k={tmp_path / 'same.csv'}")
    assert "same.csv was rolled" not in joined.stderr  # passes the check; the next step wants a data folder
    assert "is neither a folder of .h5 files nor a fastMRI root" in joined.stderr
