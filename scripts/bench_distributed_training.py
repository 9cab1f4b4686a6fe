"""Benchmark: ``mri-rl train --workers 2`` (Ray actors step the env) against ``--workers 1``, in one run.

Every run is ``mri_rl.runs.training.train_agent`` in this process, as ``mri-rl train`` calls it.
``--workers 1`` steps the env here; ``--workers 2`` starts two Ray actors that each hold
``ceil(num_envs / 2)`` sub-environments (at least one: ``num_envs`` is raised to a multiple of 2
for those runs, as ``mri-rl train`` requires) while this process, the learner, acts for
all of them. Each Ray actor has one CPU and so one torch thread (Ray sets ``OMP_NUM_THREADS=1``);
this script calls ``torch.set_num_threads(1)``, so the learner uses one thread too.

1. CartPole-v1, DQN, the packaged ``dqn_cartpole`` config (50,000 env steps, 20 deterministic
   evaluation episodes every 2,500 steps, stop at a mean return of 475). Per seed, workers 1 (one
   env in this process) and workers 2 (two actors with one env each: ``num_envs`` is 1, raised to 2
   for the workers-2 run), interleaved (seed 0 w1, seed 0 w2, seed 1 w1, ...) so that a slow
   spell of a noisy machine hits both. Per run: ``solved_at_step`` of ``eval.json`` (the first
   periodic evaluation reaching 475; None if none did), the final evaluation's mean return, env
   steps trained, wall seconds of the whole ``train_agent`` call (Ray's start and stop, evaluations
   and checkpoints included: what the user waits for), env steps per wall second, and the learning
   loop's env steps/s (from ``progress.csv``, see part 2; periodic evaluations included). Summary: seeds
   solved within the step limit per worker count, and the wall-time ratio w2/w1 (median over seeds
   of per-seed ratios, and the ratio of the totals). A run that solves earlier also stops earlier,
   so the wall ratio mixes speed per step with steps to solve; the steps/s ratio is speed alone.
2. The MRI env, DQN with the quick start's dqn settings (``quickstart.yaml`` -> ``dqn_mri``, its
   ``num_envs`` 8, so 4 per actor) and task, for ``--mri-steps`` env steps on anatomy data (the
   quick start's slice count and size, written into the output folder unless ``--data`` names a
   quick-start data root), with the zero-filled reconstructor or the exported one given with
   ``--reconstructor``. Workers 1 and 2, interleaved for ``--mri-rounds`` rounds. Per run: wall
   seconds, env steps per wall second, and the learning loop's env steps/s from ``progress.csv``
   (from the start of learning to its last row: without Ray's start, the env's construction and
   the final evaluation, here ``--mri-eval-episodes`` episodes). Ratios w2/w1 are medians over
   rounds of the ratios within a round. The budget is far too short to learn anything: this part
   measures speed only, not quality.

Ray's start and stop is timed once beforehand and printed; each workers-2 run pays it.

    OMP_NUM_THREADS=1 python scripts/bench_distributed_training.py [--seeds 0 1 2] [--mri-steps 2000] [--mri-rounds 2]
        [--data ROOT | --volumes N] [--reconstructor PATH] [--out DIR]

Runs go into ``--out`` (default: a temporary folder, deleted afterwards), ``cartpole/seed{S}_w{N}/``
and ``mri/round{R}_w{N}/``, plus ``data/`` when the anatomy data are written here.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from mri_rl.configs import load_config
from mri_rl.distributed import Workers, import_ray, start_ray
from mri_rl.runs.quickstart import QuickstartConfig
from mri_rl.runs.training import TrainConfig, train_agent

WORKER_COUNTS = (1, 2)


def workers_of(count: int) -> Workers | None:
    """``--workers count``: None (this process) for 1, else Ray actors."""
    return None if count == 1 else Workers(count=count)


def learn_rate(run_dir: Path) -> float | None:
    """Env steps/s of the learning loop: the logged steps over the time from the start of learning
    to the last row of ``progress.csv`` (each row's ``steps_per_s`` covers the steps since the last)."""
    with (run_dir / "progress.csv").open(newline="") as f:
        rows = [(int(row["steps"]), float(row["steps_per_s"])) for row in csv.DictReader(f) if row["steps_per_s"]]
    previous, seconds = 0, 0.0
    for steps, rate in rows:
        seconds += (steps - previous) / rate
        previous = steps
    return previous / seconds if seconds > 0 else None


def timed_run(config: TrainConfig, run_dir: Path, count: int) -> dict[str, Any]:
    """One ``train_agent`` call with ``count`` workers, ``ceil(num_envs / count)`` envs each: its
    eval.json, wall seconds and rates."""
    config = replace(config, num_envs=count * -(-config.num_envs // count))
    start = time.perf_counter()
    result = train_agent(config, run_dir, progress_bar=False, workers=workers_of(count))
    wall = time.perf_counter() - start
    steps = int(result["num_timesteps"])
    return {
        "solved_at_step": result["solved_at_step"],
        "mean_return": float(result["mean_return"]),
        "steps": steps,
        "wall": wall,
        "rate": steps / wall,
        "learn_rate": learn_rate(run_dir),
    }


def ray_overhead() -> float:
    """Seconds to start a local Ray instance for two workers and shut it down."""
    ray = import_ray()
    if ray.is_initialized():
        raise RuntimeError("Ray is already running in this process: the runs would not start their own")
    start = time.perf_counter()
    start_ray(Workers(count=2))
    ray.shutdown()
    return time.perf_counter() - start


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def median_ratio(runs: dict[tuple[Any, int], dict[str, Any]], keys: list[Any], field: str) -> float | None:
    """Median over ``keys`` of ``runs[key, 2][field] / runs[key, 1][field]``."""
    ratios = [runs[key, 2][field] / runs[key, 1][field] for key in keys if runs[key, 1][field] and runs[key, 2][field]]
    return statistics.median(ratios) if ratios else None


# ------------------------------------------------------------------------------------ CartPole
def cartpole(args: argparse.Namespace, out: Path) -> None:
    values, source = load_config("dqn_cartpole")
    if args.cartpole_steps is not None:
        values["total_steps"] = args.cartpole_steps
    base = TrainConfig.from_dict(values, source)
    print(
        f"\n== CartPole-v1, DQN ({source}): {base.total_steps} env steps at most, {base.eval_episodes} evaluation "
        f"episodes every {base.eval_interval} steps, stop at {base.stop_at_return}; num_envs {base.num_envs} "
        f"(workers 2: {-(-base.num_envs // 2)} per actor)"
    )
    print(
        f"{'seed':>4} {'workers':>7} {'solved at':>9} {'final return':>12} {'env steps':>9} {'wall s':>7} "
        f"{'steps/s':>8} {'learn steps/s':>13}"
    )
    runs: dict[tuple[int, int], dict[str, Any]] = {}
    for seed in args.seeds:
        config = replace(base, seed=seed)
        for count in WORKER_COUNTS:
            run = runs[seed, count] = timed_run(config, out / "cartpole" / f"seed{seed}_w{count}", count)
            print(
                f"{seed:>4} {count:>7} {fmt(run['solved_at_step'], 'd'):>9} {run['mean_return']:>12.1f} "
                f"{run['steps']:>9} {run['wall']:>7.1f} {run['rate']:>8.0f} {fmt(run['learn_rate'], '.0f'):>13}",
                flush=True,
            )
    solved = {
        count: sum(runs[seed, count]["solved_at_step"] is not None for seed in args.seeds) for count in WORKER_COUNTS
    }
    totals = {count: sum(runs[seed, count]["wall"] for seed in args.seeds) for count in WORKER_COUNTS}
    print(
        f"solved within {base.total_steps} env steps: workers 1 {solved[1]}/{len(args.seeds)}, "
        f"workers 2 {solved[2]}/{len(args.seeds)}; wall w2/w1: median over seeds "
        f"{fmt(median_ratio(runs, args.seeds, 'wall'), '.2f')}, totals {totals[2]:.1f} s / {totals[1]:.1f} s = "
        f"{totals[2] / totals[1]:.2f}; env steps/s w2/w1 (median over seeds) "
        f"{fmt(median_ratio(runs, args.seeds, 'rate'), '.2f')}, learning-loop env steps/s "
        f"{fmt(median_ratio(runs, args.seeds, 'learn_rate'), '.2f')}"
    )


# ------------------------------------------------------------------------------------ MRI env
def mri_data(args: argparse.Namespace, quick: QuickstartConfig, out: Path) -> Path:
    """The data root: ``--data``, else anatomy data written into ``out/data`` with the quick start's settings."""
    if args.data is not None:
        return args.data.resolve()
    from mri_rl.data import SimulationSpec, write_anatomy_dataset

    root = (out / "data").resolve()
    volumes = {"train": args.volumes or quick.data.volumes.train, "val": quick.data.volumes.val}
    spec = SimulationSpec(challenge=quick.task.challenge, num_slices=quick.data.slices, size=quick.data.size)
    seed = quick.seed if quick.data.seed is None else quick.data.seed
    start = time.perf_counter()
    write_anatomy_dataset(root, spec, volumes, seed=seed, progress=False)
    print(
        f"wrote anatomy data ({volumes}, {spec.num_slices} slices of {spec.size}x{spec.size}) into {root} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return root


def mri_config(args: argparse.Namespace, quick: QuickstartConfig, root: Path) -> TrainConfig:
    """The quick start's dqn config (its agent config with its overrides) on ``root``, for ``--mri-steps``."""
    stage = quick.agents["dqn"]
    values, source = load_config(stage.config)
    values["hyperparameters"] = {**values.get("hyperparameters", {}), **stage.hyperparameters}
    task = quick.task
    if args.reconstructor is not None:
        task = task.with_changes(reconstructor=str(args.reconstructor.resolve()))
    options = values.get("env_kwargs", {})
    challenge = task.challenge
    values.update(
        total_steps=args.mri_steps,
        seed=quick.seed,
        eval_episodes=args.mri_eval_episodes,
        env_kwargs={**options, "data_path": str(root / f"{challenge}_train"), "task": task.to_dict()},
        eval_env_kwargs={**options, "data_path": str(root / f"{challenge}_val"), "task": task.to_dict()},
    )
    return TrainConfig.from_dict(values, f"{source} (the quick start's dqn settings)")


def mri(args: argparse.Namespace, out: Path) -> None:
    quick = QuickstartConfig.from_file("quickstart")
    root = mri_data(args, quick, out)
    config = mri_config(args, quick, root)
    reconstructor = config.env_kwargs["task"]["reconstructor"]
    print(
        f"\n== MRI env, DQN (quick start's dqn settings), {config.total_steps} env steps, data {root}, "
        f"reconstructor {reconstructor}; num_envs {config.num_envs} (workers 2: {-(-config.num_envs // 2)} "
        f"per actor); final evaluation {config.eval_episodes} episode(s). Speed only: no quality is measured."
    )
    print(f"{'round':>5} {'workers':>7} {'env steps':>9} {'wall s':>7} {'steps/s':>8} {'learn steps/s':>13}")
    runs: dict[tuple[int, int], dict[str, Any]] = {}
    rounds = list(range(args.mri_rounds))
    for index in rounds:
        for count in WORKER_COUNTS:
            run = runs[index, count] = timed_run(config, out / "mri" / f"round{index}_w{count}", count)
            print(
                f"{index:>5} {count:>7} {run['steps']:>9} {run['wall']:>7.1f} {run['rate']:>8.1f} "
                f"{fmt(run['learn_rate']):>13}",
                flush=True,
            )
    print(
        f"w2/w1 (median over rounds): wall {fmt(median_ratio(runs, rounds, 'wall'), '.2f')}, env steps/s "
        f"{fmt(median_ratio(runs, rounds, 'rate'), '.2f')}, learning-loop env steps/s "
        f"{fmt(median_ratio(runs, rounds, 'learn_rate'), '.2f')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="CartPole seeds (default: 0 1 2)")
    parser.add_argument(
        "--cartpole-steps", type=int, default=None, help="CartPole env steps at most (default: the config's 50000)"
    )
    parser.add_argument("--mri-steps", type=int, default=2000, help="MRI env steps per run (default: 2000)")
    parser.add_argument("--mri-rounds", type=int, default=2, help="interleaved MRI rounds of w1 and w2 (default: 2)")
    parser.add_argument(
        "--mri-eval-episodes", type=int, default=1, help="episodes of the MRI runs' final evaluation (default: 1)"
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="an existing quick-start data root (default: write anatomy data)"
    )
    parser.add_argument(
        "--volumes",
        type=int,
        default=None,
        help="train volumes of the written anatomy data (default: the quick start's)",
    )
    parser.add_argument(
        "--reconstructor", type=Path, default=None, help="an exported reconstructor (default: zero-filled)"
    )
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary one, deleted)")
    parser.add_argument("--skip-cartpole", action="store_true")
    parser.add_argument("--skip-mri", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        parser.error(f"--out {args.out} is not empty: choose a new folder")

    with tempfile.TemporaryDirectory(prefix="bench_distributed_") as tmp:
        out = args.out or Path(tmp)
        print(
            f"torch threads (learner) {torch.get_num_threads()}; Ray actors one CPU and one thread each; "
            f"Ray start+stop for 2 workers: {ray_overhead():.1f} s (paid by each workers-2 run); runs in {out}"
        )
        started = time.perf_counter()
        if not args.skip_cartpole:
            cartpole(args, out)
        if not args.skip_mri:
            mri(args, out)
        print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
