"""The reconstructor protocol: the emission function of the acquisition POMDP.

A reconstructor maps a batch of masked k-space and its column masks to images at the
target size::

    f(masked_kspace: complex (B, C, H, W), mask: bool (B, W), output_size: (h, w)) -> (B, h, w)

C is the number of coils (1 for single-coil), H the readout rows and W the phase-encode
columns. Reconstructors run without gradients when the environment steps.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch
from fastmri.data.transforms import center_crop


def ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2-D inverse FFT of complex (..., H, W) data.

    The same transform as ``fastmri.ifft2c`` (which takes real/imaginary pairs), with
    torch's own shifts: fastmri's ``roll`` concatenates slices and costs more than the
    FFT itself at the sizes stepped in the environment.
    """
    dims = (-2, -1)
    return torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(kspace, dim=dims), dim=dims, norm="ortho"), dim=dims)


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


def root_sum_of_squares(coil_images: torch.Tensor) -> torch.Tensor:
    """Magnitude over coils: complex (B, C, h, w) -> float (B, h, w)."""
    return torch.sqrt((coil_images.real**2 + coil_images.imag**2).sum(dim=1))


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

    def with_one_more_column(
        self,
        kspace: torch.Tensor,
        mask: torch.Tensor,
        pair_rows: torch.Tensor,
        pair_columns: torch.Tensor,
        output_size: tuple[int, int],
        batch_size: int,
    ) -> Iterator[tuple[slice, torch.Tensor]]:
        """Reconstructions with one extra column each, for look-ahead, in chunks.

        Args:
            kspace: complex (R, C, H, W) full k-space of R episodes.
            mask: bool (R, W) their current masks.
            pair_rows, pair_columns: (P,) episode and column of each candidate.
            output_size: (h, w).
            batch_size: candidates per reconstructor call.

        Yields:
            (slice of the P candidates, float (len, h, w) reconstructions).
        """
        for start in range(0, len(pair_rows), batch_size):
            chunk = slice(start, start + batch_size)
            rows = pair_rows[chunk]
            candidate_mask = mask[rows].clone()
            candidate_mask[torch.arange(len(rows), device=mask.device), pair_columns[chunk]] = True
            masked = kspace[rows] * candidate_mask[:, None, None, :].to(kspace.real.dtype)
            yield chunk, self(masked, candidate_mask, output_size)

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
