"""Observation space of the acquisition environments, and its optional observations: the column
spectrum and the column energy (k-space views of the reconstruction), the reconstructor's
feature maps and the measured energy (the acquired data's own energy per column)."""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from mri_rl.kspace import fft_columns_c

#: The env options that each add an observation key of the same name.
OPTIONAL_OBSERVATIONS = ("column_spectrum", "column_energy", "reconstructor_features", "measured_energy")
#: Rows and columns the reconstructor's feature maps are averaged down to, at most (:func:`feature_grid`).
FEATURE_GRID = 32


def observation_space(
    recon_size: tuple[int, int],
    width: int,
    column_spectrum: bool = False,
    column_energy: bool = False,
    feature_channels: int = 0,
    measured_energy: bool = False,
) -> spaces.Dict:
    """``Dict(reconstruction=Box(float32, (1, h, w)), acquired=MultiBinary(W)[,
    column_spectrum=Box((w // 2 + 1,))][, column_energy=Box((W,))][,
    reconstructor_features=Box((feature_channels, *feature_grid((h, w))))][, measured_energy=Box((W,))])``.

    The reconstruction is divided by the maximum of the initial zero-filled image, so
    it is of order one but unbounded (a trained reconstructor may over- or undershoot).
    """
    keys: dict[str, spaces.Space] = {
        "reconstruction": spaces.Box(low=-np.inf, high=np.inf, shape=(1, *recon_size), dtype=np.float32),
        "acquired": spaces.MultiBinary(width),
    }
    if column_spectrum:
        keys["column_spectrum"] = spaces.Box(
            low=-np.inf, high=np.inf, shape=(recon_size[1] // 2 + 1,), dtype=np.float32
        )
    if column_energy:
        keys["column_energy"] = spaces.Box(low=-np.inf, high=np.inf, shape=(width,), dtype=np.float32)
    if feature_channels:
        shape = (feature_channels, *feature_grid(recon_size))
        keys["reconstructor_features"] = spaces.Box(low=-np.inf, high=np.inf, shape=shape, dtype=np.float32)
    if measured_energy:
        keys["measured_energy"] = spaces.Box(low=-np.inf, high=np.inf, shape=(width,), dtype=np.float32)
    return spaces.Dict(keys)


def feature_grid(recon_size: tuple[int, int]) -> tuple[int, int]:
    """(rows, columns) of the observed feature maps of an (h, w) image: averages over k x k blocks,
    k = max(1, min(h, w) // FEATURE_GRID), so (32, 32) for 64 x 64 images and for fastMRI's 320 x 320,
    and the image's own size below 64 pixels (a replay memory keeps them per transition)."""
    h, w = recon_size
    k = max(1, min(h, w) // FEATURE_GRID)
    return h // k, w // k


def pooled_features(features: torch.Tensor, recon_size: tuple[int, int]) -> torch.Tensor:
    """A reconstructor's feature maps float (N, C, h', w') averaged down to :func:`feature_grid`'s
    size: float32 (N, C, rows, columns)."""
    return torch.nn.functional.adaptive_avg_pool2d(features.float(), feature_grid(recon_size))


def column_power_spectrum(images: torch.Tensor) -> torch.Tensor:
    """Log power of each image's Fourier transform along its columns, averaged over rows.

    For a reconstruction whose columns are the phase-encode direction, this is how its
    energy spreads over k-space columns: what has been acquired, and what the
    reconstructor filled in. An image encoder that pools globally keeps which patterns
    are present but not their spatial frequency; this keeps that.

    Args:
        images: float (N, h, w).

    Returns:
        float32 (N, w // 2 + 1): ``log(1e-6 + mean_rows |FFT_w(image)|^2)``, non-negative frequencies.
    """
    power = torch.fft.rfft(images.float(), dim=-1, norm="ortho").abs().square().mean(dim=-2)
    return torch.log(power + 1e-6)


def column_energy(images: torch.Tensor, width: int) -> torch.Tensor:
    """Log energy that each image puts in each k-space column of the acquisition grid.

    The image is zero-padded (or centre-cropped) along its columns to the k-space's ``width``
    (the reconstruction is a centre crop of the field of view at the same pixel size), then
    Fourier transformed along them with the centred convention of :mod:`mri_rl.kspace`: entry
    ``c`` belongs to the same column as action ``c``. Unlike :func:`column_power_spectrum`, it
    is aligned with the actions, so a network can score each column from its own energy and
    its neighbours'.

    Args:
        images: float (N, h, w).
        width: W, k-space columns.

    Returns:
        float32 (N, W): ``log(1e-6 + mean_rows |FFT_W(image)|^2)``.
    """
    images = images.float()
    w = images.shape[-1]
    if w < width:
        left = (width - w) // 2
        images = torch.nn.functional.pad(images, (left, width - w - left))
    elif w > width:
        start = (w - width) // 2
        images = images[..., start : start + width]
    return torch.log(fft_columns_c(images).abs().square().mean(dim=-2) + 1e-6)


def column_data_energy(kspace: torch.Tensor) -> torch.Tensor:
    """Energy of k-space in each column, mean over coils and rows: complex (N, C, H, W) -> float32 (N, W).
    A slice's k-space does not change during its episode, so the env computes this once per slice."""
    return kspace.abs().square().mean(dim=(1, 2)).float()


def measured_column_energy(data_energy: torch.Tensor, acquired: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Log energy of the acquired data in each k-space column; 0 where a column is not acquired.

    Unlike :func:`column_energy`, which transforms the magnitude reconstruction and so is the
    same for column c and its mirror, this reads the measured complex data: where the image's
    phase puts more energy on one side of the k-space centre, it shows on which side. It uses
    observed data only.

    Args:
        data_energy: float (N, W) :func:`column_data_energy` of the episodes' k-space (only acquired
            columns are read).
        acquired: bool (N, W) acquired columns (zero-filled edges count as acquired and read as
            zero energy).
        scale: float (N, 1, 1) each episode's observation scale (the maximum of its initial
            zero-filled image), so that the energy does not depend on the data's units.

    Returns:
        float32 (N, W): ``log(1e-6 + data_energy / scale^2)`` where acquired, else 0.
    """
    energy = data_energy.float() / scale.reshape(-1, 1).float().square()
    return torch.where(acquired, torch.log(energy + 1e-6), torch.zeros((), device=energy.device))
