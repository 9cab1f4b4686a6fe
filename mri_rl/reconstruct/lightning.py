"""PyTorch Lightning data and training modules for the learned reconstructors.

``fastmri.pl_modules`` relies on hooks that Lightning 2 removed, so these wrap
``fastmri.models`` (through :class:`UnetReconstructor` and :class:`VarNetReconstructor`)
directly.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import fastmri
import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO
from lightning_fabric.utilities.data import AttributeDict
from pytorch_lightning.utilities.types import OptimizerLRSchedulerConfig
from torch.utils.data import DataLoader, Sampler

from mri_rl.checkpointing import entry_errors, load_module_state, read_checkpoint, save_checkpoint, typed_entry
from mri_rl.data import FastMRISliceDataset
from mri_rl.metrics import image_metrics
from mri_rl.reconstruct.checkpoint import TRAINABLE_KINDS
from mri_rl.reconstruct.masked_slices import (
    MaskedSlices,
    ReconstructionSample,
    check_masks_leave_columns,
    split_geometry,
)
from mri_rl.reconstruct.training_masks import MaskSampler
from mri_rl.threads import follow_free_cpus

LOSSES = ("l1", "ssim")
#: Entries of a Lightning checkpoint that hold weights and optimiser state (which must be finite).
LIGHTNING_WEIGHTS = ("state_dict", "optimizer_states")


def seed_value(seed: tuple[int, ...]) -> int:
    """One 32-bit seed drawn from a seed tuple, e.g. (base_seed, epoch), for an RNG that takes an int."""
    return int(np.random.SeedSequence(seed).generate_state(1)[0])


class EpochOrder(Sampler[int]):
    """The indices ``0 .. size-1`` in an order drawn from ``seed``, e.g. (base_seed, epoch).

    Every iteration gives the same order, and nothing is drawn from the global RNGs: Lightning
    iterates a reloaded training loader twice in an uninterrupted epoch but once in the first
    epoch of a resumed run, so a shuffle that draws afresh each time differs after ``--resume``.
    """

    def __init__(self, size: int, seed: tuple[int, ...]) -> None:
        self.size = size
        self.seed = seed

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        return iter(np.random.default_rng(self.seed).permutation(self.size).tolist())


class EpochSeeds(pl.Callback):
    """Seeds torch's, numpy's and Python's global RNGs from ``(seed, epoch)`` as each training
    epoch starts (``seed_everything`` seeds them once, before the model is built), so that an
    epoch's draws (dropout) do not depend on what ran before it, such as the epochs a resumed run
    did not train itself: a run resumed from an epoch's end goes on as the uninterrupted run.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = seed_value((self.seed, trainer.current_epoch))
        torch.manual_seed(value)
        np.random.seed(value)
        random.seed(value)


