"""Reconstructors: the emission function f(masked k-space, mask) -> image."""

from mri_rl.reconstruct.base import Reconstructor, zero_filled_image
from mri_rl.reconstruct.checkpoint import build_reconstructor, export_reconstructor, load_reconstructor
from mri_rl.reconstruct.trainable import TrainableReconstructor
from mri_rl.reconstruct.unet import UnetReconstructor
from mri_rl.reconstruct.varnet import VarNetReconstructor
from mri_rl.reconstruct.zero_filled import ZeroFilledReconstructor

__all__ = [
    "Reconstructor",
    "TrainableReconstructor",
    "UnetReconstructor",
    "VarNetReconstructor",
    "ZeroFilledReconstructor",
    "build_reconstructor",
    "export_reconstructor",
    "load_reconstructor",
    "zero_filled_image",
]
