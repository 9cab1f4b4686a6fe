"""The ``mri-rl`` command line: ``mri-rl COMMAND [SUBCOMMAND] ...``; each has ``--help``.

Only the argument parser is built at import: each command imports its modules (torch,
Lightning, fastmri) when it runs, so ``mri-rl --help`` answers at once.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mri_rl import __version__
from mri_rl.checks import MAX_SEED, expected, is_valid
from mri_rl.task import CHALLENGES, DEFAULT_TASK, METRIC_NAMES, PRECISIONS, SPLITS, AcquisitionTask

#: Task fields each command exposes as flags (``--initial-lines`` sets ``initial_lines``). The
#: task's ``precision`` is ``--precision`` (dest ``task_precision``), added where named: ``train-recon``'s
#: ``--precision`` is Lightning's, not the task's.
TASK_FLAGS = {"challenge", "budget", "initial_lines", "reward_metric", "reconstructor"}
#: ``--precision`` of the agents' env (evaluate, train, quickstart).
PRECISION_HELP = (
    "arithmetic of the reconstructor's forward in the environment: 32 (float32), bf16 (bfloat16 autocast; "
    "CPU and CUDA) or 16 (float16 autocast; CUDA and MPS only). Metrics and rewards stay float32/64. Part of "
    "the task: runs and results record it, and reusing one made at another precision is refused"
)


def _budget(text: str) -> int | None:
    """``--budget``: a positive integer, or ``all`` for "until every column is acquired"."""
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {value}")
    return value


def _number(integer: bool, minimum: float | None = None, maximum: float | None = None) -> Callable[[str], float]:
    """An argparse ``type=``: an integer (or, with ``integer=False``, a finite number: no nan or
    inf) within [``minimum``, ``maximum``]; argparse's error names the flag, this names the text given."""

    def parse(text: str) -> float:
        try:
            value: float | None = int(text) if integer else float(text)
        except ValueError:
            value = None
        if value is None or not is_valid(value, integer, minimum, maximum):
            raise argparse.ArgumentTypeError(f"expected {expected(integer, minimum, maximum)}, got {text!r}")
        return value

    return parse


def _json_object(text: str) -> dict[str, Any]:
    """``--env-kwargs``: a JSON object (keyword arguments)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object of keyword arguments, got {text!r}")
    return value


#: ``type=`` of the count flags (--batch-size, --slices...), of seeds and --padding, and of the float flags.
#: The synthetic spec checks its own ranges (--size >= 8, --padding below half the width, --noise >= 0), and
#: _run_data_synth the --*-volumes counts (>= 0; tests pin its one-line error).
_COUNT = _number(integer=True, minimum=1)
_NON_NEGATIVE_INT = _number(integer=True, minimum=0)
_SEED = _number(integer=True, minimum=0, maximum=MAX_SEED)
_FINITE = _number(integer=False)


def _add_task_arguments(parser: argparse.ArgumentParser, names: set[str], required_challenge: bool = False) -> None:
    """Flags for the task fields ``names``; unset flags keep :data:`~mri_rl.task.DEFAULT_TASK`'s values."""
    group = parser.add_argument_group("acquisition task (defaults: mri_rl.task.AcquisitionTask)")
    default = DEFAULT_TASK
    if "challenge" in names:
        group.add_argument(
            "--challenge",
            choices=CHALLENGES,
            required=required_challenge,
            help=f"fastMRI challenge (default: {default.challenge})",
        )
    if "reconstructor" in names:
        group.add_argument(
            "--reconstructor", help=f"zero_filled or an exported checkpoint (default: {default.reconstructor})"
        )
    if "budget" in names:
        group.add_argument(
            "--budget",
            type=_budget,
            default=argparse.SUPPRESS,
            help=f"columns acquired per episode, or 'all' (default: {default.budget})",
        )
    if "initial_lines" in names:
        group.add_argument(
            "--initial-lines",
            type=_COUNT,
            help=f"low-frequency columns acquired before the first action (default: {default.initial_lines})",
        )
    if "reward_metric" in names:
        group.add_argument(
            "--reward-metric",
            choices=METRIC_NAMES,
            help=f"metric whose improvement is the reward, and that the oracle and LBCS greedily "
            f"improve (default: {default.reward_metric})",
        )
    if "precision" in names:
        _add_precision_argument(group, f"(default: {default.precision})")


