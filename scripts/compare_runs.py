"""The same policies in two evaluations of one split, paired per image: what a change to the run did
to each policy's SSIM and PSNR AUC (:func:`mri_rl.evaluation.report.run_difference_table`).

A share of the LBCS-to-oracle room says how a policy stands against two others on one U-Net; it
does not say whether a change that moves every policy (a U-Net trained longer, another
reconstructor seed) made the acquisitions better. Roll both runs on the same split and compare:

    python scripts/compare_runs.py runs/e15/rval/metrics.csv runs/e40/rval/metrics.csv \\
        --policies student0 student1 student2 lbcs oracle
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mri_rl.evaluation.report import read_rows_csv, run_difference_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="the first run's metrics.csv")
    parser.add_argument("second", type=Path, help="the second run's metrics.csv, rolled on the same split")
    parser.add_argument("--policies", nargs="+", required=True, help="policies rolled in both, e.g. student0 lbcs")
    args = parser.parse_args()
    for path in (args.first, args.second):
        if not path.is_file():
            parser.error(f"{path} does not exist: give an evaluation's metrics.csv")
    try:
        print(run_difference_table(read_rows_csv(args.first), read_rows_csv(args.second), args.policies), end="")
    except ValueError as error:
        parser.exit(2, f"compare_runs: {error}\n")


if __name__ == "__main__":
    main()
