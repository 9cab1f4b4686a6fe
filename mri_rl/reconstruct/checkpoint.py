"""Self-describing reconstructor checkpoints and the ``reconstructor=`` argument.

An exported checkpoint is a plain dictionary (loadable with ``weights_only=True``)::

    {"format": "mri_rl.reconstructor", "version": 1, "kind": "unet",
     "hparams": {...}, "state_dict": {...}, "challenge": "singlecoil",
     "recon_size": [h, w], "normalization": "...",
     "record": {...}}        # how it was made: task, data fingerprints, config (mri_rl.provenance)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch

from mri_rl.checkpointing import (
    CheckpointError,
    check_format,
    entry_error,
    entry_errors,
    load_module_state,
    read_checkpoint,
    save_checkpoint,
    typed_entry,
)
from mri_rl.provenance import record_problem
from mri_rl.reconstruct.base import Reconstructor
from mri_rl.reconstruct.trainable import TrainableReconstructor, check_challenge, check_recon_size
from mri_rl.reconstruct.unet import UnetReconstructor
from mri_rl.reconstruct.varnet import VarNetReconstructor
from mri_rl.reconstruct.zero_filled import ZeroFilledReconstructor

CHECKPOINT_FORMAT = "mri_rl.reconstructor"
CHECKPOINT_VERSION = 1
#: Checkpoint entries that hold weights (which must be finite).
RECONSTRUCTOR_WEIGHTS = ("state_dict",)
TRAINABLE_KINDS: dict[str, type[TrainableReconstructor]] = {"unet": UnetReconstructor, "varnet": VarNetReconstructor}
#: ``mri-rl train-recon --out OUT`` writes its export to ``OUT/EXPORT_NAME`` and its Lightning
#: checkpoints (``last.ckpt``, the best epoch's) into ``OUT/CHECKPOINT_DIR``.
EXPORT_NAME = "reconstructor.pt"
CHECKPOINT_DIR = "checkpoints"
#: The entry that Lightning writes into each of its checkpoints, and an export lacks.
LIGHTNING_VERSION_KEY = "pytorch-lightning_version"


def export_reconstructor(model: Reconstructor, path: str | Path, record: dict[str, Any] | None = None) -> Path:
    """Write ``model`` as a self-describing checkpoint (atomically), with the ``record`` of
    how it was made (:mod:`mri_rl.provenance`)."""
    if getattr(model, "kind", None) not in TRAINABLE_KINDS:
        raise ValueError(f"cannot export {type(model).__name__}; exportable kinds: {sorted(TRAINABLE_KINDS)}")
    trainable = cast(TrainableReconstructor, model)  # a trainable kind (checked above)
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "kind": trainable.kind,
        "hparams": dict(trainable.hparams),
        "challenge": trainable.challenge,
        "recon_size": None if trainable.recon_size is None else list(trainable.recon_size),
        "normalization": trainable.normalization,
        "state_dict": {k: v.detach().cpu() for k, v in trainable.state_dict().items()},
        "record": record,
    }
    return save_checkpoint(checkpoint, path)


def load_reconstructor(path: str | Path, map_location: str | torch.device = "cpu") -> Reconstructor:
    """Rebuild a reconstructor from an exported checkpoint.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a verified reconstructor checkpoint (see :func:`read_export`), or
            hyper-parameters and weights that do not make the recorded kind; naming the entry.
    """
    checkpoint = read_export(path, map_location)
    kind = checkpoint["kind"]
    hparams = typed_entry(checkpoint, path, "hparams", dict)
    with entry_errors(path, "hparams"):
        model = TRAINABLE_KINDS[kind](**hparams, challenge=checkpoint["challenge"], recon_size=checkpoint["recon_size"])
    load_module_state(model, typed_entry(checkpoint, path, "state_dict"), path, "state_dict")
    return model.eval()


def read_export(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """An exported reconstructor checkpoint, read safely and verified
    (:func:`~mri_rl.checkpointing.load_checkpoint`), with every entry but the weights checked:
    ``version`` is :data:`CHECKPOINT_VERSION`, ``kind`` a trainable kind whose ``normalization``
    it records, ``challenge`` one of :data:`~mri_rl.task.CHALLENGES`, ``recon_size`` two
    positive integers or None, and ``record`` a record (:func:`~mri_rl.provenance.record_problem`) or None.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: as :func:`~mri_rl.checkpointing.load_checkpoint` (a Lightning checkpoint of
            ``train-recon`` naming the export to use instead), or naming the entry that is wrong.
    """
    checkpoint = read_checkpoint(path, RECONSTRUCTOR_WEIGHTS, map_location)
    if LIGHTNING_VERSION_KEY in checkpoint:
        raise lightning_checkpoint_error(Path(path))
    check_format(checkpoint, path, CHECKPOINT_FORMAT)
    version = typed_entry(checkpoint, path, "version")
    if type(version) is not int or version != CHECKPOINT_VERSION:
        raise entry_error(path, "version", f"is {version!r}; this version of mri_rl reads version {CHECKPOINT_VERSION}")
    kind = typed_entry(checkpoint, path, "kind")
    if not isinstance(kind, str) or kind not in TRAINABLE_KINDS:
        raise entry_error(path, "kind", f"is {kind!r}, no reconstructor kind; known: {sorted(TRAINABLE_KINDS)}")
    normalization = typed_entry(checkpoint, path, "normalization")
    if normalization != TRAINABLE_KINDS[kind].normalization:
        expected = TRAINABLE_KINDS[kind].normalization
        raise entry_error(path, "normalization", f"is {normalization!r}; the {kind} reconstructor's is {expected!r}")
    with entry_errors(path, "challenge"):
        check_challenge(typed_entry(checkpoint, path, "challenge"))
    with entry_errors(path, "recon_size"):
        check_recon_size(typed_entry(checkpoint, path, "recon_size"))
    problem = record_problem(checkpoint.get("record"))
    if problem is not None:
        raise entry_error(path, *problem)
    return checkpoint


def lightning_checkpoint_error(path: Path) -> CheckpointError:
    """The error for a Lightning checkpoint of ``train-recon`` at ``path`` where its export is expected:
    it names that run's export when ``path`` is in a run's :data:`CHECKPOINT_DIR` beside one."""
    export = path.parent.parent / EXPORT_NAME
    found = path.parent.name == CHECKPOINT_DIR and export.is_file()
    use = f"{export}, that run's export" if found else f"OUT/{EXPORT_NAME}, the export of train-recon --out OUT"
    return CheckpointError(
        f"checkpoint {path} looks like a Lightning training checkpoint of mri-rl train-recon, "
        f"not an exported reconstructor; use {use}"
    )


def read_reconstructor_record(path: str | Path) -> dict[str, Any] | None:
    """The record stored in an exported reconstructor (None for exports without one), from a
    checked export (:func:`read_export`)."""
    return read_export(path).get("record")


def build_reconstructor(spec: str | Path | Reconstructor) -> Reconstructor:
    """Resolve the ``reconstructor=`` argument: "zero_filled", a checkpoint path, or an instance."""
    if isinstance(spec, Reconstructor):
        return spec
    if str(spec) == "zero_filled":
        return ZeroFilledReconstructor()
    if isinstance(spec, (str, Path)):
        return load_reconstructor(spec)
    raise TypeError(f"reconstructor must be 'zero_filled', a checkpoint path or a Reconstructor, got {spec!r}")