def _add_precision_argument(parser: Any, default: str) -> None:
    """``--precision`` (dest ``task_precision``): the task's precision, :data:`PRECISION_HELP`."""
    parser.add_argument("--precision", dest="task_precision", choices=PRECISIONS, help=f"{PRECISION_HELP} {default}")


def _add_device_argument(
    parser: argparse.ArgumentParser, what: str, note: str = "", default: str | None = "cpu"
) -> None:
    """``--device``: a torch device name, checked by :func:`_device` when the command runs."""
    shown = "cpu" if default else "the config's device, else cpu"
    parser.add_argument(
        "--device",
        default=default,
        help=f"torch device (cpu, cuda, cuda:N or mps) of {what} (default: {shown}); one this machine lacks "
        f"is refused{note}",
    )


def _add_workers_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--workers``, ``--address``, ``--gpus-per-worker``: where :func:`_workers` runs tasks (Ray)."""
    parser.add_argument(
        "--workers",
        type=_COUNT,
        default=1,
        help=f"processes at once, each with one CPU and one torch thread: {what} (default: 1, this process; "
        "more needs Ray: pip install -e '.[distributed]')",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="a running Ray cluster (ray://HOST:10001, HOST:6379 or auto) instead of a local one",
    )
    parser.add_argument(
        "--gpus-per-worker",
        type=_number(integer=False, minimum=0),
        default=0.0,
        help="share of a GPU each worker holds, e.g. 0.5 (default: 0)",
    )


def _workers(args: argparse.Namespace) -> Any:
    from mri_rl.distributed import Workers

    return Workers(count=args.workers, address=args.address, gpus_per_worker=args.gpus_per_worker)


def _device(name: str) -> str:
    """``name`` when this machine has that device; ValueError (one line, exit status 2) otherwise."""
    from mri_rl.checks import resolve_device

    resolve_device(name)
    return name


def _task(args: argparse.Namespace) -> AcquisitionTask:
    """The task from the command's task flags over the defaults."""
    changes = {name: getattr(args, name) for name in TASK_FLAGS if getattr(args, name, None) is not None}
    if hasattr(args, "budget"):  # None is a value here: 'all'
        changes["budget"] = args.budget
    if getattr(args, "task_precision", None) is not None:
        changes["precision"] = args.task_precision
    return DEFAULT_TASK.with_changes(**changes)


def _add_set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (dotted keys for nested ones, e.g. task.budget=8 or "
        "hyperparameters.learning_rate=3e-4); repeatable",
    )


