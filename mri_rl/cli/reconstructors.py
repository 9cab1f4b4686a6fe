"""``mri-rl train-recon`` and ``mri-rl eval-recon``: a U-Net or VarNet reconstructor trained with
Lightning, and its metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

from mri_rl.cli.arguments import (
    COUNT,
    SEED,
    add_device_argument,
    add_output_argument,
    add_set_argument,
    add_task_arguments,
    checked_device,
    task_of,
)
from mri_rl.task import PRECISIONS, SPLITS


def add_reconstructor_commands(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train-recon",
        help="train a U-Net (single-coil) or VarNet (multi-coil) reconstructor with PyTorch Lightning",
        description="Train on DATA/{challenge}_train, validate on DATA/{challenge}_val (or on --val-data), log to "
        "TensorBoard, keep the best and last Lightning checkpoints in OUT/checkpoints and export the best "
        "model to OUT/reconstructor.pt with the record of how it was made; the environment loads it "
        "with reconstructor=PATH. Defaults come from the packaged config recon_{model}; the acquisition "
        "training masks take the task's initial lines and budget.",
    )
    train.add_argument(
        "--data",
        type=Path,
        required=True,
        help="fastMRI root with {challenge}_train and _val, or the training folder with --val-data",
    )
    train.add_argument(
        "--val-data",
        type=Path,
        default=None,
        help="validation folder (default: DATA/{challenge}_val); never the training folder",
    )
    add_task_arguments(train, {"challenge", "budget", "initial_lines"}, required_challenge=True)
    train.add_argument(
        "--model", choices=("unet", "varnet"), default=None, help="default: unet for singlecoil, varnet for multicoil"
    )
    add_output_argument(train, "--out", required=True, help="run folder, e.g. runs/NAME")
    train.add_argument("--config", default=None, help="a packaged config name or a YAML path (default: recon_{model})")
    add_set_argument(train)
    train.add_argument("--max-epochs", type=COUNT, default=None)
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    for flag in ("--accelerator", "--devices", "--strategy", "--precision"):
        train.add_argument(flag, default=None, help="passed to pytorch_lightning.Trainer")
    train.add_argument("--num-nodes", type=COUNT, default=None, help="passed to pytorch_lightning.Trainer")
    train.set_defaults(handler=_run_train_recon)
    _add_eval_recon_command(commands)


def _add_eval_recon_command(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "eval-recon",
        help="SSIM/PSNR/NMSE of a reconstructor per acceleration, zero-filled alongside",
        description="Mean and std of SSIM, PSNR and NMSE over a split at 4x and 8x (fastMRI random masks) and at "
        "the task's initial mask (mask settings from the config's masks.evaluation), for the "
        "reconstructor and for zero-filled.",
    )
    evaluate.add_argument("--data", type=Path, required=True, help="fastMRI root or a folder of .h5 files")
    add_task_arguments(evaluate, {"challenge", "initial_lines"}, required_challenge=True)
    evaluate.add_argument(
        "--precision",
        dest="task_precision",
        choices=PRECISIONS,
        help="autocast of the reconstructor's forward, as a task's precision in the environment: 32 (float32), "
        "bf16 (CPU and CUDA) or 16 (CUDA and MPS only); metrics stay float32 (default: 32)",
    )
    evaluate.add_argument("--split", choices=SPLITS, default="val")
    evaluate.add_argument(
        "--any-folder", action="store_true", help="accept a --data folder whose name says another split than --split"
    )
    evaluate.add_argument("--reconstructor", required=True, help="exported checkpoint (or zero_filled)")
    evaluate.add_argument("--config", default=None, help="config whose masks.evaluation to use (default: recon_{kind})")
    add_set_argument(evaluate)
    evaluate.add_argument(
        "--seed", type=SEED, default=0, help="base seed of the random masks (slice i gets (seed, i)); default 0"
    )
    evaluate.add_argument("--batch-size", type=COUNT, default=8, help="slices per reconstructor call (default 8)")
    add_device_argument(evaluate, "the reconstructions and metrics")
    evaluate.set_defaults(handler=_run_eval_recon)


def _run_train_recon(args: argparse.Namespace) -> int:
    from mri_rl.reconstruct.train import load_config, train_reconstructor

    task = task_of(args)
    model = args.model or ("unet" if task.challenge == "singlecoil" else "varnet")
    config = load_config(args.config or f"recon_{model}", args.overrides, task)
    trainer_kwargs = {
        key: getattr(args, key)
        for key in ("accelerator", "devices", "strategy", "precision", "num_nodes")
        if getattr(args, key) is not None
    }
    exported = train_reconstructor(
        args.data,
        task,
        args.out,
        config,
        val_data=args.val_data,
        model=model,
        max_epochs=args.max_epochs,
        resume=args.resume,
        trainer_kwargs=trainer_kwargs,
    )
    print(f"exported {exported}")
    return 0


def _run_eval_recon(args: argparse.Namespace) -> int:
    from mri_rl.reconstruct.train import evaluate_reconstructor, format_evaluation_table, load_config
    from mri_rl.reconstruct.training_masks import build_mask_samplers

    device = checked_device(args.device)
    task = task_of(args)
    kind = "unet" if task.challenge == "singlecoil" else "varnet"
    config = load_config(args.config or f"recon_{kind}", args.overrides, task)
    masks = build_mask_samplers(config["masks"].get("evaluation", {}), task)
    rows = evaluate_reconstructor(
        args.reconstructor,
        args.data,
        task.challenge,
        args.split,
        masks,
        seed=args.seed,
        batch_size=args.batch_size,
        device=device,
        any_folder=args.any_folder,
        precision=task.precision,
    )
    print(format_evaluation_table(rows))
    return 0
