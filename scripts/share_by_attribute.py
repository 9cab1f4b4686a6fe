"""Each policy's share of the LBCS-to-oracle room per kind of volume, the kinds read from a file attribute
(:mod:`mri_rl.evaluation.volume_groups`): fastMRI's ``acquisition`` (knee: ``CORPD_FBK``,
``CORPDFS_FBK``), or the ``orientation`` of ``mri-rl data anatomy`` volumes.

It reads an evaluation's ``metrics.csv`` and the folder it was rolled on, and prints per kind what
``summary.md`` prints for the whole split: the room, and each policy's share with its
95% interval (resampling the split's independent units: :mod:`mri_rl.evaluation.resampling_units`) and its
paired SSIM and PSNR AUC differences to LBCS.

    python scripts/share_by_attribute.py runs/quickstart/evaluation/metrics.csv \\
        --data runs/quickstart/data --split test --attribute orientation [--policies dqn reinforce]

``--reference NAME`` takes the shares against another policy than the evaluation's LBCS, e.g. the
``lbcs_kind`` baseline (one LBCS order per kind of volume: ``mri-rl evaluate --policies lbcs lbcs_kind
oracle ... --lbcs-by orientation``):

    python scripts/share_by_attribute.py runs/a/metrics.csv --data DATA --attribute orientation --reference lbcs_kind

``--join NAME=METRICS.csv`` (repeatable; one policy per file) adds the rows of other evaluations as
policy NAME, e.g. a reference rolled elsewhere on the folders of one kind each. A joined evaluation
rolled under another task (another reconstructor, budget or initial lines, as their
``metrics.csv.record.json`` say) is refused:

    python scripts/share_by_attribute.py runs/a/metrics.csv --data DATA --attribute orientation \\
        --join lbcs_orient=runs/axial/metrics.csv --join lbcs_orient=runs/coronal/metrics.csv \\
        --join lbcs_orient=runs/sagittal/metrics.csv --reference lbcs_orient
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from mri_rl.data.fastmri_files import resolve_split_folder
from mri_rl.evaluation.report import join_policy_rows, read_rows_csv
from mri_rl.evaluation.resampling_units import resampling_units
from mri_rl.evaluation.volume_groups import room_share_by_kind, volume_kinds
from mri_rl.provenance import read_json_record, record_differences, sidecar_path


def check_same_task(metrics: Path, joined: Path) -> None:
    """Refuse ``joined`` (a metrics.csv) when its record's task differs from ``metrics``'s; a file
    without a record is not checked."""
    records = [read_json_record(sidecar_path(path)) for path in (metrics, joined)]
    if any(record is None or "task" not in record for record in records):
        return
    differences = record_differences({"task": records[1]["task"]}, {"task": records[0]["task"]})
    if differences:
        raise ValueError(
            f"{joined} was rolled under another task than {metrics} ({'; '.join(differences)}): "
            f"its shares would compare other things"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", type=Path, help="an evaluation's metrics.csv (lbcs and oracle among its policies)")
    parser.add_argument("--data", type=Path, required=True, help="the data it was rolled on (fastMRI root or folder)")
    parser.add_argument("--split", default="test", help="the split it was rolled on (default: test)")
    parser.add_argument("--challenge", default="singlecoil")
    parser.add_argument("--attribute", default="acquisition", help="the file attribute to group by")
    parser.add_argument("--policies", nargs="+", help="the policies to show beside lbcs and oracle (default: all)")
    parser.add_argument(
        "--join", action="append", default=[], metavar="NAME=METRICS.csv",
        help="the rows of another evaluation of one policy, as policy NAME; repeatable",
    )  # fmt: skip
    parser.add_argument("--reference", default="lbcs", help="the policy the shares are taken against (default: lbcs)")
    args = parser.parse_args()
    joins: dict[str, list[Path]] = defaultdict(list)
    for text in args.join:
        name, _, path = text.partition("=")
        if not name or not path:
            parser.error(f"--join {text!r}: expected NAME=METRICS.csv")
        joins[name].append(Path(path))
    try:
        rows = read_rows_csv(args.metrics)
        if args.policies:
            rows = [row for row in rows if row["policy"] in {*args.policies, "lbcs", "oracle", args.reference}]
        for name, paths in joins.items():
            for path in paths:
                check_same_task(args.metrics, path)
            rows = join_policy_rows(rows, name, [(str(path), read_rows_csv(path)) for path in paths])
        policies = sorted({row["policy"] for row in rows})
        if args.reference not in policies:
            raise ValueError(f"--reference {args.reference!r} is not among the policies {policies}")
        folder = resolve_split_folder(args.data, args.challenge, args.split)
        kinds = volume_kinds(folder, {row["file"] for row in rows}, args.attribute, args.challenge)
        units = resampling_units(folder, {(row["file"], row["slice"]) for row in rows}, args.challenge)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    print(room_share_by_kind(rows, kinds, args.attribute, reference=args.reference, units=units))


if __name__ == "__main__":
    main()
