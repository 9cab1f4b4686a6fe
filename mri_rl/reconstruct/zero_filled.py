"""Zero-filled reconstruction: the inverse FFT of the acquired k-space."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import torch

from mri_rl.kspace import apply_mask
from mri_rl.reconstruct.base import (
    EpisodeReconstructions,
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
    Its :class:`ZeroFilledEpisodes` keep each episode's complex coil images and add one
    column per step, and score look-ahead candidates the same way, in O(C h w) per
    column instead of an O(C H W log HW) transform.
    """

    def fingerprint(self) -> str:
        return ZERO_FILLED

    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        return zero_filled_image(masked_kspace, output_size)

    def episode_reconstructions(
        self,
        num_episodes: int,
        kspace_shape: tuple[int, int, int],
        output_size: tuple[int, int],
        device: torch.device,
        precision: str = "32",
    ) -> ZeroFilledEpisodes:
        """Episodes kept as complex coil images; ``precision`` changes nothing (FFTs and complex
        sums are not autocast), so the numbers are the same under every precision."""
        return ZeroFilledEpisodes(self, num_episodes, kspace_shape, output_size, device, precision)


def row_transforms(kspace: torch.Tensor, rows: int) -> torch.Tensor:
    """Centred orthonormal IFFT along the readout, cropped to the middle ``rows``:
    complex (..., H, K) -> (..., rows, K), column by column."""
    height = kspace.shape[-2]
    top = (height - rows) // 2
    transformed = torch.fft.fftshift(torch.fft.ifft(torch.fft.ifftshift(kspace, dim=-2), dim=-2, norm="ortho"), dim=-2)
    return transformed[..., top : top + rows, :]


@functools.lru_cache(maxsize=8)
def column_basis(
    width: int, output_width: int, device: torch.device, dtype: torch.dtype = torch.complex64
) -> torch.Tensor:
    """The image-domain row of every k-space column over the cropped width: complex
    (W, w), computed once per geometry (a normal tensor, also when first asked for in
    inference mode, so that code with autograd may use the cached one too)."""
    with torch.inference_mode(False):
        left = (width - output_width) // 2
        frequencies = torch.arange(width, device=device) - width // 2
        positions = torch.arange(left, left + output_width, device=device) - width // 2
        basis = torch.exp(2j * math.pi * torch.outer(frequencies, positions).double() / width) / math.sqrt(width)
        return basis.to(dtype)


def column_images(
    columns_kspace: torch.Tensor, columns: torch.Tensor, width: int, output_size: tuple[int, int]
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
    column_data = row_transforms(columns_kspace[..., None], h)[..., 0]  # (B, C, h)
    basis = column_basis(width, w, columns_kspace.device, columns_kspace.dtype)[columns]  # (B, w)
    return column_data[..., None] * basis[:, None, None, :]


class ZeroFilledEpisodes(EpisodeReconstructions):
    """Zero-filled reconstructions of N episodes kept as complex coil images (N, C, h, w).

    A starting episode is transformed once; every later step adds its column's image
    (:func:`column_images`), and the look-ahead adds each candidate's to the kept images.
    """

    def __init__(
        self,
        reconstructor: ZeroFilledReconstructor,
        num_episodes: int,
        kspace_shape: tuple[int, int, int],
        output_size: tuple[int, int],
        device: torch.device,
        precision: str = "32",
    ) -> None:
        super().__init__(reconstructor, output_size, precision)
        coils, _, self.width = kspace_shape
        self.coil_images = torch.zeros((num_episodes, coils, *output_size), dtype=torch.complex64, device=device)

    def update(
        self, kspace: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, added_columns: torch.Tensor
    ) -> torch.Tensor:
        new = added_columns < 0
        if new.any():
            again = rows[new]
            self.coil_images[again] = zero_filled_coil_images(apply_mask(kspace[again], mask[again]), self.output_size)
        if not new.all():
            updated, columns = rows[~new], added_columns[~new]
            added = column_images(kspace[updated, :, :, columns], columns, self.width, self.output_size)
            self.coil_images.index_add_(0, updated, added)
        return root_sum_of_squares(self.coil_images[rows])

    def zero_filled(self, kspace: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return root_sum_of_squares(self.coil_images[rows])

    def with_one_more_column(
        self,
        kspace: torch.Tensor,
        mask: torch.Tensor,
        pair_rows: torch.Tensor,
        pair_columns: torch.Tensor,
        batch_size: int,
    ) -> Iterator[tuple[slice, torch.Tensor]]:
        """Look-ahead by linearity: the kept images plus each candidate column's image."""
        for start in range(0, len(pair_rows), batch_size):
            chunk = slice(start, start + batch_size)
            rows, columns = pair_rows[chunk], pair_columns[chunk]
            added = column_images(kspace[rows, :, :, columns], columns, self.width, self.output_size)
            yield chunk, root_sum_of_squares(self.coil_images[rows] + added)
