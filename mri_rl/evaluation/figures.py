"""The evaluation's pictures: ``curves.png``, ``masks.png`` and ``examples.png``.

Each ``*_figure`` function returns the matplotlib figure (to inspect in tests); each
``plot_*`` function draws it and writes it atomically as a PNG of :data:`DPI` dots per
inch, so the file's pixel size is the figure's size in inches times :data:`DPI`.

- ``curves.png``: top row, SSIM and PSNR against the sampling rate, one line per policy
  (the mean over slices, each slice's value the mean over seeds) with a band of ± one
  standard error of that mean; bottom row, the paired difference of each policy against
  a reference policy (:func:`reference_policy`) on the same slices, with its standard
  error. The greedy oracle is drawn dashed: it reads the target.
- ``masks.png``: per policy, how often each k-space column (x) was acquired at each step
  (y, step 1 at the top), counted over all slices and seeds; the initial lines are not
  steps and are not drawn.
- ``examples.png``: for a few slices, the target and each policy's reconstruction (one
  grey scale per row: 0 to the target's maximum), the error maps ``|reconstruction -
  target|`` (one scale per row) and the acquired masks, at one sampling rate.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mri_rl.evaluation.rollout import Replay
from mri_rl.files import atomic_output

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
ORACLE_LABEL = "greedy oracle (uses the target)"
ORACLE_NAMES = frozenset({"oracle", "oracle_ssim_psnr", "oracle_rollout"})  # the baselines that read the target
METRIC_LABELS = {"ssim": "SSIM", "psnr": "PSNR (dB)"}
TITLE_FONTSIZE = 10  # points
_MASK_INITIAL, _MASK_ACQUIRED, _MASK_FREE = (0.55, 0.55, 0.55), (1.0, 0.8, 0.1), (0.05, 0.05, 0.05)


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def policy_label(name: str) -> str:
    """How figures name a policy: the oracles say that they read the target."""
    if name == "oracle":
        return ORACLE_LABEL
    return f"{name} (uses the target)" if name in ORACLE_NAMES else name


def policy_colours(policies: Iterable[str]) -> dict[str, Any]:
    """One colour per policy, the same in every panel, the oracle black and the others in sorted
    order: tab10's, or for more than ten, as many evenly spaced colours of the ``turbo`` map."""
    others = [name for name in sorted(set(policies)) if name != "oracle"]
    tab10 = pyplot().get_cmap("tab10").colors
    spaced = pyplot().get_cmap("turbo")(np.linspace(0.05, 0.95, len(others)))
    cycle = tab10 if len(others) <= len(tab10) else [tuple(colour) for colour in spaced]
    colours: dict[str, Any] = {name: cycle[i] for i, name in enumerate(others)}
    colours["oracle"] = "black"
    return colours


def drawing_order(policies: Iterable[str]) -> list[str]:
    """Policies by name, the oracles last (drawn on top, their panels at the end)."""
    return sorted(set(policies), key=lambda name: (name in ORACLE_NAMES, name))


def reference_policy(policies: Iterable[str]) -> str:
    """The policy the others are compared with: ``lbcs`` if evaluated, else ``lowtohigh``, else the first by name."""
    names = sorted(set(policies))
    return next((name for name in ("lbcs", "lowtohigh") if name in names), names[0])


def save_figure(figure: Figure, path: str | Path) -> None:
    """Write ``figure`` to ``path`` atomically (:func:`~mri_rl.files.atomic_output`) and close it."""
    with atomic_output(path) as temporary:
        figure.savefig(temporary, dpi=DPI, format=Path(path).suffix.lstrip(".") or "png")
    pyplot().close(figure)


