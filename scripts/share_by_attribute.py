"""Each policy's share of the LBCS-to-oracle room per kind of volume, the kinds read from a file attribute
(:mod:`mri_rl.evaluation.volume_groups`): fastMRI's ``acquisition`` (knee: ``CORPD_FBK``,
``CORPDFS_FBK``), or the ``orientation`` of ``mri-rl data anatomy`` volumes.

It reads an evaluation's ``metrics.csv`` and the folder it was rolled on, and prints per kind what
``summary.md`` prints for the whole split: the room, and each policy's share with its
volume-resampled 95% interval and its paired SSIM and PSNR AUC differences to LBCS.

    python scripts/share_by_attribute.py runs/quickstart/evaluation/metrics.csv \\
        --data runs/quickstart/data --split test --attribute orientation [--policies dqn reinforce]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mri_rl.data.fastmri_files import resolve_split_folder
from mri_rl.evaluation.report import read_rows_csv
from mri_rl.evaluation.volume_groups import room_share_by_kind, volume_kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", type=Path, help="an evaluation's metrics.csv (lbcs and oracle among its policies)")
    parser.add_argument("--data", type=Path, required=True, help="the data it was rolled on (fastMRI root or folder)")
    parser.add_argument("--split", default="test", help="the split it was rolled on (default: test)")
    parser.add_argument("--challenge", default="singlecoil")
    parser.add_argument("--attribute", default="acquisition", help="the file attribute to group by")
    parser.add_argument("--policies", nargs="+", help="the policies to show beside lbcs and oracle (default: all)")
    args = parser.parse_args()
    try:
        rows = read_rows_csv(args.metrics)
        if args.policies:
            rows = [row for row in rows if row["policy"] in {*args.policies, "lbcs", "oracle"}]
        folder = resolve_split_folder(args.data, args.challenge, args.split)
        kinds = volume_kinds(folder, {row["file"] for row in rows}, args.attribute, args.challenge)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    print(room_share_by_kind(rows, kinds, args.attribute))


if __name__ == "__main__":
    main()
