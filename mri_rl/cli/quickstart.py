"""``mri-rl quickstart``: the whole pipeline on the built-in data."""

from __future__ import annotations

import argparse
from pathlib import Path

from mri_rl.cli.arguments import (
    add_device_argument,
    add_output_argument,
    add_precision_argument,
    add_set_argument,
    checked_device,
)


def add_quickstart_command(commands: argparse._SubParsersAction) -> None:
    quickstart = commands.add_parser(
        "quickstart",
        help="the whole pipeline on real anatomy: data, U-Net, DQN, REINFORCE, evaluation, report",
        description="Write the data if absent (MNI152 template slices in simulated k-space; the config "
        "quickstart_phantoms uses the built-in phantoms), train the U-Net reconstructor, train a DQN and a "
        "REINFORCE acquisition policy on the train split, evaluate them with the baselines on the test split and "
        "write the report (summary.md, curves.png, masks.png, examples.png). Settings: the packaged config "
        "quickstart. Finished "
        "stages are skipped on a rerun when they were made with the same settings; otherwise the run "
        "stops and names what differs.",
    )
    add_output_argument(quickstart, "--out", default=Path("runs/quickstart"), help="(default: runs/quickstart)")
    quickstart.add_argument("--config", default="quickstart", help="a packaged config name or a YAML path")
    add_set_argument(quickstart)
    quickstart.add_argument("--data", type=Path, default=None, help="data root (default: the config's)")
    add_device_argument(
        quickstart,
        "every stage: the reconstructor's training (as Lightning's accelerator), the agents and their env, "
        "the evaluation",
        ". Not recorded: finished stages are reused on another device",
    )
    add_precision_argument(quickstart, "(sets the config's task.precision; default: the config's, else 32)")
    quickstart.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the stages of an earlier quick start in --out (and rewrite a data root written "
        "with other settings or left without its settings record, if it holds only the writer's volumes) "
        "instead of stopping",
    )
    quickstart.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    quickstart.set_defaults(handler=_run_quickstart)


def _run_quickstart(args: argparse.Namespace) -> int:
    from mri_rl.runs.quickstart import run_quickstart

    run_quickstart(
        args.out,
        args.config,
        args.data,
        progress=not args.no_progress,
        overrides=args.overrides,
        overwrite=args.overwrite,
        device=checked_device(args.device),
        precision=args.task_precision,
    )
    return 0