# ---------------------------------------------------------------------------- curves
def per_slice_values(rows: Iterable[dict[str, Any]], metric: str) -> dict[str, dict[int, dict[tuple, float]]]:
    """``{policy: {step: {(file, slice): metric}}}``, each value the mean over seeds."""
    values: dict[str, dict[int, dict[tuple, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for row in rows:
        values[row["policy"]][row["step"]][(row["file"], row["slice"])].append(row[metric])
    return {
        policy: {step: {image: float(np.mean(v)) for image, v in images.items()} for step, images in steps.items()}
        for policy, steps in values.items()
    }


def _mean_and_error(values: Sequence[float]) -> tuple[float, float]:
    """Mean and its standard error (0 for one value)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1) / np.sqrt(len(array))) if len(array) > 1 else 0.0


def curve_lines(
    rows: list[dict[str, Any]], metric: str, reference: str | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per policy, ``(sampling rate, mean, standard error)`` arrays (T,) over its steps.

    Without ``reference``: the metric's mean over slices (each slice's value the mean over
    seeds). With it: the mean over the slices both saw of the policy's value minus the
    reference's at the same step (the reference itself is 0).
    """
    values = per_slice_values(rows, metric)
    rates = per_slice_values(rows, "sampling_rate")
    lines = {}
    for policy, steps in values.items():
        points: list[tuple[float, float, float]] = []
        for step in sorted(steps):
            images = steps[step]
            if reference is not None:
                against = values[reference].get(step, {})
                images = {image: value - against[image] for image, value in images.items() if image in against}
            if images:
                rate = float(np.mean([rates[policy][step][image] for image in images]))
                points.append((rate, *_mean_and_error(list(images.values()))))
        table = np.array(points, dtype=np.float64).reshape(-1, 3)
        lines[policy] = (table[:, 0], table[:, 1], table[:, 2])
    return lines


def _draw_lines(axis: Axes, lines: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], colours: dict) -> None:
    for policy in drawing_order(lines):
        rate, mean, error = lines[policy]
        style = "--" if policy in ORACLE_NAMES else "-"
        axis.plot(rate, mean, style, color=colours[policy], label=policy_label(policy), linewidth=1.4)
        axis.fill_between(rate, mean - error, mean + error, color=colours[policy], alpha=0.15, linewidth=0)


def set_wrapped_title(figure: Figure, title: str) -> None:
    """Give ``figure`` the title ``title`` at :data:`TITLE_FONTSIZE`, each of its lines wrapped to the
    figure's width: a run's title names its reconstructor's path, which may be wider than the figure."""
    characters = max(20, int(figure.get_figwidth() * 72 / (0.6 * TITLE_FONTSIZE)))  # 0.6 em a character
    lines = [part for line in title.split("\n") for part in textwrap.wrap(line, characters) or [""]]
    figure.suptitle("\n".join(lines), fontsize=TITLE_FONTSIZE)


def curves_figure(rows: list[dict[str, Any]], title: str = "") -> Figure:
    """The figure of ``curves.png`` (see the module's docstring): 2 x 2 panels, one legend below.

    Args:
        rows: rollout rows of one or more policies.
        title: the figure's title.
    """
    plt = pyplot()
    policies = sorted({row["policy"] for row in rows})
    colours, reference = policy_colours(policies), reference_policy(policies)
    figure, axes = plt.subplots(2, 2, figsize=(11, 7.6), sharex=True, layout="constrained")
    for column, metric in enumerate(("ssim", "psnr")):
        _draw_lines(axes[0, column], curve_lines(rows, metric), colours)
        axes[0, column].set_ylabel(METRIC_LABELS[metric])
        _draw_lines(axes[1, column], curve_lines(rows, metric, reference), colours)
        axes[1, column].set_ylabel(f"{METRIC_LABELS[metric]} − {policy_label(reference)}")
        axes[1, column].axhline(0.0, color="grey", linewidth=0.8)
        axes[1, column].set_xlabel("sampling rate (acquired / measurable columns)")
    for axis in axes.flat:
        axis.grid(alpha=0.3)
    axes[0, 0].set_title("mean over slices ± standard error", fontsize=9)
    axes[1, 0].set_title(
        f"paired difference with {policy_label(reference)} on the same slices ± standard error", fontsize=9
    )
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), fontsize=9)
    if title:
        set_wrapped_title(figure, title)
    return figure


