"""Small file helpers shared across the package: YAML configs and atomic text files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml


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
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"config file {path} is not valid YAML: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"config file {path} must hold a mapping of keys, not {type(values).__name__}")
    return values


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file in the same folder, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="") as f:
            f.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
