"""Checkpoint files: written atomically, read with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``.

    An interruption leaves either the old file or the new one, never a partial file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".tmp", prefix=path.name + ".", dir=path.parent)
    os.close(handle)
    try:
        torch.save(obj, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, expected_format: str, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dictionary safely and check its ``format`` field.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a loadable checkpoint, or not of ``expected_format``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # corrupt file, pickle with disallowed globals, ...
        raise ValueError(f"checkpoint {path} cannot be loaded with weights_only=True: {error}") from None
    found = checkpoint.get("format") if isinstance(checkpoint, dict) else None
    if found != expected_format:
        raise ValueError(f"checkpoint {path} has format {found!r}; expected {expected_format!r}")
    return checkpoint
