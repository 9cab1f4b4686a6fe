"""Reports on hand-made rows: AUCs, per-slice and per-volume summaries, tables, figures and files
with known contents."""

from __future__ import annotations

import functools
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mri_rl.evaluation.figures import (
    DPI,
    ORACLE_LABEL,
    acquisition_counts,
    curve_lines,
    curves_figure,
    masks_figure,
    policy_colours,
    pyplot,
    reference_policy,
)
from mri_rl.evaluation.report import (
    SLICE_KEYS,
    SUMMARY_KEYS,
    VOLUME_KEYS,
    ResamplingUnits,
    RoomReference,
    curve_auc,
    join_policy_rows,
    markdown_table,
    member_spread_table,
    paired_differences,
    paired_table,
    read_rows_csv,
    read_summary,
    room_share,
    room_share_interval,
    room_share_table,
    rows_up_to_step,
    run_difference_table,
    share_difference_table,
    summarize,
    summary_markdown,
    volume_curves,
    write_report,
    write_rows_csv,
)
from mri_rl.evaluation.rollout import METRIC_COLUMNS, NO_COLUMN

HEADER = "policy,seed,file,slice,step,column,acquired_columns,sampling_rate,mse,nmse,psnr,ssim"
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
def row(policy, seed, slice_, step, ssim, psnr, file="vol.h5", column=None):
    return {
        "policy": policy,
        "seed": seed,
        "file": file,
        "slice": slice_,
        "step": step,
        "column": NO_COLUMN if step == 0 else (step + slice_ if column is None else column),
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
    assert SUMMARY_KEYS == SLICE_KEYS + VOLUME_KEYS
    assert VOLUME_KEYS == ("ssim_auc_volume", "psnr_auc_volume", "final_ssim_volume", "final_psnr_volume")
    for policy, expected in EXPECTED.items():
        assert set(summary[policy]) == set(SUMMARY_KEYS)
        for key, (mean, std) in expected.items():
            assert summary[policy][key]["mean"] == pytest.approx(mean, abs=1e-12), (policy, key)
            assert summary[policy][key]["std"] == pytest.approx(std, abs=1e-12), (policy, key)
            assert summary[policy][key]["n"] == (1 if policy == "c" else 2)


def test_episodes_cut_at_a_step_give_the_aucs_of_that_budget():
    # steps 0 and 1 at rates 0.25 and 0.5: AUC 0.25 * (y0 + y1) / 2
    cut = summarize(rows_up_to_step(hand_rows(), 1))
    assert cut["a"]["ssim_auc"]["mean"] == pytest.approx((0.075 + 0.15) / 2)
    assert cut["b"]["psnr_auc"]["mean"] == pytest.approx((5.5 + 5.0) / 2)
    assert cut["c"]["final_ssim"]["mean"] == pytest.approx(0.1)
    assert summarize(rows_up_to_step(hand_rows(), 2)) == summarize(hand_rows())
    for steps in (0, 3):
        with pytest.raises(
            ValueError, match=f"cannot cut the episodes at step {steps}: they end at step 2; cut at 1 to 2"
        ):
            rows_up_to_step(hand_rows(), steps)
    shorter = [r for r in hand_rows() if not (r["policy"] == "c" and r["step"] == 2)]
    with pytest.raises(ValueError, match="they end at step 1"):
        rows_up_to_step(shorter, 2)


def test_per_volume_metrics_by_hand():
    """Policy "a" has one volume of two slices (seed 0), as fastMRI scores it: at each step the SSIM
    is the mean of the slices' SSIM, the PSNR is -10 log10 of the mean of their MSE (the volume's
    MSE); "b" has one slice in two seeds (two volumes of one slice: as per slice)."""
    summary = summarize(hand_rows())
    # slice 0: psnr 10 20 30 (mse 0.1 0.01 0.001); slice 1: psnr 20 20 20 (mse 0.01)
    psnr = [-10 * np.log10((0.1 + 0.01) / 2), 20.0, -10 * np.log10((0.001 + 0.01) / 2)]
    ssim = [(0.2 + 0.6) / 2, (0.4 + 0.6) / 2, (0.6 + 0.6) / 2]
    curves = volume_curves(r for r in hand_rows() if r["policy"] == "a")
    np.testing.assert_allclose(curves["psnr"], psnr, rtol=1e-12)
    np.testing.assert_allclose(curves["ssim"], ssim, rtol=1e-12)
    np.testing.assert_allclose(curves["sampling_rate"], [0.25, 0.5, 0.75])
    a = summary["a"]
    assert a["psnr_auc_volume"]["mean"] == pytest.approx(0.25 * (psnr[0] / 2 + psnr[1] + psnr[2] / 2), abs=1e-12)
    assert a["final_psnr_volume"]["mean"] == pytest.approx(psnr[2], abs=1e-12)  # 22.6 dB, not the slices' 25
    assert a["ssim_auc_volume"]["mean"] == pytest.approx(0.25, abs=1e-12)  # SSIM is linear: mean of 0.2 and 0.3
    assert a["final_ssim_volume"] == {"mean": pytest.approx(0.6), "std": 0.0, "n": 1}
    assert a["psnr_auc_volume"]["n"] == 1 and a["psnr_auc"]["n"] == 2
    for key in SLICE_KEYS:  # one slice per volume: the same figures
        assert summary["b"][f"{key}_volume"] == pytest.approx(summary["b"][key], abs=1e-12)


def test_a_volume_uses_the_steps_every_slice_reached():
    rows = [row("a", 0, 0, step, 0.5, 20.0) for step in range(3)] + [
        row("a", 0, 1, step, 0.7, 30.0) for step in range(2)
    ]
    curves = volume_curves(rows)
    np.testing.assert_array_equal(curves["step"], [0, 1])
    np.testing.assert_allclose(curves["ssim"], [0.6, 0.6])


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


def test_room_share_is_the_policy_s_paired_gain_over_the_oracle_s():
    pairs = paired_differences(hand_rows())
    # on slice 0: a - c = 0.15, b - c = 0.25, so a captures 0.15 / 0.25 of the room between c and b
    assert room_share(pairs, "a", reference="c", oracle="b") == pytest.approx(0.6)
    assert room_share(pairs, "b", reference="c", oracle="b") == pytest.approx(1.0)
    assert np.isnan(room_share(pairs, "b", reference="a", oracle="c"))  # c is below a: no room


def test_paired_table_is_a_matrix_best_policy_first():
    rows = hand_rows()
    lines = paired_table(rows, summarize(rows)).splitlines()
    assert lines[0] == "| row − column | b | a | c |"
    assert lines[2] == "| b |  | +0.1000 (1/1) | +0.2500 (1/1) |"
    assert lines[3].startswith("| a | -0.1000 (0/1) |  |")
    assert len(lines) == 5


def test_paired_psnr_table_gives_decibels_to_three_decimals():
    rows = hand_rows()
    lines = paired_table(rows, summarize(rows), "psnr_auc").splitlines()
    assert lines[0] == "| row − column | b | a | c |"  # best PSNR AUC first: 11, 10, 6 dB
    assert lines[2] == "| b |  | +1.000 (1/1) | +5.000 (1/1) |"


def test_room_share_table_gives_each_policy_s_share_and_both_paired_metrics():
    rows = hand_rows()
    lines = room_share_table(rows, reference="c", oracle="b").splitlines()
    assert lines[0] == "The room: b − c +0.2500 (1/1) SSIM AUC, +5.000 (1/1) dB·rate PSNR AUC."
    # a on slice 0 (the slice it shares with c): SSIM AUC 0.2 - 0.05, PSNR AUC 10 - 6
    assert lines[-1] == "| a | +60% | n/a | +0.1500 (1/1) | +4.000 (1/1) |"  # one volume: no interval
    assert len(lines) == 5  # the room, a blank line, the header, its rule, a


def test_room_share_table_says_no_room_when_the_oracle_is_not_above_the_reference():
    lines = room_share_table(hand_rows(), reference="a", oracle="c").splitlines()
    assert lines[0] == "The room: c − a -0.1500 (0/1) SSIM AUC, -4.000 (0/1) dB·rate PSNR AUC."
    assert lines[-1] == "| b | no room | n/a | +0.1000 (1/1) | +1.000 (1/1) |"  # b (seed mean) - a on slice 0


def volume_rows(ssim_by_policy_and_file: dict[tuple[str, str], list[float]]) -> list[dict]:
    """Constant SSIM curves (AUC = 0.5 × SSIM over rates 0.25 to 0.75), one slice per value, seed 0."""
    return [
        row(policy, 0, slice_, step, ssim, 20.0, file=file)
        for (policy, file), values in ssim_by_policy_and_file.items()
        for slice_, ssim in enumerate(values)
        for step in range(3)
    ]


def test_room_share_interval_collapses_when_every_volume_gives_the_same_share():
    # half of the room in each volume, with rooms of different size: every resample gives 50%
    rows = volume_rows(
        {("r", "x.h5"): [0.2, 0.2], ("o", "x.h5"): [0.6, 0.4], ("p", "x.h5"): [0.4, 0.3],
         ("r", "y.h5"): [0.2], ("o", "y.h5"): [0.8], ("p", "y.h5"): [0.5]}
    )  # fmt: skip
    assert room_share_interval(rows, "p", "r", "o") == pytest.approx((0.5, 0.5))


def test_room_share_refuses_a_gain_and_a_room_over_different_images():
    # p was rolled on y only (e.g. one kind's evaluation joined) and takes all of the room there;
    # the room over x and y is another mean: their ratio (0.1 / 0.2 = 50%) was reported as its share,
    # beside an interval of 100% to 100% taken on y alone.
    rows = volume_rows(
        {("r", "x.h5"): [0.2], ("o", "x.h5"): [0.8], ("r", "y.h5"): [0.2], ("o", "y.h5"): [0.4], ("p", "y.h5"): [0.4]}
    )
    with pytest.raises(ValueError, match="paired on 1 images and the room o − r on 2"):
        room_share(paired_differences(rows), "p", "r", "o")
    with pytest.raises(ValueError, match="roll p and o on the same images"):
        room_share_table(rows, "r", "o")
    assert room_share(paired_differences(rows), "r", "r", "o") == 0.0  # the reference's own share


def test_room_share_interval_resamples_volumes_not_slices():
    # volume x: the policy is the reference (share 0) on four slices; volume y: the oracle (share 1)
    # on one. Resampling the two volumes: xx 0, xy 1/5 (four slices of x, one of y), yy 1, so
    # the 95% interval runs from 0 to 1 while the point share is 1/5.
    rows = volume_rows(
        {("r", "x.h5"): [0.2] * 4, ("o", "x.h5"): [0.6] * 4, ("p", "x.h5"): [0.2] * 4,
         ("r", "y.h5"): [0.2], ("o", "y.h5"): [0.6], ("p", "y.h5"): [0.6]}
    )  # fmt: skip
    assert room_share(paired_differences(rows), "p", "r", "o") == pytest.approx(0.2)
    assert room_share_interval(rows, "p", "r", "o") == pytest.approx((0.0, 1.0))
    assert room_share_interval(rows, "p", "r", "o", seed=3) == pytest.approx((0.0, 1.0))
    narrow = room_share_interval(rows, "p", "r", "o", level=0.4)  # the 30% and 70% quantiles: xy
    assert narrow == pytest.approx((0.2, 0.2))


def test_units_shared_by_volumes_are_resampled_whole():
    # two volumes whose slice 0 reads template slice A (the policy is the reference there) and slice 1
    # template slice B (the policy is the oracle). Every volume gives 1/2, so resampling volumes
    # collapses the interval; resampling the template slices (AA 0, AB 1/2, BB 1) does not.
    rows = volume_rows(
        {("r", "x.h5"): [0.2, 0.2], ("o", "x.h5"): [0.6, 0.6], ("p", "x.h5"): [0.2, 0.6],
         ("r", "y.h5"): [0.2, 0.2], ("o", "y.h5"): [0.6, 0.6], ("p", "y.h5"): [0.2, 0.6]}
    )  # fmt: skip
    template = ResamplingUnits("template slices", {(f, s): "AB"[s] for f in ("x.h5", "y.h5") for s in (0, 1)})
    assert room_share_interval(rows, "p", "r", "o") == pytest.approx((0.5, 0.5))
    assert room_share_interval(rows, "p", "r", "o", units=template) == pytest.approx((0.0, 1.0))
    named = [{**row, "policy": {"r": "lbcs", "o": "oracle"}.get(row["policy"], row["policy"])} for row in rows]
    markdown = summary_markdown(named, summarize(named), units=template._replace(reason="why"))
    assert "The interval resamples whole template slices (2 here: why)" in markdown
    assert "| policy | share of the room | 95% interval, template slices resampled |" in markdown
    assert "| p | +50% | +0% to +100% |" in markdown


def test_room_share_interval_is_undefined_for_one_volume_or_a_resample_without_room():
    one_volume = volume_rows({("r", "x.h5"): [0.2, 0.3], ("o", "x.h5"): [0.6, 0.6], ("p", "x.h5"): [0.4, 0.4]})
    assert np.isnan(room_share_interval(one_volume, "p", "r", "o")).all()
    # in volume y the oracle is below the reference: a resample of y alone has no room
    rows = one_volume + volume_rows({("r", "y.h5"): [0.5], ("o", "y.h5"): [0.4], ("p", "y.h5"): [0.4]})
    assert np.isnan(room_share_interval(rows, "p", "r", "o")).all()
    assert np.isnan(room_share_interval(rows, "missing", "r", "o")).all()  # a policy not evaluated


def two_policy_rows() -> list[dict]:
    """Three volumes of other rooms; p takes 3/4 of each volume's room, q 1/4."""
    return volume_rows(
        {("r", "x.h5"): [0.2, 0.2], ("o", "x.h5"): [0.6, 0.4], ("p", "x.h5"): [0.5, 0.35], ("q", "x.h5"): [0.3, 0.25],
         ("r", "y.h5"): [0.2], ("o", "y.h5"): [0.6], ("p", "y.h5"): [0.5], ("q", "y.h5"): [0.3],
         ("r", "z.h5"): [0.4], ("o", "z.h5"): [0.8], ("p", "z.h5"): [0.7], ("q", "z.h5"): [0.5]}
    )  # fmt: skip


def test_a_share_difference_that_every_volume_gives_has_a_collapsed_interval():
    rows = two_policy_rows()
    pairs = paired_differences(rows)
    difference = room_share(pairs, "p", "r", "o") - room_share(pairs, "q", "r", "o")
    assert difference == pytest.approx(0.5)
    assert room_share_interval(rows, "p", "r", "o", other="q") == pytest.approx((0.5, 0.5))
    assert room_share_interval(rows, "q", "r", "o", other="p") == pytest.approx((-0.5, -0.5))


def test_the_difference_against_the_reference_is_the_share_s_own_interval():
    rows = volume_rows(
        {("r", "x.h5"): [0.2] * 4, ("o", "x.h5"): [0.6] * 4, ("p", "x.h5"): [0.2] * 4,
         ("r", "y.h5"): [0.2], ("o", "y.h5"): [0.6], ("p", "y.h5"): [0.6]}
    )  # fmt: skip
    for seed in (0, 3):
        expected = room_share_interval(rows, "p", "r", "o", seed=seed)
        assert room_share_interval(rows, "p", "r", "o", seed=seed, other="r") == expected == (0.0, 1.0)


def test_the_share_difference_table_gives_both_shares_the_difference_and_the_paired_metrics():
    table = share_difference_table(two_policy_rows(), [("p", "q")], reference="r", oracle="o")
    # p − q in SSIM AUC: 0.5 × (0.2, 0.1, 0.2, 0.2) per slice, mean 0.0875, every slice won; PSNR equal
    assert "| p − q | +75.0% − +25.0% | +50.0% | +50.0% to +50.0% | +0.0875 (4/4) | +0.000 (0/4) |" in table
    against_reference = share_difference_table(two_policy_rows(), [("p", "r")], reference="r", oracle="o")
    assert "| p − r | +75.0% − +0.0% | +75.0% | +75.0% to +75.0% |" in against_reference
    with pytest.raises(KeyError, match="'s' is not among the evaluated policies"):
        share_difference_table(two_policy_rows(), [("p", "s")], reference="r", oracle="o")
    with pytest.raises(ValueError, match="two policies"):
        share_difference_table(two_policy_rows(), [("p", "p")], reference="r", oracle="o")


def test_the_share_difference_script_reads_an_evaluation_back(tmp_path, script_usage_error):
    """``scripts/share_difference.py``: the table of a written metrics.csv; a policy not evaluated, a
    comparison without its colon and a missing file are one usage error each."""
    metrics = tmp_path / "metrics.csv"
    write_rows_csv(metrics, two_policy_rows())
    script = Path(__file__).parents[2] / "scripts" / "share_difference.py"
    command = [sys.executable, str(script), str(metrics), "p:q", "--reference", "r", "--oracle", "o"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    assert "| p − q | +75.0% − +25.0% | +50.0% |" in done.stdout
    not_evaluated = script_usage_error("share_difference.py", str(metrics), "p:s", "--reference", "r", "--oracle", "o")
    assert "'s' is not among the evaluated policies" in not_evaluated
    assert "expected POLICY:OTHER, got 'p'" in script_usage_error("share_difference.py", str(metrics), "p")
    assert "none.csv does not exist" in script_usage_error("share_difference.py", str(tmp_path / "none.csv"), "p:q")
    cut = subprocess.run([*command, "--steps", "1"], capture_output=True, text=True, timeout=120, check=True)
    assert "| p − q | +75.0% − +25.0% | +50.0% | +50.0% to +50.0% | +0.0437 (4/4) |" in cut.stdout
    too_far = script_usage_error(
        "share_difference.py", str(metrics), "p:q", "--reference", "r", "--oracle", "o", "--steps", "3"
    )
    assert "cannot cut the episodes at step 3: they end at step 2" in too_far


def test_joined_rows_are_a_reference_per_kind_of_volume(tmp_path):
    # main evaluation: LBCS 0.2, oracle 0.6, policy p 0.4 on both volumes. Joined as k: an order
    # learned per kind, rolled on x (0.4, as good as p there) and on y (0.2) in two evaluations
    # written to CSV and read back. Against k: p gains 0 on x and 0.2 on y, the room is 0.2 and
    # 0.4, so p's share is 1/3; k's own share of the LBCS room is 1/4.
    rows = volume_rows({(policy, file): [value] for file in ("x.h5", "y.h5") for policy, value in
                        (("lbcs", 0.2), ("oracle", 0.6), ("p", 0.4))})  # fmt: skip
    parts = []
    for file, value in (("x.h5", 0.4), ("y.h5", 0.2)):
        write_rows_csv(tmp_path / f"{file}.csv", volume_rows({("lbcs", file): [value]}))
        parts.append((f"{file}.csv", read_rows_csv(tmp_path / f"{file}.csv")))
    joined = join_policy_rows(rows, "k", parts)
    assert len(joined) == len(rows) + 6 and rows == joined[: len(rows)]
    ssim = paired_differences(joined)
    assert room_share(ssim, "p", reference="k") == pytest.approx(1 / 3)
    assert room_share(ssim, "k") == pytest.approx(1 / 4)
    assert "| p | +33% |" in room_share_table(joined, reference="k")


def test_joining_refuses_a_taken_name_several_policies_and_a_step_twice():
    rows = volume_rows({("lbcs", "x.h5"): [0.2], ("oracle", "x.h5"): [0.6]})
    lbcs_rows = volume_rows({("lbcs", "y.h5"): [0.3]})
    with pytest.raises(ValueError, match="policy 'oracle' is already in the evaluation"):
        join_policy_rows(rows, "oracle", [("a.csv", lbcs_rows)])
    with pytest.raises(ValueError, match=r"b.csv: expected the rows of one policy, found \['lbcs', 'oracle'\]"):
        join_policy_rows(rows, "k", [("b.csv", rows)])
    with pytest.raises(ValueError, match="c.csv: expected the rows of one policy, found none"):
        join_policy_rows(rows, "k", [("c.csv", [])])
    with pytest.raises(ValueError, match="d.csv: seed 0, y.h5 slice 0 step 0 is already among the rows joined as 'k'"):
        join_policy_rows(rows, "k", [("a.csv", lbcs_rows), ("d.csv", lbcs_rows)])


def test_room_share_interval_refuses_a_level_outside_zero_to_one():
    with pytest.raises(ValueError, match="level must be in"):
        room_share_interval(hand_rows(), "a", "c", "b", level=95)


def test_room_share_table_gives_the_interval_over_volumes():
    rows = volume_rows(
        {("lbcs", "x.h5"): [0.2] * 4, ("oracle", "x.h5"): [0.6] * 4, ("p", "x.h5"): [0.2] * 4,
         ("lbcs", "y.h5"): [0.2], ("oracle", "y.h5"): [0.6], ("p", "y.h5"): [0.6]}
    )  # fmt: skip
    assert room_share_table(rows).splitlines()[-1] == "| p | +20% | +0% to +100% | +0.0400 (1/5) | +0.000 (0/5) |"


def two_policy_rows_of_lbcs_and_the_oracle() -> list[dict]:
    """:func:`two_policy_rows` with the reference named ``lbcs`` and the oracle ``oracle``."""
    return [{**r, "policy": {"r": "lbcs", "o": "oracle"}.get(r["policy"], r["policy"])} for r in two_policy_rows()]


def test_the_members_spread_is_the_mean_and_std_of_their_shares_one_row_per_set_of_members():
    rows = two_policy_rows_of_lbcs_and_the_oracle()
    groups = {"e": ("p", "q"), "e_prior": ("p", "q")}  # p takes 3/4 of the room, q 1/4: std (n - 1) 0.354
    lines = member_spread_table(rows, groups).splitlines()
    assert lines[2:] == ["| e, e_prior | p, q | +75.0%, +25.0% | +50.0% ± 35.4% | +0.000 to +0.000 | 4/4, 4/4 |"]
    assert member_spread_table(rows, {"e": ("p", "missing")}) == ""  # a member not rolled
    assert member_spread_table(rows, {"e": ("p",)}) == ""  # one member has no spread
    assert member_spread_table(two_policy_rows(), groups) == ""  # neither lbcs nor the oracle


def test_summary_gives_the_members_spread_against_each_reference_evaluated():
    rows = two_policy_rows_of_lbcs_and_the_oracle()
    rows += [{**r, "policy": "lbcs_kind"} for r in rows if r["policy"] == "lbcs"]
    markdown = summary_markdown(rows, summarize(rows), member_groups={"e": ("p", "q")})
    assert "## Members one by one (ensembles and groups), against lbcs\n" in markdown
    assert "## Members one by one (ensembles and groups), against lbcs_kind\n" in markdown
    assert markdown.count("| e | p, q | +75.0%, +25.0% | +50.0% ± 35.4% |") == 2
    assert "Members one by one" not in summary_markdown(rows, summarize(rows))
    # a reference chosen on val, z, the order q rolled: q takes a quarter of the room above lbcs, so
    # p takes (3/4 − 1/4) / (3/4) of the room above z; lbcs_kind, chosen, gets no second section
    rows += [{**r, "policy": "z"} for r in rows if r["policy"] == "q"]
    groups = {"e": ("p", "q")}
    with_z = summary_markdown(rows, summarize(rows), member_groups=groups, reference=RoomReference("z", "Why."))
    assert "## Share of the room above the reference chosen on val (z)\n\nWhy.\n" in with_z
    assert "## Members one by one (ensembles and groups), against z\n" in with_z
    assert "| e | p, q | +66.7%, +0.0% | +33.3% ± 47.1% |" in with_z
    with_kind = summary_markdown(rows, summarize(rows), member_groups=groups, reference=RoomReference("lbcs_kind", ""))
    assert with_kind.count("## Members one by one (ensembles and groups), against lbcs_kind\n") == 1


def test_summary_names_the_room_only_when_lbcs_and_the_oracle_were_evaluated():
    rows = [{**r, "policy": {"b": "oracle", "c": "lbcs"}.get(r["policy"], r["policy"])} for r in hand_rows()]
    markdown = summary_markdown(rows, summarize(rows))
    assert "## Paired PSNR AUC (dB·rate) differences" in markdown
    assert "## Share of the LBCS-to-oracle room" in markdown
    assert "| a | +60% | n/a | +0.1500 (1/1) | +4.000 (1/1) |" in markdown
    assert room_share_table(hand_rows()) == ""  # neither lbcs nor oracle
    assert "Share of the" not in summary_markdown(hand_rows(), summarize(hand_rows()))


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
            "column": 13,
            "acquired_columns": 10,
            "sampling_rate": 1 / 3,
            "mse": 1.2345678901234567e-05,
            "nmse": 0.1,
            "psnr": 48.123456789,
            "ssim": 0.97,
        },
        {**dict.fromkeys(METRIC_COLUMNS, 0), "policy": "random", "file": "b.h5", "column": -1, "ssim": float("nan")},
    ]
    rows[1]["sampling_rate"] = 0.0
    path = tmp_path / "deep" / "rows.csv"
    write_rows_csv(path, rows)
    assert path.read_text().splitlines()[0] == HEADER
    back = read_rows_csv(path)
    assert back[0] == rows[0]
    for key in METRIC_COLUMNS:
        assert type(back[0][key]) is type(rows[0][key]), key
    assert {type(back[1][k]) for k in ("seed", "slice", "step", "column", "acquired_columns")} == {int}
    assert back[1]["column"] == NO_COLUMN
    assert {type(back[1][k]) for k in ("sampling_rate", "mse", "nmse", "psnr", "ssim")} == {float}
    assert np.isnan(back[1]["ssim"])
    assert list(back[0]) == list(METRIC_COLUMNS)
    assert [p.name for p in path.parent.iterdir()] == ["rows.csv"]  # no temporary file left


