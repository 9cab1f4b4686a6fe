"""How an artifact was made, and the check before anything made earlier is reused.

Every artifact (agent checkpoints, reconstructor exports, partial rollouts, ``metrics.csv``,
``summary.json``, the LBCS cache, quick-start stages) carries a *record*::

    {"mri_rl_version": "0.1.0",
     "task": {...AcquisitionTask.to_dict()...},        # when the artifact has a task
     "data": {"train": <fingerprint>, ...},             # the folders it was made from
     "settings": {...}}                                 # whatever else decides its content

A data *fingerprint* identifies a folder of ``.h5`` files by content, not by path or
time stamps, so a copied or moved folder still matches and a rewritten one does not:
the sorted file names, each file's size, and a SHA-256 of each file's first and last
MiB (the whole file when it is smaller than 2 MiB). On real fastMRI files (hundreds of
MB each) that reads 2 MiB a file; a change that keeps the size and touches only the
middle of a large file would go unseen. The fingerprint also keeps one digest per file
(its size and edges, described, not compared), so that a training file copied into a
held-out folder under another name is found (:func:`mri_rl.data.splits.check_disjoint`).

:func:`check_record` compares a stored record with the one the current run would
write and raises :class:`RecordMismatchError` naming every field that differs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mri_rl import __version__
from mri_rl.task import AcquisitionTask

_EDGE_BYTES = 2**20
#: Record keys that describe rather than identify: shown, never compared.
_INFORMATIONAL = ("folder", "files", "file_digests", "created_by")
_digest_cache: dict[tuple[str, int, int], str] = {}
_fingerprint_cache: dict[tuple[str, tuple[tuple[str, int, int], ...]], tuple[str, list[str]]] = {}


class RecordMismatchError(ValueError):
    """A stored artifact was made under other settings than the current run's."""


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a whole file, cached by (path, size, modification time)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _digest_cache:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(2**22), b""):
                digest.update(block)
        _digest_cache[key] = digest.hexdigest()
    return _digest_cache[key]


def checkpoint_fingerprint(path: str | Path) -> str:
    """Short fingerprint of a file artifact: ``sha256:`` and 16 hex digits of its hash."""
    return "sha256:" + file_sha256(path)[:16]


def _edges_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        size = path.stat().st_size
        digest.update(f.read(_EDGE_BYTES))
        if size > 2 * _EDGE_BYTES:
            f.seek(size - _EDGE_BYTES)
        digest.update(f.read())
    return digest.hexdigest()


def h5_files(folder: str | Path) -> list[Path]:
    """The ``.h5`` files directly in ``folder``, sorted (none if it does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == ".h5" and p.is_file())


def data_fingerprint(folder: str | Path) -> dict[str, Any]:
    """The content fingerprint of a folder of ``.h5`` files (see the module docstring).

    Returns:
        ``{"folder": absolute path, "files": [names], "digest": "sha256:...", "file_digests": [...]}``;
        only the digest is compared. ``file_digests`` has, in the order of ``files``, 16 hex digits of a
        SHA-256 of each file's size and edges: a copy of a file under another name has the same.
    """
    files = h5_files(folder)
    stats = [(p.name, *((st := p.stat()).st_size, st.st_mtime_ns)) for p in files]
    key = (str(Path(folder).resolve()), tuple(stats))
    if key not in _fingerprint_cache:  # read once per process while no file changes
        digest, per_file = hashlib.sha256(), []
        for path, (name, size, _) in zip(files, stats):
            edges = _edges_digest(path)
            digest.update(f"{name}\0{size}\0{edges}\n".encode())
            per_file.append(hashlib.sha256(f"{size}\0{edges}".encode()).hexdigest()[:16])
        _fingerprint_cache[key] = ("sha256:" + digest.hexdigest()[:16], per_file)
    digest_of_folder, per_file = _fingerprint_cache[key]
    names = [name for name, _, _ in stats]
    return {"folder": key[0], "files": names, "digest": digest_of_folder, "file_digests": list(per_file)}


def make_record(
    task: AcquisitionTask | None = None,
    data: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A record: the package version, the task, data fingerprints and other settings."""
    record: dict[str, Any] = {"mri_rl_version": __version__}
    if task is not None:
        record["task"] = task.to_dict()
    if data:
        record["data"] = dict(data)
    if settings:
        record["settings"] = json.loads(json.dumps(settings, default=str))  # plain JSON values
    return record


#: The keys a record may have (:func:`make_record`); ``mri_rl_version`` is always there.
RECORD_KEYS = ("mri_rl_version", "task", "data", "settings")
#: A data fingerprint's keys and their types (:func:`data_fingerprint`).
_FINGERPRINT_TYPES = {"folder": str, "files": list, "digest": str}


