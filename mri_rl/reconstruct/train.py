"""Train, export and evaluate learned reconstructors (``mri-rl train-recon`` / ``eval-recon``).

A training config (the packaged ``recon_unet``, ``recon_varnet``) has the sections::

    seed: 0                                   # seed_everything and the mask seeds
    model: {kind: unet, chans: 32, ...}       # kind + reconstructor hyper-parameters
    optimization: {loss: l1, lr: ..., lr_step_size: ..., lr_gamma: ..., weight_decay: ...}
    data: {batch_size: 4, num_workers: 0}
    trainer: {max_epochs: 20, ...}            # passed to pytorch_lightning.Trainer
    masks: {train: {...}, evaluation: {name: {...}, ...}}   # see training_masks.build_mask_sampler

Acquisition masks take their initial lines (and, unless set, their budget) from the
:class:`~mri_rl.task.AcquisitionTask` the reconstructor serves.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import signal
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_type_hints

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from torch.utils.data import DataLoader

from mri_rl.checkpointing import read_checkpoint
from mri_rl.checks import check_int, resolve_device
from mri_rl.configs import load_config as read_config
from mri_rl.configs.schema import ConfigError, check_range, check_value, from_mapping
from mri_rl.data.fastmri_files import FastMRISliceDataset, inspect_volume, resolve_split_folder
from mri_rl.data.splits import check_disjoint, check_split_folder
from mri_rl.files import atomic_write_text
from mri_rl.metrics import image_metrics
from mri_rl.provenance import (
    FRESH_RUN,
    check_record,
    checkpoint_fingerprint,
    data_fingerprint,
    h5_files,
    make_record,
    read_json_record,
)
from mri_rl.reconstruct.base import Reconstructor, autocast, check_precision
from mri_rl.reconstruct.checkpoint import (
    CHECKPOINT_DIR,
    EXPORT_NAME,
    TRAINABLE_KINDS,
    build_reconstructor,
    export_reconstructor,
    read_reconstructor_record,
)
from mri_rl.reconstruct.lightning import (
    LIGHTNING_WEIGHTS,
    EpochEndCheckpoint,
    EpochSeeds,
    ReconstructionDataModule,
    ReconstructionModule,
    VerifiedCheckpointIO,
    load_module,
)
from mri_rl.reconstruct.masked_slices import MaskedSlices, check_masks_leave_columns, split_geometry
from mri_rl.reconstruct.trainable import TrainableReconstructor
from mri_rl.reconstruct.training_masks import MaskSampler, build_mask_sampler, build_mask_samplers, orders_files
from mri_rl.reconstruct.zero_filled import ZeroFilledReconstructor
from mri_rl.task import AcquisitionTask
from mri_rl.threads import thread_report

LAST_CHECKPOINT = "last.ckpt"
RECORD_NAME = "record.json"
#: The reconstructor field of the task recorded with a reconstructor: it cannot hold its own hash.
TRAINED_HERE = "(this reconstructor)"
#: Trainer arguments that train_reconstructor sets itself.
RESERVED_TRAINER_ARGS = ("logger", "callbacks", "plugins", "reload_dataloaders_every_n_epochs", "default_root_dir")
EVALUATED_METRICS = ("ssim", "psnr", "nmse")


@dataclass
class OptimizationSettings:
    """The ``optimization`` section: loss and Adam with a step decay."""

    loss: Literal["l1", "ssim"] = "l1"
    lr: float = field(default=1e-3, metadata={"above": 0})
    lr_step_size: int = field(default=40, metadata={"min": 1})
    lr_gamma: float = field(default=0.1, metadata={"above": 0, "max": 1})
    weight_decay: float = field(default=0.0, metadata={"min": 0})


@dataclass
class LoaderSettings:
    """The ``data`` section: how slices are batched."""

    batch_size: int = field(default=4, metadata={"min": 1})
    num_workers: int = field(default=0, metadata={"min": 0})


@dataclass
class MaskSettings:
    """The ``masks`` section: the training sampler and the named evaluation samplers."""

    train: dict[str, Any]
    evaluation: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class ReconstructorConfig:
    """A reconstructor training config (see the module docstring)."""

    model: dict[str, Any]
    masks: MaskSettings
    seed: int = field(default=0, metadata={"min": 0})
    optimization: OptimizationSettings = field(default_factory=OptimizationSettings)
    data: LoaderSettings = field(default_factory=LoaderSettings)
    trainer: dict[str, Any] = field(default_factory=dict)


def validate_config(values: Mapping[str, Any], source: str, task: AcquisitionTask | None = None) -> None:
    """Check a reconstructor training config: sections, types, ranges, the model's
    hyper-parameters (against its class) and the mask samplers (against ``task``).

    Raises:
        ConfigError: one line naming ``source`` and the key.
    """
    settings = from_mapping(ReconstructorConfig, values, source)
    model = dict(settings.model)
    kind = model.pop("kind", None)
    if not isinstance(kind, str) or kind not in TRAINABLE_KINDS:
        raise ConfigError(f"{source}: model.kind: expected one of {sorted(TRAINABLE_KINDS)}, got {kind!r}")
    constructor = TRAINABLE_KINDS[kind].__init__
    hints = get_type_hints(constructor)
    known = set(inspect.signature(constructor).parameters) - {"self", "challenge", "recon_size"}
    for name, value in model.items():
        if name not in known:
            raise ConfigError(f"{source}: model.{name}: not a {kind} hyper-parameter; known: {sorted(known)}")
        checked = check_value(value, hints[name], source, f"model.{name}")
        bounds = {"min": 1} if isinstance(checked, int) else {"min": 0, "max": 1}  # sizes; a dropout probability
        check_range(checked, bounds, f"{source}: model.{name}")
    try:
        build_mask_sampler(settings.masks.train, task)
        build_mask_samplers(settings.masks.evaluation, task)
    except ValueError as error:
        raise ConfigError(f"{source}: masks: {error}") from None


def load_config(
    name_or_path: str | Path, overrides: Sequence[str] = (), task: AcquisitionTask | None = None
) -> dict[str, Any]:
    """Read and check a reconstructor training config (a packaged name or a path), with
    ``--set`` overrides; see :func:`validate_config`."""
    values, source = read_config(name_or_path, overrides)
    validate_config(values, source, task)
    return values


def config_section(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A copy of the mapping ``config[name]``; ValueError naming the section when missing."""
    section = config.get(name)
    if not isinstance(section, Mapping):
        raise ValueError(f"the config needs a '{name}' section (a mapping); found {section!r}")
    return dict(section)


