"""Small file helpers shared across the package: YAML configs and atomic text files."""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with ``3e-4`` read as a number.

    YAML 1.1 (PyYAML) reads a float only with a dot (``3.0e-4``); ``3e-4`` would be the
    string "3e-4". Every float form of YAML 1.2 is a float here.
    """


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                 |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                 |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                 |[-+]?\.(?:inf|Inf|INF)
                 |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """YAML text to Python values with :class:`YamlLoader`.

    Raises:
        ValueError: text that is not YAML, or a tag the safe loader refuses (``!!python/...``),
            said on one line with where it is.
    """
    try:
        return yaml.load(text, Loader=YamlLoader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = "" if mark is None else f"line {mark.line + 1}, column {mark.column + 1}: "
        problem = " ".join(f"{error.context or ''} {error.problem or ''}".split())
        raise ValueError(f"{where}{problem}") from None
    except yaml.YAMLError as error:
        raise ValueError(" ".join(str(error).split())) from None


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not valid YAML, or not a mapping; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        values = parse_yaml(path.read_text())
    except ValueError as error:  # a UnicodeDecodeError too
        raise ValueError(f"config file {path} is not valid YAML: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"config file {path} must hold a mapping of keys, not {type(values).__name__}")
    return values


def current_umask() -> int:
    """The process's file-mode creation mask (read by setting it and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: :func:`atomic_output`'s temporary files are ``.{name}.{random}.tmp`` beside ``name``.
TEMPORARY_SUFFIX = ".tmp"


def temporary_name_pattern(name_pattern: str) -> str:
    """A regular expression of the temporary files :func:`atomic_output` leaves beside files whose
    names match ``name_pattern`` (a regular expression) when it is interrupted by a kill."""
    return rf"\.(?:{name_pattern})\.\w+{re.escape(TEMPORARY_SUFFIX)}"


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write, renamed over ``path`` when the block ends.

    An interruption, a full disk or an error inside the block leaves the old ``path`` (or
    none) and no temporary file, never a partial file. The temporary file's data reach the disk
    before the rename, and the rename before the block ends (``fsync`` of the file, then of the
    folder), so neither does a power loss. The new file gets the mode a plain ``open(path, "w")``
    would (``0o666`` less the umask), not ``mkstemp``'s ``0o600``.

    Yields:
        the temporary path to write to.
    """
    path = Path(path)
    check_not_a_folder(path)  # before the block runs, not by the rename after it
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~current_umask())
        synced(temporary)
        os.replace(temporary, path)
        if os.name == "posix":  # a folder can be opened and synced there only
            synced(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def synced(path: Path) -> None:
    """``fsync`` the file or folder ``path``: what was written to it is on the disk when this returns."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def check_not_a_folder(path: Path) -> None:
    """Refuse a file to write at ``path`` where a folder is: call it before the work whose result
    goes there.

    Raises:
        IsADirectoryError: ``path`` is a folder.
    """
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "expected a file to write, not a folder", str(path))


def check_not_a_file(path: Path) -> None:
    """Refuse a folder to write in at ``path`` where a file is (at ``path`` or a folder above it): call it
    before the work whose results go there.

    Raises:
        NotADirectoryError: ``path``, or the nearest of its parents that exists or is a link, is no folder: a
            file, or a link that leads to no folder (its target missing, a disk not mounted, or links that
            loop), which making the folder would meet as ``[Errno 17] File exists``; names it.
    """
    for entry in (path, *path.parents):
        if entry.is_dir():
            return
        if entry.exists():
            raise NotADirectoryError(errno.ENOTDIR, "expected a folder to write in, found a file", str(entry))
        if entry.is_symlink():
            found = f"found a link to {os.readlink(entry)}, which leads to no folder"
            raise NotADirectoryError(errno.ENOTDIR, f"expected a folder to write in, {found}", str(entry))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as temporary:
        with open(temporary, "w", newline="") as f:
            f.write(text)
    return Path(path)
