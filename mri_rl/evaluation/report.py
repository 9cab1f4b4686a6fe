"""Metric-versus-sampling-rate reports: AUC per image, summaries, CSV/JSON/markdown, curves."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mri_rl.evaluation.rollout import METRIC_COLUMNS
from mri_rl.files import atomic_output, atomic_write_text
from mri_rl.provenance import sidecar_path

SUMMARY_KEYS = ("ssim_auc", "psnr_auc", "final_ssim", "final_psnr")


def curve_auc(sampling_rate: np.ndarray, values: np.ndarray) -> float:
    """Area under a metric curve against the sampling rate (trapezoid rule)."""
    order = np.argsort(sampling_rate, kind="stable")
    return float(np.trapezoid(np.asarray(values)[order], np.asarray(sampling_rate)[order]))


def _episodes(rows: Iterable[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    episodes: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        episodes[(row["policy"], row["seed"], row["file"], row["slice"])].append(row)
    return episodes


def _episode_values(rows: Iterable[dict[str, Any]]) -> Iterator[tuple[tuple, dict[str, float]]]:
    """Per episode ``(policy, seed, file, slice)``: its SSIM and PSNR AUCs and final values."""
    for episode, steps in _episodes(rows).items():
        steps = sorted(steps, key=lambda r: r["step"])
        rate = np.array([r["sampling_rate"] for r in steps])
        values = {}
        for metric in ("ssim", "psnr"):
            curve = np.array([r[metric] for r in steps])
            values[f"{metric}_auc"], values[f"final_{metric}"] = curve_auc(rate, curve), float(curve[-1])
        yield episode, values


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per policy: mean and std, over images and seeds, of the per-image SSIM and PSNR AUCs
    and the final SSIM and PSNR."""
    per_policy: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (policy, *_), values in _episode_values(rows):
        for key in SUMMARY_KEYS:
            per_policy[policy][key].append(values[key])
    return {
        policy: {
            key: {"mean": float(np.mean(v[key])), "std": float(np.std(v[key])), "n": len(v[key])}
            for key in SUMMARY_KEYS
        }
        for policy, v in per_policy.items()
    }


