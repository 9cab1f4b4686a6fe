"""Batched image-quality metrics with fastMRI's conventions.

fastMRI (Zbontar et al., 2018) scores a reconstruction against its target with the data
range set to the maximum of the target *volume* (the file's ``max`` attribute). All
metrics here take that data range per image and work on whole batches in torch:

- ``mse``: mean squared error in units of the data range, ``mean((x̂ - x)²) / max²``
  (so ``psnr = -10 log10(mse)``); scale-free across datasets.
- ``nmse``: ``‖x̂ - x‖² / ‖x‖²`` per image.
- ``psnr``: ``10 log10(max² / mean((x̂ - x)²))`` in dB, with the error floored at
  ``1e-20`` of the data range² (200 dB) so an exact reconstruction stays finite.
- ``ssim``: the SSIM (Wang et al., IEEE TIP 2004) exactly as ``fastmri.evaluate.ssim``
  computes it through ``skimage.metrics.structural_similarity``: 7x7 uniform window,
  K1 0.01, K2 0.03, sample covariance, mean over the valid (uncropped) window positions.
  The five local means come from one separable box filter on running sums (a few
  operations per pixel, whatever the window), much faster than the five 7x7
  convolutions of ``fastmri.SSIMLoss``; this runs at every env step and look-ahead.
"""

from __future__ import annotations

import torch

METRIC_NAMES = ("mse", "nmse", "psnr", "ssim")
HIGHER_IS_BETTER = {"mse": False, "nmse": False, "psnr": True, "ssim": True}
_MSE_FLOOR = 1e-20
SSIM_WINDOW, SSIM_K1, SSIM_K2 = 7, 0.01, 0.03


def box_mean(images: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over every ``window`` x ``window`` patch (valid positions only).

    Args:
        images: (..., H, W).

    Returns:
        (..., H - window + 1, W - window + 1), as ``avg_pool2d(images, window, stride=1)``.
    """
    return images.unfold(-1, window, 1).sum(-1).unfold(-2, window, 1).sum(-1) / window**2


def ssim(reconstruction: torch.Tensor, target: torch.Tensor, data_range: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image.

    Computed in float32 on images shifted by the target's mean (the (co)variances are
    shift-invariant and the shift is added back to the local means), which keeps the
    cancellation in ``E[x²] - E[x]²`` small: agrees with ``fastmri.evaluate.ssim`` to
    about 1e-6.

    Args:
        reconstruction, target: (B, H, W), H and W at least 7.
        data_range: (B,).

    Returns:
        float64 (B,).
    """
    shift = target.mean(dim=(-2, -1), keepdim=True)
    x, y = (target - shift).float(), (reconstruction - shift).float()
    local = box_mean(torch.stack([x, y, x * x, y * y, x * y], dim=1), SSIM_WINDOW)
    ux, uy, uxx, uyy, uxy = local.unbind(dim=1)
    cov_norm = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    ux, uy = ux + shift.float(), uy + shift.float()
    c1 = (SSIM_K1 * data_range.float())[:, None, None] ** 2
    c2 = (SSIM_K2 * data_range.float())[:, None, None] ** 2
    ssim_map = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return ssim_map.flatten(1).double().mean(dim=1)


def _check_shapes(reconstruction: torch.Tensor, target: torch.Tensor) -> None:
    if reconstruction.shape != target.shape or reconstruction.ndim != 3:
        raise ValueError(
            f"expected reconstruction and target of the same shape (B, H, W), got "
            f"{tuple(reconstruction.shape)} and {tuple(target.shape)}"
        )


def _squared_error_metrics(reconstruction: torch.Tensor, target: torch.Tensor,
                           data_range: torch.Tensor) -> dict[str, torch.Tensor]:
    """mse, nmse, psnr; squares summed in float64."""
    sum_squared_error = (reconstruction - target).pow(2).flatten(1).sum(dim=1, dtype=torch.float64)
    data_range = data_range.double().to(target.device)
    mse = sum_squared_error / target[0].numel() / data_range**2
    return {
        "mse": mse,
        "nmse": sum_squared_error / target.pow(2).flatten(1).sum(dim=1, dtype=torch.float64),
        "psnr": -10.0 * torch.log10(mse.clamp_min(_MSE_FLOOR)),
    }


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
    _check_shapes(reconstruction, target)
    return {**_squared_error_metrics(reconstruction, target, data_range),
            "ssim": ssim(reconstruction, target, data_range.to(target.device))}


@torch.no_grad()
def image_metric(name: str, reconstruction: torch.Tensor, target: torch.Tensor,
                 data_range: torch.Tensor) -> torch.Tensor:
    """One metric of :func:`image_metrics`, computing nothing else (float64 (B,))."""
    _check_shapes(reconstruction, target)
    if name == "ssim":
        return ssim(reconstruction, target, data_range.to(target.device))
    return _squared_error_metrics(reconstruction, target, data_range)[name]
