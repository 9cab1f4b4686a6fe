"""The README stays true to the code: its CLI reference lists each command's flags, and the links of
the README and docs/ lead to files and headings that exist."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from mri_rl.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
PROGRESS_FLAG = "--no-progress"  # said once under the table, for every command that has it


def cli_reference_rows() -> dict[tuple[str, ...], str]:
    """The README's CLI table: the command's words (e.g. ``("data", "synth")``) to its usage text."""
    text = README.read_text(encoding="utf-8").split("## CLI reference", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for usage in re.findall(r"^\| `(mri-rl [^`]+)`", text, flags=re.MULTILINE):
        command = re.match(r"mri-rl((?: [a-z][a-z-]*)+)", usage)
        assert command, usage
        rows[tuple(command.group(1).split())] = usage
    return rows


def command_parser(command: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for word in command:
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = subparsers.choices[word]
    return parser


def parser_flags(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings if option.startswith("--")}


def test_the_cli_reference_covers_every_command():
    top = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    expected = set()
    for name, parser in top.choices.items():
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        expected |= {(name, sub) for sub in nested[0].choices} if nested else {(name,)}
    assert set(cli_reference_rows()) == expected


@pytest.mark.parametrize("command", sorted(cli_reference_rows()), ids=" ".join)
def test_the_cli_reference_lists_exactly_the_command_s_flags(command):
    documented = set(re.findall(r"--[a-z][a-z-]*", cli_reference_rows()[command]))
    flags = parser_flags(command_parser(command)) - {"--help", PROGRESS_FLAG}
    assert documented == flags


def test_every_command_with_a_progress_flag_is_named_under_the_table():
    text = README.read_text(encoding="utf-8").split("## CLI reference", 1)[1].split("\n## ", 1)[0]
    sentence = next(line for line in text.split("\n\n") if f"`{PROGRESS_FLAG}`" in line)
    for command in cli_reference_rows():
        if PROGRESS_FLAG in parser_flags(command_parser(command)):
            assert f"`{' '.join(command)}`" in sentence


def heading_anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading: links reduced to their text, lower case, punctuation
    other than hyphens and underscores dropped, spaces made hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    found, in_code = set(), False
    for line in document.read_text(encoding="utf-8").splitlines():
        in_code = in_code != line.startswith("```")
        if not in_code and re.match(r"#+ ", line):
            found.add(heading_anchor(line.lstrip("#")))
    return found


def test_heading_anchor_follows_github():
    assert heading_anchor("Set-up: two commands") == "set-up-two-commands"
    packaged = "`flip_rows` on test (the packaged `dagger_mri`)"
    assert heading_anchor(packaged) == "flip_rows-on-test-the-packaged-dagger_mri"
    assert heading_anchor("Further measurements: [`docs/experiments.md`](docs/experiments.md)") == (
        "further-measurements-docsexperimentsmd"
    )


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_local_link_leads_to_a_file_and_heading_that_exist(document):
    broken = []
    for link in re.findall(r"\]\(([^)\s]+)\)", document.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", link):
            continue  # a web address
        path, _, anchor = link.partition("#")
        target = (document.parent / path).resolve() if path else document
        if not target.exists():
            broken.append(f"{link}: no file {target}")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading with that anchor in {target.name}")
    assert broken == []
