"""End-to-end variational network reconstructor around ``fastmri.models.VarNet``.

The E2E-VarNet (Sriram et al., "End-to-End Variational Networks for Accelerated MRI
Reconstruction", MICCAI 2020) unrolls ``num_cascades`` steps of soft data consistency
plus a U-Net refinement in k-space, with coil sensitivities estimated from the
fully-sampled centre of the acquired k-space. Every U-Net inside normalises its own input
(``NormUnet``), so only observed data set the scale.
"""

from __future__ import annotations

import torch
from fastmri.data.transforms import center_crop
from fastmri.models import VarNet
from fastmri.models.varnet import SensitivityModel

from mri_rl.reconstruct.trainable import TrainableReconstructor


class CentredSensitivityModel(SensitivityModel):
    """fastmri's coil-sensitivity model, its band of low frequencies placed where :mod:`mri_rl.kspace`
    acquires them: ``n`` columns from ``W // 2 - n // 2``, around column ``W // 2`` as fastmri counts them.
    fastmri's own ``(W - n + 1) // 2`` is that for even widths and one column to the right for odd ones,
    where the band would take an unacquired column and leave out an acquired one."""

    def get_pad_and_num_low_freqs(
        self, mask: torch.Tensor, num_low_frequencies: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(pad (B,), n (B,)): the band is columns ``[pad, pad + n)`` of ``mask`` (B, 1, 1, W, 1)."""
        _, count = super().get_pad_and_num_low_freqs(mask, num_low_frequencies)
        return (mask.shape[-2] // 2 - count // 2).long(), count


class VarNetReconstructor(TrainableReconstructor):
    """Masked multi-coil k-space -> E2E-VarNet -> root-sum-of-squares image -> centre crop.

    The number of low frequencies used for the sensitivity maps is left to fastmri, which
    counts the contiguous acquired columns around the centre of each mask (at least one;
    a mask with every column acquired counts as one); where they lie is this project's
    centre (:class:`CentredSensitivityModel`).

    Args:
        num_cascades: unrolled cascades.
        sens_chans: channels of the first layer of the sensitivity U-Net.
        sens_pools: down-sampling steps of the sensitivity U-Net.
        chans: channels of the first layer of each cascade's U-Net.
        pools: down-sampling steps of each cascade's U-Net.
        challenge: data the network is trained for (default "multicoil").
        recon_size: (h, w) of the images it was trained on, checked when loaded.
    """

    kind = "varnet"
    normalization = "each cascade's U-Net input mean/std (observed data only)"

    def __init__(
        self,
        num_cascades: int = 12,
        sens_chans: int = 8,
        sens_pools: int = 4,
        chans: int = 18,
        pools: int = 4,
        challenge: str = "multicoil",
        recon_size: tuple[int, int] | None = None,
    ) -> None:
        hparams = {
            "num_cascades": num_cascades,
            "sens_chans": sens_chans,
            "sens_pools": sens_pools,
            "chans": chans,
            "pools": pools,
        }
        super().__init__(hparams, challenge, recon_size)
        self.varnet = VarNet(**hparams)
        with torch.random.fork_rng(devices=[]):  # fastmri's initial weights and random stream, unchanged
            centred = CentredSensitivityModel(chans=sens_chans, num_pools=sens_pools)
        centred.load_state_dict(self.varnet.sens_net.state_dict())
        self.varnet.sens_net = centred

    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        kspace = torch.view_as_real(masked_kspace)  # (B, C, H, W, 2)
        column_mask = mask.bool()[:, None, None, :, None]  # fastMRI's layout (B, 1, 1, W, 1)
        return center_crop(self.varnet(kspace, column_mask), output_size)
