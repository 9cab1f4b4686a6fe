"""Train, export and evaluate learned reconstructors (``mri-rl train-recon`` / ``eval-recon``).

A training config (``configs/recon_unet.yaml``, ``configs/recon_varnet.yaml``) has the
sections::

    seed: 0                                   # seed_everything and the mask seeds
    model: {kind: unet, chans: 32, ...}       # kind + reconstructor hyper-parameters
    optimization: {loss: l1, lr: ..., lr_step_size: ..., lr_gamma: ..., weight_decay: ...}
    data: {batch_size: 4, num_workers: 0}
    trainer: {max_epochs: 20, ...}            # passed to pytorch_lightning.Trainer
    masks: {train: {...}, evaluation: {name: {...}, ...}}   # see training_masks.build_mask_sampler
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from torch.utils.data import DataLoader

from mri_rl.files import load_yaml_mapping
from mri_rl.metrics import image_metrics
from mri_rl.reconstruct.base import Reconstructor
from mri_rl.reconstruct.checkpoint import build_reconstructor, export_reconstructor
from mri_rl.reconstruct.lightning import ReconstructionDataModule, ReconstructionModule
from mri_rl.reconstruct.masked_slices import MaskedSlices, open_split, split_geometry
from mri_rl.reconstruct.trainable import TrainableReconstructor
from mri_rl.reconstruct.training_masks import MaskSampler, build_mask_sampler
from mri_rl.reconstruct.zero_filled import ZeroFilledReconstructor

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
EXPORT_NAME = "reconstructor.pt"
#: Trainer arguments that train_reconstructor sets itself.
RESERVED_TRAINER_ARGS = ("logger", "callbacks", "reload_dataloaders_every_n_epochs", "default_root_dir")
EVALUATED_METRICS = ("ssim", "psnr", "nmse")


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML training config (a mapping of sections); see :func:`mri_rl.files.load_yaml_mapping`."""
    return load_yaml_mapping(path)


