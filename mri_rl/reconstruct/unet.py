"""Image-domain U-Net reconstructor around ``fastmri.models.Unet``.

The U-Net (Ronneberger et al., MICCAI 2015; the fastMRI baseline of Zbontar et al., 2018)
refines the zero-filled image. Its input is normalised with the mean and standard
deviation of the zero-filled image itself, i.e. from observed data only, and the output
is mapped back with the same statistics: no ground-truth statistic is ever used.
"""

from __future__ import annotations

import torch
from fastmri.models import Unet

from mri_rl.reconstruct.base import FeatureLayer, zero_filled_image
from mri_rl.reconstruct.trainable import TrainableReconstructor


class UnetReconstructor(TrainableReconstructor):
    """Zero-filled image -> instance normalisation -> U-Net -> de-normalisation.

    Args:
        chans: channels of the first U-Net layer.
        num_pool_layers: down-sampling steps.
        drop_prob: dropout probability.
        challenge: data the network is trained for ("singlecoil" or "multicoil").
        recon_size: (h, w) of the images it was trained on, checked when loaded.
    """

    kind = "unet"
    normalization = "input mean/std of the zero-filled image (observed data only)"

    def __init__(
        self,
        chans: int = 32,
        num_pool_layers: int = 4,
        drop_prob: float = 0.0,
        challenge: str = "singlecoil",
        recon_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(
            {"chans": chans, "num_pool_layers": num_pool_layers, "drop_prob": drop_prob}, challenge, recon_size
        )
        self.unet = Unet(in_chans=1, out_chans=1, chans=chans, num_pool_layers=num_pool_layers, drop_prob=drop_prob)

    @staticmethod
    def normalise(image: torch.Tensor, eps: float = 1e-11) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Instance normalisation of (B, h, w) images; returns (normalised, mean, std), stats (B, 1, 1)."""
        mean = image.mean(dim=(-2, -1), keepdim=True)
        std = image.std(dim=(-2, -1), keepdim=True)
        return (image - mean) / (std + eps), mean, std + eps

    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        normalised, mean, std = self.normalise(zero_filled_image(masked_kspace, output_size))
        return self.unet(normalised.unsqueeze(1)).squeeze(1) * std + mean

    def feature_layer(self) -> FeatureLayer:
        """The last convolution block of the U-Net's decoder: its ``chans`` feature maps at the image's
        size, from which the final 1x1 convolution makes the image."""
        last_block = self.unet.up_conv[-1][0]
        return FeatureLayer(last_block, self.unet.chans)
