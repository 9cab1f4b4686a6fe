"""Zero-filled reconstruction: the inverse FFT of the acquired k-space."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import torch

from mri_rl.reconstruct.base import (
    Reconstructor,
    root_sum_of_squares,
    zero_filled_coil_images,
    zero_filled_image,
)
from mri_rl.task import ZERO_FILLED


class ZeroFilledReconstructor(Reconstructor):
    """IFFT, magnitude (root-sum-of-squares over coils) and centre crop; no parameters.

    The centred IFFT is linear, so acquiring column a adds to the complex coil images
    the outer product of the row-wise IFFT of that column, g_a (C, H), and the
    column-wise basis function ``exp(2 pi i (a - W//2)(x - W//2) / W) / sqrt(W)``.
    :meth:`coil_images` and :meth:`column_images` expose the two terms, so the
    environment keeps the complex images of its episodes and updates them per step,
    and the look-ahead scores candidates, in O(C h w) per column instead of an
    O(C H W log HW) transform.
    """

    def fingerprint(self) -> str:
        return ZERO_FILLED

    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        return zero_filled_image(masked_kspace, output_size)

    coil_images = staticmethod(zero_filled_coil_images)

    @staticmethod
    def row_transforms(kspace: torch.Tensor, rows: int) -> torch.Tensor:
        """Centred orthonormal IFFT along the readout, cropped to the middle ``rows``:
        complex (..., H, K) -> (..., rows, K), column by column."""
        height = kspace.shape[-2]
        top = (height - rows) // 2
        transformed = torch.fft.fftshift(
            torch.fft.ifft(torch.fft.ifftshift(kspace, dim=-2), dim=-2, norm="ortho"), dim=-2
        )
        return transformed[..., top : top + rows, :]

    @staticmethod
    @functools.lru_cache(maxsize=8)
    def column_basis(
        width: int, output_width: int, device: torch.device, dtype: torch.dtype = torch.complex64
    ) -> torch.Tensor:
        """The image-domain row of every k-space column over the cropped width: complex
        (W, w), computed once per geometry."""
        left = (width - output_width) // 2
        frequencies = torch.arange(width, device=device) - width // 2
        positions = torch.arange(left, left + output_width, device=device) - width // 2
        basis = torch.exp(2j * math.pi * torch.outer(frequencies, positions).double() / width) / math.sqrt(width)
        return basis.to(dtype)

    def column_images(
        self, columns_kspace: torch.Tensor, columns: torch.Tensor, width: int, output_size: tuple[int, int]
    ) -> torch.Tensor:
        """What acquiring one column adds to the coil images, per item.

        Args:
            columns_kspace: complex (B, C, H), the k-space of column ``columns[b]`` of item b.
            columns: int (B,) their indices among the ``width`` phase-encode columns.
            width: W, the k-space width.
            output_size: (h, w).

        Returns:
            complex (B, C, h, w).
        """
        h, w = output_size
        column_data = self.row_transforms(columns_kspace[..., None], h)[..., 0]  # (B, C, h)
        basis = self.column_basis(width, w, columns_kspace.device, columns_kspace.dtype)[columns]  # (B, w)
        return column_data[..., None] * basis[:, None, None, :]

    def with_one_more_column(
        self,
        kspace: torch.Tensor,
        mask: torch.Tensor,
        pair_rows: torch.Tensor,
        pair_columns: torch.Tensor,
        output_size: tuple[int, int],
        batch_size: int,
    ) -> Iterator[tuple[slice, torch.Tensor]]:
        """Look-ahead by linearity (see the class docstring): no inverse FFT per candidate."""
        h, w = output_size
        current = self.coil_images(kspace * mask[:, None, None, :].to(kspace.real.dtype), output_size)  # (R, C, h, w)
        row_transforms = self.row_transforms(kspace, h)  # (R, C, h, W)
        basis = self.column_basis(kspace.shape[-1], w, kspace.device, kspace.dtype)  # (W, w)
        for start in range(0, len(pair_rows), batch_size):
            chunk = slice(start, start + batch_size)
            rows_chunk, columns = pair_rows[chunk], pair_columns[chunk]
            column_data = row_transforms[rows_chunk, :, :, columns]  # (P, C, h)
            yield (
                chunk,
                root_sum_of_squares(current[rows_chunk] + column_data[..., None] * basis[columns][:, None, None, :]),
            )
