"""The CLI's top level: an expected failure is one line and exit status 2, in words for a
full disk or a refused permission; ``--debug`` shows the traceback; a bug keeps its traceback."""

from __future__ import annotations

import argparse
import errno

import pytest

import mri_rl.data.synthetic
import mri_rl.evaluation.policy_orders
from mri_rl.cli import EXIT_ERROR, build_parser, describe_error, main
from mri_rl.cli.arguments import OUTPUT
from mri_rl.files import atomic_output, atomic_write_text

SYNTH = ["--volumes", "1", "--val-volumes", "0", "--test-volumes", "0", "--slices", "1", "--size", "8", "--no-progress"]


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single stderr line of a failed command, without its prefix."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mri-rl: error: "), err
    return err.removeprefix("mri-rl: error: ").strip()


@pytest.mark.parametrize(
    "code, words",
    [
        (errno.ENOSPC, "no space left on the device"),
        (errno.EDQUOT, "disk quota exceeded"),
        (errno.EACCES, "permission denied"),
        (errno.EPERM, "operation not permitted"),
        (errno.EROFS, "read-only file system"),
        (errno.ENOTDIR, "not a folder"),
    ],
)
def test_os_errors_are_said_in_words_with_the_file(code, words):
    error = OSError(code, "strerror text", "/data/run/out.pt")
    assert describe_error(error) == f"{words} (/data/run/out.pt): strerror text"


def test_a_full_disk_is_one_line_and_status_2(tmp_path, capsys, monkeypatch):
    target = tmp_path / "out" / "singlecoil_train" / "file_0000.h5"

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(mri_rl.data.synthetic, "write_synthetic_dataset", disk_full)
    assert main(["data", "synth", str(tmp_path / "out"), *SYNTH]) == EXIT_ERROR
    assert one_error_line(capsys) == f"no space left on the device ({target}): No space left on device"


#: Each command that writes, OUT where it writes; MISSING is an input that is absent, so that any work done
#: before the output is checked fails otherwise.
WRITING_COMMANDS = {
    "train": ["train", "--agent", "dqn", "--env", "CartPole-v1", "--total-steps", "8", "--out", "OUT"],
    "train-recon": ["train-recon", "--data", "MISSING", "--challenge", "singlecoil", "--out", "OUT"],
    "evaluate": ["evaluate", "--data", "MISSING", "--out", "OUT"],
    "data synth": ["data", "synth", "OUT", *SYNTH],
    "data anatomy": ["data", "anatomy", "OUT", *SYNTH],
    "data import": ["data", "import", "MISSING", "OUT", "--no-progress"],
    "quickstart": ["quickstart", "--out", "OUT", "--data", "MISSING", "--no-progress"],
    "orders": ["orders", "--policy", "MISSING", "--data", "MISSING", "--out", "OUT/orders.json"],
}


