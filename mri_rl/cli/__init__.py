"""The ``mri-rl`` command line: ``mri-rl COMMAND [SUBCOMMAND] ...``; each has ``--help``.

One module per command (group): its parser and its handler. Only the argument parser is built at
import: each command imports its modules (torch, Lightning, fastmri) when it runs, so
``mri-rl --help`` answers at once.
"""

from __future__ import annotations

import argparse
import errno
import sys

from mri_rl import __version__
from mri_rl.cli.arguments import check_output
from mri_rl.cli.data import add_data_commands
from mri_rl.cli.evaluate import add_evaluate_command, add_orders_command
from mri_rl.cli.quickstart import add_quickstart_command
from mri_rl.cli.reconstructors import add_reconstructor_commands
from mri_rl.cli.train import add_train_command


def build_parser() -> argparse.ArgumentParser:
    """The ``mri-rl`` argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="mri-rl",
        description="Active MRI acquisition with reinforcement learning on fastMRI-format data.",
    )
    parser.add_argument("--version", action="version", version=f"mri-rl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_data_commands(commands)
    add_reconstructor_commands(commands)
    add_train_command(commands)
    add_evaluate_command(commands)
    add_orders_command(commands)
    add_quickstart_command(commands)
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
    errno.EISDIR: "is a folder",
    errno.ENOTDIR: "not a folder",
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

    An output the command cannot write (a file where its folder is to be) is refused before it runs
    (:func:`~mri_rl.cli.arguments.check_output`). An expected failure (ValueError and its kinds,
    OSError, MemoryError) is one line on stderr and exit status 2; ``--debug`` shows its traceback
    instead. Anything else is a bug and keeps its traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        check_output(args)  # before any work, for every command that writes
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
