"""Checkpoint files: written atomically with a content checksum, read safely and verified.

Every checkpoint the package writes (agents, exported reconstructors, the reconstructor's
Lightning checkpoints) is a dictionary saved with ``torch.save`` plus a ``"checksum"``
entry: the SHA-256 of its contents (:func:`content_checksum`). Reading goes through
:func:`read_checkpoint`, which

- unpickles with ``torch.load(weights_only=True)`` always passed explicitly, so no code in
  the file runs, whatever torch's default or ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` say;
- recomputes the checksum, so flipped or overwritten bytes that still unpickle are caught;
- refuses non-finite weights (that diverged to NaN or Inf).

Each problem is a :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mri_rl.files import atomic_output

CHECKSUM_KEY = "checksum"
#: The oldest torch whose ``weights_only=True`` unpickler is safe: before 2.6 a crafted file
#: could run code through it (CVE-2025-32434), before 2.10 corrupt memory (CVE-2026-24747).
SAFE_TORCH = (2, 10)


def check_safe_torch(version: str | None = None) -> None:
    """Raise CheckpointError when torch (``version``, default the installed one) is older
    than :data:`SAFE_TORCH`, whose ``weights_only`` loading is not safe against crafted files."""
    version = version or torch.__version__
    numbers = tuple(int(part) for part in version.split("+")[0].split(".")[:2])
    if numbers < SAFE_TORCH:
        raise CheckpointError(
            f"torch {version} cannot read checkpoints safely (its weights_only unpickler has known "
            f"code-execution flaws); mri_rl needs torch >= {'.'.join(map(str, SAFE_TORCH))}"
        )


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, tampered with, non-finite, or of another kind."""


def content_checksum(checkpoint: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a checkpoint's contents, the ``"checksum"`` entry left out.

    Tensors count by dtype, shape and bytes (on the CPU, so ``map_location`` does not
    matter); mappings by their keys and values in order; other values by type and ``repr``.
    """
    digest = hashlib.sha256()
    for token in _tokens({k: v for k, v in checkpoint.items() if k != CHECKSUM_KEY}):
        digest.update(token)
    return digest.hexdigest()


def _tokens(value: Any) -> Iterator[bytes]:
    """The byte strings :func:`content_checksum` hashes for ``value``, depth first."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        yield f"tensor:{tensor.dtype}:{tuple(tensor.shape)}:".encode()
        yield tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
    elif isinstance(value, np.ndarray):
        yield f"ndarray:{value.dtype.str}:{value.shape}:".encode()
        yield np.ascontiguousarray(value).tobytes()
    elif isinstance(value, Mapping):
        yield f"mapping:{len(value)}:".encode()
        for key, item in value.items():
            yield from _tokens(key)
            yield from _tokens(item)
    elif isinstance(value, (list, tuple)):
        yield f"{type(value).__name__}:{len(value)}:".encode()
        for item in value:
            yield from _tokens(item)
    else:
        yield f"{type(value).__name__}:{value!r};".encode()


def non_finite_entry(checkpoint: Mapping[str, Any], weights: tuple[str, ...]) -> str | None:
    """The dotted key of the first floating-point tensor holding NaN or Inf under the
    top-level keys ``weights``, or None when all are finite."""

    def search(value: Any, where: str) -> str | None:
        if isinstance(value, torch.Tensor):
            exact = not (value.is_floating_point() or value.is_complex())
            return None if exact or bool(torch.isfinite(value).all()) else where
        if isinstance(value, Mapping):
            items: Any = value.items()
        else:
            items = enumerate(value) if isinstance(value, (list, tuple)) else ()
        for key, item in items:
            found = search(item, f"{where}.{key}")
            if found is not None:
                return found
        return None

    for key in weights:
        found = search(checkpoint.get(key), key)
        if found is not None:
            return found
    return None


def save_checkpoint(checkpoint: Mapping[str, Any], path: str | Path) -> Path:
    """``torch.save`` ``checkpoint`` with its ``"checksum"``, atomically (temporary file, then
    rename): an interruption or a full disk leaves the old file or the new one, never a part."""
    path = Path(path)
    contents = {**checkpoint, CHECKSUM_KEY: content_checksum(checkpoint)}
    with atomic_output(path) as temporary:
        torch.save(contents, temporary)
    return path


def read_checkpoint(
    path: str | Path, weights: tuple[str, ...], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, safely, and verify it.

    Args:
        path: the file.
        map_location: where tensors are loaded.
        weights: top-level keys holding weights (and optimiser state), whose tensors must
            be finite; other entries may hold infinities (e.g. a Box space's bounds).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: torch older than :data:`SAFE_TORCH`; a file not loadable with
            ``weights_only=True`` (corrupt, truncated, or holding objects other than tensors
            and plain values), without a checksum, with contents that do not match it, or
            with non-finite weights.
    """
    check_safe_torch()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # corrupt or truncated file, a pickle of disallowed globals, ...
        reason = " ".join(str(error).split())[:300]
        raise CheckpointError(f"checkpoint {path} cannot be loaded safely (weights_only=True): {reason}") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get(CHECKSUM_KEY), str):
        raise CheckpointError(
            f"checkpoint {path} has no content checksum: it was not written by this version of mri_rl"
        )
    if content_checksum(checkpoint) != checkpoint[CHECKSUM_KEY]:
        raise CheckpointError(f"checkpoint {path} is damaged: its contents do not match its checksum")
    where = non_finite_entry(checkpoint, weights)
    if where is not None:
        raise CheckpointError(f"checkpoint {path} holds NaN or Inf values (at {where}): the weights diverged")
    return checkpoint


def load_checkpoint(
    path: str | Path, expected_format: str, weights: tuple[str, ...], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """:func:`read_checkpoint`, and check the checkpoint's ``format`` field.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: as :func:`read_checkpoint`, or not of ``expected_format``.
    """
    checkpoint = read_checkpoint(path, weights, map_location)
    found = checkpoint.get("format")
    if found != expected_format:
        raise CheckpointError(f"checkpoint {path} has format {found!r}; expected {expected_format!r}")
    return checkpoint
