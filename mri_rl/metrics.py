"""Batched image-quality metrics with fastMRI's conventions.

fastMRI (Zbontar et al., "fastMRI: An Open Dataset and Benchmarks for Accelerated MRI", 2018)
scores a reconstruction against its target with the data range set to the maximum of the
target *volume* (the file's ``max`` attribute). All metrics here take that data range per
image and work on whole batches in torch. Every one is scale-free: scaling a volume
(k-space, target and ``max`` together) by any factor leaves it unchanged. SSIM is computed
on the images divided by their data range, and the others from float64 norms divided by it
(NMSE: by the target's norm), so no float32 square of a raw intensity is taken (those of a
volume scaled by 1e30 overflow, those of one scaled by 1e-30 underflow):

- ``mse``: mean squared error in units of the data range, ``mean((x̂ - x)²) / max²``
  (so ``psnr = -10 log10(mse)``): ``(‖x̂ - x‖ / max)² / pixels``, the norm in float64.
- ``nmse``: ``‖x̂ - x‖² / ‖x‖²`` per image, ``(‖x̂ - x‖ / ‖x‖)²`` with float64 norms (it
  needs no data range); undefined (inf) for an all-zero target, which
  :func:`mri_rl.data.fastmri_files.inspect_volume` refuses.
- ``psnr``: ``10 log10(max² / mean((x̂ - x)²))`` in dB, with the error floored at
  ``1e-20`` of the data range² (200 dB) so an exact reconstruction stays finite.
- ``ssim``: the SSIM (Wang et al., IEEE TIP 2004) exactly as ``fastmri.evaluate.ssim``
  computes it through ``skimage.metrics.structural_similarity``: 7x7 uniform window,
  K1 0.01, K2 0.03, sample covariance, mean over the valid (uncropped) window positions;
  in float32 on the images divided by the data range, so the constants ``(K L)²`` are those
  of L = 1 (for L = 1e30 they would overflow float32).
  The local means come from box sums over unfolded windows, much faster than the five
  7x7 convolutions of ``fastmri.SSIMLoss``; this runs at every env step and look-ahead,
  so the target's own local statistics can be computed once and kept
  (:class:`TargetStatistics`), leaving three box filters per reconstruction.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

HIGHER_IS_BETTER = {"mse": False, "nmse": False, "psnr": True, "ssim": True}
_MSE_FLOOR = 1e-20
SSIM_WINDOW, SSIM_K1, SSIM_K2 = 7, 0.01, 0.03


def box_sum(images: torch.Tensor, window: int) -> torch.Tensor:
    """Sum over every ``window`` x ``window`` patch (valid positions only).

    Args:
        images: (..., H, W).

    Returns:
        (..., H - window + 1, W - window + 1).
    """
    return images.unfold(-1, window, 1).sum(-1).unfold(-2, window, 1).sum(-1)


class TargetStatistics(NamedTuple):
    """What SSIM needs of the targets (and their data ranges) alone, computed once per
    target and kept: the environment scores many reconstructions of each target.

    Window sums stand for window means (n = 49 pixels), with the constants scaled to
    match, so no division is needed per reconstruction.

    Everything is in units of the data range L (the target divided by L), so the constants
    are those of L = 1 whatever the scale of the images.

    Attributes:
        scale: (B, 1, 1) float32 ``1 / L``: what the reconstructions are multiplied by.
        shift: (B, 1, 1) float32 mean of each target / L.
        centred: (B, H, W) float32 target / L minus its mean.
        local_sum: (B, H - 6, W - 6) 7x7 sums of ``centred``.
        local_sum_uncentred: the same for the target itself, ``local_sum + n shift``.
        mean_term: (B, H - 6, W - 6) ``n² (mu_x² + C1)`` (``mu_x`` the local mean).
        variance_term: (B, H - 6, W - 6) ``n sigma_x² + C2 (n - 1)``: the population
            variance, with the sample-covariance factor n/(n-1) moved onto C2.
        c1, c2: (B, 1, 1) ``n² C1 = n² K1²`` and ``(n - 1) C2 = (n - 1) K2²`` (data range 1).
    """

    scale: torch.Tensor
    shift: torch.Tensor
    centred: torch.Tensor
    local_sum: torch.Tensor
    local_sum_uncentred: torch.Tensor
    mean_term: torch.Tensor
    variance_term: torch.Tensor
    c1: torch.Tensor
    c2: torch.Tensor

    def select(self, rows: torch.Tensor | slice) -> TargetStatistics:
        """The statistics of targets ``rows``."""
        return TargetStatistics(*(values[rows] for values in self))


_WINDOW_PIXELS = SSIM_WINDOW**2


@torch.no_grad()
def target_statistics(target: torch.Tensor, data_range: torch.Tensor) -> TargetStatistics:
    """:class:`TargetStatistics` of targets (B, H, W) with data ranges (B,)."""
    n = _WINDOW_PIXELS
    scale = inverse_range(data_range, target.device).float()
    normalized = target.float() * scale
    shift = normalized.mean(dim=(-2, -1), keepdim=True)
    centred = normalized - shift
    local_sum, local_square_sum = box_sum(torch.stack([centred, centred * centred], dim=1), SSIM_WINDOW).unbind(dim=1)
    c1 = torch.full_like(shift, n**2 * SSIM_K1**2)
    c2 = torch.full_like(shift, (n - 1) * SSIM_K2**2)
    uncentred = local_sum + n * shift
    variance_term = local_square_sum.addcmul_(local_sum, local_sum, value=-1 / n).add_(c2)
    return TargetStatistics(
        scale, shift, centred, local_sum, uncentred, torch.addcmul(c1, uncentred, uncentred), variance_term, c1, c2
    )


def inverse_range(data_range: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``1 / data_range`` as float64 (B, 1, 1) on ``device``: what images are multiplied by to be
    in units of their data range."""
    return data_range.to(device=device, dtype=torch.float64).reciprocal()[:, None, None]