def training_folders(data: str | Path, challenge: str, val_data: str | Path | None = None) -> tuple[Path, Path]:
    """The training and validation folders of a reconstructor run, kept apart.

    Args:
        data: a fastMRI root with ``{challenge}_train`` and ``{challenge}_val``, or (with
            ``val_data``) the training folder itself.
        challenge: "singlecoil" or "multicoil".
        val_data: the validation folder (or a root with ``{challenge}_val``).

    Raises:
        FileNotFoundError: a missing validation folder.
        ValueError: validation = training folder, a folder named for another split, or
            files in both.
    """
    data = Path(data)
    if val_data is None:
        train, val = data / f"{challenge}_train", data / f"{challenge}_val"
        if not train.is_dir():
            raise FileNotFoundError(
                f"{data} is not a fastMRI root with a {train.name}/ folder: give the root holding "
                f"{train.name}/ and {val.name}/, or the training folder with --val-data"
            )
        if not val.is_dir():
            raise FileNotFoundError(f"no validation folder: {val} does not exist (pass --val-data)")
    else:
        train = resolve_split_folder(data, challenge, "train")
        val = resolve_split_folder(val_data, challenge, "val")
    if train.resolve() == val.resolve():
        raise ValueError(f"the validation folder {val} is the training folder: validate on held-out files")
    check_split_folder(train, "train")
    check_split_folder(val, "val")
    check_disjoint(data_fingerprint(train), data_fingerprint(val), "this run")
    return train, val


def reconstructor_record(
    task: AcquisitionTask, train: Path, val: Path, config: Mapping[str, Any], max_epochs: int | None
) -> dict[str, Any]:
    """How a reconstructor is made: the task it serves (its masks; the geometry of the first
    training volume), the data, the config, the epochs it trains for (``max_epochs``) and the
    fingerprints of the orders files its training masks come from (``kind: orders``), if any.

    The task's ``precision`` (the env's autocast) is recorded as the default: training does not
    use it (Lightning's ``precision`` does that), so envs at any precision share a reconstructor.
    """
    geometry = inspect_volume(h5_files(train)[0], task.challenge).slice_shape
    served = task.with_changes(
        reconstructor=TRAINED_HERE,
        reconstructor_fingerprint=None,
        kspace_shape=geometry,
        precision=AcquisitionTask.precision,
    )
    settings: dict[str, Any] = {"config": dict(config), "max_epochs": max_epochs}
    orders = orders_files(config.get("masks", {}).get("train"))
    if orders:
        settings["orders_files"] = {path: checkpoint_fingerprint(path) for path in orders if Path(path).is_file()}
    return make_record(served, {"train": data_fingerprint(train), "val": data_fingerprint(val)}, settings)


