"""Zero-filled reconstruction: the inverse FFT of the acquired k-space."""

from __future__ import annotations

import math
from typing import Iterator

import torch

from mri_rl.reconstruct.base import Reconstructor, ifft2c, zero_filled_image


class ZeroFilledReconstructor(Reconstructor):
    """IFFT, magnitude (root-sum-of-squares over coils) and centre crop; no parameters."""

    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        return zero_filled_image(masked_kspace, output_size)

    def with_one_more_column(self, kspace: torch.Tensor, mask: torch.Tensor, pair_rows: torch.Tensor,
                             pair_columns: torch.Tensor, output_size: tuple[int, int],
                             batch_size: int) -> Iterator[tuple[slice, torch.Tensor]]:
        """Look-ahead by linearity: no inverse FFT per candidate.

        The centred IFFT is linear, so acquiring column a adds to the complex coil images
        the outer product of the row-wise IFFT of that column, g_a (C, H), and the
        column-wise basis function ``exp(2 pi i (a - W//2)(x - W//2) / W) / sqrt(W)``.
        Only the cropped (h, w) window is formed: O(C h w) per candidate instead of an
        O(C H W log HW) transform.
        """
        h, w = output_size
        rows, width = kspace.shape[-2], kspace.shape[-1]
        top, left = (rows - h) // 2, (width - w) // 2
        current = ifft2c(kspace * mask[:, None, None, :].to(kspace.real.dtype))
        current = current[..., top:top + h, left:left + w]  # (R, C, h, w)
        shifted = torch.fft.ifftshift(kspace, dim=-2)
        row_transforms = torch.fft.fftshift(torch.fft.ifft(shifted, dim=-2, norm="ortho"), dim=-2)
        row_transforms = row_transforms[..., top:top + h, :]  # (R, C, h, W)
        frequencies = torch.arange(width, device=kspace.device) - width // 2
        positions = torch.arange(left, left + w, device=kspace.device) - width // 2
        basis = torch.exp(2j * math.pi * torch.outer(frequencies, positions).double() / width) / math.sqrt(width)
        basis = basis.to(kspace.dtype)  # (W, w)
        for start in range(0, len(pair_rows), batch_size):
            chunk = slice(start, start + batch_size)
            rows_chunk, columns = pair_rows[chunk], pair_columns[chunk]
            column_data = row_transforms[rows_chunk, :, :, columns]  # (P, C, h)
            images = current[rows_chunk] + column_data[..., None] * basis[columns][:, None, None, :]
            yield chunk, torch.sqrt((images.real**2 + images.imag**2).sum(dim=1))
