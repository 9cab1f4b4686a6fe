"""Whether one policy's share of the LBCS-to-oracle room is above another's by more than the volumes'
spread: both shares, their difference and its paired 95% interval with whole volumes resampled
(:func:`mri_rl.evaluation.report.room_share_interval` with ``other``), and the paired SSIM and PSNR AUC
differences, from an evaluation's ``metrics.csv``. With ``--data`` (the folder it was rolled on) the
interval resamples the split's independent units instead, as summary.md does: template slices for
``mri-rl data anatomy`` volumes (:mod:`mri_rl.evaluation.resampling_units`). With ``--steps K`` every
episode is cut after K acquisitions first (:func:`mri_rl.evaluation.report.rows_up_to_step`): the shares
at budget K, for where along the episode a policy gains its share.

A choice between two settings read on a small val split (a few volumes) is only as sure as this
interval: a lead of a few points whose interval spans zero is not a lead.

    python scripts/share_difference.py runs/a/metrics.csv f012p:e012p f0:s0 [--reference lbcs] [--oracle oracle] \\
        [--data DATA --split val] [--steps K]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mri_rl.data.fastmri_files import resolve_split_folder
from mri_rl.evaluation.report import VOLUMES, read_rows_csv, rows_up_to_step, share_difference_table
from mri_rl.evaluation.resampling_units import resampling_units


def comparison(text: str) -> tuple[str, str]:
    """``POLICY:OTHER`` -> ``(POLICY, OTHER)``."""
    policy, colon, other = text.partition(":")
    if not (colon and policy and other):
        raise argparse.ArgumentTypeError(f"expected POLICY:OTHER, got {text!r}")
    return policy, other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", type=Path, help="an evaluation's metrics.csv")
    parser.add_argument("comparisons", type=comparison, nargs="+", metavar="POLICY:OTHER", help="policy − other")
    parser.add_argument("--reference", default="lbcs", help="the room's lower end (default: lbcs)")
    parser.add_argument("--oracle", default="oracle", help="the room's upper end (default: oracle)")
    parser.add_argument("--data", type=Path, help="the data it was rolled on: resample its independent units")
    parser.add_argument("--split", default="val", help="with --data: the split it was rolled on (default: val)")
    parser.add_argument("--challenge", default="singlecoil")
    parser.add_argument("--steps", type=int, help="cut every episode after this many acquisitions (default: whole)")
    args = parser.parse_args()
    if not args.metrics.is_file():
        parser.error(f"{args.metrics} does not exist: give an evaluation's metrics.csv")
    try:
        rows = read_rows_csv(args.metrics)
        units = VOLUMES
        if args.data is not None:
            folder = resolve_split_folder(args.data, args.challenge, args.split)
            units = resampling_units(folder, {(row["file"], row["slice"]) for row in rows}, args.challenge)
    except (OSError, ValueError) as error:  # names the file (and the line)
        parser.error(str(error))
    try:
        if args.steps is not None:
            rows = rows_up_to_step(rows, args.steps)
        print(share_difference_table(rows, args.comparisons, args.reference, args.oracle, units), end="")
    except (KeyError, ValueError) as error:
        parser.error(f"{args.metrics}: {error.args[0] if error.args else error}")


if __name__ == "__main__":
    main()
