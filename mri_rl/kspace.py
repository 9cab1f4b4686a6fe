"""Cartesian k-space: the one centred FFT convention, column masks, the masked product, geometry.

Everything above this module (data, reconstructors, environments, policies) uses these
definitions, so the convention cannot drift between writing data and reconstructing it:

- images and k-space are complex tensors (..., H, W); the FFT is centred and orthonormal,
  as ``fastmri.fft2c`` / ``fastmri.ifft2c`` (which take real/imaginary pairs). torch's own
  shifts are used: fastmri's ``roll`` costs more than the transform itself at env sizes;
- the zero frequency sits at column ``W // 2``; phase-encode columns are the last axis;
- a column mask is bool (..., W), True where a column is acquired;
- a volume's data range is its ``max`` attribute (fastMRI's convention for SSIM and PSNR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


def fft2c(image: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2-D FFT of complex (..., H, W) data (``fastmri.fft2c``'s convention)."""
    dims = (-2, -1)
    return torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(image, dim=dims), dim=dims, norm="ortho"), dim=dims)


def fft_columns_c(data: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal FFT along the last axis (the columns) only, as :func:`fft2c` along that axis."""
    return torch.fft.fftshift(torch.fft.fft(torch.fft.ifftshift(data, dim=-1), dim=-1, norm="ortho"), dim=-1)


def ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2-D inverse FFT of complex (..., H, W) data (``fastmri.ifft2c``'s convention)."""
    dims = (-2, -1)
    return torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(kspace, dim=dims), dim=dims, norm="ortho"), dim=dims)


def apply_mask(kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """k ⊙ M: complex (..., C, H, W) k-space with the columns outside bool ``mask`` (..., W) zeroed."""
    return kspace * mask[..., None, None, :].to(kspace.real.dtype)


def data_range(max_value: float | None, target: torch.Tensor) -> float:
    """The data range of metrics: the volume's ``max`` attribute, else the target's own maximum.

    Raises:
        ValueError: a data range that is not a positive finite number (e.g. an all-zero target).
    """
    value = float(max_value) if max_value is not None else float(target.max())
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"data range {value} is not a positive finite number (an all-zero target without 'max'?)")
    return value


def low_frequency_order(width: int) -> np.ndarray:
    """Columns of a centred k-space of ``width`` columns, lowest frequency first.

    The zero frequency sits at ``width // 2``; columns at equal distance alternate, the one
    left of the centre first: ``c, c-1, c+1, c-2, c+2, ...``.

    Returns:
        int64 array (width,), a permutation of ``range(width)``.
    """
    centre = width // 2
    columns = np.arange(width)
    distance = np.abs(columns - centre)
    side = (columns > centre).astype(np.int64)  # left of the centre first on ties
    return columns[np.lexsort((side, distance))]


def initial_mask(width: int, padding_left: int, padding_right: int, initial_lines: int) -> np.ndarray:
    """The mask at the start of an episode.

    The zero-filled edges (columns outside ``[padding_left, padding_right)``) count as
    acquired so no action is spent on them, and so do the ``initial_lines`` lowest
    frequencies among the measurable columns.

    Returns:
        bool array (width,), True where acquired.
    """
    mask = np.ones(width, dtype=bool)
    mask[padding_left:padding_right] = False
    measurable = [c for c in low_frequency_order(width) if padding_left <= c < padding_right]
    mask[measurable[:initial_lines]] = True
    return mask


@dataclass(frozen=True)
class KspaceGeometry:
    """Geometry of one fastMRI volume as its ISMRMRD header records it.

    Attributes:
        encoded_size: (readout rows, phase-encode columns, 1) of the stored k-space.
        recon_size: (rows, columns, 1) of the target image.
        padding_left: first measured phase-encode column.
        padding_right: one past the last measured phase-encode column.
    """

    encoded_size: tuple[int, int, int]
    recon_size: tuple[int, int, int]
    padding_left: int
    padding_right: int

    @property
    def acquired_width(self) -> int:
        """Number of phase-encode columns that hold measured data."""
        return measured_width(self.padding_left, self.padding_right)


def check_initial_lines(initial_lines: int, measurable_columns: int, width: int) -> None:
    """Refuse ``initial_lines`` that acquire every one of the ``measurable_columns`` (of ``width``) at
    reset (:func:`initial_mask`), leaving no column to acquire.

    Raises:
        ValueError: naming the initial lines and the columns.
    """
    if initial_lines >= measurable_columns:
        raise ValueError(
            f"initial_lines ({initial_lines}) leaves no column to acquire: the slices have "
            f"{measurable_columns} measurable columns of {width}"
        )


def measured_width(padding_left: int, padding_right: int) -> int:
    """Phase-encode columns that hold measured data: those in ``[padding_left, padding_right)``."""
    return padding_right - padding_left
