"""The reconstructor protocol: the emission function of the acquisition POMDP.

A reconstructor maps a batch of masked k-space and its column masks to images at the
target size::

    f(masked_kspace: complex (B, C, H, W), mask: bool (B, W), output_size: (h, w)) -> (B, h, w)

C is the number of coils (1 for single-coil), H the readout rows and W the phase-encode
columns. Reconstructors run in ``torch.inference_mode`` when the environment steps, and
under the autocast of the task's precision (:func:`autocast`).

An environment does not call ``f`` itself: it asks the reconstructor for an
:class:`EpisodeReconstructions`, which reconstructs a batch of episodes as their masks
grow and scores candidate columns (the look-ahead). The default passes the whole masked
k-space through ``f`` each time; a reconstructor with an exact shortcut (zero-filled: the
inverse FFT is linear, so one column's contribution can be added) returns its own.
"""

from __future__ import annotations

import contextlib
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
from fastmri.data.transforms import center_crop

from mri_rl.kspace import apply_mask, ifft2c
from mri_rl.task import PRECISIONS

#: The autocast dtype of each reduced precision (:data:`~mri_rl.task.PRECISIONS`).
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "16": torch.float16}


def check_precision(device: torch.device, precision: str) -> None:
    """Raise ValueError unless the reconstructor can run in ``precision`` on ``device``.

    "16" (float16) is refused on the CPU, where it has no fast arithmetic: use "bf16" there.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "16" and device.type == "cpu":
        raise ValueError("precision 16 (float16 autocast) needs a CUDA or MPS device; on the CPU use bf16")


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The context a reconstructor's forward runs in: nothing for "32", else ``torch.autocast``
    on ``device``'s type to bfloat16 ("bf16") or float16 ("16"), checked by :func:`check_precision`."""
    check_precision(device, precision)
    if precision == "32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])


