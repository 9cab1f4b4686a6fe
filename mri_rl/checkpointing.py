"""Checkpoint files: written atomically with a content checksum, read safely and verified.

Every checkpoint the package writes (agents, exported reconstructors, the reconstructor's
Lightning checkpoints) is a dictionary saved with ``torch.save`` plus a ``"checksum"``
entry: the SHA-256 of its contents (:func:`content_checksum`). Reading goes through
:func:`read_checkpoint`, which

- unpickles with ``torch.load(weights_only=True)`` always passed explicitly, so no code in
  the file runs, whatever torch's default or ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` say;
- recomputes the checksum, so flipped or overwritten bytes that still unpickle are caught;
- refuses non-finite weights (that diverged to NaN or Inf).

Each problem is a :class:`CheckpointError` naming the file. The loaders then check each entry they
use (:func:`typed_entry`, :func:`count_entry`, :func:`entry_errors`) and load network weights only
through :func:`load_module_state`, which refuses a state dict whose keys, dtypes or shapes differ
from the module's (``load_state_dict`` would cast int, bool or complex weights without a word).
"""

from __future__ import annotations

import hashlib
import numbers
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
    rename): an interruption or a full disk leaves the old file or the new one, never a part.

    The same checkpoint gives the same bytes wherever it is saved, and one read back with
    :func:`read_checkpoint` (an agent loaded and saved again, say) gives the bytes it was read
    from: ``torch.save`` is given an open file, not the temporary path, whose random name it would
    write into the archive and so into the file's hash
    (:func:`mri_rl.provenance.checkpoint_fingerprint`). Contents that are merely equal (the same
    :func:`content_checksum`) may still give other bytes, since ``torch.save`` pickles how they are
    held, not only their values: a tensor that is a view saves its whole storage, a tensor or
    string held twice is saved once, a ``Parameter`` is not a plain tensor."""
    path = Path(path)
    contents = {**checkpoint, CHECKSUM_KEY: content_checksum(checkpoint)}
    with atomic_output(path) as temporary, open(temporary, "wb") as file:
        torch.save(contents, file)
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
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; expected a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):  # what torch.save writes; torch's message would urge weights_only=False
        empty = path.stat().st_size == 0
        kind = "is empty" if empty else "is not a torch.save zip archive (truncated, or another kind of file)"
        raise CheckpointError(f"checkpoint {path} cannot be loaded safely: it {kind}")
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
    check_format(checkpoint, path, expected_format)
    return checkpoint


def check_format(checkpoint: Mapping[str, Any], path: str | Path, expected_format: str) -> None:
    """Refuse a checkpoint (read from ``path``) whose ``format`` entry is not ``expected_format``.

    Raises:
        CheckpointError: naming the file, the format found and the one expected.
    """
    found = checkpoint.get("format")
    if found != expected_format:
        raise CheckpointError(f"checkpoint {path} has format {found!r}; expected {expected_format!r}")


# ---------------------------------------------------------------- checking entries
def entry_error(path: str | Path, entry: str, problem: str) -> CheckpointError:
    """The error for checkpoint entry ``entry`` (a dotted key) of the file ``path``."""
    return CheckpointError(f"checkpoint {path}: entry {entry!r} {problem}")


@contextmanager
def entry_errors(path: str | Path, entry: str) -> Iterator[None]:
    """Turn what goes wrong while using entry ``entry`` of ``path`` (a type, value, key or index
    error from building or loading objects) into one :class:`CheckpointError` naming both."""
    try:
        yield
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError, OverflowError) as error:
        reason = " ".join(str(error).split())[:300]
        raise entry_error(path, entry, f"is unusable ({type(error).__name__}: {reason})") from None


def typed_entry(
    checkpoint: Mapping[str, Any], path: str | Path, key: str, kind: type | tuple[type, ...] = object
) -> Any:
    """Top-level entry ``key`` of ``checkpoint`` (read from ``path``), when there is one and it is a ``kind``.

    Raises:
        CheckpointError: naming the file and the entry.
    """
    if key not in checkpoint:
        raise CheckpointError(f"checkpoint {path} has no entry {key!r}")
    value = checkpoint[key]
    if not isinstance(value, kind):
        expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise entry_error(path, key, f"is of type {type(value).__name__}; expected {expected}")
    return value


def count_entry(value: Any, path: str | Path, entry: str, minimum: int = 0) -> int:
    """``value`` as an int when it is an integer (not a bool) >= ``minimum``; else a CheckpointError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise entry_error(path, entry, f"is {value!r}; expected an integer >= {minimum}")
    return int(value)