@pytest.mark.parametrize("below", ["", "run"])
@pytest.mark.parametrize("command", WRITING_COMMANDS)
def test_an_output_folder_that_is_a_file_is_one_line_naming_it_before_the_work(tmp_path, capsys, command, below):
    """``--out FILE`` (or ``OUT_DIR``), or a folder below a file: one line naming that file, before any input is
    read (an orders file goes into a folder: OUT is the folder it names)."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where the output folder should be")
    argv = [arg.replace("OUT", str(blocker / below)) for arg in WRITING_COMMANDS[command]]
    assert main([arg.replace("MISSING", str(tmp_path / "missing")) for arg in argv]) == EXIT_ERROR
    assert one_error_line(capsys) == f"not a folder ({blocker}): expected a folder to write in, found a file"
    assert sorted(tmp_path.iterdir()) == [blocker] and blocker.read_text() == "a file where the output folder should be"


@pytest.mark.parametrize("loop", [False, True])
@pytest.mark.parametrize("below", ["", "run"])
@pytest.mark.parametrize("command", WRITING_COMMANDS)
def test_an_output_folder_that_is_a_link_to_nothing_is_one_line_naming_it_before_the_work(
    tmp_path, capsys, command, below, loop
):
    """``--out LINK`` (or a folder below it) where LINK leads nowhere (its target is missing, a disk not mounted,
    or links loop): one line naming the link and its target before any input is read, not ``[Errno 17] File
    exists`` from the first folder made (orders: after every episode was rolled)."""
    link, target = tmp_path / "runs", tmp_path / ("loop" if loop else "unmounted/runs")
    link.symlink_to(target)
    if loop:
        target.symlink_to(link)
    argv = [arg.replace("OUT", str(link / below)) for arg in WRITING_COMMANDS[command]]
    assert main([arg.replace("MISSING", str(tmp_path / "missing")) for arg in argv]) == EXIT_ERROR
    assert one_error_line(capsys) == (
        f"not a folder ({link}): expected a folder to write in, found a link to {target}, which leads to no folder"
    )
    assert sorted(tmp_path.iterdir()) == sorted([link, target] if loop else [link])


def writing_commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The (sub)commands of ``parser`` that take ``--out`` or ``OUT_DIR``, by name."""
    found = {}
    for action in parser._actions:
        if isinstance(action.choices, dict):  # a subcommand's parsers
            for sub in action.choices.values():
                found.update(writing_commands(sub))
        elif action.dest in ("out", "out_dir"):
            found[parser.prog.removeprefix("mri-rl ")] = parser
    return found


def test_every_command_that_writes_has_its_output_checked_before_it_runs():
    """A new command with ``--out`` is in :data:`WRITING_COMMANDS` and declares it with ``add_output_argument``."""
    commands = writing_commands(build_parser())
    assert sorted(commands) == sorted(WRITING_COMMANDS)
    declared = {name: parser.get_default(OUTPUT) for name, parser in commands.items()}
    assert declared == {name: ("out_dir" if "data" in name else "out", name != "orders") for name in commands}


def test_an_output_file_that_is_a_folder_is_refused_before_the_work(tmp_path, capsys, monkeypatch):
    """``mri-rl orders --out FOLDER``: one line naming the folder, not the temporary file's rename."""
    folder = tmp_path / "orders"
    folder.mkdir()
    work = []
    with pytest.raises(IsADirectoryError):
        with atomic_output(folder):
            work.append("done")
    assert work == []
    monkeypatch.setattr(mri_rl.data.synthetic, "write_synthetic_dataset", lambda *a, **k: atomic_write_text(folder, ""))
    assert main(["data", "synth", str(tmp_path / "out"), *SYNTH]) == EXIT_ERROR
    assert one_error_line(capsys) == f"is a folder ({folder}): expected a file to write, not a folder"
    rolled = []  # mri-rl orders refuses the folder before it rolls any episode
    monkeypatch.setattr(mri_rl.evaluation.policy_orders, "record_policy_orders", lambda *a, **k: rolled.append(a))
    args = ["orders", "--policy", str(tmp_path / "model.pt"), "--data", str(tmp_path), "--out", str(folder)]
    assert main([*args, "--device", "cpu"]) == EXIT_ERROR
    assert rolled == [] and one_error_line(capsys) == f"is a folder ({folder}): expected a file to write, not a folder"


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main(["--debug", "data", "check", str(tmp_path / "missing"), "--challenge", "singlecoil"])


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    def bug(*args, **kwargs):
        raise TypeError("a bug, not bad input")

    monkeypatch.setattr(mri_rl.data.synthetic, "write_synthetic_dataset", bug)
    with pytest.raises(TypeError, match="a bug"):
        main(["data", "synth", str(tmp_path / "out"), *SYNTH])


def test_a_message_of_several_lines_is_said_on_one():
    error = ValueError("first problem\n  in file x.yaml, line 3\n\n  second problem  ")
    assert describe_error(error) == "first problem; in file x.yaml, line 3; second problem"
    assert describe_error(ValueError("")) == "ValueError"