def train_reconstructor(
    data: str | Path,
    task: AcquisitionTask,
    out: str | Path,
    config: Mapping[str, Any],
    *,
    val_data: str | Path | None = None,
    model: str | None = None,
    max_epochs: int | None = None,
    resume: bool = False,
    trainer_kwargs: Mapping[str, Any] | None = None,
    fresh_start: str = FRESH_RUN,
) -> Path:
    """Train a reconstructor with Lightning and export the best one (by val SSIM).

    Writes into ``out``: ``record.json`` (how the run is made, checked on ``resume``; once
    trained, with torch's thread counts beside it: :func:`~mri_rl.threads.thread_report`),
    ``tensorboard/`` (logs), ``checkpoints/`` (``last.ckpt`` and the best Lightning
    checkpoint) and ``reconstructor.pt`` (the export with its record, loadable with
    :func:`~mri_rl.reconstruct.load_reconstructor` and the envs' ``reconstructor=``).

    Args:
        data: fastMRI root with ``{challenge}_train`` and ``{challenge}_val``, or the
            training folder when ``val_data`` is given.
        task: the acquisition task the reconstructor serves: its challenge, and the
            initial lines and budget of the acquisition training masks.
        out: run folder.
        config: training config (see the module docstring).
        val_data: the validation folder (default: ``data/{challenge}_val``).
        model: "unet" or "varnet"; must match ``config["model"]["kind"]`` (None: take it).
        max_epochs: overrides ``config["trainer"]["max_epochs"]``.
        resume: continue from ``out/checkpoints/last.ckpt`` (weights, optimiser, epoch, step).
        trainer_kwargs: Trainer arguments over the config's, e.g. ``accelerator``,
            ``devices``, ``strategy``, ``num_nodes``, ``precision``, ``enable_progress_bar``.
        fresh_start: how to start fresh, ending the message of a refused ``resume``.

    Returns:
        path of the exported reconstructor.

    Raises:
        ValueError: a config that does not fit, ``model`` other than the config's, mixed
            splits, masks whose initial lines leave no column of the training or validation
            slices to acquire, or ``resume`` of a run made under another record.
        FileNotFoundError: ``resume`` without a last checkpoint; missing data.
        FileExistsError: ``out`` already holds a run and ``resume`` is False.
    """
    # long: 42 of its lines document its twelve arguments; the body is about 35
    out = Path(out)
    last = _last_checkpoint(out, resume)
    model_hparams = config_section(config, "model")
    kind = model_hparams.pop("kind", None)
    if model is not None and model != kind:
        raise ValueError(f"the config describes a {kind!r} reconstructor, not {model!r}")
    trainer_options = _trainer_options(config, max_epochs, trainer_kwargs)
    masks = config_section(config, "masks")
    if "train" not in masks:
        raise ValueError("the config's 'masks' section needs a 'train' mask sampler")
    train, val = training_folders(data, task.challenge, val_data)
    record = reconstructor_record(task, train, val, config, trainer_options.get("max_epochs"))
    if resume:  # resuming to train for more (or fewer) epochs is what resume is for
        check_record(read_json_record(out / RECORD_NAME), record, out, fresh_start, ignore=("settings.max_epochs",))

    seed = int(config.get("seed", 0))
    pl.seed_everything(seed, workers=True, verbose=False)
    sampler = build_mask_sampler(masks["train"], task)
    datamodule = ReconstructionDataModule(
        train, val, task.challenge, sampler, seed=seed, **config_section(config, "data")
    )
    datamodule.setup("fit")
    assert datamodule.recon_size is not None  # setup() sets it
    module = ReconstructionModule(
        kind, model_hparams, task.challenge, datamodule.recon_size, **config_section(config, "optimization")
    )
    _write_record(out, record)
    trainer, checkpoint = _fit(module, datamodule, out, trainer_options, last if resume else None)
    if trainer.is_global_zero:
        best = checkpoint.best_model_path or out / CHECKPOINT_DIR / LAST_CHECKPOINT  # no epoch validated
        best_module = load_module(best)
        export_reconstructor(best_module.reconstructor, out / EXPORT_NAME, record)
        _write_record(out, record, threads=thread_report())  # the count decides the weights' last bits
    trainer.strategy.barrier()
    return out / EXPORT_NAME