def cuda_rng_states() -> dict[str, list[torch.Tensor]]:
    """``{"cuda": [each CUDA device's generator state]}`` (uint8 tensors, ``weights_only``-loadable) when
    CUDA is available, else ``{}``: what a checkpoint keeps of the CUDA generators beside the CPU one's."""
    return {"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {}


def saved_cuda_rng_states(saved: Any, path: str | Path, entry: str) -> list[torch.Tensor] | None:
    """The CUDA generator states to restore, one per device (on the CPU), from ``saved``, entry ``entry``
    of ``path`` (the list of :func:`cuda_rng_states`): when CUDA is available with as many devices as
    were saved, else None.

    With None the CUDA generators are left as they are (as the agent's seed set them), and a resumed run
    does not draw the CUDA random numbers the uninterrupted one would have: silently when ``saved`` is
    None (written without CUDA, or before CUDA states were saved) or there is no CUDA (nothing draws
    from it), with a warning when the device count differs.

    Raises:
        CheckpointError: ``saved`` is neither None nor a list of 1-d uint8 tensors, or (CUDA available)
            they are not the size of this machine's generator states.
    """
    if saved is None:
        return None
    if not isinstance(saved, list) or not all(
        isinstance(state, torch.Tensor) and state.dtype == torch.uint8 and state.ndim == 1 for state in saved
    ):
        raise entry_error(path, entry, f"is {type(saved).__name__}; expected a list of 1-d uint8 tensors")
    if not torch.cuda.is_available():
        return None
    if len(saved) != torch.cuda.device_count():
        warnings.warn(
            f"{path} holds the CUDA random states of {len(saved)} device(s), this machine has "
            f"{torch.cuda.device_count()}: they are not restored, so a resumed run draws other CUDA random numbers",
            stacklevel=2,
        )
        return None
    sizes = [state.numel() for state in torch.cuda.get_rng_state_all()]
    if [state.numel() for state in saved] != sizes:
        raise entry_error(path, entry, f"holds states of {[len(state) for state in saved]} bytes; expected {sizes}")
    return [state.cpu() for state in saved]


def _describe(tensor: torch.Tensor) -> str:
    return f"{tensor.dtype} {tuple(tensor.shape)}"


def state_dict_problem(expected: Mapping[str, torch.Tensor], found: Any) -> tuple[str, str] | None:
    """(key or "", problem) of the first way ``found`` is not a state dict like ``expected``
    (the same keys; tensors of the same dtypes and shapes), or None when it is one."""
    if not isinstance(found, Mapping):
        return "", f"is of type {type(found).__name__}, not a state dict"
    missing = [key for key in expected if key not in found]
    unexpected = [str(key) for key in found if key not in expected]
    if missing or unexpected:
        return "", f"has other weights than the model: missing {missing[:5]}, unexpected {unexpected[:5]}"
    for key, tensor in expected.items():
        value = found[key]
        if not isinstance(value, torch.Tensor):
            return key, f"is of type {type(value).__name__}; the model has a tensor {_describe(tensor)}"
        if value.dtype != tensor.dtype or value.shape != tensor.shape:
            return key, f"is a tensor {_describe(value)}; the model has {_describe(tensor)}"
    return None


def load_module_state(module: torch.nn.Module, state_dict: Any, path: str | Path, entry: str) -> None:
    """Load checkpoint entry ``entry`` of ``path`` into ``module`` (every network a checkpoint holds
    goes through here), when its keys, dtypes and shapes are exactly the module's.

    Raises:
        CheckpointError: naming the file and the entry (and the weight at fault).
    """
    problem = state_dict_problem(module.state_dict(), state_dict)
    if problem is not None:
        key, reason = problem
        raise entry_error(
            path, f"{entry}.{key}" if key else entry, f"does not fit the {type(module).__name__}: {reason}"
        )
    with entry_errors(path, entry):
        module.load_state_dict(state_dict)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: Any, path: str | Path, entry: str) -> None:
    """Load checkpoint entry ``entry`` of ``path`` into ``optimizer`` (torch checks it); its
    errors become a CheckpointError naming the file and the entry."""
    if not isinstance(state, dict):
        raise entry_error(path, entry, f"is of type {type(state).__name__}, not an optimiser state")
    with entry_errors(path, entry):
        optimizer.load_state_dict(state)
