"""Shared attributes of reconstructors with learned weights (exportable checkpoints)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mri_rl.reconstruct.base import Reconstructor


class TrainableReconstructor(Reconstructor):
    """A reconstructor that :func:`~mri_rl.reconstruct.export_reconstructor` can save.

    Subclasses set :attr:`kind` (the key of ``checkpoint.TRAINABLE_KINDS``) and
    :attr:`normalization` (how inputs are scaled, recorded in checkpoints), and pass the
    keyword arguments that rebuild their architecture as ``hparams``.

    Args:
        hparams: constructor arguments of the architecture, recorded in checkpoints.
        challenge: data the network is trained for ("singlecoil" or "multicoil").
        recon_size: (h, w) of the images it was trained on, checked when loaded.
    """

    kind: str
    normalization: str

    def __init__(self, hparams: dict[str, Any], challenge: str, recon_size: Sequence[int] | None) -> None:
        super().__init__()
        self.hparams = dict(hparams)
        self.challenge = challenge
        self.recon_size = None if recon_size is None else tuple(recon_size)

    def check_compatible(self, challenge: str, kspace_shape: tuple[int, ...], output_size: tuple[int, int]) -> None:
        super().check_compatible(challenge, kspace_shape, output_size)
        if self.recon_size is not None and tuple(output_size) != self.recon_size:
            raise ValueError(
                f"the {self.kind} reconstructor was trained on {self.recon_size[0]}x{self.recon_size[1]} images, "
                f"the data has {output_size[0]}x{output_size[1]} targets"
            )
