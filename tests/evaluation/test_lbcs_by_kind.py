"""``lbcs_kind``: one LBCS order per kind of volume. Each kind's order is the one LBCS learns on a
folder of that kind's training volumes alone; episodes follow their slice's kind; the orders are
cached and reused; and a missing attribute, kind or --lbcs-by is a clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from mri_rl.cli import main
from mri_rl.data import SyntheticSpec, write_synthetic_dataset
from mri_rl.evaluation.evaluate import EvaluationSetup, evaluate_policies
from mri_rl.evaluation.lbcs_orders import KIND_ORDERS, kind_cache_file
from mri_rl.evaluation.report import read_rows_csv
from mri_rl.policies import LBCSByKindPolicy
from mri_rl.provenance import RecordMismatchError, read_json_record, sidecar_path
from mri_rl.task import AcquisitionTask

TASK = AcquisitionTask(budget=3, initial_lines=2, reward_metric="ssim")
KINDS = ("PD", "PDFS")


def set_kinds(folder: Path, kinds: tuple[str, ...]) -> list[Path]:
    """Set the ``acquisition`` of the folder's volumes, in name order, to ``kinds``; returns them."""
    paths = sorted(folder.glob("*.h5"))
    for path, kind in zip(paths, kinds, strict=True):
        with h5py.File(path, "r+") as hf:
            hf.attrs["acquisition"] = kind
    return paths


@pytest.fixture(scope="module")
def kinds_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root of 2 training and 2 test volumes (3 slices, 16 x 16), one of each kind PD, PDFS per split."""
    root = tmp_path_factory.mktemp("kinds_root")
    write_synthetic_dataset(root, SyntheticSpec(num_slices=3, size=16), {"train": 2, "test": 2}, seed=0, progress=False)
    for split in ("train", "test"):
        set_kinds(root / f"singlecoil_{split}", KINDS)
    return root


def make_setup(data: Path, **overrides) -> EvaluationSetup:
    values = dict(data=data, task=TASK, seeds=(0,), batch_size=2, lbcs_slices=3, lbcs_by="acquisition")
    return EvaluationSetup(**(values | overrides))


def episode_columns(rows: list[dict], policy: str) -> dict[tuple[str, int], list[int]]:
    """Per (file, slice), the columns one policy acquired at steps 1, 2, ..."""
    columns: dict[tuple[str, int], list[int]] = {}
    for row in sorted((r for r in rows if r["policy"] == policy and r["step"] > 0), key=lambda r: r["step"]):
        columns.setdefault((row["file"], row["slice"]), []).append(row["column"])
    return columns


@pytest.fixture(scope="module")
def kind_run(kinds_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lbcs, lbcs_kind and the oracle evaluated on the test split of ``kinds_root``."""
    out = tmp_path_factory.mktemp("kind_run")
    evaluate_policies(make_setup(kinds_root), ["lbcs", "lbcs_kind", "oracle"], out, progress=False)
    return out


# ------------------------------------------------------------------------- the policy
def test_each_episode_follows_the_order_of_its_slice_s_kind():
    policy = LBCSByKindPolicy(6, {"a": [5, 0], "b": [1, 2]}, ["a", "b", "a"])
    legal = np.ones((3, 6), dtype=bool)
    policy.reset(legal, [0, 1, 2])
    assert policy.predict(None, action_mask=legal)[0].tolist() == [5, 1, 5]
    legal[0, 5] = legal[1, [1, 2]] = False
    # row 0 takes its order's next column; row 1 has taken its order and goes on from low to high
    # frequency (the centre of 6 columns is 3); row 2 is still at its first column
    assert policy.predict(None, action_mask=legal)[0].tolist() == [0, 3, 5]
    policy.reset(legal[:1], [1])  # a batch of one episode on slice 1 (kind b)
    assert policy.predict(None, action_mask=np.ones((1, 6), dtype=bool))[0].tolist() == [1]


def test_the_policy_refuses_what_it_cannot_follow():
    with pytest.raises(ValueError, match=r"no order for the kind\(s\) \['c'\]"):
        LBCSByKindPolicy(6, {"a": [0]}, ["a", "c"])
    with pytest.raises(ValueError, match=r"order must list distinct columns in \[0, 6\), got \[6\]"):
        LBCSByKindPolicy(6, {"a": [6]}, ["a"])
    policy = LBCSByKindPolicy(6, {"a": [0]}, ["a"])
    legal = np.ones((1, 6), dtype=bool)
    with pytest.raises(RuntimeError, match="call reset"):
        policy.predict(None, action_mask=legal)
    with pytest.raises(ValueError, match="needs the slice of each episode"):
        policy.reset(legal)


# ------------------------------------------------------------------------- in an evaluation
def test_each_kind_s_order_is_lbcs_learned_on_that_kind_s_volumes_alone(kinds_root, kind_run, tmp_path):
    orders = {kind: json.loads(kind_cache_file(kind_run, "acquisition", kind).read_text())["order"] for kind in KINDS}
    assert orders["PD"] != orders["PDFS"]  # otherwise the test could not tell the kinds apart
    for train, test, kind in zip(
        sorted((kinds_root / "singlecoil_train").glob("*.h5")),
        sorted((kinds_root / "singlecoil_test").glob("*.h5")),
        KINDS,
        strict=True,
    ):
        alone = tmp_path / kind
        for split, path in (("train", train), ("test", test)):
            (alone / f"singlecoil_{split}").mkdir(parents=True)
            shutil.copy2(path, alone / f"singlecoil_{split}" / path.name)
        evaluate_policies(make_setup(alone), ["lbcs"], alone / "out", progress=False)
        assert json.loads((alone / "out" / "lbcs_order.json").read_text())["order"] == orders[kind]
        # and the episodes on that kind's test volume are LBCS's on the folder of that kind alone
        rows = read_rows_csv(alone / "out" / "metrics.csv")
        kind_rows = [row for row in read_rows_csv(kind_run / "metrics.csv") if row["file"] == test.name]
        assert episode_columns(kind_rows, "lbcs_kind") == episode_columns(rows, "lbcs")
        assert episode_columns(kind_rows, "lbcs_kind") == {(test.name, s): orders[kind] for s in range(3)}


