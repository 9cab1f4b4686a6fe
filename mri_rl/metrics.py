"""Batched image-quality metrics with fastMRI's conventions.

fastMRI (Zbontar et al., 2018) scores a reconstruction against its target with the data
range set to the maximum of the target *volume* (the file's ``max`` attribute). All
metrics here take that data range per image and work on whole batches in torch:

- ``mse``: mean squared error in units of the data range, ``mean((x̂ - x)²) / max²``
  (so ``psnr = -10 log10(mse)``); scale-free across datasets.
- ``nmse``: ``‖x̂ - x‖² / ‖x‖²`` per image.
- ``psnr``: ``10 log10(max² / mean((x̂ - x)²))`` in dB, with the error floored at
  ``1e-20`` of the data range² (200 dB) so an exact reconstruction stays finite.
- ``ssim``: the SSIM of ``skimage.metrics.structural_similarity`` (7x7 uniform window,
  K1 0.01, K2 0.03, sample covariance), computed by ``fastmri.SSIMLoss``.
"""

from __future__ import annotations

import torch
from fastmri import SSIMLoss

METRIC_NAMES = ("mse", "nmse", "psnr", "ssim")
HIGHER_IS_BETTER = {"mse": False, "nmse": False, "psnr": True, "ssim": True}
_MSE_FLOOR = 1e-20

_ssim_modules: dict[torch.device, SSIMLoss] = {}


def _ssim_module(device: torch.device) -> SSIMLoss:
    if device not in _ssim_modules:
        _ssim_modules[device] = SSIMLoss().to(device)
    return _ssim_modules[device]


@torch.no_grad()
def image_metrics(reconstruction: torch.Tensor, target: torch.Tensor, data_range: torch.Tensor) -> dict[str, torch.Tensor]:
    """All metrics of a batch of images.

    Args:
        reconstruction: (B, H, W) float.
        target: (B, H, W) float.
        data_range: (B,) volume maximum of each target.

    Returns:
        ``{"mse", "nmse", "psnr", "ssim"}``, each a float64 tensor (B,).
    """
    if reconstruction.shape != target.shape or reconstruction.ndim != 3:
        raise ValueError(
            f"expected reconstruction and target of the same shape (B, H, W), got "
            f"{tuple(reconstruction.shape)} and {tuple(target.shape)}"
        )
    x_hat = reconstruction.double()
    x = target.double()
    data_range = data_range.double().to(x.device)
    squared_error = (x_hat - x).pow(2).flatten(1)
    raw_mse = squared_error.mean(dim=1)
    mse = raw_mse / data_range**2
    nmse = squared_error.sum(dim=1) / x.pow(2).flatten(1).sum(dim=1)
    psnr = -10.0 * torch.log10(mse.clamp_min(_MSE_FLOOR))
    ssim_map = _ssim_module(x.device)(
        x.float().unsqueeze(1), x_hat.float().unsqueeze(1), data_range.float(), reduced=False
    )
    ssim = 1.0 - ssim_map.double().flatten(1).mean(dim=1)
    return {"mse": mse, "nmse": nmse, "psnr": psnr, "ssim": ssim}
