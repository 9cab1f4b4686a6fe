"""Metric-versus-sampling-rate reports: AUC per slice and per volume, summaries, CSV/JSON/markdown, figures.

Two aggregations, both in ``summary.json`` and ``summary.md``:

- per slice (keys :data:`SLICE_KEYS`: ``ssim_auc``, ``psnr_auc``, ``final_ssim``,
  ``final_psnr``): each slice's curve, mean ± std over slices and seeds;
- per volume, as fastMRI's evaluation (``fastmri.evaluate``) scores a volume (keys
  :data:`VOLUME_KEYS`, the same names with ``_volume``): at each step a volume's SSIM is
  the mean of its slices' SSIM and its PSNR is ``10 log10(max² / MSE)`` with the MSE over
  all pixels of the volume, ``max`` the volume's maximum (the data range of every
  metric here); the AUC and final value of these volume curves, mean ± std over volumes
  and seeds. This equals fastMRI's definition when the data range is the file's ``max``
  attribute (fastMRI's files and the synthetic ones have it); a file without it is scored
  with each slice's own maximum (see :func:`mri_rl.kspace.data_range`), and its volume
  figures then mix those ranges.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from mri_rl.evaluation.figures import ORACLE_NAMES, plot_curves, plot_masks
from mri_rl.evaluation.rollout import METRIC_COLUMNS
from mri_rl.files import atomic_write_text
from mri_rl.provenance import sidecar_path

#: The AUC keys compared pair by pair, and how tables name them: a PSNR AUC is an area, dB × sampling rate.
AUC_LABELS = {"ssim_auc": "SSIM AUC", "psnr_auc": "PSNR AUC (dB·rate)"}
#: Per-slice summary keys: each slice's curve, then mean ± std over slices and seeds.
SLICE_KEYS = ("ssim_auc", "psnr_auc", "final_ssim", "final_psnr")
#: Per-volume summary keys (fastMRI's aggregation): each volume's curve, then mean ± std over volumes and seeds.
VOLUME_KEYS = tuple(f"{key}_volume" for key in SLICE_KEYS)
#: Every key of a policy's summary.
SUMMARY_KEYS = SLICE_KEYS + VOLUME_KEYS
#: The columns of metrics.csv that name one episode.
EPISODE_KEYS = ("policy", "seed", "file", "slice")
#: The level and bootstrap resamples of each share's interval in summary.md (:func:`room_share_interval`).
INTERVAL_LEVEL, INTERVAL_RESAMPLES = 0.95, 4000


class ResamplingUnits(NamedTuple):
    """What the bootstrap intervals of the room shares resample: the independent units the images were
    drawn from (:mod:`mri_rl.evaluation.resampling_units`).

    Attributes:
        name: the units in the plural, as the tables say it ("volumes", "subjects", "runs of neighbouring
            template slices").
        of: image ``(file, slice)`` -> its unit (any hashable); None: each image's file, a volume.
        reason: why these are the units, for summary.md.
    """

    name: str = "volumes"
    of: Mapping[tuple[str, int], Any] | None = None
    reason: str = "the slices of one volume are not independent"

    def unit(self, image: tuple[str, int]) -> Any:
        """The unit of one image ``(file, slice)``."""
        return image[0] if self.of is None else self.of[image]


class RoomReference(NamedTuple):
    """A fixed order chosen outside the evaluated split (e.g. the strongest on val,
    :mod:`~mri_rl.evaluation.reference_choice`) that summary.md also takes the shares against.

    Attributes:
        policy: its policy name, rolled in the evaluation.
        why: markdown saying how it was chosen.
    """

    policy: str
    why: str


#: Whole volumes: the default, right where every volume is another subject (fastMRI).
VOLUMES = ResamplingUnits()
_MSE_FLOOR = 1e-20  # as the per-slice PSNR: an exact volume stays finite (200 dB)
ORACLE_NOTE = (
    "oracle: greedy with the ground truth: each step acquires the column that most improves the reward "
    "metric against the target (oracle_ssim_psnr: the sum of its SSIM and PSNR gains, each standardised "
    "over the free columns). It reads the target, so it is no policy, and it is myopic, NOT an upper "
    "bound: a fixed order can end above it. oracle_rollout reads the target too: each step it scores the "
    "greedy oracle's best columns and LBCS's next one by the reward metric's AUC over the rest of the "
    "episode (the column, then the LBCS order), never ending below LBCS on that AUC; not an upper bound either.\n"
)


def curve_auc(sampling_rate: np.ndarray, values: np.ndarray) -> float:
    """Area under a metric curve against the sampling rate (trapezoid rule)."""
    order = np.argsort(sampling_rate, kind="stable")
    return float(np.trapezoid(np.asarray(values)[order], np.asarray(sampling_rate)[order]))


def _group(rows: Iterable[dict[str, Any]], keys: tuple[str, ...]) -> dict[tuple, list[dict[str, Any]]]:
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[key] for key in keys)].append(row)
    return groups


def _curve_values(rate: np.ndarray, curves: dict[str, np.ndarray], suffix: str = "") -> dict[str, float]:
    """AUC and final value of the ``ssim`` and ``psnr`` curves (in step order) against ``rate``."""
    values = {}
    for metric in ("ssim", "psnr"):
        values[f"{metric}_auc{suffix}"] = curve_auc(rate, curves[metric])
        values[f"final_{metric}{suffix}"] = float(curves[metric][-1])
    return values


def _episode_values(rows: Iterable[dict[str, Any]]) -> Iterator[tuple[tuple, dict[str, float]]]:
    """Per episode ``(policy, seed, file, slice)``: its SSIM and PSNR AUCs and final values (:data:`SLICE_KEYS`)."""
    for episode, steps in _group(rows, EPISODE_KEYS).items():
        steps = sorted(steps, key=lambda r: r["step"])
        rate = np.array([r["sampling_rate"] for r in steps])
        yield (
            episode,
            _curve_values(rate, {metric: np.array([r[metric] for r in steps]) for metric in ("ssim", "psnr")}),
        )


def volume_curves(rows: Iterable[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The curves of one volume (the rows of one policy, seed and file), as fastMRI scores a volume.

    At each step that every slice of the volume reached: ``ssim`` the mean of the slices'
    SSIM, ``psnr`` ``-10 log10`` of the mean of their MSE (the MSE over the whole volume,
    in units of the volume's maximum squared), ``sampling_rate`` the mean of theirs.

    Returns:
        ``{"step", "sampling_rate", "ssim", "psnr"}``, arrays (T,) in step order.
    """
    by_step: dict[int, list[dict[str, Any]]] = defaultdict(list)
    slices = set()
    for row in rows:
        by_step[row["step"]].append(row)
        slices.add(row["slice"])
    steps = sorted(step for step, step_rows in by_step.items() if len(step_rows) == len(slices))
    mean = {
        key: np.array([np.mean([r[key] for r in by_step[s]]) for s in steps])
        for key in ("sampling_rate", "ssim", "mse")
    }
    return {
        "step": np.array(steps),
        "sampling_rate": mean["sampling_rate"],
        "ssim": mean["ssim"],
        "psnr": -10.0 * np.log10(np.maximum(mean["mse"], _MSE_FLOOR)),
    }


def _volume_values(rows: Iterable[dict[str, Any]]) -> Iterator[tuple[tuple, dict[str, float]]]:
    """Per volume ``(policy, seed, file)``: the AUCs and final values of its curves (:data:`VOLUME_KEYS`)."""
    for volume, volume_rows in _group(rows, ("policy", "seed", "file")).items():
        curves = volume_curves(volume_rows)
        yield volume, _curve_values(curves["sampling_rate"], curves, "_volume")


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per policy and key of :data:`SUMMARY_KEYS`: ``{"mean", "std", "n"}``.

    Per-slice keys (:data:`SLICE_KEYS`) over slices and seeds, per-volume keys
    (:data:`VOLUME_KEYS`) over volumes and seeds; ``n`` counts those.
    """
    per_policy: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for values_of in (_episode_values, _volume_values):
        for (policy, *_), values in values_of(rows):
            for key, value in values.items():
                per_policy[policy][key].append(value)
    return {
        policy: {
            key: {"mean": float(np.mean(v[key])), "std": float(np.std(v[key])), "n": len(v[key])}
            for key in SUMMARY_KEYS
        }
        for policy, v in per_policy.items()
    }


def rows_up_to_step(rows: Iterable[dict[str, Any]], steps: int) -> list[dict[str, Any]]:
    """The rows of steps 0 to ``steps``: every episode cut after its ``steps``-th acquisition, as if the
    budget were ``steps``; the AUCs of the cut rows span those steps' sampling rates only.

    Raises:
        ValueError: ``steps`` below 1, or past the last step of an episode (its AUC would span fewer
            steps than the others').
    """
    rows = list(rows)
    last = min((max(row["step"] for row in episode) for episode in _group(rows, EPISODE_KEYS).values()), default=0)
    if not 1 <= steps <= last:
        raise ValueError(f"cannot cut the episodes at step {steps}: they end at step {last}; cut at 1 to {last}")
    return [row for row in rows if row["step"] <= steps]


def _image_means(rows: Iterable[dict[str, Any]], key: str) -> dict[str, dict[tuple[str, int], float]]:
    """Per policy and image ``(file, slice)``: the mean of ``key`` (a per-slice key) over seeds."""
    per_image: dict[str, dict[tuple, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (policy, _, file, slice_), values in _episode_values(rows):
        per_image[policy][(file, slice_)].append(values[key])
    return {policy: {image: float(np.mean(v)) for image, v in images.items()} for policy, images in per_image.items()}


def paired_differences(rows: list[dict[str, Any]], key: str = "ssim_auc") -> dict[tuple[str, str], dict[str, float]]:
    """Paired comparison of every two policies on the images both were rolled out on.

    Each policy's value per image (file, slice) is its mean over seeds. The spread over
    images is mostly shared by all policies (some slices are harder), so the paired
    difference says more than comparing the means of :func:`summarize`.

    Returns:
        ``{(a, b): {"mean": mean of a - b, "wins": images where a > b, "n": images}}``
        for every ordered pair of different policies.
    """
    means = _image_means(rows, key)
    pairs = {}
    for a in means:
        for b in means:
            common = sorted(set(means[a]) & set(means[b]))
            if a == b or not common:
                continue
            difference = np.array([means[a][image] - means[b][image] for image in common])
            pairs[(a, b)] = {"mean": float(difference.mean()), "wins": int((difference > 0).sum()), "n": len(common)}
    return pairs


def room_share(
    pairs: dict[tuple[str, str], dict[str, float]], policy: str, reference: str = "lbcs", oracle: str = "oracle"
) -> float:
    """The share of the room between ``reference`` and ``oracle`` that ``policy`` captures:
    ``(policy - reference) / (oracle - reference)`` of the paired means in ``pairs``
    (:func:`paired_differences`); NaN when the oracle is not above the reference (no room). The
    reference's own share is 0.

    Raises:
        ValueError: the gain and the room are means over different numbers of images (``policy`` was
            rolled on other images than ``oracle``): their ratio would be no share of anything.
    """
    room = pairs[(oracle, reference)]
    if policy != reference and pairs[(policy, reference)]["n"] != room["n"]:
        raise ValueError(
            f"{policy} − {reference} is paired on {pairs[(policy, reference)]['n']} images and the room "
            f"{oracle} − {reference} on {room['n']}: roll {policy} and {oracle} on the same images"
        )
    gain = 0.0 if policy == reference else pairs[(policy, reference)]["mean"]
    return gain / room["mean"] if room["mean"] > 0 else float("nan")


def room_share_interval(
    rows: list[dict[str, Any]],
    policy: str,
    reference: str = "lbcs",
    oracle: str = "oracle",
    level: float = INTERVAL_LEVEL,
    resamples: int = INTERVAL_RESAMPLES,
    seed: int = 0,
    other: str | None = None,
    units: ResamplingUnits = VOLUMES,
) -> tuple[float, float]:
    """A percentile bootstrap interval of ``policy``'s :func:`room_share` in SSIM AUC that
    resamples whole ``units`` with replacement, not slices: by default volumes (files), whose
    slices share anatomy, orientation and contrast, so they are not independent (the cluster
    bootstrap; Davison & Hinkley, *Bootstrap Methods and their Application*, 1997, §3.8); where
    volumes share anatomy themselves (slices of one template brain), the units that do not.

    Each resample draws as many units as there are, and its share is the ratio of the summed
    paired gains, ``Σ (policy − reference) / Σ (oracle − reference)`` over the drawn units'
    slices (each slice's value its mean over seeds), as :func:`room_share` does over all of them.
    Deterministic for a given ``seed``. With few units the interval is coarse: four volumes
    have 35 distinct resamples.

    With ``other``, the interval of the difference ``room_share(policy) − room_share(other)``,
    ``Σ (policy − other) / Σ (oracle − reference)``, both shares on the same resampled volumes:
    a paired comparison, whether one policy's lead over another outgrows the volumes' spread.

    Returns:
        ``(low, high)``, the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles; NaN for both
        with fewer than two units, or when some resample leaves no room (oracle not above
        the reference), where the share is undefined.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    means = _image_means(rows, "ssim_auc")
    return _share_interval(means, policy, reference, oracle, other, units, level, resamples, seed)


def _share_interval(
    means: dict[str, dict[tuple[str, int], float]],
    policy: str,
    reference: str,
    oracle: str,
    other: str | None = None,
    units: ResamplingUnits = VOLUMES,
    level: float = INTERVAL_LEVEL,
    resamples: int = INTERVAL_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """:func:`room_share_interval` from each policy's SSIM AUC per image (:func:`_image_means`)."""
    other = reference if other is None else other
    images = sorted(set.intersection(*(set(means.get(name, {})) for name in (policy, other, reference, oracle))))
    index = {unit: i for i, unit in enumerate(sorted({units.unit(image) for image in images}, key=repr))}
    if len(index) < 2:
        return float("nan"), float("nan")
    gain, room = np.zeros(len(index)), np.zeros(len(index))
    for image in images:
        unit = index[units.unit(image)]
        gain[unit] += means[policy][image] - means[other][image]
        room[unit] += means[oracle][image] - means[reference][image]
    draws = np.random.default_rng(seed).integers(len(index), size=(resamples, len(index)))
    drawn_gain, drawn_room = gain[draws].sum(axis=1), room[draws].sum(axis=1)
    if (drawn_room <= 0).any():
        return float("nan"), float("nan")
    low, high = np.quantile(drawn_gain / drawn_room, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _paired_cell(pair: dict[str, float], key: str) -> str:
    """A paired difference and its wins, ``+0.0012 (20/32)``: SSIM to 4 decimals, PSNR (dB) to 3."""
    return f"{pair['mean']:+.{4 if 'ssim' in key else 3}f} ({pair['wins']}/{pair['n']})"


def paired_table(
    rows: list[dict[str, Any]], summary: dict[str, dict[str, dict[str, float]]], key: str = "ssim_auc"
) -> str:
    """:func:`paired_differences` of ``key`` as a markdown matrix, row minus column, best policy first."""
    pairs = paired_differences(rows, key)
    order = sorted(summary, key=lambda policy: -summary[policy][key]["mean"])
    lines = ["| row − column | " + " | ".join(order) + " |", "|---|" + "---|" * len(order)]
    for a in order:
        cells = [_paired_cell(pairs[(a, b)], key) if (a, b) in pairs else "" for b in order]
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def room_share_table(
    rows: list[dict[str, Any]], reference: str = "lbcs", oracle: str = "oracle", units: ResamplingUnits = VOLUMES
) -> str:
    """Each other policy's share of the room between ``reference`` and ``oracle`` in paired SSIM AUC
    (:func:`room_share`) and its 95% interval with ``units`` resampled (:func:`room_share_interval`),
    with its paired SSIM and PSNR AUC differences against ``reference``, as a markdown table,
    largest share first ("no room" when the oracle is not above ``reference``; "n/a" for an
    undefined interval); empty when either was not evaluated."""
    ssim, psnr = paired_differences(rows, "ssim_auc"), paired_differences(rows, "psnr_auc")
    if (oracle, reference) not in ssim:
        return ""
    room = ssim[(oracle, reference)]
    means = _image_means(rows, "ssim_auc")  # once for every policy's interval
    others = {a for a, b in ssim if b == reference} - {oracle}
    lines = [
        f"The room: {oracle} − {reference} {_paired_cell(room, 'ssim_auc')} SSIM AUC, "
        f"{_paired_cell(psnr[(oracle, reference)], 'psnr_auc')} dB·rate PSNR AUC.\n",
        f"| policy | share of the room | 95% interval, {units.name} resampled | − {reference}: SSIM AUC "
        f"| − {reference}: {AUC_LABELS['psnr_auc']} |",
        "|---|---|---|---|---|",
    ]
    for policy in sorted(others, key=lambda name: (-ssim[(name, reference)]["mean"], name)):
        share = room_share(ssim, policy, reference, oracle)
        low, high = _share_interval(means, policy, reference, oracle, units=units)
        interval = "n/a" if np.isnan(low) else f"{low:+.0%} to {high:+.0%}"
        gains = _paired_cell(ssim[(policy, reference)], "ssim_auc"), _paired_cell(psnr[(policy, reference)], "psnr_auc")
        lines.append(
            f"| {policy} | {'no room' if np.isnan(share) else f'{share:+.0%}'} | {interval} | {gains[0]} | {gains[1]} |"
        )
    return "\n".join(lines) + "\n"


def member_spread_table(
    rows: list[dict[str, Any]], groups: Mapping[str, Sequence[str]], reference: str = "lbcs", oracle: str = "oracle"
) -> str:
    """Markdown: each ensemble's (or group's) members rolled one by one (e.g. one agent per training seed), their
    shares of the room between ``reference`` and ``oracle`` (:func:`room_share`) and the mean ± std of
    those shares over the members (std with n − 1: the spread a new member would show), with the
    range of their paired PSNR AUC differences and SSIM AUC wins against ``reference``.

    Args:
        rows: rollout rows.
        groups: ensemble or group name -> the names its members were rolled under
            (:func:`~mri_rl.evaluation.policy_specs.ensemble_members`, or the ``groups`` of
            :func:`~mri_rl.evaluation.evaluate.evaluate_policies`); groups of the same members share one row.

    Returns:
        The table; empty when the room cannot be taken (``reference`` or ``oracle`` not evaluated)
        or no group of two or more members was rolled in full.
    """
    ssim, psnr = paired_differences(rows, "ssim_auc"), paired_differences(rows, "psnr_auc")
    if (oracle, reference) not in ssim:
        return ""
    ensembles: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for name, members in groups.items():
        if len(members) > 1 and all((member, reference) in ssim for member in members):
            ensembles[tuple(members)].append(name)
    lines = [
        "| ensembles or groups | members | members' shares | mean ± std "
        f"| − {reference}: {AUC_LABELS['psnr_auc']} | SSIM AUC won |",
        "|---|---|---|---|---|---|",
    ]
    for members, names in ensembles.items():
        shares = np.array([room_share(ssim, member, reference, oracle) for member in members])
        spread = "no room" if np.isnan(shares).any() else f"{shares.mean():+.1%} ± {shares.std(ddof=1):.1%}"
        each = ", ".join("no room" if np.isnan(share) else f"{share:+.1%}" for share in shares)
        decibels = [psnr[(member, reference)]["mean"] for member in members]
        won = ", ".join(f"{ssim[(member, reference)]['wins']}/{ssim[(member, reference)]['n']}" for member in members)
        lines.append(
            f"| {', '.join(names)} | {', '.join(members)} | {each} | {spread} "
            f"| {min(decibels):+.3f} to {max(decibels):+.3f} | {won} |"
        )
    return "\n".join(lines) + "\n" if ensembles else ""


def share_difference_table(
    rows: list[dict[str, Any]],
    comparisons: list[tuple[str, str]],
    reference: str = "lbcs",
    oracle: str = "oracle",
    units: ResamplingUnits = VOLUMES,
) -> str:
    """Markdown: for each ``(policy, other)`` of ``comparisons``, both shares of the room between
    ``reference`` and ``oracle`` (:func:`room_share`), their difference with its paired 95% interval,
    ``units`` resampled (:func:`room_share_interval` with ``other``), and ``policy − other`` in paired SSIM
    and PSNR AUC.

    Raises:
        KeyError: a policy, ``reference`` or ``oracle`` that is not among the rows' policies.
        ValueError: a policy compared with itself.
    """
    if any(policy == other for policy, other in comparisons):
        raise ValueError(f"a comparison needs two policies, got {comparisons}")
    ssim, psnr = paired_differences(rows, "ssim_auc"), paired_differences(rows, "psnr_auc")
    evaluated = {a for a, _ in ssim}
    for name in {reference, oracle, *(name for pair in comparisons for name in pair)}:
        if name not in evaluated:
            raise KeyError(f"{name!r} is not among the evaluated policies {sorted(evaluated)}")
    means = _image_means(rows, "ssim_auc")
    lines = [
        f"| policy − other | share of the room ({reference} to {oracle}) | difference | 95% interval, {units.name} "
        f"resampled | policy − other: SSIM AUC | policy − other: {AUC_LABELS['psnr_auc']} |",
        "|---|---|---|---|---|---|",
    ]
    for policy, other in comparisons:
        shares = [room_share(ssim, name, reference, oracle) for name in (policy, other)]
        low, high = _share_interval(means, policy, reference, oracle, other, units)
        interval = "n/a" if np.isnan(low) else f"{low:+.1%} to {high:+.1%}"
        cells = [_paired_cell(table[(policy, other)], key) for table, key in ((ssim, "ssim_auc"), (psnr, "psnr_auc"))]
        lines.append(
            f"| {policy} − {other} | {shares[0]:+.1%} − {shares[1]:+.1%} | {shares[0] - shares[1]:+.1%} | {interval} "
            f"| {cells[0]} | {cells[1]} |"
        )
    return "\n".join(lines) + "\n"


def check_comparable_runs(runs: dict[str, list[dict[str, Any]]]) -> None:
    """Raise ``ValueError`` unless every run (label -> rows) was rolled on the same images ``(file, slice)``
    and at the same sampling rates: one split and one task (budget, initial lines)."""
    images = {label: {(row["file"], row["slice"]) for row in rows} for label, rows in runs.items()}
    rates = {label: sorted({round(row["sampling_rate"], 6) for row in rows}) for label, rows in runs.items()}
    first = next(iter(images))
    for label in runs:
        if images[label] != images[first]:
            raise ValueError(
                f"run {label!r} was rolled on {len(images[label])} images and {first!r} on {len(images[first])}, "
                "not the same ones: roll every run on one split"
            )
        if rates[label] != rates[first]:
            raise ValueError(
                f"run {label!r} samples {rates[label][0]:g} to {rates[label][-1]:g} of k-space and {first!r} "
                f"{rates[first][0]:g} to {rates[first][-1]:g}: compare runs of one task (budget, initial lines)"
            )


def run_difference_table(first: list[dict[str, Any]], second: list[dict[str, Any]], policies: list[str]) -> str:
    """Markdown: each policy of two evaluations of the same images (two runs: another U-Net, more epochs),
    ``second − first`` in paired SSIM and PSNR AUC per image, with the images where it rose. What a
    change to the run did to each policy, whatever it did to their shares of the room.

    Raises:
        ValueError: the runs hold other images or other sampling rates (:func:`check_comparable_runs`), or a
            policy is not in both.
    """
    check_comparable_runs({"first": first, "second": second})
    for label, rows in (("first", first), ("second", second)):
        missing = sorted(set(policies) - {row["policy"] for row in rows})
        if missing:
            raise ValueError(f"the {label} run did not roll {missing}")
    rows = [
        {**row, "policy": f"{label} {row['policy']}"}
        for label, run in (("first", first), ("second", second))
        for row in run
        if row["policy"] in policies
    ]
    tables = {key: paired_differences(rows, key) for key in ("ssim_auc", "psnr_auc")}
    lines = [f"| policy | second − first: SSIM AUC | second − first: {AUC_LABELS['psnr_auc']} |", "|---|---|---|"]
    for policy in policies:
        cells = [_paired_cell(table[(f"second {policy}", f"first {policy}")], key) for key, table in tables.items()]
        lines.append(f"| {policy} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def markdown_table(summary: dict[str, dict[str, dict[str, float]]], keys: tuple[str, ...] = SLICE_KEYS) -> str:
    """The summary's ``keys`` (SSIM AUC, PSNR AUC, final SSIM, final PSNR: :data:`SLICE_KEYS`
    or :data:`VOLUME_KEYS`) as a markdown table, best SSIM AUC first."""
    lines = ["| policy | SSIM AUC | PSNR AUC | final SSIM | final PSNR (dB) |", "|---|---|---|---|---|"]
    for policy, s in sorted(summary.items(), key=lambda item: -item[1][keys[0]]["mean"]):
        cells = [
            f"{s[k]['mean']:.4f} ± {s[k]['std']:.4f}" if "ssim" in k else f"{s[k]['mean']:.3f} ± {s[k]['std']:.3f}"
            for k in keys
        ]
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def member_spread_sections(
    rows: list[dict[str, Any]], member_groups: Mapping[str, Sequence[str]], chosen: str | None = None
) -> str:
    """summary.md's sections of :func:`member_spread_table`, against ``lbcs``, ``lbcs_kind`` and the
    reference ``chosen`` on val, each where it can be taken."""
    references = dict.fromkeys(["lbcs", "lbcs_kind", *([chosen] if chosen else [])])
    return "".join(
        f"\n## Members one by one (ensembles and groups), against {reference}\n\nEach member's share of the room "
        f"above {reference} as in the table above, and their mean ± std over the members: with one member per "
        "training seed, the spread over training seeds.\n\n" + table
        for reference in references
        if (table := member_spread_table(rows, member_groups, reference))
    )


def interval_note(rows: Iterable[dict[str, Any]], units: ResamplingUnits) -> str:
    """summary.md's sentence on what the share intervals of ``rows`` resample, and how many of them."""
    count = len({units.unit((row["file"], row["slice"])) for row in rows})
    return f"The interval resamples whole {units.name} ({count} here: {units.reason}); with few it is coarse."


def room_sections(rows: list[dict[str, Any]], units: ResamplingUnits, reference: RoomReference | None) -> str:
    """summary.md's share tables: above LBCS and above ``lbcs_kind`` when they and the oracle were
    rolled, and above ``reference`` when given (:func:`room_share_table`)."""
    shares = room_share_table(rows, units=units)
    room = (
        "\n## Share of the LBCS-to-oracle room (per slice)\n\n`(policy − lbcs) / (oracle − lbcs)` of the paired "
        f"SSIM AUC means; the room depends on how well LBCS was learned (`--lbcs-slices`). {interval_note(rows, units)}"
        "\n\n" + shares
        if shares
        else ""
    )
    kind_shares = room_share_table(rows, "lbcs_kind", units=units)
    kind_room = (
        "\n## Share of the room above LBCS learned per kind of volume\n\n`(policy − lbcs_kind) / (oracle − "
        "lbcs_kind)`: the same against one LBCS order per kind of volume (`--lbcs-by`), learned on the training "
        "volumes of that kind: a second fixed reference, stronger than one order where the kinds differ in which "
        "columns matter, weaker where each order fits its kind's training slices too closely.\n\n" + kind_shares
        if kind_shares
        else ""
    )
    chosen_room = (
        f"\n## Share of the room above the reference chosen on val ({reference.policy})\n\n{reference.why}\n"
        + (room_share_table(rows, reference.policy, units=units) or "No room: the oracle was not rolled.\n")
        if reference
        else ""
    )
    return room + kind_room + chosen_room


def summary_markdown(
    rows: list[dict[str, Any]],
    summary: dict[str, dict[str, dict[str, float]]],
    title: str = "",
    member_groups: Mapping[str, Sequence[str]] | None = None,
    units: ResamplingUnits = VOLUMES,
    reference: RoomReference | None = None,
) -> str:
    """The text of summary.md: the per-slice and per-volume tables, the paired SSIM and PSNR AUC
    matrices, each policy's share of the LBCS-to-oracle room when both were evaluated (and of the room
    above ``lbcs_kind`` when it was, and above ``reference`` when given) with intervals that resample
    ``units``, the spread of those shares over each ensemble's members rolled one by one
    (``member_groups``, :func:`member_spread_table`), and what the oracle is when it was evaluated."""
    header = f"# {title}\n\n" if title else ""
    per_slice = (
        "## Per slice\n\nAUC: area under the metric curve against the sampling rate (trapezoid rule) per "
        "slice; mean ± std over slices and seeds. Metrics follow fastMRI: data range = volume maximum. "
        "Keys `ssim_auc`, `psnr_auc`, `final_ssim`, `final_psnr` in summary.json.\n\n"
    )
    per_volume = (
        "\n## Per volume (fastMRI's aggregation)\n\nA volume's SSIM is the mean of its slices' SSIM, its PSNR "
        "10 log10(max² / MSE) with the MSE over the whole volume (max = the volume's maximum), at each step; "
        "AUC and final value of these volume curves, mean ± std over volumes and seeds. Keys `*_volume` in "
        "summary.json.\n\n"
    )
    paired = "".join(
        f"\n## Paired {name} differences (per slice)\n\nRow − column: mean over the slices both policies saw "
        "(each policy's value per slice is its mean over seeds), and on how many slices the row is higher.\n\n"
        + paired_table(rows, summary, key)
        for key, name in AUC_LABELS.items()
    )
    rooms = room_sections(rows, units, reference)
    oracle = f"\n{ORACLE_NOTE}" if ORACLE_NAMES & set(summary) else ""
    return (
        header
        + per_slice
        + markdown_table(summary, SLICE_KEYS)
        + per_volume
        + markdown_table(summary, VOLUME_KEYS)
        + paired
        + rooms
        + member_spread_sections(rows, member_groups or {}, reference.policy if reference else None)
        + oracle
    )


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
    """Inverse of :func:`write_rows_csv` (numbers parsed; ``column`` an int, -1 at step 0).

    A file written before the ``column`` was recorded reads without that key.

    Raises:
        ValueError: a row with a missing, extra or non-numeric value (a cut or edited file), naming
            the file and the line.
    """
    integer, text = {"seed", "slice", "step", "column", "acquired_columns"}, {"policy", "file"}
    rows = []
    with Path(path).open(newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            try:
                rows.append({k: (int(v) if k in integer else v if k in text else float(v)) for k, v in row.items()})
            except (TypeError, ValueError):
                raise ValueError(
                    f"{path} line {reader.line_num}: not a row of metrics ({dict(row)}): expected a value in every "
                    "column of mri-rl evaluate's metrics.csv, numbers but for policy and file"
                ) from None
    return rows


def join_policy_rows(
    rows: list[dict[str, Any]], name: str, parts: Iterable[tuple[str, list[dict[str, Any]]]]
) -> list[dict[str, Any]]:
    """``rows`` and, as policy ``name``, the rows of other evaluations that each rolled one policy: e.g.
    an LBCS order learned per kind of volume and rolled on each kind's files, joined to the
    evaluation of every kind so that shares can be taken against it (``reference=name``).

    Args:
        rows: one evaluation's rows (:func:`read_rows_csv`).
        name: the policy name the joined rows take; not one of ``rows``' policies.
        parts: ``(source, rows)`` per other evaluation (``source`` names it in errors), one
            policy each.

    Raises:
        ValueError: ``name`` already names a policy of ``rows``; a part with no rows or with
            rows of several policies; a step of one episode (seed, file, slice, step) given twice.
    """
    if name in {row["policy"] for row in rows}:
        raise ValueError(f"policy {name!r} is already in the evaluation; join the other rows under another name")
    joined, seen = list(rows), set()
    for source, part in parts:
        policies = sorted({row["policy"] for row in part})
        if len(policies) != 1:
            raise ValueError(f"{source}: expected the rows of one policy, found {policies or 'none'}")
        for row in part:
            step = (row["seed"], row["file"], row["slice"], row["step"])
            if step in seen:
                raise ValueError(
                    f"{source}: seed {step[0]}, {step[1]} slice {step[2]} step {step[3]} is already among "
                    f"the rows joined as {name!r} (the same evaluation given twice?)"
                )
            seen.add(step)
            joined.append({**row, "policy": name})
    return joined


def write_report(
    out_dir: str | Path,
    rows: list[dict[str, Any]],
    title: str = "",
    record: dict[str, Any] | None = None,
    width: int | None = None,
    member_groups: Mapping[str, Sequence[str]] | None = None,
    units: ResamplingUnits = VOLUMES,
    reference: RoomReference | None = None,
) -> dict[str, Any]:
    """Write metrics.csv, summary.json, summary.md, curves.png and masks.png; returns the summary.

    Args:
        out_dir: the results folder.
        rows: rollout rows (:data:`~mri_rl.evaluation.rollout.METRIC_COLUMNS`).
        title: heading of summary.md and the figures.
        record: how the rows were made (:mod:`mri_rl.provenance`); stored in summary.json
            (``{"record": ..., "policies": summary}``) and beside metrics.csv
            (``metrics.csv.record.json``).
        width: W, the k-space columns, the x axis of masks.png (default: the largest
            acquired column + 1).
        member_groups: ensemble name -> its members' policy names, for the spread of their shares
            in summary.md (:func:`member_spread_table`).
        units: what the share intervals of summary.md resample (default: volumes).
        reference: a fixed order chosen outside this split that summary.md takes the shares against too.
    """
    out_dir = Path(out_dir)
    rows = sorted(rows, key=lambda r: (r["policy"], r["seed"], r["file"], r["slice"], r["step"]))
    write_rows_csv(out_dir / "metrics.csv", rows)
    atomic_write_text(sidecar_path(out_dir / "metrics.csv"), json.dumps({"record": record}, indent=1) + "\n")
    summary = summarize(rows)
    atomic_write_text(
        out_dir / "summary.json", json.dumps({"record": record, "policies": summary}, indent=2, sort_keys=True) + "\n"
    )
    atomic_write_text(out_dir / "summary.md", summary_markdown(rows, summary, title, member_groups, units, reference))
    plot_curves(rows, out_dir / "curves.png", title)
    plot_masks(rows, out_dir / "masks.png", width, title)
    return summary
