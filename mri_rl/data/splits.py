"""Keeping splits apart: a folder named for one split is not used as another, and no
evaluated file was seen in training."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mri_rl.task import SPLITS

#: Words in a folder name that say which split it holds (``singlecoil_val``, ``knee_validation``).
_SPLIT_WORDS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def split_named_by(folder: str | Path) -> str | None:
    """The split a folder's name says it holds ("train", "val", "test"), or None when it says none or several."""
    words = {_SPLIT_WORDS[w] for w in re.split(r"[^a-z]+", Path(folder).resolve().name.lower()) if w in _SPLIT_WORDS}
    return words.pop() if len(words) == 1 else None


def check_split_folder(folder: str | Path, split: str, any_folder: bool = False) -> None:
    """Refuse a folder whose name says it holds another split than ``split``.

    Args:
        folder: the folder of ``.h5`` files about to be used as ``split``.
        split: "train", "val" or "test".
        any_folder: accept any folder on purpose (the CLI's ``--any-folder``).

    Raises:
        ValueError: naming the folder, the split it says and the flag that accepts it.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    named = split_named_by(folder)
    if not any_folder and named is not None and named != split:
        raise ValueError(
            f"{folder} is named as the {named} split, but the {split} split was asked for: point at "
            f"the {split} folder, or pass --any-folder to use this one on purpose"
        )


def check_disjoint(training: Mapping[str, Any] | None, evaluated: Mapping[str, Any], trained: str) -> None:
    """Refuse evaluation files that are also in a training set: by file name, and by content (a copy under
    another name) where both fingerprints have ``file_digests`` (those recorded before they were kept have not).

    Args:
        training: the data fingerprint (:func:`mri_rl.provenance.data_fingerprint`) of the
            training set, or None when it is unknown.
        evaluated: the fingerprint of the evaluated (or validation) set.
        trained: what was trained on ``training``, for the message.

    Raises:
        ValueError: listing up to five shared files, each found by content with the training file it copies.
    """
    if training is None:
        return
    training_names = set(training.get("files", []))
    training_by_digest = {digest: name for name, digest in _file_digests(training) if digest is not None}
    found = set()
    for name, digest in _file_digests(evaluated):
        if name in training_names:
            found.add(name)
        elif digest is not None and digest in training_by_digest:
            found.add(f"{name} (the content of {training_by_digest[digest]})")
    shared = sorted(found)
    if shared:
        listing = ", ".join(shared[:5]) + (f" and {len(shared) - 5} more" if len(shared) > 5 else "")
        raise ValueError(
            f"{len(shared)} file(s) of {evaluated.get('folder')} are also in the training set of "
            f"{trained} ({training.get('folder')}): {listing}. Evaluate on held-out files"
        )


def _file_digests(fingerprint: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """(name, digest) of each file of a data fingerprint; digest None when it has no ``file_digests`` of its files."""
    names, digests = list(fingerprint.get("files", [])), fingerprint.get("file_digests")
    if not isinstance(digests, list) or len(digests) != len(names):
        return [(name, None) for name in names]
    return list(zip(names, digests))