class EpochEndCheckpoint(pl.Callback):
    """Writes the resumable checkpoint ``path`` (``last.ckpt``) at the end of every training epoch,
    after the epoch's validation, if it has one.

    Lightning's ``ModelCheckpoint(save_last=True)`` writes it only at a step where it saves a
    top-k checkpoint (2.6: when the monitored val SSIM improves, and only on validation epochs),
    so a run whose val SSIM stopped improving would resume from that epoch and train the later
    ones again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.fast_dev_run:  # type: ignore[attr-defined]  # undeclared on Trainer; as ModelCheckpoint
            trainer.save_checkpoint(self.path, weights_only=False)  # all of it; unset, Lightning logs a line


class ReconstructionDataModule(pl.LightningDataModule):
    """Masked k-space / target pairs from a training and a validation folder.

    Training masks are seeded with ``(seed, epoch, index)`` and the training order with
    ``(seed, epoch)`` (:class:`EpochOrder`), so each epoch sees new masks in a new order, a run
    is reproducible and an epoch is the same whether the run was resumed before it or not; this
    needs the dataloader rebuilt every epoch (``Trainer(reload_dataloaders_every_n_epochs=1)``,
    as :func:`train_reconstructor` sets). Validation masks are seeded with ``(seed, index)``:
    fixed for the whole run.

    Args:
        train_folder: folder of the training ``.h5`` files.
        val_folder: folder of the validation ``.h5`` files.
        challenge: "singlecoil" or "multicoil".
        masks: draws the masks of both splits.
        batch_size: slices per batch (1 when volumes differ in k-space shape).
        num_workers: DataLoader worker processes.
        seed: base seed of the masks.
        on_bad_file: "raise" or "skip" bad files.
    """

    def __init__(
        self,
        train_folder: str | Path,
        val_folder: str | Path,
        challenge: str,
        masks: MaskSampler,
        batch_size: int = 4,
        num_workers: int = 0,
        seed: int = 0,
        on_bad_file: str = "raise",
    ) -> None:
        super().__init__()
        self.train_folder, self.val_folder = Path(train_folder), Path(val_folder)
        self.challenge = challenge
        self.masks = masks
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.on_bad_file = on_bad_file
        self.train_slices: FastMRISliceDataset | None = None
        self.val_slices: FastMRISliceDataset | None = None
        self.recon_size: tuple[int, int] | None = None

    def setup(self, stage: str | None = None) -> None:
        """Open and check both splits (once); sets :attr:`recon_size`.

        Raises:
            ValueError: the splits differ in target size, or cannot be batched, or the masks' initial lines
                leave no column of a split to acquire (:func:`check_masks_leave_columns`).
        """
        if self.train_slices is not None:
            return
        train = FastMRISliceDataset(self.train_folder, self.challenge, on_bad_file=self.on_bad_file)
        val = FastMRISliceDataset(self.val_folder, self.challenge, on_bad_file=self.on_bad_file)
        train_size, _ = split_geometry(train, self.batch_size)
        val_size, _ = split_geometry(val, self.batch_size)
        if train_size != val_size:
            raise ValueError(f"train targets are {train_size}, val targets {val_size}: they must match")
        for slices in (train, val):  # as eval-recon and the env refuse them: every mask would be fully sampled
            check_masks_leave_columns([self.masks], slices)
        self.train_slices, self.val_slices, self.recon_size = train, val, train_size

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        if trainer is not None:
            every = trainer.reload_dataloaders_every_n_epochs  # type: ignore[attr-defined]  # undeclared on Trainer
            if every != 1:
                warnings.warn(
                    "training masks are redrawn each epoch only with Trainer(reload_dataloaders_every_n_epochs=1)",
                    stacklevel=2,
                )
        epoch = trainer.current_epoch if trainer is not None else 0
        slices = cast(FastMRISliceDataset, self.train_slices)  # opened by setup(), which Lightning runs first
        seed = (self.seed, epoch)
        # the generator, not torch's global RNG, seeds the workers (MaskedSlices draws nothing from their RNGs)
        return self._loader(
            MaskedSlices(slices, self.masks, seed),
            sampler=EpochOrder(len(slices), seed),
            generator=torch.Generator().manual_seed(seed_value(seed)),
        )

    def val_dataloader(self) -> DataLoader:
        slices = cast(FastMRISliceDataset, self.val_slices)  # opened by setup(), which Lightning runs first
        return self._loader(MaskedSlices(slices, self.masks, (self.seed,)))

    def _loader(self, dataset: MaskedSlices, **options: Any) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers, **options)


class ReconstructionModule(pl.LightningModule):
    """Supervised training of a learned reconstructor on masked k-space.

    Loss "l1" is the mean absolute error divided by the data range (scale-free across
    datasets); loss "ssim" is ``1 - SSIM`` (``fastmri.SSIMLoss``, 7x7 window, with the
    volume maximum as data range). Optimiser: Adam with a step learning-rate decay, as
    the fastMRI baselines (Zbontar et al., 2018; Sriram et al., MICCAI 2020).

    Args:
        model: "unet" or "varnet".
        model_hparams: keyword arguments of the reconstructor's architecture.
        challenge: "singlecoil" or "multicoil".
        recon_size: (h, w) of the targets.
        loss: "l1" or "ssim".
        lr: Adam learning rate.
        lr_step_size: epochs between learning-rate decays.
        lr_gamma: decay factor.
        weight_decay: Adam weight decay.
    """

    def __init__(
        self,
        model: str,
        model_hparams: dict[str, Any],
        challenge: str,
        recon_size: Sequence[int],
        loss: str = "l1",
        lr: float = 1e-3,
        lr_step_size: int = 40,
        lr_gamma: float = 0.1,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        if model not in TRAINABLE_KINDS:
            raise ValueError(f"unknown reconstructor {model!r}; trainable kinds: {sorted(TRAINABLE_KINDS)}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")
        recon_size = [int(n) for n in recon_size]  # save_hyperparameters records it as a plain YAML list
        self.save_hyperparameters()
        self.reconstructor = TRAINABLE_KINDS[model](**model_hparams, challenge=challenge, recon_size=tuple(recon_size))
        self.ssim_loss = fastmri.SSIMLoss() if loss == "ssim" else None

    def forward(self, batch: ReconstructionSample) -> torch.Tensor:
        """Reconstruct a batch: float (B, h, w)."""
        return self.reconstructor(batch.masked_kspace, batch.mask, tuple(batch.target.shape[-2:]))

    def loss(self, reconstruction: torch.Tensor, target: torch.Tensor, data_range: torch.Tensor) -> torch.Tensor:
        """Scalar loss of (B, h, w) reconstructions against (B, h, w) targets with (B,) data ranges."""
        if self.ssim_loss is not None:
            return self.ssim_loss(reconstruction.unsqueeze(1), target.unsqueeze(1), data_range)
        return ((reconstruction - target).abs().flatten(1).mean(dim=1) / data_range).mean()

    def training_step(self, batch: ReconstructionSample, batch_index: int) -> torch.Tensor:
        follow_free_cpus()
        loss = self.loss(self(batch), batch.target, batch.data_range)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(batch.target))
        return loss

    def validation_step(self, batch: ReconstructionSample, batch_index: int) -> None:
        follow_free_cpus()
        reconstruction = self(batch)
        size = len(batch.target)
        self.log("val_loss", self.loss(reconstruction, batch.target, batch.data_range), batch_size=size, sync_dist=True)
        metrics = image_metrics(reconstruction, batch.target, batch.data_range)
        for name in ("ssim", "psnr", "nmse"):
            self.log(
                f"val_{name}", metrics[name].mean().float(), batch_size=size, sync_dist=True, prog_bar=name == "ssim"
            )

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        hparams = cast(AttributeDict, self.hparams)  # what save_hyperparameters() stores
        optimizer = torch.optim.Adam(self.parameters(), lr=hparams.lr, weight_decay=hparams.weight_decay)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, hparams.lr_step_size, hparams.lr_gamma)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


class VerifiedCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint files through :mod:`mri_rl.checkpointing`.

    Written atomically with a content checksum (a full disk leaves no truncated
    ``best-*.ckpt``); read with ``torch.load(weights_only=True)`` passed explicitly, so a
    crafted ``last.ckpt`` runs no code on resume whatever torch's default, and verified
    (checksum, finite weights). Use as ``Trainer(plugins=[VerifiedCheckpointIO()])``.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        save_checkpoint(checkpoint, path)

    def load_checkpoint(self, path: Any, map_location: Any = "cpu", weights_only: bool | None = None) -> dict[str, Any]:
        """Read and verify ``path``; ``weights_only`` is always True, whatever is asked."""
        return read_checkpoint(path, LIGHTNING_WEIGHTS, map_location)


def load_module(path: str | Path) -> ReconstructionModule:
    """A :class:`ReconstructionModule` from a Lightning checkpoint written through
    :class:`VerifiedCheckpointIO` (read safely and verified; on the CPU).

    Raises:
        CheckpointError: an unverified or damaged checkpoint, or contents that do not make
            the module.
    """
    checkpoint = read_checkpoint(path, LIGHTNING_WEIGHTS)
    hyper_parameters = typed_entry(checkpoint, path, "hyper_parameters", dict)
    with entry_errors(path, "hyper_parameters"):
        module = ReconstructionModule(**hyper_parameters)
    load_module_state(module, typed_entry(checkpoint, path, "state_dict"), path, "state_dict")
    return module