def config_section(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A copy of the mapping ``config[name]``; ValueError naming the section when missing."""
    section = config.get(name)
    if not isinstance(section, Mapping):
        raise ValueError(f"the config needs a '{name}' section (a mapping); found {section!r}")
    return dict(section)


def train_reconstructor(data: str | Path, challenge: str, out: str | Path, config: Mapping[str, Any], *,
                        model: str | None = None, max_epochs: int | None = None, resume: bool = False,
                        trainer_kwargs: Mapping[str, Any] | None = None) -> Path:
    """Train a reconstructor with Lightning and export the best one (by val SSIM).

    Writes into ``out``: ``tensorboard/`` (logs), ``checkpoints/`` (``last.ckpt`` and the
    best Lightning checkpoint) and ``reconstructor.pt`` (the export, loadable with
    :func:`~mri_rl.reconstruct.load_reconstructor` and the envs' ``reconstructor=``).

    Args:
        data: fastMRI root with ``{challenge}_train`` and ``{challenge}_val``.
        challenge: "singlecoil" or "multicoil".
        out: run folder.
        config: training config (see the module docstring).
        model: "unet" or "varnet"; must match ``config["model"]["kind"]`` (None: take it).
        max_epochs: overrides ``config["trainer"]["max_epochs"]``.
        resume: continue from ``out/checkpoints/last.ckpt`` (weights, optimiser, epoch, step).
        trainer_kwargs: Trainer arguments over the config's, e.g. ``accelerator``,
            ``devices``, ``strategy``, ``num_nodes``, ``precision``, ``enable_progress_bar``.

    Returns:
        path of the exported reconstructor.

    Raises:
        ValueError: a config that does not fit, or ``model`` other than the config's.
        FileNotFoundError: ``resume`` without a last checkpoint; missing data.
        FileExistsError: ``out`` already holds a run and ``resume`` is False.
    """
    out = Path(out)
    last = out / CHECKPOINT_DIR / LAST_CHECKPOINT
    if resume and not last.is_file():
        raise FileNotFoundError(f"cannot resume: {last} does not exist")
    if not resume and last.exists():
        raise FileExistsError(f"{out} already holds a training run: resume it or choose another folder")
    model_hparams = config_section(config, "model")
    kind = model_hparams.pop("kind", None)
    if model is not None and model != kind:
        raise ValueError(f"the config describes a {kind!r} reconstructor, not {model!r}")
    trainer_options = {**config_section(config, "trainer"), **(trainer_kwargs or {})}
    if max_epochs is not None:
        trainer_options["max_epochs"] = max_epochs
    reserved = sorted(set(trainer_options) & set(RESERVED_TRAINER_ARGS))
    if reserved:
        raise ValueError(f"train_reconstructor sets the Trainer arguments {reserved} itself")
    masks = config_section(config, "masks")
    if "train" not in masks:
        raise ValueError("the config's 'masks' section needs a 'train' mask sampler")

    seed = int(config.get("seed", 0))
    pl.seed_everything(seed, workers=True)
    datamodule = ReconstructionDataModule(data, challenge, build_mask_sampler(masks["train"]), seed=seed,
                                          **config_section(config, "data"))
    datamodule.setup("fit")
    module = ReconstructionModule(kind, model_hparams, challenge, datamodule.recon_size,
                                  **config_section(config, "optimization"))
    checkpoint = ModelCheckpoint(dirpath=out / CHECKPOINT_DIR, filename="best-epoch{epoch:03d}-ssim{val_ssim:.4f}",
                                 auto_insert_metric_name=False, monitor="val_ssim", mode="max", save_last=True)
    trainer = pl.Trainer(logger=TensorBoardLogger(out, name="", version="tensorboard"), callbacks=[checkpoint],
                         reload_dataloaders_every_n_epochs=1, default_root_dir=out, **trainer_options)
    trainer.fit(module, datamodule=datamodule, ckpt_path=last if resume else None)

    exported = out / EXPORT_NAME
    if trainer.is_global_zero:
        best = checkpoint.best_model_path or checkpoint.last_model_path
        best_module = ReconstructionModule.load_from_checkpoint(best, map_location="cpu")
        export_reconstructor(best_module.reconstructor, exported)
    trainer.strategy.barrier()
    return exported


def reconstructor_name(model: Reconstructor) -> str:
    """"unet", "varnet", "zero_filled", or the class name of another reconstructor."""
    if isinstance(model, TrainableReconstructor):
        return model.kind
    if isinstance(model, ZeroFilledReconstructor):
        return "zero_filled"
    return type(model).__name__


@torch.no_grad()
def evaluate_reconstructor(reconstructor: str | Path | Reconstructor, data: str | Path, challenge: str, split: str,
                           masks: Mapping[str, MaskSampler], *, seed: int = 0, batch_size: int = 8,
                           device: str | torch.device = "cpu") -> list[dict[str, Any]]:
    """Mean and std of SSIM, PSNR and NMSE over a split for each mask setting, beside zero-filled.

    Every slice gets the mask ``masks[name]`` draws with seed ``(seed, index)``, the same
    for all reconstructors; metrics follow fastMRI (:func:`mri_rl.metrics.image_metrics`).

    Args:
        reconstructor: "zero_filled", an exported checkpoint path, or a reconstructor.
        data: fastMRI root (or a folder of ``.h5`` files).
        challenge: "singlecoil" or "multicoil".
        split: "train", "val" or "test" (its files need targets).
        masks: name -> sampler, e.g. ``build_mask_samplers(config["masks"]["evaluation"])``.
        seed: base seed of the masks.
        batch_size: slices per reconstructor call.
        device: where reconstructions run.

    Returns:
        one row per (mask, reconstructor): ``mask``, ``reconstructor``, ``sampling_rate``
        (mean fraction of columns acquired, padding included), ``num_images``, and
        ``ssim``, ``psnr``, ``nmse`` with their ``*_std``.

    Raises:
        ValueError: a reconstructor that does not fit the data (challenge, target size).
    """
    slices = open_split(data, challenge, split)
    recon_size, kspace_shape = split_geometry(slices, batch_size)
    model = build_reconstructor(reconstructor)
    model.check_compatible(challenge, kspace_shape, recon_size)
    candidates = {reconstructor_name(model): model.to(device).eval()}
    candidates.setdefault("zero_filled", ZeroFilledReconstructor())
    rows = []
    for mask_name, sampler in masks.items():
        scores: dict[str, dict[str, list[torch.Tensor]]] = {name: {m: [] for m in EVALUATED_METRICS}
                                                             for name in candidates}
        rates = []
        for batch in DataLoader(MaskedSlices(slices, sampler, (seed,)), batch_size=batch_size):
            kspace, mask, target, data_range = (field.to(device) for field in batch)
            rates.append(mask.float().mean(dim=1).cpu())
            for name, candidate in candidates.items():
                metrics = image_metrics(candidate(kspace, mask, recon_size).float(), target, data_range)
                for metric in EVALUATED_METRICS:
                    scores[name][metric].append(metrics[metric].cpu())
        for name in candidates:
            row: dict[str, Any] = {"mask": mask_name, "reconstructor": name,
                                   "sampling_rate": float(torch.cat(rates).mean()), "num_images": len(slices)}
            for metric in EVALUATED_METRICS:
                values = torch.cat(scores[name][metric])
                row[metric] = float(values.mean())
                row[f"{metric}_std"] = float(values.std(unbiased=False))
            rows.append(row)
    return rows


def format_evaluation_table(rows: list[dict[str, Any]]) -> str:
    """A markdown table of :func:`evaluate_reconstructor` rows: mean ± std per metric."""
    lines = ["| mask | rate | reconstructor | SSIM | PSNR (dB) | NMSE |", "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['mask']} | {row['sampling_rate']:.3f} | {row['reconstructor']} | "
                     f"{row['ssim']:.4f} ± {row['ssim_std']:.4f} | {row['psnr']:.2f} ± {row['psnr_std']:.2f} | "
                     f"{row['nmse']:.4f} ± {row['nmse_std']:.4f} |")
    return "\n".join(lines)
