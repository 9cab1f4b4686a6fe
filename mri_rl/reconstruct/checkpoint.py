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

from mri_rl.checkpointing import CheckpointError, load_checkpoint, save_checkpoint
from mri_rl.reconstruct.base import Reconstructor
from mri_rl.reconstruct.trainable import TrainableReconstructor
from mri_rl.reconstruct.unet import UnetReconstructor
from mri_rl.reconstruct.varnet import VarNetReconstructor
from mri_rl.reconstruct.zero_filled import ZeroFilledReconstructor

CHECKPOINT_FORMAT = "mri_rl.reconstructor"
CHECKPOINT_VERSION = 1
#: Checkpoint entries that hold weights (which must be finite).
RECONSTRUCTOR_WEIGHTS = ("state_dict",)
TRAINABLE_KINDS: dict[str, type[TrainableReconstructor]] = {"unet": UnetReconstructor, "varnet": VarNetReconstructor}


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
        CheckpointError: not a verified reconstructor checkpoint (see
            :func:`~mri_rl.checkpointing.read_checkpoint`: damaged, unsafe, non-finite
            weights), an unknown kind, or weights that do not fit the recorded hyper-parameters.
    """
    checkpoint = load_checkpoint(path, CHECKPOINT_FORMAT, RECONSTRUCTOR_WEIGHTS, map_location)
    kind = checkpoint.get("kind")
    if kind not in TRAINABLE_KINDS:
        raise CheckpointError(
            f"checkpoint {path} holds a reconstructor of kind {kind!r}; known: {sorted(TRAINABLE_KINDS)}"
        )
    try:
        model = TRAINABLE_KINDS[kind](
            **checkpoint["hparams"], challenge=checkpoint["challenge"], recon_size=checkpoint["recon_size"]
        )
        model.load_state_dict(checkpoint["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"checkpoint {path} is incompatible with the {kind} reconstructor: {error}") from None
    return model.eval()


def read_reconstructor_record(path: str | Path) -> dict[str, Any] | None:
    """The record stored in an exported reconstructor (None for exports without one)."""
    return load_checkpoint(path, CHECKPOINT_FORMAT, RECONSTRUCTOR_WEIGHTS).get("record")


def build_reconstructor(spec: str | Path | Reconstructor) -> Reconstructor:
    """Resolve the ``reconstructor=`` argument: "zero_filled", a checkpoint path, or an instance."""
    if isinstance(spec, Reconstructor):
        return spec
    if str(spec) == "zero_filled":
        return ZeroFilledReconstructor()
    if isinstance(spec, (str, Path)):
        return load_reconstructor(spec)
    raise TypeError(f"reconstructor must be 'zero_filled', a checkpoint path or a Reconstructor, got {spec!r}")
