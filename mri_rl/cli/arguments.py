"""Arguments that several ``mri-rl`` commands share: the task's flags, devices, workers, ``--set``, and
the ``type=`` parsers that check values at the edge with one-line errors."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mri_rl.checks import MAX_SEED, expected, is_valid
from mri_rl.files import check_not_a_file, check_not_a_folder
from mri_rl.task import CHALLENGES, DEFAULT_TASK, METRIC_NAMES, PRECISIONS, AcquisitionTask

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


def parse_budget(text: str) -> int | None:
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


def number_type(integer: bool, minimum: float | None = None, maximum: float | None = None) -> Callable[[str], float]:
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


def json_object(text: str) -> dict[str, Any]:
    """``--env-kwargs``: a JSON object (keyword arguments)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object of keyword arguments, got {text!r}")
    return value


#: ``type=`` of the count flags (--batch-size, --slices...), of seeds and --padding, and of the float flags.
#: The simulation spec checks its own ranges (--size >= 8, --padding below half the width, --noise >= 0).
COUNT = number_type(integer=True, minimum=1)
NON_NEGATIVE_INT = number_type(integer=True, minimum=0)
SEED = number_type(integer=True, minimum=0, maximum=MAX_SEED)
FINITE = number_type(integer=False)


def add_task_arguments(parser: argparse.ArgumentParser, names: set[str], required_challenge: bool = False) -> None:
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
            type=parse_budget,
            default=argparse.SUPPRESS,
            help=f"columns acquired per episode, or 'all' (default: {default.budget})",
        )
    if "initial_lines" in names:
        group.add_argument(
            "--initial-lines",
            type=COUNT,
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
        add_precision_argument(group, f"(default: {default.precision})")


def add_precision_argument(parser: Any, default: str) -> None:
    """``--precision`` (dest ``task_precision``): the task's precision, :data:`PRECISION_HELP`."""
    parser.add_argument("--precision", dest="task_precision", choices=PRECISIONS, help=f"{PRECISION_HELP} {default}")


def add_device_argument(
    parser: argparse.ArgumentParser, what: str, note: str = "", default: str | None = "cpu"
) -> None:
    """``--device``: a torch device name, checked by :func:`checked_device` when the command runs."""
    shown = "cpu" if default else "the config's device, else cpu"
    parser.add_argument(
        "--device",
        default=default,
        help=f"torch device (cpu, cuda, cuda:N or mps) of {what} (default: {shown}); one this machine lacks "
        f"is refused{note}",
    )


def add_workers_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--workers``, ``--address``, ``--gpus-per-worker``: where :func:`workers_of` runs tasks (Ray)."""
    parser.add_argument(
        "--workers",
        type=COUNT,
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
        type=number_type(integer=False, minimum=0),
        default=0.0,
        help="share of a GPU each worker holds, e.g. 0.5 (default: 0)",
    )


def workers_of(args: argparse.Namespace) -> Any:
    from mri_rl.distributed import Workers

    return Workers(count=args.workers, address=args.address, gpus_per_worker=args.gpus_per_worker)


def checked_device(name: str) -> str:
    """``name`` when this machine has that device; ValueError (one line, exit status 2) otherwise."""
    from mri_rl.checks import resolve_device

    resolve_device(name)
    return name


def task_of(args: argparse.Namespace) -> AcquisitionTask:
    """The task from the command's task flags over the defaults."""
    changes = {name: getattr(args, name) for name in TASK_FLAGS if getattr(args, name, None) is not None}
    if hasattr(args, "budget"):  # None is a value here: 'all'
        changes["budget"] = args.budget
    if getattr(args, "task_precision", None) is not None:
        changes["precision"] = args.task_precision
    return DEFAULT_TASK.with_changes(**changes)


#: The namespace entry of a command that writes: (dest of its output argument, whether that is a folder).
OUTPUT = "output_argument"


def add_output_argument(parser: argparse.ArgumentParser, name: str, folder: bool = True, **kwargs: Any) -> None:
    """``name`` (``--out`` or ``out_dir``): the folder the command writes in, or with ``folder=False`` the
    file it writes; :func:`~mri_rl.cli.main` checks it with :func:`check_output` before the command runs."""
    action = parser.add_argument(name, type=Path, **kwargs)
    parser.set_defaults(**{OUTPUT: (action.dest, folder)})


def check_output(args: argparse.Namespace) -> None:
    """Refuse the output of a command (:func:`add_output_argument`) where the file system holds what it cannot
    write: a folder to write in that is a file or lies below one, a file to write that is a folder or lies
    below a file. Nothing to check for a command that writes nothing.

    Raises:
        NotADirectoryError: naming the file where a folder is needed.
        IsADirectoryError: naming the folder where the file is to be written.
    """
    if getattr(args, OUTPUT, None) is None:
        return
    dest, folder = getattr(args, OUTPUT)
    path = getattr(args, dest)
    if not folder:
        check_not_a_folder(path)
    check_not_a_file(path if folder else path.parent)


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (dotted keys for nested ones, e.g. task.budget=8 or "
        "hyperparameters.learning_rate=3e-4); repeatable",
    )
