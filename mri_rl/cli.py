"""The ``mri-rl`` command line: ``mri-rl COMMAND [SUBCOMMAND] ...``; each has ``--help``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mri_rl.data.fastmri_files import (
    CHALLENGES,
    SPLITS,
    FastMRIDataError,
    inspect_volume,
    list_volumes,
)
from mri_rl.data.synthetic import SyntheticSpec, write_synthetic_dataset


def _add_data_commands(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="write synthetic fastMRI data or check a fastMRI folder",
                               description="Write synthetic fastMRI-format data, or check a fastMRI folder.")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="{synth,check}")

    synth = data_commands.add_parser(
        "synth",
        help="write synthetic volumes in fastMRI's format and folder layout",
        description="Write synthetic volumes into OUT_DIR/{challenge}_{train,val,test}/, readable by "
                    "fastmri.data.SliceDataset. The same arguments write byte-identical files.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    synth.add_argument("out_dir", type=Path, help="root folder to write into")
    synth.add_argument("--challenge", choices=CHALLENGES, default="singlecoil")
    synth.add_argument("--volumes", type=int, default=8, help="volumes in the train split")
    synth.add_argument("--val-volumes", type=int, default=2, help="volumes in the val split")
    synth.add_argument("--test-volumes", type=int, default=2, help="volumes in the test split")
    synth.add_argument("--slices", type=int, default=8, help="slices per volume")
    synth.add_argument("--size", type=int, default=64, help="target image size N (k-space has 2N readout rows)")
    synth.add_argument("--kspace-width", type=int, default=None,
                       help="phase-encode columns of the k-space (default: SIZE)")
    synth.add_argument("--padding", type=int, default=0,
                       help="zero-filled phase-encode columns on each side, recorded in the header")
    synth.add_argument("--coils", type=int, default=4, help="receiver coils (multicoil only)")
    synth.add_argument("--noise", type=float, default=0.01, help="k-space noise std relative to the image maximum")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    synth.set_defaults(handler=_run_data_synth)

    check = data_commands.add_parser(
        "check",
        help="validate every .h5 file of a folder (exit 1 if any is bad)",
        description="Read every .h5 file of FOLDER in full and print one line per file: slices, "
                    "k-space shape, coils, padding, target. Exit status 0 when all files are good, 1 otherwise.",
    )
    check.add_argument("folder", type=Path, help="folder of fastMRI .h5 files (one split)")
    check.add_argument("--challenge", choices=CHALLENGES, required=True)
    check.add_argument("--require-target", action="store_true",
                       help="count a file without the target dataset as bad (challenge test splits have none)")
    check.set_defaults(handler=_run_data_check)


def _run_data_synth(args: argparse.Namespace) -> int:
    spec = SyntheticSpec(challenge=args.challenge, num_slices=args.slices, size=args.size,
                         kspace_width=args.kspace_width, padding=args.padding, num_coils=args.coils,
                         noise_level=args.noise)
    volumes = {"train": args.volumes, "val": args.val_volumes, "test": args.test_volumes}
    flags = {"train": "--volumes", "val": "--val-volumes", "test": "--test-volumes"}
    for split, count in volumes.items():
        if count < 0:
            raise ValueError(f"{flags[split]} must be >= 0, got {count}")
    written = write_synthetic_dataset(args.out_dir, spec, volumes, seed=args.seed, progress=not args.no_progress)
    for split in SPLITS:
        if volumes[split]:
            print(f"{args.out_dir / f'{args.challenge}_{split}'}: {volumes[split]} volume(s)")
    print(f"wrote {len(written)} file(s): {args.slices} slices each, k-space "
          f"{tuple(spec.geometry.encoded_size[:2])}, target {args.size}x{args.size}")
    return 0


def _run_data_check(args: argparse.Namespace) -> int:
    bad = 0
    files = list_volumes(args.folder)
    for path in files:
        try:
            info = inspect_volume(path, args.challenge, require_target=args.require_target, check_values=True)
        except FastMRIDataError as error:
            bad += 1
            print(f"BAD {path.name}: {error.problem}" + ("" if error.slice_index is None
                                                          else f" (slice {error.slice_index})"))
            continue
        geometry = info.geometry
        print(f"OK  {path.name}: slices={info.num_slices} kspace={info.slice_shape} coils={info.num_coils} "
              f"padding=[{geometry.padding_left},{geometry.padding_right}) "
              f"target={'yes' if info.has_target else 'no'}")
    print(f"{len(files)} file(s), {bad} bad")
    return 1 if bad else 0


def build_parser() -> argparse.ArgumentParser:
    """The ``mri-rl`` argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="mri-rl",
        description="Active MRI acquisition with reinforcement learning on fastMRI-format data.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mri-rl`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (FastMRIDataError, FileNotFoundError, NotADirectoryError, ValueError) as error:
        print(f"mri-rl: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
