"""Slices of a fastMRI split with k-space under seeded masks: reconstructor training pairs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import torch
from torch.utils.data import Dataset

from mri_rl.data import FastMRISliceDataset
from mri_rl.kspace import check_initial_lines
from mri_rl.reconstruct.training_masks import MaskSampler


class ReconstructionSample(NamedTuple):
    """One training pair; the DataLoader stacks each field along a new batch dimension B.

    Attributes:
        masked_kspace: complex64 (C, H, W), unacquired columns zero (C = 1 single-coil).
        mask: bool (W,), True where acquired.
        target: float32 (h, w).
        data_range: float32 scalar, the volume maximum of the target (fastMRI's convention).
    """

    masked_kspace: torch.Tensor
    mask: torch.Tensor
    target: torch.Tensor
    data_range: torch.Tensor


def split_geometry(slices: FastMRISliceDataset, batch_size: int) -> tuple[tuple[int, int], tuple[int, ...]]:
    """The target size and k-space shape shared by a split's volumes.

    Returns:
        (recon_size (h, w), k-space shape of one slice; that of the first volume when
        shapes differ and ``batch_size`` is 1).

    Raises:
        ValueError: volumes with different target sizes, or with different k-space
            shapes while ``batch_size`` > 1 (such slices cannot be stacked into batches).
    """
    volumes = list(slices.volumes.values())
    recon_sizes = {(v.geometry.recon_size[0], v.geometry.recon_size[1]) for v in volumes}
    if len(recon_sizes) > 1:
        raise ValueError(f"{slices.folder} mixes target sizes {sorted(recon_sizes)}; a reconstructor needs one")
    kspace_shapes = {v.slice_shape for v in volumes}
    if len(kspace_shapes) > 1 and batch_size > 1:
        raise ValueError(f"{slices.folder} mixes k-space shapes {sorted(kspace_shapes)}: use batch_size 1")
    return recon_sizes.pop(), volumes[0].slice_shape


def check_masks_leave_columns(samplers: Iterable[MaskSampler], slices: FastMRISliceDataset) -> None:
    """Refuse samplers whose initial lines leave no measurable column of ``slices`` to acquire, as the
    environment refuses such a task (:func:`~mri_rl.kspace.check_initial_lines`).

    Raises:
        ValueError: naming the initial lines and the columns of the narrowest volume.
    """
    narrowest = min(slices.volumes.values(), key=lambda volume: volume.geometry.acquired_width)
    for sampler in samplers:
        lines = sampler.most_initial_lines()
        if lines is not None:
            check_initial_lines(lines, narrowest.geometry.acquired_width, narrowest.slice_shape[-1])


class MaskedSlices(Dataset):
    """``slices`` with each k-space masked by ``sampler`` seeded with ``(*seed, index)``.

    Args:
        slices: the slices of one split (with targets).
        sampler: draws the column mask of each slice.
        seed: prefix of the per-slice mask seed, e.g. (base_seed,) for fixed masks or
            (base_seed, epoch) for masks redrawn every epoch.
    """

    def __init__(self, slices: FastMRISliceDataset, sampler: MaskSampler, seed: tuple[int, ...]) -> None:
        self.slices = slices
        self.sampler = sampler
        self.seed = tuple(seed)

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, index: int) -> ReconstructionSample:
        item = self.slices[index]
        meta = item.metadata
        kspace = item.kspace.reshape(meta.num_coils, *item.kspace.shape[-2:])  # (C, H, W)
        mask = torch.from_numpy(
            self.sampler(kspace.shape[-1], meta.padding_left, meta.padding_right, (*self.seed, index))
        )
        data_range = meta.max_value if meta.max_value is not None else float(item.target.max())
        return ReconstructionSample(
            masked_kspace=kspace * mask.to(kspace.real.dtype),
            mask=mask,
            target=item.target,
            data_range=torch.tensor(data_range, dtype=torch.float32),
        )
