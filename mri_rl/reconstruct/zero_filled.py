"""Zero-filled reconstruction: the inverse FFT of the acquired k-space."""

from __future__ import annotations

import torch

from mri_rl.reconstruct.base import Reconstructor, zero_filled_image


class ZeroFilledReconstructor(Reconstructor):
    """IFFT, magnitude (root-sum-of-squares over coils) and centre crop; no parameters."""

    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        return zero_filled_image(masked_kspace, output_size)
