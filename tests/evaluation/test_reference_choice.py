"""A further reference for the room shares, chosen on val (``mri-rl evaluate --reference-from``):
the strongest fixed order of a val evaluation with known scores, the shares against it as
:func:`room_share` computes them, and the val evaluations it must refuse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import pytest

from mri_rl.cli import main
from mri_rl.data import SyntheticSpec, write_synthetic_dataset
from mri_rl.evaluation.evaluate import EvaluationSetup, evaluate_policies
from mri_rl.evaluation.lbcs_orders import KIND_ORDERS
from mri_rl.evaluation.reference_choice import choose_reference
from mri_rl.evaluation.report import paired_differences, read_rows_csv, room_share
from mri_rl.task import AcquisitionTask

TASK = AcquisitionTask(budget=3, initial_lines=2, reward_metric="ssim")
FIXED = ["lowtohigh", "equispaced", "lbcs"]


def setup_of(root: Path, split: str, **overrides) -> EvaluationSetup:
    values = dict(data=root, split=split, task=TASK, seeds=(0,), batch_size=4, lbcs_slices=2)
    return EvaluationSetup(**(values | overrides))


@pytest.fixture(scope="module")
def val_evaluation(singlecoil_root, tmp_path_factory) -> Path:
    """The fixed orders and the oracle rolled on the tiny val split (LBCS on 2 training slices)."""
    out = tmp_path_factory.mktemp("val_evaluation")
    evaluate_policies(setup_of(singlecoil_root, "val"), [*FIXED, "oracle"], out, progress=False)
    return out


def with_val_scores(val_evaluation: Path, folder: Path, ssim_auc: dict[str, float]) -> Path:
    """A copy of the val evaluation whose summary.json gives the fixed orders these SSIM AUCs."""
    shutil.copytree(val_evaluation, folder)
    stored = json.loads((folder / "summary.json").read_text())
    for name, value in ssim_auc.items():
        stored["policies"][name]["ssim_auc"]["mean"] = value
    (folder / "summary.json").write_text(json.dumps(stored))
    return folder


@pytest.mark.parametrize("strongest", ["equispaced", "lowtohigh"])
def test_the_fixed_order_strongest_on_val_is_the_reference_and_the_shares_are_taken_above_it(
    singlecoil_root, val_evaluation, tmp_path, strongest
):
    scores = {name: 0.1 for name in FIXED} | {strongest: 0.2}
    source = with_val_scores(val_evaluation, tmp_path / "val", scores)
    out = tmp_path / "test"
    args = ["evaluate", "--data", str(singlecoil_root), "--split", "test", "--budget", "3", "--initial-lines", "2"]
    args += ["--policies", *FIXED, "oracle", "random", "--seeds", "0", "--lbcs-slices", "2", "--batch-size", "4"]
    assert main([*args, "--reference-from", str(source), "--out", str(out), "--no-progress"]) == 0

    reference = json.loads((out / "summary.json").read_text())["record"]["settings"]["reference"]
    assert reference["policy"] == strongest and reference["chosen_on"] == str(source)
    assert reference["val_ssim_auc"] == scores
    markdown = (out / "summary.md").read_text()
    section = markdown.split(f"## Share of the room above the reference chosen on val ({strongest})")[1]
    assert f"`{strongest}` had the highest SSIM AUC" in section and f"| {strongest} | 0.2000 |" in section
    ssim = paired_differences(read_rows_csv(out / "metrics.csv"), "ssim_auc")
    share = room_share(ssim, "random", strongest, "oracle")
    expected = "no room" if share != share else f"{share:+.0%}"
    assert f"| random | {expected} |" in section


def test_a_reference_is_chosen_on_val_only_among_the_orders_rolled_in_both(singlecoil_root, val_evaluation, tmp_path):
    source = with_val_scores(val_evaluation, tmp_path / "val", {"lbcs": 0.3, "lowtohigh": 0.2, "equispaced": 0.1})
    task = TASK.with_changes(kspace_shape=None)
    assert choose_reference(source, task, "sha256:other", ["lowtohigh", "equispaced", "oracle"]).policy == "lowtohigh"
    with pytest.raises(ValueError, match=r"no fixed order .* is both among this evaluation's policies \['random'\]"):
        choose_reference(source, task, "sha256:other", ["random"])


def test_a_test_split_evaluation_cannot_choose_the_reference(singlecoil_root, tmp_path):
    on_test = tmp_path / "on_test"
    evaluate_policies(setup_of(singlecoil_root, "test"), ["lowtohigh"], on_test, progress=False)
    with pytest.raises(ValueError, match=r"evaluated the 'test' split; the reference is chosen on val"):
        evaluate_policies(
            setup_of(singlecoil_root, "test", reference_from=on_test), ["lowtohigh"], tmp_path / "out", progress=False
        )


def test_a_val_evaluation_of_the_same_files_is_refused(singlecoil_root, tmp_path):
    same = tmp_path / "same"
    test_folder = singlecoil_root / "singlecoil_test"
    evaluate_policies(setup_of(test_folder, "val", any_folder=True), ["lowtohigh"], same, progress=False)
    with pytest.raises(ValueError, match=r"evaluated the same files as this evaluation"):
        evaluate_policies(
            setup_of(test_folder, "test", reference_from=same), ["lowtohigh"], tmp_path / "out", progress=False
        )


def test_a_val_evaluation_of_another_task_is_refused(singlecoil_root, val_evaluation, tmp_path):
    other = setup_of(singlecoil_root, "test", task=TASK.with_changes(budget=2), reference_from=val_evaluation)
    with pytest.raises(ValueError, match=r"evaluated another task \(budget: 3 vs 2; there vs here\)"):
        evaluate_policies(other, ["lowtohigh"], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # refused before anything was rolled


@pytest.mark.parametrize("content", [None, "{not json", '{"policies": {}}'])
def test_a_folder_without_an_evaluation_summary_is_refused_naming_the_file(singlecoil_root, tmp_path, content):
    folder = tmp_path / "val"
    folder.mkdir()
    if content is not None:
        (folder / "summary.json").write_text(content)
    with pytest.raises(ValueError, match=rf"{folder / 'summary.json'} is not the summary.json of an mri-rl evaluate"):
        evaluate_policies(
            setup_of(singlecoil_root, "test", reference_from=folder), ["lowtohigh"], tmp_path / "out", progress=False
        )


def test_lbcs_learned_otherwise_on_val_is_refused_and_the_rollouts_are_kept(singlecoil_root, val_evaluation, tmp_path):
    out = tmp_path / "out"
    other = setup_of(singlecoil_root, "test", lbcs_slices=3, reference_from=val_evaluation)
    with pytest.raises(ValueError, match=r"lbcs_order.json was learned otherwise than .*settings.lbcs_slices"):
        evaluate_policies(other, ["lbcs", "lowtohigh"], out, progress=False)
    assert {path.name for path in (out / "partial").glob("*.csv")} == {"lbcs_seed0.csv", "lowtohigh_seed0.csv"}
    assert not (out / "summary.json").exists()


def test_lbcs_kind_is_compared_on_the_kinds_both_splits_hold(tmp_path):
    """Val holds only PD volumes, test PD and PDFS: the PD orders must have been learned alike; the
    PDFS order, unscored on val, is learned here the same way."""
    root = tmp_path / "root"
    write_synthetic_dataset(root, SyntheticSpec(num_slices=3, size=16), {"train": 2, "val": 1, "test": 2}, seed=0)
    for split, kinds in (("train", ("PD", "PDFS")), ("val", ("PD",)), ("test", ("PD", "PDFS"))):
        for path, kind in zip(sorted((root / f"singlecoil_{split}").glob("*.h5")), kinds, strict=True):
            with h5py.File(path, "r+") as hf:
                hf.attrs["acquisition"] = kind
    policies = ["lbcs_kind", "lowtohigh"]
    on_val = tmp_path / "val"
    evaluate_policies(setup_of(root, "val", lbcs_by="acquisition"), policies, on_val, progress=False)
    out = tmp_path / "test"
    evaluate_policies(setup_of(root, "test", lbcs_by="acquisition", reference_from=on_val), policies, out, False)
    assert {path.name for path in (out / KIND_ORDERS).iterdir()} == {"acquisition=PD.json", "acquisition=PDFS.json"}
    assert "reference" in json.loads((out / "summary.json").read_text())["record"]["settings"]
    other = setup_of(root, "test", lbcs_by="acquisition", lbcs_slices=3, reference_from=on_val)
    with pytest.raises(ValueError, match=r"acquisition=PD.json was learned otherwise than .*settings.lbcs_slices"):
        evaluate_policies(other, policies, tmp_path / "other", progress=False)