@pytest.mark.parametrize("damage", ["cut", "text"])
def test_a_damaged_rows_csv_is_one_error_naming_the_file_and_line(tmp_path, damage):
    path = tmp_path / "metrics.csv"
    write_rows_csv(path, hand_rows())
    lines = path.read_text().splitlines()
    lines[3] = lines[3][: len(lines[3]) // 2] if damage == "cut" else lines[3].replace(",0.", ",zero.", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=re.escape(f"{path} line 4: not a row of metrics")):
        read_rows_csv(path)


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
        "masks.png",
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
        assert set(values) == {
            *("ssim_auc", "psnr_auc", "final_ssim", "final_psnr"),
            *("ssim_auc_volume", "psnr_auc_volume", "final_ssim_volume", "final_psnr_volume"),
        }
        for stats in values.values():
            assert {"mean", "std"} <= set(stats)
            assert all(isinstance(v, (int, float)) for v in stats.values())
    assert stored["b"]["ssim_auc"]["mean"] == pytest.approx(0.3)

    markdown = (out / "summary.md").read_text()
    assert markdown.startswith("# synthetic test\n")
    per_slice, per_volume = markdown.index("## Per slice"), markdown.index("## Per volume")
    assert markdown.index(markdown_table(summary)) > per_slice
    assert markdown.index(markdown_table(summary, VOLUME_KEYS)) > per_volume > per_slice
    assert "| a | 0.2500 ± 0.0500 | 10.000 ± 0.000 |" in markdown  # a per-slice row
    assert "oracle" not in markdown  # no oracle evaluated, no note about it

    assert (out / "curves.png").read_bytes()[:8] == PNG_SIGNATURE
    assert not list(out.glob("*.tmp"))


def test_write_report_is_deterministic_and_order_free(tmp_path):
    rows = hand_rows()
    write_report(tmp_path / "one", rows)
    write_report(tmp_path / "two", list(reversed(rows)))
    for name in ("metrics.csv", "summary.json", "summary.md"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert (tmp_path / "one" / "summary.md").read_text().startswith("## Per slice")  # no title


# --------------------------------------------------------------------------- figures
def image_axes(figure) -> list:
    """The axes of a figure that show an image (not colour bars, not blank cells)."""
    return [axis for axis in figure.axes if axis.images and axis.get_label() != "<colorbar>"]


def line_of(axis, label: str):
    return next(line for line in axis.lines if line.get_label() == label)


def test_reference_policy_is_lbcs_else_lowtohigh_else_the_first():
    assert reference_policy(["random", "lbcs", "lowtohigh", "oracle"]) == "lbcs"
    assert reference_policy(["random", "lowtohigh", "oracle"]) == "lowtohigh"
    assert reference_policy(["random", "dqn"]) == "dqn"


def test_curve_lines_are_means_and_paired_differences_with_standard_errors():
    rows = hand_rows()
    rate, mean, error = curve_lines(rows, "ssim")["a"]
    np.testing.assert_allclose(rate, [0.25, 0.5, 0.75])
    np.testing.assert_allclose(mean, [0.4, 0.5, 0.6])  # slices 0 and 1
    np.testing.assert_allclose(error, [0.2, 0.1, 0.0])  # std (ddof 1) / sqrt(2)
    # b against a on the one slice both saw; b's value per slice is its mean over seeds
    rate, difference, error = curve_lines(rows, "ssim", reference="a")["b"]
    np.testing.assert_allclose(difference, [0.4 - 0.2, 0.6 - 0.4, 0.8 - 0.6])
    np.testing.assert_allclose(error, 0.0)
    np.testing.assert_allclose(curve_lines(rows, "psnr", reference="a")["a"][1], 0.0)


def test_curves_figure_draws_the_oracle_dashed_and_the_paired_differences():
    rows = hand_rows() + [{**r, "policy": "oracle"} for r in hand_rows() if r["policy"] == "c"]
    figure = curves_figure(rows, "title")
    plots = [axis for axis in figure.axes if axis.lines]
    assert len(plots) == 4  # SSIM and PSNR; their differences with the reference
    for axis in plots:
        assert {"a", "b", "c", ORACLE_LABEL} <= {line.get_label() for line in axis.lines}
        assert line_of(axis, ORACLE_LABEL).get_linestyle() == "--" and line_of(axis, "a").get_linestyle() == "-"
        assert len(axis.collections) == 4  # one standard-error band per policy
    ssim, difference = plots[0], plots[2]
    np.testing.assert_allclose(line_of(ssim, "a").get_ydata(), [0.4, 0.5, 0.6])
    assert "− a" in difference.get_ylabel()  # the reference: "a", the first by name
    np.testing.assert_allclose(line_of(difference, "b").get_ydata(), [0.2, 0.2, 0.2])
    assert len(figure.legends) == 1 and ORACLE_LABEL in [t.get_text() for t in figure.legends[0].get_texts()]
    pyplot().close(figure)


@pytest.mark.parametrize("draw", ["curves", "masks"])
def test_a_title_wider_than_the_figure_is_wrapped_inside_it(draw):
    title = "singlecoil_test: budget 16 from 4 initial lines, " + "/very/long/path" * 12 + "/reconstructor.pt"
    if draw == "curves":
        figure = curves_figure(hand_rows(), title)
    else:
        figure = masks_figure({"a": acquisition_counts(hand_rows(), width=6)["a"]}, title)
    renderer = figure.canvas.get_renderer()
    figure.draw(renderer)
    text = figure.get_suptitle()
    assert len(text.splitlines()) >= 2  # one line did not fit
    assert "".join(text.split()).startswith("".join(title.split()))  # nothing lost, only line breaks added
    box, frame = figure._suptitle.get_window_extent(renderer), figure.bbox
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1
    pyplot().close(figure)


def test_acquisition_counts_sum_to_episodes_times_steps():
    counts = acquisition_counts(hand_rows(), width=6)
    assert set(counts) == {"a", "b", "c"} and all(table.shape == (2, 6) for table in counts.values())
    # a: slices 0, 1 (one seed); b: slice 0, seeds 0, 1; c: one slice; 2 steps each; column = step + slice
    assert {name: int(table.sum()) for name, table in counts.items()} == {"a": 4, "b": 4, "c": 2}
    np.testing.assert_array_equal(counts["a"], [[0, 1, 1, 0, 0, 0], [0, 0, 1, 1, 0, 0]])
    np.testing.assert_array_equal(counts["b"], [[0, 2, 0, 0, 0, 0], [0, 0, 2, 0, 0, 0]])
    assert acquisition_counts(hand_rows())["a"].shape == (2, 4)  # default width: largest column + 1


def test_masks_figure_has_one_heat_map_per_policy_oracle_last():
    counts = acquisition_counts(hand_rows(), width=6)
    counts["oracle"] = counts["c"]
    figure = masks_figure(counts, "title")
    panels = image_axes(figure)
    assert [axis.get_title().splitlines()[0] for axis in panels] == ["a", "b", "c", ORACLE_LABEL]
    for axis, name in zip(panels, ("a", "b", "c", "oracle")):
        np.testing.assert_array_equal(axis.images[0].get_array(), counts[name])
    width, height = figure.get_size_inches() * DPI
    assert (round(width), round(height)) == (4 * 360, 300)
    pyplot().close(figure)


def test_the_png_files_have_the_figures_pixel_size(tmp_path):
    from PIL import Image

    rows = hand_rows()
    write_report(tmp_path, rows, "title", width=6)
    for name, figure in (
        ("curves.png", curves_figure(rows, "title")),
        ("masks.png", masks_figure(acquisition_counts(rows, 6), "title")),
    ):
        width, height = figure.get_size_inches() * DPI
        assert Image.open(tmp_path / name).size == (round(width), round(height)), name
        pyplot().close(figure)


def test_shares_over_runs_spread_each_policy_over_runs_and_pool_them(tmp_path, script_usage_error):
    """``scripts/shares_over_runs.py``: two runs on the same images, read back from CSV. In the first p
    takes 3/4 of the room and q 1/4; in the second p 1/4 and q none, so over the runs p takes
    +50% ± 35.4% and q +12.5% ± 17.7%, and the four shares pooled +31.2% ± 31.5%. With references r
    and q each run's room starts at the stronger, and so it does with ``--reference val`` when each
    run's summary.json records that one as chosen on val. A run without that record, runs on other
    images or of another task (sampling rates), a policy not rolled and a label without its ``=`` are
    usage errors."""
    second = volume_rows(
        {("r", "x.h5"): [0.2, 0.2], ("o", "x.h5"): [0.6, 0.4], ("p", "x.h5"): [0.3, 0.25], ("q", "x.h5"): [0.2, 0.2],
         ("r", "y.h5"): [0.2], ("o", "y.h5"): [0.6], ("p", "y.h5"): [0.3], ("q", "y.h5"): [0.2],
         ("r", "z.h5"): [0.4], ("o", "z.h5"): [0.8], ("p", "z.h5"): [0.5], ("q", "z.h5"): [0.4]}
    )  # fmt: skip
    one_volume = [r for r in second if r["file"] == "x.h5"]
    for name, rows in (("a", two_policy_rows()), ("b", second), ("c", one_volume)):
        write_rows_csv(tmp_path / f"{name}.csv", rows)
    script = Path(__file__).parents[2] / "scripts" / "shares_over_runs.py"
    runs = [f"one={tmp_path / 'a.csv'}", f"two={tmp_path / 'b.csv'}"]
    options = ("--reference", "r", "--oracle", "o")
    command = [sys.executable, str(script), *runs, "--policies", "p", "q", *options]
    lines = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
    # the room: half of the SSIM gap per slice, (0.4, 0.2, 0.4, 0.4) / 2, mean 0.175; PSNR equal
    assert lines[2] == "| one | +0.1750 / +0.000 | +75.0%; +0.000; 4/4 | +25.0%; +0.000; 4/4 | +50.0% ± 35.4% |"
    assert lines[3] == "| two | +0.1750 / +0.000 | +25.0%; +0.000; 4/4 | +0.0%; +0.000; 0/4 | +12.5% ± 17.7% |"
    assert lines[4] == "| over the 2 runs | | +50.0% ± 35.4% | +12.5% ± 17.7% | +31.2% ± 31.5% (all 4) |"
    # two references: in run one q is the stronger (a quarter of r's room above r), so the room is
    # 3/4 of r's and p takes (3/4 - 1/4) / (3/4) of it; in run two q is r, and r is kept
    command = [sys.executable, str(script), *runs, "--policies", "p", "q", "--reference", "r", "q", "--oracle", "o"]
    lines = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
    assert lines[2].startswith("| one (q) | +0.1313 / +0.000 | +66.7%; +0.000; 4/4 | +0.0% (the reference) |")
    assert lines[3].startswith("| two (r) | +0.1750 / +0.000 | +25.0%; +0.000; 4/4 | +0.0%; +0.000; 0/4 |")
    # references chosen on val, as each run's summary.json records them: q in run one, r in run two
    for name, chosen in (("a", "q"), ("b", "r")):
        record = {"record": {"settings": {"reference": {"policy": chosen}}}, "policies": {}}
        (tmp_path / name).mkdir()
        (tmp_path / f"{name}.csv").rename(tmp_path / name / "metrics.csv")
        (tmp_path / name / "summary.json").write_text(json.dumps(record))
    runs = [f"one={tmp_path / 'a' / 'metrics.csv'}", f"two={tmp_path / 'b' / 'metrics.csv'}"]
    command = [sys.executable, str(script), *runs, "--policies", "p", "q", "--reference", "val", "--oracle", "o"]
    lines = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
    assert lines[2].startswith("| one (q) | +0.1313 / +0.000 | +66.7%; +0.000; 4/4 | +0.0% (the reference) |")
    assert lines[3].startswith("| two (r) | +0.1750 / +0.000 | +25.0%; +0.000; 4/4 | +0.0%; +0.000; 0/4 |")
    script_error = functools.partial(script_usage_error, "shares_over_runs.py")
    unchosen = script_error(runs[0], f"x={tmp_path / 'c.csv'}", "--policies", "p", "--reference", "val")
    assert f"{tmp_path / 'summary.json'} records no reference chosen on val" in unchosen
    other_images = script_error(runs[0], f"x={tmp_path / 'c.csv'}", "--policies", "p", *options)
    assert "run 'x' was rolled on 2 images and 'one' on 4, not the same ones" in other_images
    longer = [{**row, "sampling_rate": row["sampling_rate"] + 0.125} for row in second]  # another budget
    write_rows_csv(tmp_path / "d.csv", longer)
    other_task = script_error(runs[0], f"x={tmp_path / 'd.csv'}", "--policies", "p", *options)
    assert "run 'x' samples 0.375 to 0.875 of k-space and 'one' 0.25 to 0.75" in other_task
    assert "did not roll both 's' and 'r'" in script_error(*runs, "--policies", "s", *options)
    assert "expected LABEL=METRICS.csv, got 'one'" in script_error("one", "--policies", "p")


def test_compare_runs_gives_each_policys_paired_change_between_two_runs(tmp_path, script_usage_error):
    """``scripts/compare_runs.py``: in the second run p's SSIM is 0.1 higher on every image (AUC +0.05,
    4 of 4 up) and q's 0.02 lower on one of four (AUC −0.01 there, mean −0.0025, none up); PSNR is the
    same. Runs on other images or sampling rates, a policy one run did not roll and a missing file are
    usage errors."""
    first = two_policy_rows()
    second = [
        {**r, "ssim": r["ssim"] + {"p": 0.1, "q": -0.02 if r["file"] == "z.h5" else 0.0}.get(r["policy"], 0.0)}
        for r in first
    ]
    for name, rows in (("a", first), ("b", second), ("c", [r for r in first if r["file"] == "x.h5"])):
        write_rows_csv(tmp_path / f"{name}.csv", rows)
    script = Path(__file__).parents[2] / "scripts" / "compare_runs.py"
    command = [sys.executable, str(script), str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--policies", "p", "q"]
    lines = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
    assert lines[2:] == ["| p | +0.0500 (4/4) | +0.000 (0/4) |", "| q | -0.0025 (0/4) | +0.000 (0/4) |"]
    assert run_difference_table(second, first, ["p"]).splitlines()[2] == "| p | -0.0500 (0/4) | +0.000 (0/4) |"
    script_error = functools.partial(script_usage_error, "compare_runs.py")
    other_images = script_error(str(tmp_path / "a.csv"), str(tmp_path / "c.csv"), "--policies", "p")
    assert "run 'second' was rolled on 2 images and 'first' on 4, not the same ones" in other_images
    unrolled = script_error(str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--policies", "p", "s")
    assert "the first run did not roll ['s']" in unrolled
    longer = [{**r, "sampling_rate": r["sampling_rate"] + 0.125} for r in second]  # another budget
    write_rows_csv(tmp_path / "d.csv", longer)
    other_task = script_error(str(tmp_path / "a.csv"), str(tmp_path / "d.csv"), "--policies", "p")
    assert "run 'second' samples 0.375 to 0.875 of k-space and 'first' 0.25 to 0.75" in other_task
    missing = script_error(str(tmp_path / "nope.csv"), str(tmp_path / "b.csv"), "--policies", "p")
    assert f"{tmp_path / 'nope.csv'} does not exist: give an evaluation's metrics.csv" in missing


@pytest.mark.parametrize("count", [3, 10, 11, 25])
def test_every_policy_gets_its_own_colour_and_the_oracle_black(count):
    policies = [f"policy{i:02d}" for i in range(count)] + ["oracle"]
    colours = policy_colours(reversed(policies))
    assert colours["oracle"] == "black" and set(colours) == set(policies)
    assert len({tuple(np.round(colours[name], 6)) for name in policies[:-1]}) == count
    assert policy_colours(policies) == colours  # by name, not by the order given
