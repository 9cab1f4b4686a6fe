"""Shared attributes of reconstructors with learned weights (exportable checkpoints)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from mri_rl.reconstruct.base import Reconstructor
from mri_rl.task import CHALLENGES


def check_challenge(challenge: Any) -> str:
    """``challenge`` when it is one of :data:`~mri_rl.task.CHALLENGES`.

    Raises:
        ValueError: naming the value and the choices.
    """
    if not isinstance(challenge, str) or challenge not in CHALLENGES:
        raise ValueError(f"challenge must be one of {', '.join(CHALLENGES)}, got {challenge!r}")
    return challenge


def check_recon_size(recon_size: Any) -> tuple[int, int] | None:
    """``recon_size`` as (h, w) of two positive integers, or None.

    Raises:
        ValueError: naming the value.
    """
    if recon_size is None:
        return None
    if (
        not isinstance(recon_size, (list, tuple))
        or len(recon_size) != 2
        or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and int(n) > 0 for n in recon_size)
    ):
        raise ValueError(f"recon_size must be (h, w), two positive integers, or None; got {recon_size!r}")
    return int(recon_size[0]), int(recon_size[1])


class TrainableReconstructor(Reconstructor):
    """A reconstructor that :func:`~mri_rl.reconstruct.export_reconstructor` can save.

    Subclasses set :attr:`kind` (the key of ``checkpoint.TRAINABLE_KINDS``) and
    :attr:`normalization` (how inputs are scaled, recorded in checkpoints), and pass the
    keyword arguments that rebuild their architecture as ``hparams``.

    Args:
        hparams: constructor arguments of the architecture, recorded in checkpoints.
        challenge: data the network is trained for ("singlecoil" or "multicoil").
        recon_size: (h, w) of the images it was trained on, checked when loaded.

    Raises:
        ValueError: another challenge, or a ``recon_size`` that is not two positive integers.
    """

    kind: str
    normalization: str

    def __init__(self, hparams: dict[str, Any], challenge: str, recon_size: Sequence[int] | None) -> None:
        super().__init__()
        self.hparams = dict(hparams)
        self.challenge = check_challenge(challenge)
        self.recon_size = check_recon_size(recon_size)

    def check_compatible(self, challenge: str, kspace_shape: tuple[int, ...], output_size: tuple[int, int]) -> None:
        super().check_compatible(challenge, kspace_shape, output_size)
        if self.recon_size is not None and tuple(output_size) != self.recon_size:
            raise ValueError(
                f"the {self.kind} reconstructor was trained on {self.recon_size[0]}x{self.recon_size[1]} images, "
                f"the data has {output_size[0]}x{output_size[1]} targets"
            )