def record_problem(record: Any, where: str = "record") -> tuple[str, str] | None:
    """(dotted key, problem) of the first way a stored ``record`` (found at ``where``) is not
    shaped as :func:`make_record` writes it, or None when it is (or is None: no record).

    A record is a mapping of :data:`RECORD_KEYS`: the version string, a task
    :meth:`AcquisitionTask.from_dict` accepts, data fingerprints by role, and a mapping of settings.
    """
    if record is None:
        return None
    if not isinstance(record, Mapping):
        return where, f"is of type {type(record).__name__}, not a record (a mapping of {list(RECORD_KEYS)})"
    unknown = sorted(str(key) for key in record if key not in RECORD_KEYS)
    if unknown:
        return where, f"has unknown key(s) {unknown}; a record has {list(RECORD_KEYS)}"
    if not isinstance(record.get("mri_rl_version"), str):
        return f"{where}.mri_rl_version", f"is {record.get('mri_rl_version')!r}, not a version string"
    if "task" in record:
        try:
            AcquisitionTask.from_dict(record["task"], where)
        except (TypeError, ValueError) as error:  # TaskError, prefixed with ``where``
            return f"{where}.task", f"is no task: {str(error).removeprefix(f'{where}: ')}"
    if not isinstance(record.get("settings", {}), Mapping):
        return f"{where}.settings", f"is of type {type(record['settings']).__name__}, not a mapping"
    return _data_problem(record.get("data", {}), f"{where}.data")


def _data_problem(data: Any, where: str) -> tuple[str, str] | None:
    """:func:`record_problem` of a record's ``data``: role -> data fingerprint."""
    if not isinstance(data, Mapping):
        return where, f"is of type {type(data).__name__}, not a mapping of data fingerprints"
    for role, fingerprint in data.items():
        at = f"{where}.{role}"
        if not isinstance(fingerprint, Mapping):
            return at, f"is of type {type(fingerprint).__name__}, not a data fingerprint"
        for key, kind in _FINGERPRINT_TYPES.items():
            value = fingerprint.get(key)
            if not isinstance(value, kind) or (kind is list and not all(isinstance(v, str) for v in value)):
                return f"{at}.{key}", f"is {value!r}; a data fingerprint has a {kind.__name__} here"
    return None


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(values, Mapping):
        flat: dict[str, Any] = {}
        for key, value in values.items():
            if key in _INFORMATIONAL:
                continue
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: list(values) if isinstance(values, tuple) else values}


def record_differences(
    recorded: Mapping[str, Any] | None, expected: Mapping[str, Any], ignore: Sequence[str] = ()
) -> list[str]:
    """Fields that differ, one ``"key: recorded vs now"`` each; the task is compared with
    :meth:`AcquisitionTask.differences`; dotted keys in ``ignore`` are not compared."""
    if recorded is None:
        return ["no record of how it was made (written by an older version, or not by mri_rl)"]
    found = []
    recorded_task, expected_task = recorded.get("task"), expected.get("task")
    if (recorded_task is None) != (expected_task is None):
        found.append(f"task: {recorded_task} vs {expected_task}")
    elif recorded_task is not None and expected_task is not None:  # both given, or both None
        found += [
            f"task.{d}"
            for d in AcquisitionTask.from_dict(recorded_task).differences(AcquisitionTask.from_dict(expected_task))
        ]
    flat_recorded = _flatten({k: v for k, v in recorded.items() if k != "task"})
    flat_expected = _flatten({k: v for k, v in expected.items() if k != "task"})
    for key in sorted(set(flat_recorded) | set(flat_expected)):
        if any(key == skipped or key.startswith(skipped + ".") for skipped in ignore):
            continue
        if flat_recorded.get(key, "(none)") != flat_expected.get(key, "(none)"):
            found.append(f"{key}: {flat_recorded.get(key, '(none)')} vs {flat_expected.get(key, '(none)')}")
    return found


#: How to start a resumed run afresh (``--resume`` cannot be dropped: a started run is then refused).
FRESH_RUN = "choose another --out, or delete the run folder"


def check_record(
    recorded: Mapping[str, Any] | None,
    expected: Mapping[str, Any],
    artifact: str | Path,
    fresh_start: str,
    ignore: Sequence[str] = (),
) -> None:
    """Raise :class:`RecordMismatchError` unless ``recorded`` matches ``expected``.

    Args:
        recorded: the record stored with the artifact (None when it has none).
        expected: the record the current run would write.
        artifact: what would be reused, for the message.
        fresh_start: how to start fresh, e.g. "pass --overwrite or choose a new --out".
        ignore: dotted keys that may differ (e.g. the epochs of a resumed training).
    """
    differences = record_differences(recorded, expected, ignore)
    if differences:
        raise RecordMismatchError(
            f"{artifact} was made under other settings than this run ({'; '.join(differences)}; "
            f"recorded vs now): not reusing it. To start fresh, {fresh_start}"
        )


def read_json_record(path: str | Path) -> dict[str, Any] | None:
    """The ``"record"`` stored in a JSON file, or None when the file has none or is unreadable."""
    try:
        stored = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return stored.get("record") if isinstance(stored, dict) else None


def sidecar_path(artifact: str | Path) -> Path:
    """Where the record of a non-JSON artifact lives: ``metrics.csv`` -> ``metrics.csv.record.json``."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".record.json")
