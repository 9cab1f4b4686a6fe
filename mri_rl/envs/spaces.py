"""Observation space of the acquisition environments, and the column spectrum observation."""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces


def observation_space(recon_size: tuple[int, int], width: int, column_spectrum: bool = False) -> spaces.Dict:
    """``Dict(reconstruction=Box(float32, (1, h, w)), acquired=MultiBinary(W)[, column_spectrum=Box((w // 2 + 1,))])``.

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
    return spaces.Dict(keys)


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
