"""``mri-rl evaluate`` through :func:`mri_rl.cli.main`."""

from __future__ import annotations

import json

import pytest

from mri_rl.cli import main
from mri_rl.evaluation.report import read_rows_csv, read_summary


def evaluate_args(data, out, *extra):
    return [
        "evaluate",
        "--data",
        str(data),
        "--split",
        "test",
        "--budget",
        "2",
        "--initial-lines",
        "2",
        "--policies",
        "random",
        "lowtohigh",
        "--seeds",
        "0",
        "--out",
        str(out),
        "--no-progress",
        "--batch-size",
        "4",
        *extra,
    ]


def test_evaluate_command_prints_the_table_and_writes_the_files(singlecoil_root, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(evaluate_args(singlecoil_root, out)) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "| policy | SSIM AUC | PSNR AUC | final SSIM | final PSNR (dB) |"
    assert sum(line.startswith(("| random |", "| lowtohigh |")) for line in lines) == 2
    assert f"wrote {out / 'metrics.csv'}" in captured.out
    assert {p.name for p in out.iterdir()} == {
        "metrics.csv",
        "metrics.csv.record.json",
        "summary.json",
        "summary.md",
        "curves.png",
        "masks.png",
        "examples.png",
        "partial",
    }
    assert {p.name for p in (out / "partial").glob("*.csv")} == {"random_seed0.csv", "lowtohigh_seed0.csv"}
    rows = read_rows_csv(out / "metrics.csv")
    assert len(rows) == 2 * 3 * 3  # 2 policies x 3 test slices x steps 0..2 (one batch of 4, one row padded)
    assert {r["step"] for r in rows} == {0, 1, 2}
    summary = read_summary(out / "summary.json")
    assert set(summary) == {"random", "lowtohigh"}
    assert summary["random"]["ssim_auc"]["n"] == 3
    markdown = (out / "summary.md").read_text()
    assert markdown.count("| random | 0.") == 2  # its rows of the per-slice and per-volume tables
    orders = (("lowtohigh", "random"), ("random", "lowtohigh"))
    assert any(f"| row − column | {a} | {b} |" in markdown for a, b in orders)  # the paired matrix


def test_evaluate_command_on_a_missing_folder_fails_with_a_message(tmp_path, capsys):
    out = tmp_path / "results"
    assert main(evaluate_args(tmp_path / "no_such_data", out)) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("mri-rl: error:")
    assert "no_such_data" in captured.err
    assert captured.out == ""
    assert not out.exists()


def test_evaluate_command_rejects_an_unknown_policy(singlecoil_root, tmp_path, capsys):
    args = evaluate_args(singlecoil_root, tmp_path / "results")
    args[args.index("lowtohigh")] = "bogus"
    assert main(args) == 2
    assert "unknown policy 'bogus'" in capsys.readouterr().err


def test_a_rerun_with_another_budget_stops_and_names_it(singlecoil_root, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(evaluate_args(singlecoil_root, out)) == 0
    before = (out / "metrics.csv").read_bytes()
    capsys.readouterr()
    args = evaluate_args(singlecoil_root, out)
    args[args.index("--budget") + 1] = "3"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "task.budget: 2 vs 3" in err and "--overwrite" in err
    assert (out / "metrics.csv").read_bytes() == before
    assert main([*args, "--overwrite"]) == 0
    assert {r["step"] for r in read_rows_csv(out / "metrics.csv")} == {0, 1, 2, 3}


def test_oracle_weights_that_are_all_zero_stop_before_anything_is_written(singlecoil_root, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(evaluate_args(singlecoil_root, out, "--oracle-weights", "0", "0")) == 2
    err = capsys.readouterr().err
    assert (
        "oracle_weights: expected one finite weight >= 0 per metric of ['ssim', 'psnr'], not all 0, got [0.0, 0.0]"
        in err
    )
    assert not out.exists()


def test_oracle_weights_reach_the_rollout_record(singlecoil_root, tmp_path):
    out = tmp_path / "results"
    args = evaluate_args(singlecoil_root, out, "--oracle-weights", "2", "1")
    args[args.index("lowtohigh")] = "oracle_ssim_psnr"
    assert main(args) == 0
    record = json.loads((out / "partial" / "oracle_ssim_psnr_seed0.csv.record.json").read_text())["record"]
    assert record["settings"]["oracle_weights"] == [2.0, 1.0]
    assert "random" in read_summary(out / "summary.json")


def test_rollout_candidates_reach_the_rollout_and_its_record(singlecoil_root, tmp_path, capsys):
    """0 candidates: ``oracle_rollout`` rolls its base order, LBCS's, column for column; the count is
    recorded, and a rerun into the folder with another count is refused, naming it."""
    out = tmp_path / "results"
    args = evaluate_args(singlecoil_root, out, "--lbcs-slices", "2", "--rollout-candidates", "0")
    args[args.index("random") : args.index("lowtohigh") + 1] = ["oracle_rollout", "lbcs"]
    assert main(args) == 0
    rows = read_rows_csv(out / "metrics.csv")
    rolled = {
        name: [{k: v for k, v in row.items() if k != "policy"} for row in rows if row["policy"] == name]
        for name in ("oracle_rollout", "lbcs")
    }
    assert rolled["oracle_rollout"] == rolled["lbcs"] and len(rolled["lbcs"]) > 0
    record = json.loads((out / "partial" / "oracle_rollout_seed0.csv.record.json").read_text())["record"]
    assert record["settings"]["rollout_candidates"] == 0
    assert json.loads((out / "summary.json").read_text())["record"]["settings"]["rollout_candidates"] == 0
    capsys.readouterr()
    assert main(args[: args.index("--rollout-candidates")]) == 2
    assert "(settings.rollout_candidates: 0 vs 5; recorded vs now)" in capsys.readouterr().err


def test_bad_rollout_candidates_stop_before_anything_is_written(singlecoil_root, tmp_path, capsys):
    negative = tmp_path / "negative"
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage and an error line
        main(evaluate_args(singlecoil_root, negative, "--rollout-candidates", "-1"))
    assert exit_info.value.code == 2
    assert "argument --rollout-candidates: expected an integer >= 0, got '-1'" in capsys.readouterr().err
    unused = tmp_path / "unused"
    assert main(evaluate_args(singlecoil_root, unused, "--rollout-candidates", "3")) == 2
    assert (
        "--rollout-candidates 3 is for the oracle_rollout baseline: add oracle_rollout to --policies"
        in capsys.readouterr().err
    )
    assert not negative.exists() and not unused.exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            ["--lbcs-train-data", "missing"],
            "--lbcs-train-data missing is for the lbcs, lbcs_kind or oracle_rollout baselines: "
            "add lbcs, lbcs_kind or oracle_rollout to --policies",
        ),
        (
            ["--oracle-weights", "2", "1"],
            "--oracle-weights 2.0 1.0 is for the oracle_ssim_psnr baseline: add oracle_ssim_psnr to --policies",
        ),
        (
            ["--lbcs-slices", "64"],
            "--lbcs-slices 64 is for the lbcs, lbcs_kind or oracle_rollout baselines: "
            "add lbcs, lbcs_kind or oracle_rollout to --policies",
        ),
        (["--lbcs-by", "acquisition"], "--lbcs-by acquisition is for the lbcs_kind baseline: add lbcs_kind"),
    ],
)
def test_an_option_of_baselines_not_evaluated_stops_before_anything_is_written(
    singlecoil_root, tmp_path, capsys, option, message
):
    out = tmp_path / "results"
    assert main(evaluate_args(singlecoil_root, out, *option)) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_groups_reach_the_summary_and_bad_ones_stop_before_anything_is_written(singlecoil_root, tmp_path, capsys):
    out = tmp_path / "results"
    args = evaluate_args(singlecoil_root, out, "--lbcs-slices", "2", "--groups", "fixed=lowtohigh+random")
    args[args.index("lowtohigh") + 1 : args.index("lowtohigh") + 1] = ["lbcs", "oracle"]
    assert main(args) == 0
    assert "| fixed | lowtohigh, random |" in (out / "summary.md").read_text()
    for groups, message in (
        (["fixed=lowtohigh+nope"], "group 'fixed': ['nope'] are not among the policies rolled"),
        (["g=lowtohigh+random", "g=random+lbcs"], "--groups: each group needs its own name, got ['g', 'g']"),
    ):
        unused = tmp_path / "unused"
        capsys.readouterr()
        assert main([*args[: args.index("--groups")], "--groups", *groups, "--out", str(unused)]) == 2
        assert message in capsys.readouterr().err
        assert not unused.exists()
    with pytest.raises(SystemExit) as exit_info:
        main([*args[: args.index("--groups")], "--groups", "fixed"])
    assert exit_info.value.code == 2
    assert "argument --groups: expected NAME=POLICY+POLICY[+...], got 'fixed'" in capsys.readouterr().err