# ----------------------------------------------------------------------------- data
def _add_data_commands(commands: argparse._SubParsersAction) -> None:
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
    synth.add_argument("out_dir", type=Path, help="root folder to write into")
    _add_volume_arguments(synth)
    _add_acquisition_arguments(synth)
    synth.add_argument(
        "--striation",
        type=_FINITE,
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
        type=_COUNT,
        default=64,
        help="target image size N; k-space has 2N readout rows (default: %(default)s)",
    )
    group.add_argument(
        "--kspace-width", type=_COUNT, default=None, help="phase-encode columns of the k-space (default: SIZE)"
    )
    group.add_argument(
        "--padding",
        type=_NON_NEGATIVE_INT,
        default=0,
        help="zero-filled phase-encode columns on each side, recorded in the header (default: %(default)s)",
    )
    group.add_argument("--coils", type=_COUNT, default=4, help="receiver coils, multicoil only (default: %(default)s)")
    group.add_argument(
        "--noise",
        type=_FINITE,
        default=0.01,
        help="k-space noise std relative to the image maximum (default: %(default)s)",
    )
    parser.add_argument("--seed", type=_SEED, default=0, help="(default: %(default)s)")
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
_ORIENTATIONS = ("axial", "coronal", "sagittal")


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
    command.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="root folder to write into")
    _add_acquisition_arguments(command)
    group = command.add_argument_group("slices and splits (mri_rl.data.image_import.ImportSettings)")
    group.add_argument(
        "--orientation",
        dest="orientations",
        action="append",
        choices=_ORIENTATIONS,
        help="slice orientation, from the image's affine (RAS); repeatable, one file per orientation (default: axial)",
    )
    group.add_argument(
        "--min-foreground",
        type=_FINITE,
        default=0.05,
        help="skip slices with fewer than this fraction of voxels above 5%% of the volume maximum "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--slices-per-volume", type=_COUNT, default=None, help="at most K slices per file, evenly spaced (default: all)"
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
        type=_NON_NEGATIVE_INT,
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
    command.add_argument("out_dir", type=Path, help="root folder to write into")
    command.add_argument(
        "--layout",
        choices=("slabs", "interleaved"),
        default="slabs",
        help="how the splits share each slicing axis: one slab per split (train, val, test from one end to the "
        "other) or interleaved short blocks, so that every split spans the whole brain (default: slabs)",
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
            args.out_dir, spec, volumes, seed=args.seed, progress=not args.no_progress, layout=args.layout
        )
    except ImportError as error:  # nilearn missing: one line, like the other expected failures
        raise ValueError(str(error)) from None
    _print_written(args, volumes, len(written), spec)
    return 0


def _add_volume_arguments(parser: argparse.ArgumentParser) -> None:
    """Volumes per split and slices per volume, of ``data synth`` and ``data anatomy``."""
    for flag, split, default in (("--volumes", "train", 8), ("--val-volumes", "val", 2), ("--test-volumes", "test", 2)):
        parser.add_argument(
            flag, type=_NON_NEGATIVE_INT, default=default, help=f"volumes in the {split} split (default: %(default)s)"
        )
    parser.add_argument("--slices", type=_COUNT, default=8, help="slices per volume (default: %(default)s)")


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


# ---------------------------------------------------------------------------- train
def _add_train_command(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train a DQN or REINFORCE agent on any Gymnasium env (the MRI env included)",
        description="Train an agent. Defaults come from the packaged config {agent}_{env} when there is one "
        "(e.g. dqn_cartpole for CartPole-v1); command-line values override them. The run folder gets "
        "checkpoint.pt (atomic), model.pt, progress.csv, tensorboard/ and eval.json; the checkpoints "
        "record the task, data and settings they were made with.",
    )
    train.add_argument("--agent", required=True, help="dqn, reinforce, greedy_reinforce or dagger")
    train.add_argument(
        "--env", dest="env_id", required=True, help="Gymnasium id, e.g. CartPole-v1 or mri_rl/ActiveAcquisition-v0"
    )
    train.add_argument(
        "--env-kwargs",
        type=_json_object,
        default=None,
        help='JSON keyword arguments of gymnasium.make, e.g. \'{"data_path": "data/synthetic/'
        'singlecoil_train", "budget": 8}\'; merged over the config\'s',
    )
    train.add_argument("--config", default=None, help="a packaged config name or a YAML path (default: {agent}_{env})")
    _add_set_argument(train)
    train.add_argument("--total-steps", type=_COUNT, default=None, help="env steps to train for")
    train.add_argument("--seed", type=_SEED, default=None)
    train.add_argument(
        "--seeds",
        type=_SEED,
        nargs="+",
        default=None,
        help="train one run per seed into OUT/seed{S}/ (--workers of them at once) and write OUT/seeds.json "
        "with the final evaluations' mean +- std",
    )
    train.add_argument("--num-envs", type=_COUNT, default=None, help="parallel envs (batched for the MRI env)")
    _add_device_argument(
        train,
        "the agent, its replay batches and the MRI env's episodes and reconstructions",
        ". Not recorded: a run may resume on another device",
        default=None,
    )
    _add_precision_argument(train, "(MRI env only; sets env_kwargs precision; default: the config's, else 32)")
    _add_workers_arguments(
        train,
        "Ray actors that step the env, num_envs / workers sub-environments each (num_envs must be a "
        "multiple), for one learner "
        "that acts for all of them (with --seeds: seeds trained at once)",
    )
    train.add_argument("--out", type=Path, required=True, help="run folder, e.g. runs/NAME")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint, with its saved config (config options that "
        "ask for another are refused; --device and --precision still apply; a run made at another precision "
        "is refused)",
    )
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(handler=_run_train)


#: ``mri-rl train`` options that set the run's config (besides --device and --precision).
_CONFIG_OPTIONS = ("config", "env_kwargs", "total_steps", "seed", "num_envs")
#: Config keys that --device and --precision set, which a resumed run keeps when they are not given.
_RESUME_MAY_DIFFER = ("device", "env_kwargs.precision", "eval_env_kwargs.precision")


def _train_config(args: argparse.Namespace) -> Any:
    """The run's config: the saved one on --resume, else the config file with command-line overrides.

    Raises:
        ValueError: --resume with options that ask for another config than the saved one (they are
            not applied silently).
    """
    from dataclasses import asdict

    import yaml

    from mri_rl.configs import load_config
    from mri_rl.provenance import record_differences
    from mri_rl.runs.training import TrainConfig

    saved = args.out / "config.yaml"
    if not (args.resume and saved.is_file()):
        return _requested_train_config(args)
    values, source = load_config(saved)
    resumed = TrainConfig.from_dict(_device_and_precision(args, values), source)
    if args.overrides or any(getattr(args, option) is not None for option in _CONFIG_OPTIONS):
        asked = _requested_train_config(args, base=saved)
        kept, wanted = (yaml.safe_load(yaml.safe_dump(asdict(c))) for c in (resumed, asked))
        # The device may change on resume; the precision is checked against the run's record there.
        differences = record_differences(kept, wanted, ignore=_RESUME_MAY_DIFFER)
        if differences:
            raise ValueError(
                f"--resume continues the run in {args.out} with its saved config ({saved}), but this command asks "
                f"for another ({'; '.join(differences)}; saved vs asked): drop those options to resume as saved, "
                "or choose another --out for a new run"
            )
    return resumed


def _requested_train_config(args: argparse.Namespace, base: Path | None = None) -> Any:
    """--config (else ``base``, else the agent's default config) with the command line's options applied."""
    from mri_rl.configs import apply_overrides, load_config
    from mri_rl.runs.training import TrainConfig, default_config_path

    config = args.config or base or default_config_path(args.agent, args.env_id)
    values, source = load_config(config) if config else ({}, "command line")
    if values.get("agent", args.agent) != args.agent:
        raise ValueError(f"{source} configures agent {values['agent']!r}, but --agent is {args.agent!r}")
    values.update(agent=args.agent, env_id=args.env_id)
    values["env_kwargs"] = {**values.get("env_kwargs", {}), **(args.env_kwargs or {})}
    for key in ("total_steps", "seed", "num_envs"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    values = _device_and_precision(args, apply_overrides(values, args.overrides, source))
    if "total_steps" not in values:
        raise ValueError(f"no --total-steps given and no config sets total_steps (config: {config or 'none'})")
    return TrainConfig.from_dict(
        values, source + (f" (with --set {' '.join(args.overrides)})" if args.overrides else "")
    )


def _device_and_precision(args: argparse.Namespace, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with ``--device`` and ``--precision`` (into the env kwargs of the MRI env) applied.

    Raises:
        ValueError: ``--precision`` for an env other than the MRI env.
    """
    from mri_rl.runs.training import is_mri_env

    values = dict(values)
    if args.device is not None:
        values["device"] = args.device
    if args.task_precision is not None:
        env_id = values.get("env_id", args.env_id)
        if not is_mri_env(str(env_id)):
            raise ValueError(f"--precision sets the MRI env's reconstructor precision; env {env_id!r} has none")
        for key in ("env_kwargs", "eval_env_kwargs"):
            if key == "env_kwargs" or values.get(key) is not None:
                values[key] = {**(values.get(key) or {}), "precision": args.task_precision}
    return values


def _run_train(args: argparse.Namespace) -> int:
    from mri_rl.runs.seed_sweep import SUMMARY_NAME, train_seeds
    from mri_rl.runs.training import train_agent

    if args.device is not None:
        _device(args.device)
    if args.seeds is not None and args.seed is not None:
        raise ValueError("give --seed (one run) or --seeds (one run per seed), not both")
    config, workers, progress = _train_config(args), _workers(args), not args.no_progress
    if args.seeds is not None:
        summary = train_seeds(config, args.seeds, args.out, workers, resume=args.resume, progress=progress)
        print(
            f"{config.agent} on {config.env_id}, seeds {summary['seeds']}: final evaluation "
            f"{summary['mean_return']:.2f} +- {summary['std_return']:.2f} over seeds ({args.out / SUMMARY_NAME})"
        )
        return 0
    result = train_agent(config, args.out, resume=args.resume, progress_bar=progress, workers=workers)
    solved = f", solved at step {result['solved_at_step']}" if result["solved_at_step"] else ""
    print(
        f"{config.agent} on {config.env_id}: {result['num_timesteps']} steps{solved}; final evaluation over "
        f"{result['episodes']} episodes: {result['mean_return']:.2f} +- {result['std_return']:.2f} "
        f"({args.out / 'eval.json'})"
    )
    return 0


# -------------------------------------------------------------------- reconstructors
def _add_reconstructor_commands(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train-recon",
        help="train a U-Net (single-coil) or VarNet (multi-coil) reconstructor with PyTorch Lightning",
        description="Train on DATA/{challenge}_train, validate on DATA/{challenge}_val (or on --val-data), log to "
        "TensorBoard, keep the best and last Lightning checkpoints in OUT/checkpoints and export the best "
        "model to OUT/reconstructor.pt with the record of how it was made; the environment loads it "
        "with reconstructor=PATH. Defaults come from the packaged config recon_{model}; the acquisition "
        "training masks take the task's initial lines and budget.",
    )
    train.add_argument(
        "--data",
        type=Path,
        required=True,
        help="fastMRI root with {challenge}_train and _val, or the training folder with --val-data",
    )
    train.add_argument(
        "--val-data",
        type=Path,
        default=None,
        help="validation folder (default: DATA/{challenge}_val); never the training folder",
    )
    _add_task_arguments(train, {"challenge", "budget", "initial_lines"}, required_challenge=True)
    train.add_argument(
        "--model", choices=("unet", "varnet"), default=None, help="default: unet for singlecoil, varnet for multicoil"
    )
    train.add_argument("--out", type=Path, required=True, help="run folder, e.g. runs/NAME")
    train.add_argument("--config", default=None, help="a packaged config name or a YAML path (default: recon_{model})")
    _add_set_argument(train)
    train.add_argument("--max-epochs", type=_COUNT, default=None)
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    for flag in ("--accelerator", "--devices", "--strategy", "--precision"):
        train.add_argument(flag, default=None, help="passed to pytorch_lightning.Trainer")
    train.add_argument("--num-nodes", type=_COUNT, default=None, help="passed to pytorch_lightning.Trainer")
    train.set_defaults(handler=_run_train_recon)
    _add_eval_recon_command(commands)


def _add_eval_recon_command(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "eval-recon",
        help="SSIM/PSNR/NMSE of a reconstructor per acceleration, zero-filled alongside",
        description="Mean and std of SSIM, PSNR and NMSE over a split at 4x and 8x (fastMRI random masks) and at "
        "the task's initial mask (mask settings from the config's masks.evaluation), for the "
        "reconstructor and for zero-filled.",
    )
    evaluate.add_argument("--data", type=Path, required=True, help="fastMRI root or a folder of .h5 files")
    _add_task_arguments(evaluate, {"challenge", "initial_lines"}, required_challenge=True)
    evaluate.add_argument(
        "--precision",
        dest="task_precision",
        choices=PRECISIONS,
        help="autocast of the reconstructor's forward, as a task's precision in the environment: 32 (float32), "
        "bf16 (CPU and CUDA) or 16 (CUDA and MPS only); metrics stay float32 (default: 32)",
    )
    evaluate.add_argument("--split", choices=SPLITS, default="val")
    evaluate.add_argument(
        "--any-folder", action="store_true", help="accept a --data folder whose name says another split than --split"
    )
    evaluate.add_argument("--reconstructor", required=True, help="exported checkpoint (or zero_filled)")
    evaluate.add_argument("--config", default=None, help="config whose masks.evaluation to use (default: recon_{kind})")
    _add_set_argument(evaluate)
    evaluate.add_argument("--seed", type=_SEED, default=0)
    evaluate.add_argument("--batch-size", type=_COUNT, default=8)
    _add_device_argument(evaluate, "the reconstructions and metrics")
    evaluate.set_defaults(handler=_run_eval_recon)


def _run_train_recon(args: argparse.Namespace) -> int:
    from mri_rl.reconstruct.train import load_config, train_reconstructor

    task = _task(args)
    model = args.model or ("unet" if task.challenge == "singlecoil" else "varnet")
    config = load_config(args.config or f"recon_{model}", args.overrides, task)
    trainer_kwargs = {
        key: getattr(args, key)
        for key in ("accelerator", "devices", "strategy", "precision", "num_nodes")
        if getattr(args, key) is not None
    }
    exported = train_reconstructor(
        args.data,
        task,
        args.out,
        config,
        val_data=args.val_data,
        model=model,
        max_epochs=args.max_epochs,
        resume=args.resume,
        trainer_kwargs=trainer_kwargs,
    )
    print(f"exported {exported}")
    return 0


def _run_eval_recon(args: argparse.Namespace) -> int:
    from mri_rl.reconstruct.train import evaluate_reconstructor, format_evaluation_table, load_config
    from mri_rl.reconstruct.training_masks import build_mask_samplers

    device = _device(args.device)
    task = _task(args)
    kind = "unet" if task.challenge == "singlecoil" else "varnet"
    config = load_config(args.config or f"recon_{kind}", args.overrides, task)
    masks = build_mask_samplers(config["masks"].get("evaluation", {}), task)
    rows = evaluate_reconstructor(
        args.reconstructor,
        args.data,
        task.challenge,
        args.split,
        masks,
        seed=args.seed,
        batch_size=args.batch_size,
        device=device,
        any_folder=args.any_folder,
        precision=task.precision,
    )
    print(format_evaluation_table(rows))
    return 0


# ------------------------------------------------------------------------- evaluate
def _add_policy_arguments(evaluate: argparse.ArgumentParser) -> None:
    """``mri-rl evaluate``'s flags of what is rolled: the policies, the oracle's weights, task mismatches."""
    evaluate.add_argument(
        "--policies",
        nargs="+",
        default=None,
        help="baselines (default: random lowtohigh equispaced lbcs oracle; also lbcs_kind, one LBCS order per "
        "kind of volume, with --lbcs-by, and oracle_ssim_psnr) "
        "and NAME=AGENT_CHECKPOINT; NAME=AGENT_CHECKPOINT@WEIGHT adds a low-to-high frequency prior to a "
        "policy-network agent (DAgger, REINFORCE): it acquires the column of largest log-probability minus "
        "WEIGHT times its low-to-high rank; NAME=CKPT+CKPT[+...][@WEIGHT] rolls an ensemble of such agents "
        "(trained on one task and data, e.g. with other seeds) by their mean log-probability",
    )
    evaluate.add_argument(
        "--oracle-weights",
        type=_number(integer=False, minimum=0),
        nargs=2,
        default=None,
        metavar=("SSIM", "PSNR"),
        help="oracle_ssim_psnr's weights of the standardised SSIM and PSNR gains, as DAgger's teacher_weights "
        "(default: 1 1); recorded with its rollout",
    )
    evaluate.add_argument(
        "--allow-task-mismatch",
        action="store_true",
        help="evaluate learned policies trained on another task (the summary records what "
        "differs) instead of refusing them",
    )


def _add_evaluate_command(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="roll acquisition policies over a split: metrics.csv, summary.json/.md and pictures",
        description="Roll every policy over every slice (batched across slices) and write metrics.csv (one row "
        "per policy, seed, file, slice, step, with the column acquired), summary.json and summary.md (SSIM/PSNR "
        "AUC against the sampling rate, final SSIM/PSNR, per slice and per volume as fastMRI aggregates, paired "
        "differences), curves.png, masks.png (each policy's acquisition order) and examples.png (target, "
        "reconstruction, error and mask of a few slices). "
        "Finished (policy, seed) rollouts are kept in OUT/partial/ with the record of how they were "
        "made, so an interrupted run resumes; a rerun under other settings is refused.",
    )
    evaluate.add_argument(
        "--data", type=Path, required=True, help="folder of .h5 files, or a root with {challenge}_{split} folders"
    )
    evaluate.add_argument("--split", choices=SPLITS, default="test", help="(default: test)")
    evaluate.add_argument(
        "--any-folder", action="store_true", help="accept a --data folder whose name says another split than --split"
    )
    _add_task_arguments(evaluate, TASK_FLAGS | {"precision"})
    _add_policy_arguments(evaluate)
    evaluate.add_argument("--seeds", type=_SEED, nargs="+", default=[0, 1, 2], help="(default: 0 1 2)")
    evaluate.add_argument("--batch-size", type=_COUNT, default=32, help="slices stepped together (default: 32)")
    evaluate.add_argument(
        "--lbcs-train-data",
        type=Path,
        default=None,
        help="where LBCS learns its order (default: DATA/{challenge}_train)",
    )
    evaluate.add_argument(
        "--lbcs-slices",
        type=_COUNT,
        default=32,
        help="training slices LBCS averages over (default: 32; lbcs_kind: per kind)",
    )
    evaluate.add_argument(
        "--lbcs-by",
        metavar="ATTRIBUTE",
        default=None,
        help="the file attribute whose kinds of volume the lbcs_kind baseline learns an LBCS order for each, "
        "on the training volumes of that kind (fastMRI knee: acquisition; mri-rl data anatomy: orientation); "
        "summary.md then also gives the shares of the room above it",
    )
    _add_device_argument(evaluate, "the environment's reconstructions and the learned policies")
    _add_workers_arguments(
        evaluate,
        "each (policy, seed) rollout is split into shards of whole batches, which workers roll; the files "
        "are the same as one process writes, and a killed worker's shard is rolled again",
    )
    evaluate.add_argument("--out", type=Path, required=True, help="results folder, e.g. results/NAME")
    evaluate.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the rollouts and report of an earlier evaluation in --out first",
    )
    evaluate.add_argument("--no-progress", action="store_true")
    evaluate.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from mri_rl.evaluation.evaluate import EvaluationSetup, evaluate_policies
    from mri_rl.evaluation.policy_specs import DEFAULT_BASELINES
    from mri_rl.evaluation.report import markdown_table

    setup = EvaluationSetup(
        data=args.data,
        task=_task(args),
        split=args.split,
        seeds=tuple(args.seeds),
        batch_size=args.batch_size,
        lbcs_train_data=args.lbcs_train_data,
        lbcs_slices=args.lbcs_slices,
        lbcs_by=args.lbcs_by,
        device=args.device,
        allow_task_mismatch=args.allow_task_mismatch,
        any_folder=args.any_folder,
        oracle_weights=tuple(args.oracle_weights or EvaluationSetup.oracle_weights),
    )
    policies = list(DEFAULT_BASELINES) if args.policies is None else args.policies
    if args.lbcs_by is not None and "lbcs_kind" not in policies:
        raise ValueError(f"--lbcs-by {args.lbcs_by} is for the lbcs_kind baseline: add lbcs_kind to --policies")
    summary = evaluate_policies(
        setup, policies, args.out, progress=not args.no_progress, overwrite=args.overwrite, workers=_workers(args)
    )
    print(markdown_table(summary))
    print(f"wrote {args.out / 'metrics.csv'}, summary.json, summary.md, curves.png, masks.png, examples.png")
    return 0


# --------------------------------------------------------------------------- orders
def _add_orders_command(commands: argparse._SubParsersAction) -> None:
    orders = commands.add_parser(
        "orders",
        help="record the acquisition orders a learned policy takes, for a reconstructor trained on its masks",
        description="Roll a learned policy (greedy, on the task it was trained on) once on every slice of a "
        "folder, its training slices included, and write each episode's acquired columns to a JSON orders "
        "file. A reconstructor config then trains on the masks the policy passes through with "
        "masks: {train: {kind: orders, path: FILE}} (alone or as a mixture component).",
    )
    orders.add_argument(
        "--policy",
        required=True,
        help="an agent checkpoint, e.g. runs/dagger/model.pt, or CHECKPOINT+CHECKPOINT...[@WEIGHT] as in "
        "mri-rl evaluate: an ensemble, with a low-to-high frequency prior",
    )
    orders.add_argument("--data", type=Path, required=True, help="a folder of .h5 files, e.g. DATA/singlecoil_train")
    orders.add_argument("--batch-size", type=_COUNT, default=32, help="slices stepped together (default: 32)")
    _add_device_argument(orders, "the environment's reconstructions and the policy")
    orders.add_argument("--out", type=Path, required=True, help="the orders file to write, e.g. orders.json")
    orders.add_argument("--no-progress", action="store_true")
    orders.set_defaults(handler=_run_orders)


def _run_orders(args: argparse.Namespace) -> int:
    from mri_rl.acquisition_orders import write_orders
    from mri_rl.evaluation.policy_orders import record_policy_orders

    recorded = record_policy_orders(
        args.policy, args.data, args.batch_size, _device(args.device), progress=not args.no_progress
    )
    write_orders(args.out, recorded)
    steps = sum(len(order) for order in recorded.orders)
    print(f"wrote {args.out}: {len(recorded.orders)} episodes, {steps} acquisitions")
    return 0


# ----------------------------------------------------------------------- quickstart
def _add_quickstart_command(commands: argparse._SubParsersAction) -> None:
    quickstart = commands.add_parser(
        "quickstart",
        help="the whole pipeline on real anatomy: data, U-Net, DQN, REINFORCE, evaluation, report",
        description="Write the data if absent (MNI152 template slices in simulated k-space; the config "
        "quickstart_phantoms uses the built-in phantoms), train the U-Net reconstructor, train a DQN and a "
        "REINFORCE acquisition policy on the train split, evaluate them with the baselines on the test split and "
        "write the report (summary.md, curves.png, masks.png, examples.png). Settings: the packaged config "
        "quickstart. Finished "
        "stages are skipped on a rerun when they were made with the same settings; otherwise the run "
        "stops and names what differs.",
    )
    quickstart.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="(default: runs/quickstart)")
    quickstart.add_argument("--config", default="quickstart", help="a packaged config name or a YAML path")
    _add_set_argument(quickstart)
    quickstart.add_argument("--data", type=Path, default=None, help="data root (default: the config's)")
    _add_device_argument(
        quickstart,
        "every stage: the reconstructor's training (as Lightning's accelerator), the agents and their env, "
        "the evaluation",
        ". Not recorded: finished stages are reused on another device",
    )
    _add_precision_argument(quickstart, "(sets the config's task.precision; default: the config's, else 32)")
    quickstart.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the stages of an earlier quick start in --out (and rewrite a data root written "
        "with other settings) instead of stopping",
    )
    quickstart.add_argument("--no-progress", action="store_true")
    quickstart.set_defaults(handler=_run_quickstart)


def _run_quickstart(args: argparse.Namespace) -> int:
    from mri_rl.runs.quickstart import run_quickstart

    run_quickstart(
        args.out,
        args.config,
        args.data,
        progress=not args.no_progress,
        overrides=args.overrides,
        overwrite=args.overwrite,
        device=_device(args.device),
        precision=args.task_precision,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``mri-rl`` argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="mri-rl",
        description="Active MRI acquisition with reinforcement learning on fastMRI-format data.",
    )
    parser.add_argument("--version", action="version", version=f"mri-rl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data_commands(commands)
    _add_reconstructor_commands(commands)
    _add_train_command(commands)
    _add_evaluate_command(commands)
    _add_orders_command(commands)
    _add_quickstart_command(commands)
    return parser


#: Exit status of an expected failure (bad input, a refused reuse, a file that cannot be written).
EXIT_ERROR = 2
#: ``errno`` values whose OSError is said in words.
OS_ERROR_WORDS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
}


def describe_error(error: BaseException) -> str:
    """One line for an expected failure; OSErrors say what happened in words and name the file."""
    if isinstance(error, OSError) and error.errno in OS_ERROR_WORDS:
        where = f" ({error.filename})" if error.filename else ""
        return f"{OS_ERROR_WORDS[error.errno]}{where}: {error.strerror or error}"
    if isinstance(error, MemoryError):
        return f"out of memory: {error or 'an allocation failed'}"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__  # one line, whatever the message


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mri-rl`` console script; returns the exit status.

    An expected failure (ValueError and its kinds, OSError, MemoryError) is one line on
    stderr and exit status 2; ``--debug`` shows its traceback instead. Anything else is a
    bug and keeps its traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, OSError, MemoryError) as error:
        if args.debug:
            raise
        print(f"mri-rl: error: {describe_error(error)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("mri-rl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