def zero_filled_image(masked_kspace: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
    """Zero-filled reconstruction: centred inverse FFT, magnitude (RSS over coils), centre crop.

    Args:
        masked_kspace: complex (B, C, H, W); unacquired columns hold zeros.
        output_size: (h, w) of the target.

    Returns:
        float (B, h, w).
    """
    return root_sum_of_squares(zero_filled_coil_images(masked_kspace, output_size))


def zero_filled_coil_images(masked_kspace: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
    """Complex coil images, centre-cropped: (B, C, H, W) k-space -> complex (B, C, h, w)."""
    return center_crop(ifft2c(masked_kspace), output_size)


class EpisodeReconstructions:
    """Reconstructions of a batch of episodes as their masks grow, by whole reconstructor calls.

    The environment holds each episode's full k-space (N, C, H, W) and mask (N, W) and
    passes them with the episode rows concerned; this class keeps no state, subclasses
    may (see :meth:`Reconstructor.episode_reconstructions`).

    Args:
        reconstructor: the emission function.
        output_size: (h, w) of the images.
        precision: "32", "bf16" or "16": the autocast of every reconstructor call (:func:`autocast`).
    """

    def __init__(self, reconstructor: Reconstructor, output_size: tuple[int, int], precision: str = "32") -> None:
        self.reconstructor = reconstructor
        self.output_size = output_size
        self.precision = precision

    def reconstruct(self, masked_kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The reconstructor's images under :attr:`precision`'s autocast, cast back to float32:
        complex (B, C, H, W), bool (B, W) -> float32 (B, h, w)."""
        with autocast(masked_kspace.device, self.precision):
            images = self.reconstructor(masked_kspace, mask, self.output_size)
        return images.float()

    def update(
        self, kspace: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, added_columns: torch.Tensor
    ) -> torch.Tensor:
        """Reconstructions of episodes ``rows`` after their masks changed, in one call.

        Args:
            kspace: complex (N, C, H, W), every episode's full k-space.
            mask: bool (N, W), every episode's current mask.
            rows: int (R,) the episodes to reconstruct.
            added_columns: int (R,) the one column each acquired since its last update,
                or -1 where an episode starts (or changed otherwise).

        Returns:
            float32 (R, h, w).
        """
        return self.reconstruct(apply_mask(kspace[rows], mask[rows]), mask[rows])

    def zero_filled(self, kspace: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Zero-filled images of ``rows`` under their current masks: float (R, h, w)."""
        return zero_filled_image(apply_mask(kspace[rows], mask[rows]), self.output_size)

    def with_one_more_column(
        self,
        kspace: torch.Tensor,
        mask: torch.Tensor,
        pair_rows: torch.Tensor,
        pair_columns: torch.Tensor,
        batch_size: int,
    ) -> Iterator[tuple[slice, torch.Tensor]]:
        """Reconstructions with one extra column each, for the look-ahead, in chunks.

        Args:
            kspace, mask: as in :meth:`update`.
            pair_rows, pair_columns: int (P,) episode and column of each candidate.
            batch_size: candidates per reconstructor call.

        Yields:
            (slice of the P candidates, float32 (len, h, w) reconstructions).
        """
        masks = mask[pair_rows].clone()
        masks[torch.arange(len(pair_rows), device=mask.device), pair_columns] = True
        yield from self.under_masks(kspace, pair_rows, masks, batch_size)

    def under_masks(
        self, kspace: torch.Tensor, pair_rows: torch.Tensor, masks: torch.Tensor, batch_size: int
    ) -> Iterator[tuple[slice, torch.Tensor]]:
        """Reconstructions of episodes under masks of the caller's, in chunks (e.g. the masks of whole
        continuations of an episode, for a roll-out).

        Args:
            kspace: complex (N, C, H, W), every episode's full k-space.
            pair_rows: int (P,) the episode of each mask.
            masks: bool (P, W).
            batch_size: masks per reconstructor call.

        Yields:
            (slice of the P masks, float32 (len, h, w) reconstructions).
        """
        for start in range(0, len(pair_rows), batch_size):
            chunk = slice(start, start + batch_size)
            yield chunk, self.reconstruct(apply_mask(kspace[pair_rows[chunk]], masks[chunk]), masks[chunk])


def root_sum_of_squares(coil_images: torch.Tensor) -> torch.Tensor:
    """Magnitude over coils: complex (B, C, h, w) -> float (B, h, w)."""
    return torch.sqrt((coil_images.real**2 + coil_images.imag**2).sum(dim=1))


class FeatureLayer(NamedTuple):
    """A layer of a reconstructor whose output an environment can observe: ``module``, whose output
    is float (B, ``channels``, h', w') for a batch of B reconstructions."""

    module: torch.nn.Module
    channels: int


class Reconstructor(torch.nn.Module, ABC):
    """Base class of reconstructors; subclasses implement :meth:`forward`."""

    #: "singlecoil", "multicoil", or None when it serves both.
    challenge: str | None = None

    @abstractmethod
    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        """Reconstruct images.

        Args:
            masked_kspace: complex (B, C, H, W) k-space with unacquired columns zeroed.
            mask: bool (B, W), True where a column is acquired.
            output_size: (h, w) of the images to return.

        Returns:
            float (B, h, w).
        """

    def episode_reconstructions(
        self,
        num_episodes: int,
        kspace_shape: tuple[int, int, int],
        output_size: tuple[int, int],
        device: torch.device,
        precision: str = "32",
    ) -> EpisodeReconstructions:
        """What reconstructs ``num_episodes`` episodes of k-space (C, H, W) as they are acquired.

        The default passes whole masked k-space through :meth:`forward`, under the autocast of
        ``precision`` (:func:`autocast`); override it to keep state across steps when the
        reconstructor has an exact shortcut.
        """
        return EpisodeReconstructions(self, output_size, precision)

    def feature_layer(self) -> FeatureLayer | None:
        """The layer whose feature maps the environment observes with ``reconstructor_features``
        (what the network has inferred of the image, beyond its one output channel), or None
        (the default) when the reconstructor has none to offer."""
        return None

    def fingerprint(self) -> str:
        """Identifies the weights: ``state:`` and 16 hex digits of a SHA-256 over the class
        name and every parameter and buffer (an exported file is fingerprinted by its hash
        instead, :func:`mri_rl.provenance.checkpoint_fingerprint`)."""
        digest = hashlib.sha256(type(self).__name__.encode())
        for name, tensor in sorted(self.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return "state:" + digest.hexdigest()[:16]

    def check_compatible(self, challenge: str, kspace_shape: tuple[int, ...], output_size: tuple[int, int]) -> None:
        """Raise ValueError if this reconstructor cannot serve data of this kind."""
        if self.challenge is not None and self.challenge != challenge:
            raise ValueError(f"{type(self).__name__} was built for {self.challenge} data, not {challenge}")
