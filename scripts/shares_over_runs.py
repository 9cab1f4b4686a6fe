"""Shares of the LBCS-to-oracle room over several runs of one configuration: the reconstructor axis.

A learned policy's share ``(policy − reference) / (oracle − reference)`` (paired SSIM AUC,
:func:`mri_rl.evaluation.report.room_share`) depends on the U-Net it was trained and rolled with as
much as on its training seed: U-Nets of one command differ with the seed and the torch thread
count. This prints, from the evaluations of several runs on the *same* images (one U-Net each, e.g.
``mri-rl quickstart --set reconstructor.seed=K`` rolled with ``mri-rl evaluate`` on one split):

- per run, the room in SSIM and PSNR AUC and, per policy, its share; its paired PSNR AUC difference
  to the reference (dB); the images it wins in SSIM AUC, and the mean ± std of the run's shares;
- per policy, the mean ± std of its share over the runs (std with n − 1);
- with several references (``--reference lbcs lbcs_kind lowtohigh``), each run's room from the
  strongest of them on that run's images: which fixed order is strongest changes with the U-Net,
  and a weak reference flatters every share. Picking it on the same images can only lower the
  shares of policies below the oracle; ``--reference val`` takes instead each run's reference chosen
  on val (``mri-rl evaluate --reference-from``, recorded in the summary.json beside its metrics.csv);
- all shares of the runs pooled (runs × policies): with one policy per training seed (give single
  students, not their ensembles), the spread over U-Nets and training seeds together.

    python scripts/shares_over_runs.py unet0=runs/a/rval/metrics.csv unet1=runs/b/rval/metrics.csv \\
        unet2=runs/c/rval/metrics.csv --policies student0 student1 student2 [--reference lbcs [lowtohigh ...] | val]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mri_rl.evaluation.report import AUC_LABELS, check_comparable_runs, paired_differences, read_rows_csv, room_share


def labelled_path(text: str) -> tuple[str, Path]:
    """``LABEL=PATH`` -> ``(LABEL, PATH)``."""
    label, equals, path = text.partition("=")
    if not (equals and label and path):
        raise argparse.ArgumentTypeError(f"expected LABEL=METRICS.csv, got {text!r}")
    return label, Path(path)


def spread(values: list[float]) -> str:
    """``mean ± std`` of shares (std with n − 1; the mean alone for one value)."""
    array = np.array(values)
    if len(array) < 2:
        return f"{array.mean():+.1%}"
    return f"{array.mean():+.1%} ± {array.std(ddof=1):.1%}"


def strongest(ssim: dict[tuple[str, str], dict[str, float]], references: list[str], oracle: str) -> str:
    """Of ``references``, the one nearest the oracle in paired SSIM AUC: the smallest room."""
    return min(references, key=lambda reference: ssim[(oracle, reference)]["mean"])


def chosen_on_val(metrics: Path) -> str:
    """The reference an evaluation chose on val (``settings.reference`` of the summary.json beside
    ``metrics``). Raises ``ValueError`` when there is none."""
    summary = metrics.with_name("summary.json")
    try:
        return json.loads(summary.read_text())["record"]["settings"]["reference"]["policy"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(
            f"{summary} records no reference chosen on val: evaluate that run with --reference-from VAL_EVALUATION"
        ) from None


def shares_table(
    runs: dict[str, list[dict]], policies: list[str], references: dict[str, list[str]], oracle: str, named: bool
) -> str:
    """Markdown: one row per run, then the spread of each policy's share over the runs and of all
    shares pooled. Each run's room starts at the strongest of its ``references`` on that run
    (:func:`strongest`), named in its row when ``named``. Raises ``ValueError`` when a run lacks a
    policy or a reference, or the runs hold other images or sampling rates (another task)."""
    check_comparable_runs(runs)
    lines = [
        f"| run | room: SSIM AUC / {AUC_LABELS['psnr_auc']} | {' | '.join(policies)} | mean ± std |",
        "|---" * (len(policies) + 3) + "|",
    ]
    per_policy: dict[str, list[float]] = {policy: [] for policy in policies}
    for label, rows in runs.items():
        ssim, psnr = paired_differences(rows, "ssim_auc"), paired_differences(rows, "psnr_auc")
        for name in (*policies, oracle):
            for reference in references[label]:
                if name != reference and (name, reference) not in ssim:
                    raise ValueError(f"run {label!r} did not roll both {name!r} and {reference!r}")
        reference = strongest(ssim, references[label], oracle)
        cells = []
        for policy in policies:
            share = room_share(ssim, policy, reference, oracle)
            per_policy[policy].append(share)
            if policy == reference:
                cells.append("+0.0% (the reference)")
                continue
            pair = ssim[(policy, reference)]
            cells.append(f"{share:+.1%}; {psnr[(policy, reference)]['mean']:+.3f}; {pair['wins']}/{pair['n']}")
        room = f"{ssim[(oracle, reference)]['mean']:+.4f} / {psnr[(oracle, reference)]['mean']:+.3f}"
        name = f"{label} ({reference})" if named else label
        lines.append(f"| {name} | {room} | {' | '.join(cells)} | {spread([per_policy[p][-1] for p in policies])} |")
    over_runs = " | ".join(spread(per_policy[policy]) for policy in policies)
    pooled = [share for shares in per_policy.values() for share in shares]
    lines.append(f"| over the {len(runs)} runs | | {over_runs} | {spread(pooled)} (all {len(pooled)}) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=labelled_path, nargs="+", metavar="LABEL=METRICS.csv")
    parser.add_argument("--policies", nargs="+", required=True, help="e.g. student0 student1 student2")
    parser.add_argument(
        "--reference",
        nargs="+",
        default=["lbcs"],
        help="the room's lower end (default: lbcs); several: per run the strongest of them (nearest the oracle); "
        "val: each run's reference chosen on val, recorded beside its metrics.csv",
    )
    parser.add_argument("--oracle", default="oracle", help="the room's upper end (default: oracle)")
    args = parser.parse_args()
    labels = [label for label, _ in args.runs]
    if len(set(labels)) != len(labels):
        parser.error(f"run labels must differ, got {labels}")
    for label, path in args.runs:
        if not path.is_file():
            parser.error(f"{label}: {path} does not exist: give an evaluation's metrics.csv")
    try:
        runs = {label: read_rows_csv(path) for label, path in args.runs}
        chosen = args.reference == ["val"]
        references = {label: [chosen_on_val(path)] if chosen else args.reference for label, path in args.runs}
        named = chosen or len(args.reference) > 1
        print(shares_table(runs, args.policies, references, args.oracle, named), end="")
    except ValueError as error:
        parser.exit(2, f"shares_over_runs: {error}\n")


if __name__ == "__main__":
    main()