def paired_differences(rows: list[dict[str, Any]], key: str = "ssim_auc") -> dict[tuple[str, str], dict[str, float]]:
    """Paired comparison of every two policies on the images both were rolled out on.

    Each policy's value per image (file, slice) is its mean over seeds. The spread over
    images is mostly shared by all policies (some slices are harder), so the paired
    difference says more than comparing the means of :func:`summarize`.

    Returns:
        ``{(a, b): {"mean": mean of a - b, "wins": images where a > b, "n": images}}``
        for every ordered pair of different policies.
    """
    per_image: dict[str, dict[tuple, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (policy, _, file, slice_), values in _episode_values(rows):
        per_image[policy][(file, slice_)].append(values[key])
    means = {policy: {image: float(np.mean(v)) for image, v in images.items()} for policy, images in per_image.items()}
    pairs = {}
    for a in means:
        for b in means:
            common = sorted(set(means[a]) & set(means[b]))
            if a == b or not common:
                continue
            difference = np.array([means[a][image] - means[b][image] for image in common])
            pairs[(a, b)] = {"mean": float(difference.mean()), "wins": int((difference > 0).sum()), "n": len(common)}
    return pairs


def paired_table(
    rows: list[dict[str, Any]], summary: dict[str, dict[str, dict[str, float]]], key: str = "ssim_auc"
) -> str:
    """:func:`paired_differences` as a markdown matrix, row minus column, best policy first."""
    pairs = paired_differences(rows, key)
    order = sorted(summary, key=lambda policy: -summary[policy][key]["mean"])
    lines = ["| row − column | " + " | ".join(order) + " |", "|---|" + "---|" * len(order)]
    for a in order:
        cells = [
            f"{pairs[(a, b)]['mean']:+.4f} ({pairs[(a, b)]['wins']}/{pairs[(a, b)]['n']})" if (a, b) in pairs else ""
            for b in order
        ]
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown_table(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    """The summary as a markdown table, best SSIM AUC first."""
    lines = ["| policy | SSIM AUC | PSNR AUC | final SSIM | final PSNR (dB) |", "|---|---|---|---|---|"]
    for policy, s in sorted(summary.items(), key=lambda item: -item[1]["ssim_auc"]["mean"]):
        cells = [
            f"{s[k]['mean']:.4f} ± {s[k]['std']:.4f}" if "ssim" in k else f"{s[k]['mean']:.3f} ± {s[k]['std']:.3f}"
            for k in SUMMARY_KEYS
        ]
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_rows_csv(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Rows with :data:`METRIC_COLUMNS` to CSV (atomically)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(Path(path), buffer.getvalue())


def read_summary(path: str | Path) -> dict[str, Any]:
    """The per-policy summary stored in a ``summary.json`` by :func:`write_report`."""
    return json.loads(Path(path).read_text())["policies"]


def read_rows_csv(path: str | Path) -> list[dict[str, Any]]:
    """Inverse of :func:`write_rows_csv` (numbers parsed)."""
    integer = {"seed", "slice", "step", "acquired_columns"}
    with Path(path).open(newline="") as f:
        return [
            {k: (int(v) if k in integer else v if k in ("policy", "file") else float(v)) for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


def write_report(
    out_dir: str | Path, rows: list[dict[str, Any]], title: str = "", record: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write metrics.csv, summary.json, summary.md and curves.png; returns the summary.

    Args:
        out_dir: the results folder.
        rows: rollout rows (:data:`~mri_rl.evaluation.rollout.METRIC_COLUMNS`).
        title: heading of summary.md and curves.png.
        record: how the rows were made (:mod:`mri_rl.provenance`); stored in summary.json
            (``{"record": ..., "policies": summary}``) and beside metrics.csv
            (``metrics.csv.record.json``).
    """
    out_dir = Path(out_dir)
    rows = sorted(rows, key=lambda r: (r["policy"], r["seed"], r["file"], r["slice"], r["step"]))
    write_rows_csv(out_dir / "metrics.csv", rows)
    atomic_write_text(sidecar_path(out_dir / "metrics.csv"), json.dumps({"record": record}, indent=1) + "\n")
    summary = summarize(rows)
    atomic_write_text(
        out_dir / "summary.json", json.dumps({"record": record, "policies": summary}, indent=2, sort_keys=True) + "\n"
    )
    header = f"# {title}\n\n" if title else ""
    note = (
        "AUC: area under the metric curve against the sampling rate (trapezoid rule) per image; "
        "mean ± std over images and seeds. Metrics follow fastMRI: data range = volume maximum.\n\n"
    )
    paired = (
        "\nPaired SSIM AUC differences, row − column: mean over the images both policies saw (each "
        "policy's value per image is its mean over seeds), and on how many images the row is higher.\n\n"
        + paired_table(rows, summary)
    )
    atomic_write_text(out_dir / "summary.md", header + note + markdown_table(summary) + paired)
    plot_curves(rows, out_dir / "curves.png", title)
    return summary


def plot_curves(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> None:
    """SSIM and PSNR against the sampling rate: one line per policy (mean over images and
    seeds at each step), shaded ± one standard deviation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_policy_step: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_policy_step[row["policy"]][row["step"]].append(row)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for policy in sorted(by_policy_step):
        steps = sorted(by_policy_step[policy])
        rate = np.array([np.mean([r["sampling_rate"] for r in by_policy_step[policy][s]]) for s in steps])
        for axis, metric in zip(axes, ("ssim", "psnr")):
            values = [np.array([r[metric] for r in by_policy_step[policy][s]]) for s in steps]
            mean = np.array([v.mean() for v in values])
            std = np.array([v.std() for v in values])
            axis.plot(rate, mean, label=policy)
            axis.fill_between(rate, mean - std, mean + std, alpha=0.15)
    for axis, label in zip(axes, ("SSIM", "PSNR (dB)")):
        axis.set_xlabel("sampling rate (acquired / measurable columns)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    with atomic_output(path) as temporary:
        figure.savefig(temporary, dpi=110, format=Path(path).suffix.lstrip(".") or "png")
    plt.close(figure)