def plot_curves(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> None:
    """Write :func:`curves_figure` to ``path``."""
    save_figure(curves_figure(rows, title), path)


# ----------------------------------------------------------------------------- masks
def acquisition_counts(rows: Iterable[dict[str, Any]], width: int | None = None) -> dict[str, np.ndarray]:
    """Per policy, int64 (T, W): how many episodes (slices x seeds) acquired column c at step t + 1.

    Args:
        rows: rollout rows with their ``column`` (step-0 rows acquire none and are skipped).
        width: W (default: the largest column + 1).
    """
    acquired = [row for row in rows if row["step"] >= 1]
    width = width if width is not None else max((row["column"] for row in acquired), default=-1) + 1
    steps = max((row["step"] for row in acquired), default=0)
    counts: dict[str, np.ndarray] = {}
    for row in acquired:
        table = counts.setdefault(row["policy"], np.zeros((steps, width), dtype=np.int64))
        table[row["step"] - 1, row["column"]] += 1
    return counts


def masks_figure(counts: dict[str, np.ndarray], title: str = "") -> Figure:
    """The figure of ``masks.png``: one heat map per policy (:func:`drawing_order`), column (x) against
    step (y), four panels a line."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    policies = drawing_order(counts)
    columns = min(len(policies), 4) or 1
    lines = -(-len(policies) // columns) or 1
    figure, axes = plt.subplots(
        lines, columns, figsize=(3.6 * columns, 3.0 * lines), layout="constrained", squeeze=False
    )
    for axis in axes.flat[len(policies) :]:
        axis.set_axis_off()
    for axis, policy in zip(axes.flat, policies):
        table = counts[policy]
        steps, width = table.shape
        image = axis.imshow(
            table, aspect="auto", cmap="magma", interpolation="nearest", extent=(-0.5, width - 0.5, steps + 0.5, 0.5)
        )
        figure.colorbar(image, ax=axis, label="episodes", ticks=MaxNLocator(integer=True))
        axis.set_title(f"{policy_label(policy)}\n{int(table.sum(axis=1).max(initial=0))} episodes", fontsize=9)
        axis.set_xlabel("k-space column")
        axis.set_ylabel("step")
    if title:
        set_wrapped_title(figure, f"{title}\ncolumn acquired at each step (initial lines not drawn)")
    return figure


def plot_masks(rows: list[dict[str, Any]], path: str | Path, width: int | None = None, title: str = "") -> None:
    """Write :func:`masks_figure` of :func:`acquisition_counts` to ``path``."""
    save_figure(masks_figure(acquisition_counts(rows, width), title), path)


# -------------------------------------------------------------------------- examples
@dataclass
class Example:
    """One slice of ``examples.png``.

    Attributes:
        name: how to title it, e.g. ``"file1000.h5 slice 17"``.
        replays: per policy, its episode replayed to the chosen sampling rate.
        sampling_rates: per policy, the sampling rate of that replay.
    """

    name: str
    replays: dict[str, Replay]
    sampling_rates: dict[str, float]


def mask_strip(replay: Replay) -> np.ndarray:
    """float (1, W, 3): the initial columns grey, those the policy acquired amber, the others black."""
    strip = np.where(replay.acquired[:, None], _MASK_ACQUIRED, _MASK_FREE)
    strip[replay.initial] = _MASK_INITIAL
    return strip[None]


def _example_rows(figure: Figure, axes: np.ndarray, example: Example, policies: list[str]) -> None:
    """Draw one example into its three rows of axes: images, error maps, masks."""
    target = next(iter(example.replays.values())).target
    errors = {p: np.abs(example.replays[p].reconstruction - target) for p in policies}
    image_scale = {"vmin": 0.0, "vmax": float(target.max()), "cmap": "gray"}
    error_scale = {"vmin": 0.0, "vmax": max(float(e.max()) for e in errors.values()) or 1.0, "cmap": "inferno"}
    shown = axes[0, 0].imshow(target, **image_scale)
    axes[0, 0].set_title(f"target\n{example.name}", fontsize=8)
    axes[1, 0].text(0.5, 0.5, "|reconstruction\n− target|", ha="center", va="center", fontsize=8)
    axes[2, 0].text(0.5, 0.5, "mask: grey initial,\namber acquired", ha="center", va="center", fontsize=7)
    for column, policy in enumerate(policies, start=1):
        replay = example.replays[policy]
        axes[0, column].imshow(replay.reconstruction, **image_scale)
        axes[0, column].set_title(
            f"{policy_label(policy).replace(' (', chr(10) + '(')}\n{example.sampling_rates[policy]:.0%}, "
            f"SSIM {replay.metrics['ssim']:.3f}",
            fontsize=7,
        )
        error_image = axes[1, column].imshow(errors[policy], **error_scale)
        axes[2, column].imshow(mask_strip(replay), aspect="auto", interpolation="nearest")
    figure.colorbar(shown, ax=axes[0, :], fraction=0.02, pad=0.01)
    figure.colorbar(error_image, ax=axes[1, :], fraction=0.02, pad=0.01)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    for axis in axes[1:, 0]:
        axis.set_axis_off()


def examples_figure(examples: list[Example], policies: list[str], title: str = "") -> Figure:
    """The figure of ``examples.png``: per example three rows (target and reconstructions on one
    grey scale; error maps on one scale; masks), one column per policy after the target's.

    Args:
        examples: the slices, each with a replay of every policy in ``policies``.
        policies: the columns, in order.
        title: the figure's title.
    """
    plt = pyplot()
    ratios = [1.0, 1.0, 0.22] * len(examples)
    figure, axes = plt.subplots(
        len(ratios),
        1 + len(policies),
        figsize=(round(1.2 + 1.75 * (1 + len(policies)), 2), round(0.6 + 1.75 * sum(ratios), 2)),  # whole pixels
        gridspec_kw={"height_ratios": ratios},
        layout="constrained",
        squeeze=False,
    )
    for index, example in enumerate(examples):
        _example_rows(figure, axes[3 * index : 3 * index + 3], example, policies)
    if title:
        set_wrapped_title(figure, title)
    return figure


def plot_examples(examples: list[Example], policies: list[str], path: str | Path, title: str = "") -> None:
    """Write :func:`examples_figure` to ``path``."""
    save_figure(examples_figure(examples, policies, title), path)
