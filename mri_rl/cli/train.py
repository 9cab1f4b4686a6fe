"""``mri-rl train``: an agent's training run (or one per seed) from a config and command-line
overrides; ``--resume``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mri_rl.cli.arguments import (
    COUNT,
    SEED,
    add_device_argument,
    add_output_argument,
    add_precision_argument,
    add_set_argument,
    add_workers_arguments,
    checked_device,
    json_object,
    workers_of,
)


def add_train_command(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train a DQN or REINFORCE agent on any Gymnasium env (the MRI env included)",
        description="Train an agent. Defaults come from the packaged config {agent}_{env} of that agent when "
        "there is one (e.g. dqn_cartpole for CartPole-v1; reinforce_mri is greedy_reinforce's on the MRI env); "
        "command-line values override them. The run folder gets "
        "checkpoint.pt (atomic), model.pt, progress.csv, tensorboard/ and eval.json; the checkpoints "
        "record the task, data and settings they were made with.",
    )
    train.add_argument("--agent", required=True, help="dqn, reinforce, greedy_reinforce or dagger")
    train.add_argument(
        "--env", dest="env_id", required=True, help="Gymnasium id, e.g. CartPole-v1 or mri_rl/ActiveAcquisition-v0"
    )
    train.add_argument(
        "--env-kwargs",
        type=json_object,
        default=None,
        help='JSON keyword arguments of gymnasium.make, e.g. \'{"data_path": "data/synthetic/'
        'singlecoil_train", "budget": 8}\'; merged over the config\'s',
    )
    train.add_argument("--config", default=None, help="a packaged config name or a YAML path (default: {agent}_{env})")
    add_set_argument(train)
    train.add_argument("--total-steps", type=COUNT, default=None, help="env steps to train for")
    train.add_argument("--seed", type=SEED, default=None)
    train.add_argument(
        "--seeds",
        type=SEED,
        nargs="+",
        default=None,
        help="train one run per seed into OUT/seed{S}/ (--workers of them at once) and write OUT/seeds.json "
        "with the final evaluations' mean +- std",
    )
    train.add_argument("--num-envs", type=COUNT, default=None, help="parallel envs (batched for the MRI env)")
    add_device_argument(
        train,
        "the agent, its replay batches and the MRI env's episodes and reconstructions",
        ". Not recorded: a run may resume on another device",
        default=None,
    )
    add_precision_argument(train, "(MRI env only; sets env_kwargs precision; default: the config's, else 32)")
    add_workers_arguments(
        train,
        "Ray actors that step the env, num_envs / workers sub-environments each (num_envs must be a "
        "multiple), for one learner "
        "that acts for all of them (with --seeds: seeds trained at once)",
    )
    add_output_argument(train, "--out", required=True, help="run folder, e.g. runs/NAME")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint, with its saved config (config options that "
        "ask for another are refused; --device and --precision still apply; a run made at another precision "
        "is refused); a finished run (one with eval.json) is left as it is, one whose training is over "
        "without eval.json is only evaluated",
    )
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(handler=_run_train)


#: ``mri-rl train`` options that set the run's config (besides --device and --precision).
_CONFIG_OPTIONS = ("config", "env_kwargs", "total_steps", "seed", "num_envs")
#: Config keys that --device and --precision set, which a resumed run keeps when they are not given.
_RESUME_MAY_DIFFER = ("device", "env_kwargs.precision", "eval_env_kwargs.precision")


def _train_config(args: argparse.Namespace) -> Any:
    """The run's config: the saved one on --resume, else the config file with command-line overrides.

    Raises:
        ValueError: --resume with options that ask for another config than the saved one (they are
            not applied silently).
    """
    from dataclasses import asdict

    import yaml

    from mri_rl.configs import load_config
    from mri_rl.provenance import record_differences
    from mri_rl.runs.training import TrainConfig

    saved = args.out / "config.yaml"
    if not (args.resume and saved.is_file()):
        return _requested_train_config(args)
    values, source = load_config(saved)
    resumed = TrainConfig.from_dict(_device_and_precision(args, values), source)
    if args.overrides or any(getattr(args, option) is not None for option in _CONFIG_OPTIONS):
        asked = _requested_train_config(args, base=saved)
        kept, wanted = (yaml.safe_load(yaml.safe_dump(asdict(c))) for c in (resumed, asked))
        # The device may change on resume; the precision is checked against the run's record there.
        differences = record_differences(kept, wanted, ignore=_RESUME_MAY_DIFFER)
        if differences:
            raise ValueError(
                f"--resume continues the run in {args.out} with its saved config ({saved}), but this command asks "
                f"for another ({'; '.join(differences)}; saved vs asked): drop those options to resume as saved, "
                "or choose another --out for a new run"
            )
    return resumed


def _requested_train_config(args: argparse.Namespace, base: Path | None = None) -> Any:
    """--config (else ``base``, else the agent's default config) with the command line's options applied."""
    from mri_rl.configs import apply_overrides, load_config
    from mri_rl.runs.training import TrainConfig, default_config_path

    config = args.config or base or default_config_path(args.agent, args.env_id)
    values, source = load_config(config) if config else ({}, "command line")
    if values.get("agent", args.agent) != args.agent:
        raise ValueError(f"{source} configures agent {values['agent']!r}, but --agent is {args.agent!r}")
    values.update(agent=args.agent, env_id=args.env_id)
    values["env_kwargs"] = {**values.get("env_kwargs", {}), **(args.env_kwargs or {})}
    for key in ("total_steps", "seed", "num_envs"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    values = _device_and_precision(args, apply_overrides(values, args.overrides, source))
    if "total_steps" not in values:
        raise ValueError(f"no --total-steps given and no config sets total_steps (config: {config or 'none'})")
    return TrainConfig.from_dict(
        values, source + (f" (with --set {' '.join(args.overrides)})" if args.overrides else "")
    )


def _device_and_precision(args: argparse.Namespace, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with ``--device`` and ``--precision`` (into the env kwargs of the MRI env) applied.

    Raises:
        ValueError: ``--precision`` for an env other than the MRI env.
    """
    from mri_rl.runs.training import is_mri_env

    values = dict(values)
    if args.device is not None:
        values["device"] = args.device
    if args.task_precision is not None:
        env_id = values.get("env_id", args.env_id)
        if not is_mri_env(str(env_id)):
            raise ValueError(f"--precision sets the MRI env's reconstructor precision; env {env_id!r} has none")
        for key in ("env_kwargs", "eval_env_kwargs"):
            if key == "env_kwargs" or values.get(key) is not None:
                values[key] = {**(values.get(key) or {}), "precision": args.task_precision}
    return values


def _run_train(args: argparse.Namespace) -> int:
    from mri_rl.runs.seed_sweep import SUMMARY_NAME, train_seeds
    from mri_rl.runs.training import finished_result, train_agent

    if args.device is not None:
        checked_device(args.device)
    if args.seeds is not None and args.seed is not None:
        raise ValueError("give --seed (one run) or --seeds (one run per seed), not both")
    config, workers, progress = _train_config(args), workers_of(args), not args.no_progress
    if args.seeds is not None:
        summary = train_seeds(config, args.seeds, args.out, workers, resume=args.resume, progress=progress)
        print(
            f"{config.agent} on {config.env_id}, seeds {summary['seeds']}: final evaluation "
            f"{summary['mean_return']:.2f} +- {summary['std_return']:.2f} over seeds ({args.out / SUMMARY_NAME})"
        )
        return 0
    finished = args.resume and finished_result(args.out) is not None
    result = train_agent(config, args.out, resume=args.resume, progress_bar=progress, workers=workers)
    if finished:
        print(f"{args.out} holds a finished run: --resume trained nothing and changed no file")
    solved = f", solved at step {result['solved_at_step']}" if result["solved_at_step"] else ""
    print(
        f"{config.agent} on {config.env_id}: {result['num_timesteps']} steps{solved}; final evaluation over "
        f"{result['episodes']} episodes: {result['mean_return']:.2f} +- {result['std_return']:.2f} "
        f"({args.out / 'eval.json'})"
    )
    return 0