def test_the_report_takes_shares_against_the_per_kind_order_too(kind_run):
    summary = (kind_run / "summary.md").read_text()
    assert "## Share of the LBCS-to-oracle room" in summary
    section = summary.split("## Share of the room above LBCS learned per kind of volume")[1]
    assert "The room: oracle − lbcs_kind" in section
    assert "| lbcs |" in section
    record = read_json_record(sidecar_path(kind_run / "metrics.csv"))
    assert record["settings"]["lbcs_by"] == "acquisition"
    stored = read_json_record(kind_run / "partial" / "lbcs_kind_seed0.csv.record.json")
    assert stored["settings"]["lbcs_by"] == "acquisition"
    assert stored["data"]["lbcs_train"]["folder"].endswith("singlecoil_train")


def test_a_rerun_reuses_the_orders_and_other_slices_are_refused(kinds_root, kind_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(kind_run, out)
    shutil.rmtree(out / "partial")  # the rollouts are rolled again, from the cached orders
    before = {path.name: path.read_bytes() for path in (out / KIND_ORDERS).iterdir()}
    evaluate_policies(make_setup(kinds_root), ["lbcs", "lbcs_kind", "oracle"], out, progress=False)
    assert {path.name: path.read_bytes() for path in (out / KIND_ORDERS).iterdir()} == before
    assert (out / "metrics.csv").read_bytes() == (kind_run / "metrics.csv").read_bytes()
    shutil.rmtree(out / "partial")
    with pytest.raises(RecordMismatchError, match=r"acquisition=PD\.json was made under other settings"):
        evaluate_policies(make_setup(kinds_root, lbcs_slices=2), ["lbcs_kind"], out, progress=False)


def test_what_lbcs_kind_needs_is_asked_for_by_name(kinds_root, tmp_path):
    with pytest.raises(ValueError, match=r"lbcs_kind policy needs lbcs_by \(--lbcs-by ATTRIBUTE\)"):
        evaluate_policies(make_setup(kinds_root, lbcs_by=None), ["lbcs_kind"], tmp_path / "a", progress=False)
    assert not (tmp_path / "a").exists()
    with pytest.raises(ValueError, match="lbcs_by: expected the name of a file attribute"):
        make_setup(kinds_root, lbcs_by=" ")
    with pytest.raises(ValueError, match=r"has no attribute 'orientation'; its text attributes: .*acquisition"):
        evaluate_policies(make_setup(kinds_root, lbcs_by="orientation"), ["lbcs_kind"], tmp_path / "b", progress=False)
    one_kind = tmp_path / "one_kind"
    shutil.copytree(kinds_root, one_kind)
    set_kinds(one_kind / "singlecoil_train", ("PD", "PD"))
    with pytest.raises(ValueError, match=r"no training volume in .*singlecoil_train has acquisition = \['PDFS'\]"):
        evaluate_policies(make_setup(one_kind), ["lbcs_kind"], tmp_path / "c", progress=False)


def test_the_cli_flag_reaches_the_evaluation(kinds_root, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["evaluate", "--data", str(kinds_root), "--budget", "3", "--initial-lines", "2", "--seeds", "0"]
    args += ["--batch-size", "2", "--lbcs-slices", "3", "--out", str(out), "--no-progress", "--policies", "lbcs_kind"]
    assert main([*args, "--lbcs-by", "acquisition"]) == 0
    caches = sorted(path.name for path in (out / KIND_ORDERS).iterdir())
    assert caches == ["acquisition=PD.json", "acquisition=PDFS.json"]
    capsys.readouterr()
    assert main([*args[:-2], "--policies", "lbcs_kind", "--out", str(tmp_path / "none")]) == 2
    assert "--lbcs-by ATTRIBUTE" in capsys.readouterr().err
    assert main([*args[:-2], "--policies", "lbcs", "--lbcs-by", "acquisition", "--out", str(tmp_path / "no")]) == 2
    assert "--lbcs-by acquisition is for the lbcs_kind baseline" in capsys.readouterr().err
    assert not (tmp_path / "none").exists() and not (tmp_path / "no").exists()


def test_shards_roll_each_episode_with_its_own_kind_s_order(kinds_root, kind_run, tmp_path):
    # the 6 test slices in batches of 2: three shards per rollout, each finding its episodes' kinds
    policies = ["lbcs", "lbcs_kind", "oracle"]
    evaluate_policies(make_setup(kinds_root), policies, tmp_path, progress=False, shards_per_rollout=3)
    assert (tmp_path / "metrics.csv").read_bytes() == (kind_run / "metrics.csv").read_bytes()


def test_a_kind_s_cache_is_a_plain_file_name_and_colliding_names_are_refused(kinds_root, tmp_path):
    assert kind_cache_file(tmp_path, "acquisition", "CORPD/FBK 3T").name == "acquisition=CORPD_FBK_3T.json"
    colliding = tmp_path / "colliding"
    shutil.copytree(kinds_root, colliding)
    for split in ("train", "test"):
        set_kinds(colliding / f"singlecoil_{split}", ("P D", "P_D"))
    with pytest.raises(ValueError, match=r"the kinds \['P D', 'P_D'\] of acquisition do not make distinct file names"):
        evaluate_policies(make_setup(colliding), ["lbcs_kind"], tmp_path / "out", progress=False)
