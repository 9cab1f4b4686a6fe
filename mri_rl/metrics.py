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

    Attributes:
        shift: (B, 1, 1) float32 mean of each target.
        centred: (B, H, W) float32 target minus its mean.
        local_sum: (B, H - 6, W - 6) 7x7 sums of ``centred``.
        local_sum_uncentred: the same for the target itself, ``local_sum + n shift``.
        mean_term: (B, H - 6, W - 6) ``n² (mu_x² + C1)`` (``mu_x`` the local mean).
        variance_term: (B, H - 6, W - 6) ``n sigma_x² + C2 (n - 1)``: the population
            variance, with the sample-covariance factor n/(n-1) moved onto C2.
        c1, c2: (B, 1, 1) ``n² C1 = n² (K1 L)²`` and ``(n - 1) C2 = (n - 1) (K2 L)²`` for data range L.
    """

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
    shift = target.mean(dim=(-2, -1), keepdim=True).float()
    centred = target.float() - shift
    local_sum, local_square_sum = box_sum(torch.stack([centred, centred * centred], dim=1), SSIM_WINDOW).unbind(dim=1)
    data_range = data_range.float().to(target.device)[:, None, None]
    c1 = n**2 * (SSIM_K1 * data_range) ** 2
    c2 = (n - 1) * (SSIM_K2 * data_range) ** 2
    uncentred = local_sum + n * shift
    variance_term = local_square_sum.addcmul_(local_sum, local_sum, value=-1 / n).add_(c2)
    return TargetStatistics(
        shift, centred, local_sum, uncentred, torch.addcmul(c1, uncentred, uncentred), variance_term, c1, c2
    )


def ssim(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    data_range: torch.Tensor,
    statistics: TargetStatistics | None = None,
) -> torch.Tensor:
    """Mean SSIM per image.

    Computed in float32 on images shifted by the target's mean (the (co)variances are
    shift-invariant and the shift is added back to the local means), which keeps the
    cancellation in ``E[x²] - E[x]²`` small: agrees with ``fastmri.evaluate.ssim`` to
    about 1e-6. It runs at every env step, so the arithmetic is in place, on window sums
    (see :class:`TargetStatistics`).

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
    shift, x, sum_x, sum_x_uncentred, mean_term, variance_term, c1, c2 = statistics
    n = _WINDOW_PIXELS
    y = reconstruction.float() - shift
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
