"""``mri-rl data synth|check|import|anatomy``: write synthetic, imported or MNI152 fastMRI-format
data, or check a folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mri_rl.cli.arguments import (
    COUNT,
    FINITE,
    NON_NEGATIVE_INT,
    SEED,
    add_output_argument,
    number_type,
)
from mri_rl.task import CHALLENGES, DEFAULT_TASK, SPLITS


def add_data_commands(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser(
        "data",
        help="write synthetic, imported or MNI152 fastMRI-format data, or check a fastMRI folder",
        description="Write synthetic, imported or MNI152 fastMRI-format data, or check a fastMRI folder.",
    )
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="{synth,import,anatomy,check}")
    synth = data_commands.add_parser(
        "synth",
        help="write synthetic volumes in fastMRI's format and folder layout",
        description="Write synthetic volumes into OUT_DIR/{challenge}_{train,val,test}/, readable by "
        "fastmri.data.SliceDataset. The same arguments write byte-identical files.",
    )
    add_output_argument(synth, "out_dir", help="root folder to write into")
    _add_volume_arguments(synth)
    _add_acquisition_arguments(synth)
    synth.add_argument(
        "--striation",
        type=FINITE,
        default=None,
        help="relative amplitude of the oriented striation whose k-space band varies per volume "
        "(0: none; default: SyntheticSpec's)",
    )
    synth.set_defaults(handler=_run_data_synth)

    check = data_commands.add_parser(
        "check",
        help="validate every .h5 file of a folder as the readers do, every slice (exit 1 if any is bad)",
        description="Run the readers' own validation on every .h5 file of FOLDER, reading every slice, and "
        "print one line per good file (slices, k-space shape, coils, padding, target) and one BAD line per "
        'bad file or bad slice (a reader with on_bad_file="skip" leaves out exactly these), so a folder that '
        "passes gives no data error later. Exit status 0 when all files are good, 1 otherwise.",
    )
    check.add_argument("folder", type=Path, help="folder of fastMRI .h5 files (one split)")
    check.add_argument("--challenge", choices=CHALLENGES, required=True)
    check.add_argument(
        "--require-target",
        action="store_true",
        help="count a file without the target dataset as bad (challenge test splits have none)",
    )
    check.set_defaults(handler=_run_data_check)
    _add_simulated_data_commands(data_commands)


def _run_data_synth(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from mri_rl.data.synthetic import SyntheticSpec, write_synthetic_dataset

    optional = {} if args.striation is None else {"striation": args.striation}
    spec = SyntheticSpec(**asdict(_simulation_spec(args, args.slices)), **optional)
    volumes = _volumes(args)
    written = write_synthetic_dataset(args.out_dir, spec, volumes, seed=args.seed, progress=not args.no_progress)
    _print_written(args, volumes, len(written), spec)
    return 0


def _run_data_check(args: argparse.Namespace) -> int:
    """Run the readers' validation (:func:`inspect_volume`) in its strictest mode, every slice read,
    on each file: one OK line per good file, one BAD line per bad file or bad slice."""
    from mri_rl.data.fastmri_files import FastMRIDataError, inspect_volume, list_volumes

    bad = 0
    files = list_volumes(args.folder)
    for path in files:
        try:
            info = inspect_volume(path, args.challenge, args.require_target, check_values=True, keep_bad_slices=True)
        except FastMRIDataError as error:
            problems = [error]
        else:
            problems = list(info.bad_slices)
        for problem in problems:
            where = "" if problem.slice_index is None else f" (slice {problem.slice_index})"
            print(f"BAD {path.name}: {problem.problem}{where}")
        if problems:
            bad += 1
            continue
        geometry = info.geometry
        print(
            f"OK  {path.name}: slices={info.num_slices} kspace={info.slice_shape} coils={info.num_coils} "
            f"padding=[{geometry.padding_left},{geometry.padding_right}) "
            f"target={'yes' if info.has_target else 'no'}"
        )
    print(f"{len(files)} file(s), {bad} bad")
    return 1 if bad else 0


def _add_simulated_data_commands(data_commands: argparse._SubParsersAction) -> None:
    """``data import`` and ``data anatomy``: magnitude images in simulated k-space."""
    _add_data_import_command(data_commands)
    _add_data_anatomy_command(data_commands)


def _add_acquisition_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulated acquisition's flags of ``data import`` and ``data anatomy`` (SimulationSpec's fields)."""
    group = parser.add_argument_group("simulated acquisition (mri_rl.data.simulated_kspace.SimulationSpec)")
    group.add_argument("--challenge", choices=CHALLENGES, default=DEFAULT_TASK.challenge, help="(default: %(default)s)")
    group.add_argument(
        "--size",
        type=COUNT,
        default=64,
        help="target image size N; k-space has 2N readout rows (default: %(default)s)",
    )
    group.add_argument(
        "--kspace-width", type=COUNT, default=None, help="phase-encode columns of the k-space (default: SIZE)"
    )
    group.add_argument(
        "--padding",
        type=NON_NEGATIVE_INT,
        default=0,
        help="zero-filled phase-encode columns on each side, recorded in the header (default: %(default)s)",
    )
    group.add_argument("--coils", type=COUNT, default=4, help="receiver coils, multicoil only (default: %(default)s)")
    group.add_argument(
        "--noise",
        type=FINITE,
        default=0.01,
        help="k-space noise std relative to the image maximum (default: %(default)s)",
    )
    parser.add_argument("--seed", type=SEED, default=0, help="(default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _simulation_spec(args: argparse.Namespace, num_slices: int | None) -> Any:
    from mri_rl.data.simulated_kspace import SimulationSpec

    return SimulationSpec(
        challenge=args.challenge,
        num_slices=num_slices,
        size=args.size,
        kspace_width=args.kspace_width,
        padding=args.padding,
        num_coils=args.coils,
        noise_level=args.noise,
    )


#: ``data import --orientation`` choices: mri_rl.data.image_import.ORIENTATIONS (not imported here: --help stays light).
ORIENTATION_CHOICES = ("axial", "coronal", "sagittal")


def _add_data_import_command(data_commands: argparse._SubParsersAction) -> None:
    """``mri-rl data import SOURCES... OUT_DIR``."""
    command = data_commands.add_parser(
        "import",
        help="import magnitude images (NIfTI, DICOM series, image stacks) as fastMRI volumes of simulated k-space",
        description="Import magnitude images as fastMRI-format volumes in OUT_DIR/{challenge}_{train,val,test}/ "
        "with simulated complex k-space (smooth random phase, coil maps, noise, zero-filled edges), readable by "
        "fastmri.data.SliceDataset. A SOURCE is a .nii/.nii.gz file, a folder of NIfTI files (each a source), a "
        "folder of one DICOM series (.dcm) or a folder of the PNG/TIFF/JPEG slices of one volume. Subjects never "
        "share a split; a single subject is split by slabs along the slicing axis with guard gaps. "
        "OUT_DIR/{challenge}_import_settings.json records the settings and where every file came from. The same "
        "arguments write byte-identical files.",
    )
    command.add_argument(
        "sources",
        nargs="+",
        type=Path,
        metavar="SOURCE",
        help="a .nii/.nii.gz file, or a folder of NIfTI files, of one DICOM series or of 2-D image slices",
    )
    add_output_argument(command, "out_dir", metavar="OUT_DIR", help="root folder to write into")
    _add_acquisition_arguments(command)
    group = command.add_argument_group("slices and splits (mri_rl.data.image_import.ImportSettings)")
    group.add_argument(
        "--orientation",
        dest="orientations",
        action="append",
        choices=ORIENTATION_CHOICES,
        help="slice orientation, from the image's affine (RAS); repeatable, one file per orientation (default: axial)",
    )
    group.add_argument(
        "--min-foreground",
        type=FINITE,
        default=0.05,
        help="skip slices with fewer than this fraction of voxels above 5%% of the volume maximum "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--slices-per-volume", type=COUNT, default=None, help="at most K slices per file, evenly spaced (default: all)"
    )
    group.add_argument(
        "--split",
        default="train=0.8,val=0.1,test=0.1",
        help="fractions of subjects (of the slicing axis, for one subject) per split (default: %(default)s)",
    )
    group.add_argument(
        "--subject-pattern",
        default=None,
        help="regex on each source's path whose first group (or match) is the subject id "
        "(default: the DICOM PatientID, else one subject per source)",
    )
    group.add_argument(
        "--guard-slices",
        type=NON_NEGATIVE_INT,
        default=4,
        help="slices left out between the slabs of one subject (default: %(default)s)",
    )
    command.set_defaults(handler=_run_data_import)


def _run_data_import(args: argparse.Namespace) -> int:
    from mri_rl.data.image_import import ImportSettings, import_images, parse_split

    spec = _simulation_spec(args, args.slices_per_volume)
    settings = ImportSettings(
        orientations=tuple(args.orientations or ("axial",)),
        min_foreground=args.min_foreground,
        split=parse_split(args.split),
        subject_pattern=args.subject_pattern,
        guard_slices=args.guard_slices,
        seed=args.seed,
    )
    try:
        written = import_images(args.sources, args.out_dir, spec, settings, progress=not args.no_progress)
    except ImportError as error:  # a missing optional extra: one line, like the other expected failures
        raise ValueError(str(error)) from None
    for split in SPLITS:
        count = sum(path.parent.name == f"{args.challenge}_{split}" for path in written)
        if count:
            print(f"{args.out_dir / f'{args.challenge}_{split}'}: {count} volume(s)")
    shape = tuple(spec.geometry.encoded_size[:2])
    print(f"wrote {len(written)} file(s): k-space {shape}, target {args.size}x{args.size}")
    print(f"settings and sources: {args.out_dir / f'{args.challenge}_import_settings.json'}")
    return 0


def _add_data_anatomy_command(data_commands: argparse._SubParsersAction) -> None:
    """``mri-rl data anatomy OUT_DIR``."""
    command = data_commands.add_parser(
        "anatomy",
        help="write volumes of the MNI152 brain template (nilearn, no download) as simulated k-space",
        description="Write volumes of the MNI152 T1 template that nilearn ships (pip install mri_rl[anatomy]) into "
        "OUT_DIR/{challenge}_{train,val,test}/: each the template under a small random affine, sliced axially, "
        "coronally or sagittally in turn, from its split's share of the slicing axis (held-out slices of the same "
        "brain, not a new subject), in simulated complex k-space. The same arguments write byte-identical files.",
    )
    add_output_argument(command, "out_dir", help="root folder to write into")
    command.add_argument(
        "--layout",
        choices=("slabs", "interleaved"),
        default="slabs",
        help="how the splits share each slicing axis: one slab per split (train, val, test from one end to the "
        "other) or interleaved short blocks, so that every split spans the whole brain (default: slabs)",
    )
    command.add_argument(
        "--slice-offset",
        choices=("centre", "random"),
        default="centre",
        help="where each volume's evenly spaced slices lie in their intervals: the centre (every volume of a split "
        "reads the same template slices, up to its affine) or a random offset per volume (the volumes read "
        "different slices and together cover the split's; default: centre)",
    )
    command.add_argument(
        "--deform-mm",
        type=number_type(integer=False, minimum=0),
        default=0.0,
        metavar="MM",
        help="warp each slice by its own smooth random displacement field whose largest displacement is MM mm, "
        "after its affine and slice offset: the same template slices as other brains might show them, an "
        "augmentation for training data (default: 0, no warp)",
    )
    command.add_argument(
        "--template",
        type=Path,
        default=None,
        metavar="NIFTI",
        help="another brain in MNI space to slice instead of the MNI152 template, e.g. Debian's mricron-data "
        "Colin27, /usr/share/mricron/templates/ch2bet.nii.gz: a second subject (default: the MNI152 template)",
    )
    _add_volume_arguments(command)
    _add_acquisition_arguments(command)
    command.set_defaults(handler=_run_data_anatomy)


def _run_data_anatomy(args: argparse.Namespace) -> int:
    from mri_rl.data.anatomy import write_anatomy_dataset

    spec = _simulation_spec(args, args.slices)
    volumes = _volumes(args)
    try:
        written = write_anatomy_dataset(
            args.out_dir,
            spec,
            volumes,
            seed=args.seed,
            progress=not args.no_progress,
            layout=args.layout,
            slice_offset=args.slice_offset,
            deform_mm=args.deform_mm,
            template=None if args.template is None else str(args.template),
        )
    except ImportError as error:  # nilearn missing: one line, like the other expected failures
        raise ValueError(str(error)) from None
    _print_written(args, volumes, len(written), spec)
    return 0


def _add_volume_arguments(parser: argparse.ArgumentParser) -> None:
    """Volumes per split and slices per volume, of ``data synth`` and ``data anatomy``."""
    for flag, split, default in (("--volumes", "train", 8), ("--val-volumes", "val", 2), ("--test-volumes", "test", 2)):
        parser.add_argument(
            flag, type=NON_NEGATIVE_INT, default=default, help=f"volumes in the {split} split (default: %(default)s)"
        )
    parser.add_argument("--slices", type=COUNT, default=8, help="slices per volume (default: %(default)s)")


def _volumes(args: argparse.Namespace) -> dict[str, int]:
    return {"train": args.volumes, "val": args.val_volumes, "test": args.test_volumes}


def _print_written(args: argparse.Namespace, volumes: dict[str, int], written: int, spec: Any) -> None:
    """What ``data synth`` or ``data anatomy`` wrote, one line per split and a summary."""
    for split in SPLITS:
        if volumes[split]:
            print(f"{args.out_dir / f'{args.challenge}_{split}'}: {volumes[split]} volume(s)")
    print(
        f"wrote {written} file(s): {args.slices} slices each, k-space "
        f"{tuple(spec.geometry.encoded_size[:2])}, target {args.size}x{args.size}"
    )
