"""The ``mri-rl`` command line: ``mri-rl COMMAND [SUBCOMMAND] ...``; each has ``--help``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mri_rl.data.fastmri_files import (
    CHALLENGES,
    SPLITS,
    FastMRIDataError,
    inspect_volume,
    list_volumes,
)
from mri_rl.agents import AGENTS
from mri_rl.agents.training_run import TrainConfig, default_config_path, load_config_file, train_agent
from mri_rl.data.synthetic import SyntheticSpec, write_synthetic_dataset


def _add_data_commands(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="write synthetic fastMRI data or check a fastMRI folder",
                               description="Write synthetic fastMRI-format data, or check a fastMRI folder.")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="{synth,check}")

    synth = data_commands.add_parser(
        "synth",
        help="write synthetic volumes in fastMRI's format and folder layout",
        description="Write synthetic volumes into OUT_DIR/{challenge}_{train,val,test}/, readable by "
                    "fastmri.data.SliceDataset. The same arguments write byte-identical files.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    synth.add_argument("out_dir", type=Path, help="root folder to write into")
    synth.add_argument("--challenge", choices=CHALLENGES, default="singlecoil")
    synth.add_argument("--volumes", type=int, default=8, help="volumes in the train split")
    synth.add_argument("--val-volumes", type=int, default=2, help="volumes in the val split")
    synth.add_argument("--test-volumes", type=int, default=2, help="volumes in the test split")
    synth.add_argument("--slices", type=int, default=8, help="slices per volume")
    synth.add_argument("--size", type=int, default=64, help="target image size N (k-space has 2N readout rows)")
    synth.add_argument("--kspace-width", type=int, default=None,
                       help="phase-encode columns of the k-space (default: SIZE)")
    synth.add_argument("--padding", type=int, default=0,
                       help="zero-filled phase-encode columns on each side, recorded in the header")
    synth.add_argument("--coils", type=int, default=4, help="receiver coils (multicoil only)")
    synth.add_argument("--noise", type=float, default=0.01, help="k-space noise std relative to the image maximum")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    synth.set_defaults(handler=_run_data_synth)

    check = data_commands.add_parser(
        "check",
        help="validate every .h5 file of a folder (exit 1 if any is bad)",
        description="Read every .h5 file of FOLDER in full and print one line per file: slices, "
                    "k-space shape, coils, padding, target. Exit status 0 when all files are good, 1 otherwise.",
    )
    check.add_argument("folder", type=Path, help="folder of fastMRI .h5 files (one split)")
    check.add_argument("--challenge", choices=CHALLENGES, required=True)
    check.add_argument("--require-target", action="store_true",
                       help="count a file without the target dataset as bad (challenge test splits have none)")
    check.set_defaults(handler=_run_data_check)


def _run_data_synth(args: argparse.Namespace) -> int:
    spec = SyntheticSpec(challenge=args.challenge, num_slices=args.slices, size=args.size,
                         kspace_width=args.kspace_width, padding=args.padding, num_coils=args.coils,
                         noise_level=args.noise)
    volumes = {"train": args.volumes, "val": args.val_volumes, "test": args.test_volumes}
    flags = {"train": "--volumes", "val": "--val-volumes", "test": "--test-volumes"}
    for split, count in volumes.items():
        if count < 0:
            raise ValueError(f"{flags[split]} must be >= 0, got {count}")
    written = write_synthetic_dataset(args.out_dir, spec, volumes, seed=args.seed, progress=not args.no_progress)
    for split in SPLITS:
        if volumes[split]:
            print(f"{args.out_dir / f'{args.challenge}_{split}'}: {volumes[split]} volume(s)")
    print(f"wrote {len(written)} file(s): {args.slices} slices each, k-space "
          f"{tuple(spec.geometry.encoded_size[:2])}, target {args.size}x{args.size}")
    return 0


def _run_data_check(args: argparse.Namespace) -> int:
    bad = 0
    files = list_volumes(args.folder)
    for path in files:
        try:
            info = inspect_volume(path, args.challenge, require_target=args.require_target, check_values=True)
        except FastMRIDataError as error:
            bad += 1
            print(f"BAD {path.name}: {error.problem}" + ("" if error.slice_index is None
                                                          else f" (slice {error.slice_index})"))
            continue
        geometry = info.geometry
        print(f"OK  {path.name}: slices={info.num_slices} kspace={info.slice_shape} coils={info.num_coils} "
              f"padding=[{geometry.padding_left},{geometry.padding_right}) "
              f"target={'yes' if info.has_target else 'no'}")
    print(f"{len(files)} file(s), {bad} bad")
    return 1 if bad else 0


def _add_train_command(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train a DQN or REINFORCE agent on any Gymnasium env (the MRI env included)",
        description="Train an agent. Defaults come from configs/{agent}_{env}.yaml when it exists "
                    "(e.g. configs/dqn_cartpole.yaml for CartPole-v1); command-line values override them. "
                    "The run folder gets checkpoint.pt (atomic), model.pt, progress.csv, tensorboard/ and eval.json.",
    )
    train.add_argument("--agent", choices=sorted(AGENTS), required=True)
    train.add_argument("--env", dest="env_id", required=True, help="Gymnasium id, e.g. CartPole-v1 or "
                       "mri_rl/ActiveAcquisition-v0")
    train.add_argument("--env-kwargs", type=json.loads, default=None,
                       help='JSON keyword arguments of gymnasium.make, e.g. \'{"data_path": "data/synthetic/'
                            'singlecoil_train", "budget": 16}\'; merged over the config\'s')
    train.add_argument("--config", type=Path, default=None, help="YAML config (default: configs/{agent}_{env}.yaml)")
    train.add_argument("--total-steps", type=int, default=None, help="env steps to train for")
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--num-envs", type=int, default=None, help="parallel envs (batched for the MRI env)")
    train.add_argument("--out", type=Path, required=True, help="run folder, e.g. runs/NAME")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(handler=_run_train)


def _train_config(args: argparse.Namespace) -> TrainConfig:
    """The run's config: the saved one on --resume, else the config file with command-line overrides."""
    saved = args.out / "config.yaml"
    if args.resume and saved.is_file():
        return TrainConfig.from_dict(load_config_file(saved), str(saved))
    path = args.config or default_config_path(args.agent, args.env_id)
    values = load_config_file(path) if path else {}
    if values.get("agent", args.agent) != args.agent:
        raise ValueError(f"{path} configures agent {values['agent']!r}, but --agent is {args.agent!r}")
    values.update(agent=args.agent, env_id=args.env_id)
    values["env_kwargs"] = {**values.get("env_kwargs", {}), **(args.env_kwargs or {})}
    for key in ("total_steps", "seed", "num_envs"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if "total_steps" not in values:
        raise ValueError(f"no --total-steps given and no config sets total_steps (looked for {path or 'none'})")
    return TrainConfig.from_dict(values, str(path or "command line"))


def _run_train(args: argparse.Namespace) -> int:
    config = _train_config(args)
    result = train_agent(config, args.out, resume=args.resume, progress_bar=not args.no_progress)
    solved = f", solved at step {result['solved_at_step']}" if result["solved_at_step"] else ""
    print(f"{config.agent} on {config.env_id}: {result['num_timesteps']} steps{solved}; final evaluation over "
          f"{result['episodes']} episodes: {result['mean_return']:.2f} +- {result['std_return']:.2f} "
          f"({args.out / 'eval.json'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``mri-rl`` argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="mri-rl",
        description="Active MRI acquisition with reinforcement learning on fastMRI-format data.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data_commands(commands)
    _add_train_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mri-rl`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (FastMRIDataError, FileNotFoundError, FileExistsError, NotADirectoryError, ValueError) as error:
        print(f"mri-rl: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