def _write_record(out: Path, record: dict[str, Any], **beside: Any) -> None:
    """``out/record.json``: ``record`` (compared on ``resume``) and what is said ``beside`` it (not compared)."""
    atomic_write_text(out / RECORD_NAME, json.dumps({"record": record, **beside}, indent=1) + "\n")


def _fit(
    module: ReconstructionModule,
    datamodule: ReconstructionDataModule,
    out: Path,
    trainer_options: dict[str, Any],
    resume_from: Path | None,
) -> tuple[pl.Trainer, ModelCheckpoint]:
    """Fit with Lightning: TensorBoard logs, the best checkpoint (val SSIM, saved as validation
    ends), the last one (every epoch's end, :class:`~mri_rl.reconstruct.lightning.EpochEndCheckpoint`)
    and the global RNGs seeded every epoch (:class:`~mri_rl.reconstruct.lightning.EpochSeeds`)."""
    checkpoint = ModelCheckpoint(
        dirpath=out / CHECKPOINT_DIR,
        filename="best-epoch{epoch:03d}-ssim{val_ssim:.4f}",
        auto_insert_metric_name=False,
        monitor="val_ssim",
        mode="max",
        save_on_train_epoch_end=False,  # so that the epoch's last.ckpt holds the best checkpoint's record
    )
    try:
        trainer = pl.Trainer(
            logger=TensorBoardLogger(out, name="", version="tensorboard"),
            callbacks=[
                checkpoint,
                EpochEndCheckpoint(out / CHECKPOINT_DIR / LAST_CHECKPOINT),
                EpochSeeds(datamodule.seed),
            ],
            plugins=[VerifiedCheckpointIO()],
            reload_dataloaders_every_n_epochs=1,
            default_root_dir=out,
            **trainer_options,
        )
    except (MisconfigurationException, TypeError, ValueError) as error:  # e.g. a GPU this machine lacks
        raise ValueError(f"Lightning Trainer settings {trainer_options}: {' '.join(str(error).split())}") from None
    with interrupt_raised():
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)
    return trainer, checkpoint


@contextlib.contextmanager
def interrupt_raised() -> Iterator[None]:
    """Raise Ctrl+C inside the block as :class:`KeyboardInterrupt`: Lightning's ``fit`` catches it,
    shuts down, ignores SIGINT from then on and calls ``sys.exit(1)`` (its ``SystemExit`` has the
    interrupt as its context). SIGINT's handler is given back."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
    except SystemExit as error:
        if isinstance(error.__context__, KeyboardInterrupt):
            raise error.__context__ from None
        raise
    finally:
        if signal.getsignal(signal.SIGINT) is not handler and handler is not None:
            signal.signal(signal.SIGINT, handler)


def _last_checkpoint(out: Path, resume: bool) -> Path:
    """``out``'s last Lightning checkpoint, which must exist to resume (and is verified at once, so a
    damaged or crafted one is refused before any data is read) and must not to start.

    Raises:
        FileNotFoundError, FileExistsError, CheckpointError.
    """
    last = out / CHECKPOINT_DIR / LAST_CHECKPOINT
    if resume and not last.is_file():
        raise FileNotFoundError(f"cannot resume: {last} does not exist")
    if not resume and last.exists():
        raise FileExistsError(f"{out} already holds a training run: resume it or choose another folder")
    if resume:
        read_checkpoint(last, LIGHTNING_WEIGHTS)
    return last


def _trainer_options(
    config: Mapping[str, Any], max_epochs: int | None, trainer_kwargs: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The Trainer arguments: the config's ``trainer`` section, then ``trainer_kwargs`` and ``max_epochs``.

    Raises:
        ValueError: arguments that train_reconstructor sets itself.
    """
    options = {**config_section(config, "trainer"), **(trainer_kwargs or {})}
    if max_epochs is not None:
        options["max_epochs"] = max_epochs
    reserved = sorted(set(options) & set(RESERVED_TRAINER_ARGS))
    if reserved:
        raise ValueError(f"train_reconstructor sets the Trainer arguments {reserved} itself")
    epochs = options.get("max_epochs")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"max_epochs must be an integer >= 1 (epochs to train), got {epochs!r}")
    return options


