"""Reports on hand-made rows: AUCs, summaries, tables and files with known contents."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from mri_rl.evaluation.report import (
    SUMMARY_KEYS,
    curve_auc,
    markdown_table,
    paired_differences,
    paired_table,
    read_rows_csv,
    read_summary,
    summarize,
    write_report,
    write_rows_csv,
)
from mri_rl.evaluation.rollout import METRIC_COLUMNS

HEADER = "policy,seed,file,slice,step,acquired_columns,sampling_rate,mse,nmse,psnr,ssim"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------- AUC
def test_auc_of_the_identity_on_the_unit_interval_is_one_half():
    x = np.linspace(0, 1, 11)
    assert curve_auc(x, x) == pytest.approx(0.5, abs=1e-12)
    assert curve_auc(np.array([0.0, 1.0]), np.array([0.0, 1.0])) == 0.5


def test_auc_of_a_constant_is_its_value_times_the_range():
    x = np.array([0.125, 0.25, 0.5, 0.75])
    assert curve_auc(x, np.full(4, 0.8)) == pytest.approx(0.8 * 0.625, abs=1e-12)
    assert curve_auc(np.array([0.3]), np.array([5.0])) == 0.0  # one point: no area


def test_auc_does_not_depend_on_the_order_of_the_points():
    x = np.array([0.1, 0.2, 0.4, 0.7, 1.0])
    y = np.array([0.3, 0.5, 0.55, 0.9, 0.95])
    expected = sum((x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2 for i in range(4))
    assert curve_auc(x, y) == pytest.approx(expected, abs=1e-12)
    permutation = np.array([3, 0, 4, 2, 1])
    assert curve_auc(x[permutation], y[permutation]) == pytest.approx(expected, abs=1e-12)
    assert curve_auc(x[::-1], y[::-1]) == pytest.approx(expected, abs=1e-12)
    assert curve_auc(list(x), list(y)) == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------- summary
def row(policy, seed, slice_, step, ssim, psnr, file="vol.h5"):
    return {
        "policy": policy,
        "seed": seed,
        "file": file,
        "slice": slice_,
        "step": step,
        "acquired_columns": 2 + step,
        "sampling_rate": 0.25 * (1 + step),
        "mse": 10 ** (-psnr / 10),
        "nmse": 0.1,
        "psnr": psnr,
        "ssim": ssim,
    }


def hand_rows() -> list[dict]:
    """Policy "a": two slices (seed 0); "b": one slice, two seeds; "c": one slice.

    Sampling rates 0.25, 0.5, 0.75 for steps 0, 1, 2, so each AUC is 0.25 * (y0/2 + y1 + y2/2):
        a slice 0: ssim 0.2 0.4 0.6 -> 0.2;  psnr 10 20 30 -> 10;  finals 0.6, 30
        a slice 1: ssim 0.6 0.6 0.6 -> 0.3;  psnr 20 20 20 -> 10;  finals 0.6, 20
        b seed 0:  ssim 0.4 0.8 0.8 -> 0.35; psnr 20 24 28 -> 12;  finals 0.8, 28
        b seed 1:  ssim 0.4 0.4 0.8 -> 0.25; psnr 20 20 20 -> 10;  finals 0.8, 20
        c:         ssim 0.1 0.1 0.1 -> 0.05; psnr 12 12 12 -> 6;   finals 0.1, 12
    """
    curves = [
        ("a", 0, 0, [0.2, 0.4, 0.6], [10, 20, 30]),
        ("a", 0, 1, [0.6, 0.6, 0.6], [20, 20, 20]),
        ("b", 0, 0, [0.4, 0.8, 0.8], [20, 24, 28]),
        ("b", 1, 0, [0.4, 0.4, 0.8], [20, 20, 20]),
        ("c", 0, 0, [0.1, 0.1, 0.1], [12, 12, 12]),
    ]
    rows = [
        row(policy, seed, slice_, step, ssim[step], float(psnr[step]))
        for policy, seed, slice_, ssim, psnr in curves
        for step in range(3)
    ]
    random.Random(0).shuffle(rows)  # the summary must not depend on the order of the rows
    return rows


EXPECTED = {
    "a": {"ssim_auc": (0.25, 0.05), "psnr_auc": (10.0, 0.0), "final_ssim": (0.6, 0.0), "final_psnr": (25.0, 5.0)},
    "b": {"ssim_auc": (0.3, 0.05), "psnr_auc": (11.0, 1.0), "final_ssim": (0.8, 0.0), "final_psnr": (24.0, 4.0)},
    "c": {"ssim_auc": (0.05, 0.0), "psnr_auc": (6.0, 0.0), "final_ssim": (0.1, 0.0), "final_psnr": (12.0, 0.0)},
}


def test_summarize_hand_made_rows():
    summary = summarize(hand_rows())
    assert set(summary) == {"a", "b", "c"}
    for policy, expected in EXPECTED.items():
        assert set(summary[policy]) == set(SUMMARY_KEYS)
        for key, (mean, std) in expected.items():
            assert summary[policy][key]["mean"] == pytest.approx(mean, abs=1e-12), (policy, key)
            assert summary[policy][key]["std"] == pytest.approx(std, abs=1e-12), (policy, key)
            assert summary[policy][key]["n"] == (1 if policy == "c" else 2)


def test_summarize_uses_the_final_step_not_the_last_row():
    rows = [row("a", 0, 0, step, ssim, 10.0) for step, ssim in [(2, 0.9), (0, 0.1), (1, 0.5)]]
    assert summarize(rows)["a"]["final_ssim"]["mean"] == 0.9


def test_summarize_separates_files_with_the_same_slice_index():
    rows = [row("a", 0, 0, step, 0.5, 10.0, file=f) for f in ("x.h5", "y.h5") for step in range(2)]
    assert summarize(rows)["a"]["ssim_auc"]["n"] == 2


def test_paired_differences_compare_seed_means_on_shared_images():
    pairs = paired_differences(hand_rows())
    # Per image (mean over seeds): a 0.2 and 0.3 on slices 0 and 1; b 0.3 and c 0.05 on slice 0.
    assert pairs[("a", "b")] == {"mean": pytest.approx(-0.1), "wins": 0, "n": 1}
    assert pairs[("b", "a")] == {"mean": pytest.approx(0.1), "wins": 1, "n": 1}
    assert pairs[("a", "c")] == {"mean": pytest.approx(0.15), "wins": 1, "n": 1}
    assert pairs[("c", "b")] == {"mean": pytest.approx(-0.25), "wins": 0, "n": 1}
    assert len(pairs) == 6 and ("a", "a") not in pairs
    assert paired_differences(hand_rows(), "psnr_auc")[("b", "c")] == {"mean": pytest.approx(5.0), "wins": 1, "n": 1}


def test_paired_table_is_a_matrix_best_policy_first():
    rows = hand_rows()
    lines = paired_table(rows, summarize(rows)).splitlines()
    assert lines[0] == "| row − column | b | a | c |"
    assert lines[2] == "| b |  | +0.1000 (1/1) | +0.2500 (1/1) |"
    assert lines[3].startswith("| a | -0.1000 (0/1) |  |")
    assert len(lines) == 5


def test_markdown_table_has_one_row_per_policy_best_ssim_auc_first():
    table = markdown_table(summarize(hand_rows()))
    lines = table.strip().splitlines()
    assert lines[0] == "| policy | SSIM AUC | PSNR AUC | final SSIM | final PSNR (dB) |"
    assert lines[1] == "|---|---|---|---|---|"
    body = lines[2:]
    assert [line.split("|")[1].strip() for line in body] == ["b", "a", "c"]
    assert body[0] == "| b | 0.3000 ± 0.0500 | 11.000 ± 1.000 | 0.8000 ± 0.0000 | 24.000 ± 4.000 |"
    assert table.endswith("\n")


# ------------------------------------------------------------------------------- CSV
def test_rows_csv_round_trip_keeps_types_and_values(tmp_path):
    rows = [
        {
            "policy": "dqn",
            "seed": 3,
            "file": "file_brain, 1.h5",
            "slice": 7,
            "step": 2,
            "acquired_columns": 10,
            "sampling_rate": 1 / 3,
            "mse": 1.2345678901234567e-05,
            "nmse": 0.1,
            "psnr": 48.123456789,
            "ssim": 0.97,
        },
        {**dict.fromkeys(METRIC_COLUMNS, 0), "policy": "random", "file": "b.h5", "ssim": float("nan")},
    ]
    rows[1]["sampling_rate"] = 0.0
    path = tmp_path / "deep" / "rows.csv"
    write_rows_csv(path, rows)
    assert path.read_text().splitlines()[0] == HEADER
    back = read_rows_csv(path)
    assert back[0] == rows[0]
    for key in METRIC_COLUMNS:
        assert type(back[0][key]) is type(rows[0][key]), key
    assert {type(back[1][k]) for k in ("seed", "slice", "step", "acquired_columns")} == {int}
    assert {type(back[1][k]) for k in ("sampling_rate", "mse", "nmse", "psnr", "ssim")} == {float}
    assert np.isnan(back[1]["ssim"])
    assert list(back[0]) == list(METRIC_COLUMNS)
    assert [p.name for p in path.parent.iterdir()] == ["rows.csv"]  # no temporary file left


def test_rows_csv_of_no_rows_is_a_header(tmp_path):
    write_rows_csv(tmp_path / "empty.csv", [])
    assert (tmp_path / "empty.csv").read_text() == HEADER + "\n"
    assert read_rows_csv(tmp_path / "empty.csv") == []


# ---------------------------------------------------------------------------- report
def test_write_report_writes_every_file(tmp_path):
    out = tmp_path / "report"
    rows = hand_rows()
    record = {"mri_rl_version": "test", "settings": {"note": "hand rows"}}
    summary = write_report(out, rows, title="synthetic test", record=record)
    assert sorted(p.name for p in out.iterdir()) == [
        "curves.png",
        "metrics.csv",
        "metrics.csv.record.json",
        "summary.json",
        "summary.md",
    ]
    assert json.loads((out / "metrics.csv.record.json").read_text()) == {"record": record}

    text = (out / "metrics.csv").read_text()
    assert text.splitlines()[0] == HEADER
    assert len(text.splitlines()) == 1 + len(rows)
    written = read_rows_csv(out / "metrics.csv")
    key = lambda r: (r["policy"], r["seed"], r["file"], r["slice"], r["step"])  # noqa: E731
    assert [key(r) for r in written] == sorted(key(r) for r in rows)  # sorted
    assert sorted(written, key=key) == sorted(rows, key=key)

    assert json.loads((out / "summary.json").read_text())["record"] == record
    stored = read_summary(out / "summary.json")
    assert stored == summary
    assert set(stored) == {"a", "b", "c"}
    for values in stored.values():
        assert set(values) == {"ssim_auc", "psnr_auc", "final_ssim", "final_psnr"}
        for stats in values.values():
            assert {"mean", "std"} <= set(stats)
            assert all(isinstance(v, (int, float)) for v in stats.values())
    assert stored["b"]["ssim_auc"]["mean"] == pytest.approx(0.3)

    markdown = (out / "summary.md").read_text()
    assert markdown.startswith("# synthetic test\n")
    assert markdown_table(summary) in markdown

    assert (out / "curves.png").read_bytes()[:8] == PNG_SIGNATURE
    assert not list(out.glob("*.tmp"))


def test_write_report_is_deterministic_and_order_free(tmp_path):
    rows = hand_rows()
    write_report(tmp_path / "one", rows)
    write_report(tmp_path / "two", list(reversed(rows)))
    for name in ("metrics.csv", "summary.json", "summary.md"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert not (tmp_path / "one" / "summary.md").read_text().startswith("#")  # no title