def ssim(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    data_range: torch.Tensor,
    statistics: TargetStatistics | None = None,
) -> torch.Tensor:
    """Mean SSIM per image.

    Computed in float32 on images divided by the data range (SSIM with data range L of
    images x, y is that with data range 1 of x / L, y / L) and shifted by the target's mean
    (the (co)variances are shift-invariant and the shift is added back to the local means),
    which keeps the cancellation in ``E[x²] - E[x]²`` small: agrees with
    ``fastmri.evaluate.ssim`` to about 1e-6, whatever the scale of the images. It runs at
    every env step, so the arithmetic is in place, on window sums (see :class:`TargetStatistics`).

    Args:
        reconstruction, target: (B, H, W), H and W at least 7.
        data_range: (B,).
        statistics: :func:`target_statistics` of ``target`` and ``data_range``, when kept
            from before.

    Returns:
        float64 (B,).
    """
    if statistics is None:
        statistics = target_statistics(target, data_range)
    scale, shift, x, sum_x, sum_x_uncentred, mean_term, variance_term, c1, c2 = statistics
    n = _WINDOW_PIXELS
    y = reconstruction.float() * scale - shift
    sum_y, variance_y, covariance = box_sum(torch.stack([y, y * y, x * y], dim=1), SSIM_WINDOW).unbind(dim=1)
    variance_y.addcmul_(sum_y, sum_y, value=-1 / n)  # n sigma_y²
    covariance.addcmul_(sum_x, sum_y, value=-1 / n)  # n sigma_xy
    sum_y.add_(shift, alpha=n)  # uncentred
    numerator = torch.addcmul(c1, sum_x_uncentred, sum_y, value=2).mul_(torch.add(c2, covariance, alpha=2))
    denominator = torch.addcmul(mean_term, sum_y, sum_y).mul_(variance_y.add_(variance_term))
    return numerator.div_(denominator).flatten(1).mean(dim=1, dtype=torch.float64)


def _check_shapes(reconstruction: torch.Tensor, target: torch.Tensor) -> None:
    if reconstruction.shape != target.shape or reconstruction.ndim != 3:
        raise ValueError(
            f"expected reconstruction and target of the same shape (B, H, W), got "
            f"{tuple(reconstruction.shape)} and {tuple(target.shape)}"
        )


def _squared_error_metrics(
    reconstruction: torch.Tensor, target: torch.Tensor, data_range: torch.Tensor
) -> dict[str, torch.Tensor]:
    """mse, nmse, psnr from the L2 norms of the error and of the target, in float64: each pixel
    is squared in float64 (float32's range squared fits), then the norms are divided by the
    data range (mse, psnr) or by each other (nmse), so the results are scale-free."""
    pixels = (-2, -1)
    error_norm = torch.linalg.vector_norm(reconstruction - target, dim=pixels, dtype=torch.float64)
    target_norm = torch.linalg.vector_norm(target, dim=pixels, dtype=torch.float64)
    mse = (error_norm / data_range.to(device=target.device, dtype=torch.float64)).square() / target[0].numel()
    return {
        "mse": mse,
        "nmse": (error_norm / target_norm).square(),
        "psnr": -10.0 * torch.log10(mse.clamp_min(_MSE_FLOOR)),
    }


@torch.no_grad()
def image_metrics(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    data_range: torch.Tensor,
    statistics: TargetStatistics | None = None,
) -> dict[str, torch.Tensor]:
    """All metrics of a batch of images.

    Args:
        reconstruction: (B, H, W) float.
        target: (B, H, W) float.
        data_range: (B,) volume maximum of each target.
        statistics: :func:`target_statistics` of ``target``, when kept from before.

    Returns:
        ``{"mse", "nmse", "psnr", "ssim"}``, each a float64 tensor (B,).
    """
    _check_shapes(reconstruction, target)
    return {
        **_squared_error_metrics(reconstruction, target, data_range),
        "ssim": ssim(reconstruction, target, data_range.to(target.device), statistics),
    }


@torch.no_grad()
def image_metric(
    name: str,
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    data_range: torch.Tensor,
    statistics: TargetStatistics | None = None,
) -> torch.Tensor:
    """One metric of :func:`image_metrics`, computing nothing else (float64 (B,))."""
    _check_shapes(reconstruction, target)
    if name == "ssim":
        return ssim(reconstruction, target, data_range.to(target.device), statistics)
    return _squared_error_metrics(reconstruction, target, data_range)[name]