def reconstructor_name(model: Reconstructor) -> str:
    """ "unet", "varnet", "zero_filled", or the class name of another reconstructor."""
    if isinstance(model, TrainableReconstructor):
        return model.kind
    if isinstance(model, ZeroFilledReconstructor):
        return "zero_filled"
    return type(model).__name__


@torch.inference_mode()
def evaluate_reconstructor(
    reconstructor: str | Path | Reconstructor,
    data: str | Path,
    challenge: str,
    split: str,
    masks: Mapping[str, MaskSampler],
    *,
    seed: int = 0,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    any_folder: bool = False,
    precision: str = "32",
) -> list[dict[str, Any]]:
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
        any_folder: accept a folder whose name says another split than ``split``.
        precision: "32", "bf16" or "16": the reconstructors' autocast, as a task's precision in
            the environment (:func:`~mri_rl.reconstruct.base.autocast`); metrics stay float32.

    Returns:
        one row per (mask, reconstructor): ``mask``, ``reconstructor``, ``sampling_rate``
        (mean fraction of columns acquired, padding included), ``num_images``, and
        ``ssim``, ``psnr``, ``nmse`` with their ``*_std``.

    Raises:
        ValueError: a reconstructor that does not fit the data (challenge, target size), a
            folder named for another split, files the reconstructor was trained on, masks whose
            initial lines leave no column to acquire, a batch size below 1, a device this machine
            lacks, or a precision it has no arithmetic for.
    """
    batch_size, seed = check_int("batch_size", batch_size), check_int("seed", seed, 0)
    device = resolve_device(device)
    check_precision(device, precision)
    folder = resolve_split_folder(data, challenge, split)
    check_split_folder(folder, split, any_folder)
    _check_not_trained_on(reconstructor, folder)
    slices = FastMRISliceDataset(folder, challenge)
    recon_size, kspace_shape = split_geometry(slices, batch_size)
    check_masks_leave_columns(masks.values(), slices)  # as the env refuses such a task
    model = build_reconstructor(reconstructor)
    model.check_compatible(challenge, kspace_shape, recon_size)
    candidates = {reconstructor_name(model): model.to(device).eval()}
    candidates.setdefault("zero_filled", ZeroFilledReconstructor())
    rows = []
    for mask_name, sampler in masks.items():
        loader = DataLoader(MaskedSlices(slices, sampler, (seed,)), batch_size=batch_size)
        rows += _mask_rows(mask_name, loader, candidates, recon_size, device, len(slices), precision)
    return rows


def _check_not_trained_on(reconstructor: str | Path | Reconstructor, folder: Path) -> None:
    """Refuse an exported reconstructor whose record says it was trained on files of ``folder``."""
    if isinstance(reconstructor, (str, Path)) and str(reconstructor) != "zero_filled":
        recorded = (read_reconstructor_record(reconstructor) or {}).get("data") or {}
        check_disjoint(recorded.get("train"), data_fingerprint(folder), f"the reconstructor {reconstructor}")


def _mask_rows(
    mask_name: str,
    loader: DataLoader,
    candidates: Mapping[str, Reconstructor],
    recon_size: tuple[int, int],
    device: str | torch.device,
    num_images: int,
    precision: str,
) -> list[dict[str, Any]]:
    """One row per reconstructor of the mean and std of each metric over the ``loader``'s slices,
    each forward under ``precision``'s autocast."""
    scores: dict[str, dict[str, list[torch.Tensor]]] = {name: {m: [] for m in EVALUATED_METRICS} for name in candidates}
    rates = []
    for batch in loader:
        kspace, mask, target, data_range = (field.to(device) for field in batch)
        rates.append(mask.float().mean(dim=1).cpu())
        for name, candidate in candidates.items():
            with autocast(kspace.device, precision):
                images = candidate(kspace, mask, recon_size)
            metrics = image_metrics(images.float(), target, data_range)
            for metric in EVALUATED_METRICS:
                scores[name][metric].append(metrics[metric].cpu())
    rows = []
    for name in candidates:
        row: dict[str, Any] = {
            "mask": mask_name,
            "reconstructor": name,
            "sampling_rate": float(torch.cat(rates).mean()),
            "num_images": num_images,
        }
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
        lines.append(
            f"| {row['mask']} | {row['sampling_rate']:.3f} | {row['reconstructor']} | "
            f"{row['ssim']:.4f} ± {row['ssim_std']:.4f} | {row['psnr']:.2f} ± {row['psnr_std']:.2f} | "
            f"{row['nmse']:.4f} ± {row['nmse_std']:.4f} |"
        )
    return "\n".join(lines)
