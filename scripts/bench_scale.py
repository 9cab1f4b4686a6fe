"""Benchmark at real size: fastMRI knee geometry, measured in one run, with a projection to the knee validation split.

The data are synthetic volumes (:func:`mri_rl.data.write_synthetic_dataset`) of the fastMRI knee geometry by
default: 640x368 k-space (640 readout rows, 2x oversampled; 368 phase-encode columns with 20 zero-filled
columns on each side) and 320x320 targets, written into a temporary folder (``--data`` reuses a folder, a
root holding ``singlecoil_test/`` or a folder of .h5 files). It measures, in one run:

1. env steps/s of the batched env (N episodes, ``--num-envs``; the lowest free column each step; episodes
   of ``--env-budget`` columns from ``--initial-lines``) with the zero-filled reconstructor and an untrained
   U-Net (``fastmri.models.Unet``, chans 32, 4 pools), against the bare reconstructor forward on the same
   batch (N masked k-spaces of the env's, images/s); ``--coils C`` adds the same lines on C-coil data;
2. oracle candidates/s: the env's look-ahead (``env.unwrapped.look_ahead``) of K free columns per episode
   (``--candidates``, ``--unet-candidates``), each candidate a reconstruction plus the reward metric, against
   the same bare forward rate (images/s);
3. replay bytes per transition of :class:`mri_rl.agents.replay.ReplayBuffer` for the env's observation
   space (with and without the column spectrum, float16 images and float32);
4. ``mri_rl.evaluation.evaluate_policies`` (``--policies``, one seed, ``--budget`` columns from
   ``--initial-lines``, ``--batch-size`` slices per batch) in this process with ONE torch thread, then with 1
   and ``--workers`` Ray workers (``mri_rl.distributed.Workers``: one CPU, one torch thread each), each into
   a fresh folder; wall times include starting and stopping Ray, and summary.json and metrics.csv must be
   byte-identical across the runs;
5. a projection from these rates to the fastMRI knee validation split (7,135 slices) in Pineda et al.'s
   setting (the greedy oracle, 70 columns from 30 initial lines, scoring every free column at every step).

    python scripts/bench_scale.py [--size 320] [--kspace-width 368] [--padding 20] [--num-envs 8] \\
        [--slices 8] [--batch-size 2] [--budget 4] [--rounds 3] [--seconds 1] [--workers 2] [--coils 15]

Measurements 1-2 run with ``--threads`` torch threads (default 1, as the evaluation) in interleaved rounds
(a warm-up call each first); every ratio is the median of the ratios measured within one round, so a slow
spell of a noisy machine hits both sides of it. The evaluations are timed once each (about 100 s for the
single process at the defaults on an idle 2-core CPU; the whole run about 8-10 minutes). With ``--data`` the
geometry and slices are the data's (``--size``, ``--kspace-width``, ``--padding``, ``--slices`` only shape the
data written here). A check at small size:

    OMP_NUM_THREADS=1 python scripts/bench_scale.py --size 64 --kspace-width 72 --padding 4 --slices 4 \\
        --batch-size 1 --budget 2 --rounds 1 --seconds 0.2
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import mri_rl  # noqa: F401  (registers the environment)
from mri_rl.agents.replay import ReplayBuffer
from mri_rl.configs import load_config
from mri_rl.data import SyntheticSpec, write_synthetic_dataset
from mri_rl.data.fastmri_files import resolve_split_folder
from mri_rl.distributed import Workers, ray_instance
from mri_rl.envs import ENV_ID
from mri_rl.envs.spaces import observation_space
from mri_rl.evaluation.evaluate import EvaluationSetup, evaluate_policies
from mri_rl.kspace import apply_mask
from mri_rl.reconstruct import UnetReconstructor, ZeroFilledReconstructor
from mri_rl.task import AcquisitionTask

#: The fastMRI knee validation split (199 volumes) and Pineda et al.'s knee setting (MICCAI 2020,
#: "Active MR k-space sampling with reinforcement learning"): 30 initial low-frequency lines, 70 more.
KNEE_VAL_SLICES, PINEDA_INITIAL_LINES, PINEDA_BUDGET = 7135, 30, 70
#: Files of an evaluation that must not depend on how it was run.
COMPARED_FILES = ("summary.json", "metrics.csv")
#: Largest number of slices per synthetic volume.
SLICES_PER_VOLUME = 4


def rate_text(rate: float) -> str:
    """A rate with three significant digits, or no decimals from 1000 on (no exponent)."""
    return f"{rate:.0f}" if rate >= 999.5 else f"{rate:#.3g}".rstrip(".")


def timed_rate(run_once: Callable[[], Any], items_per_call: int, seconds: float) -> float:
    """Items per second of ``run_once`` over at least ``seconds`` of wall time and at least one call."""
    calls, start = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - start < seconds:
        run_once()
        calls += 1
    return calls * items_per_call / (time.perf_counter() - start)


def progress(message: str) -> None:
    """A progress note on stderr (the table goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_vec(data_path: Path, num_envs: int, task: AcquisitionTask, reconstructor: torch.nn.Module):
    return gym.make_vec(
        ENV_ID,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        data_path=data_path,
        task=task,
        device="cpu",
        reconstructor=reconstructor,
    )


def env_stepper(env: gym.vector.VectorEnv) -> Callable[[], Any]:
    """One batched step (N env steps), each episode acquiring its lowest free column."""
    env.reset(seed=0)
    return lambda: env.step(np.argmax(env.unwrapped.action_masks(), axis=-1))


def bare_forward(env: gym.vector.VectorEnv, reconstructor: torch.nn.Module) -> Callable[[], Any]:
    """The reconstructor alone on the env's N masked k-spaces (N images per call)."""
    env.reset(seed=0)
    episodes = env.unwrapped.episodes
    masked = apply_mask(episodes.kspace.clone(), episodes.acquired)
    mask = episodes.acquired.clone()

    @torch.inference_mode()
    def forward() -> None:
        reconstructor(masked, mask, episodes.recon_size)

    return forward


def look_ahead(env: gym.vector.VectorEnv, per_episode: int) -> tuple[Callable[[], Any], int]:
    """The env's look-ahead of ``per_episode`` free columns of each episode, spread over its free columns,
    at the start of the episodes (it changes no state); returns the call and its candidates."""
    env.reset(seed=0)
    masks = env.unwrapped.action_masks()
    k = max(1, min(per_episode, int(masks.sum(axis=1).min())))
    candidates = np.stack([np.flatnonzero(m)[np.linspace(0, m.sum() - 1, k).round().astype(int)] for m in masks])
    return (lambda: env.unwrapped.look_ahead(candidates)), candidates.size


def measure(runs: dict[str, tuple[Callable[[], Any], int]], rounds: int, seconds: float) -> dict[str, np.ndarray]:
    """Rates of every run (items/s), in ``rounds`` interleaved rounds after one warm-up call each."""
    for run_once, _ in runs.values():
        run_once()
    rates: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(rounds):
        for key, (run_once, items) in runs.items():
            rates[key].append(timed_rate(run_once, items, seconds))
    return {key: np.asarray(values) for key, values in rates.items()}


def reconstructor_lines(
    challenge: str, folder: Path, args: argparse.Namespace, env_task: AcquisitionTask
) -> list[dict[str, Any]]:
    """Env steps/s and (single-coil) look-ahead candidates/s of each reconstructor against its bare forward."""
    lines = []
    unet = UnetReconstructor(chans=args.unet_chans, num_pool_layers=args.unet_pools, challenge=challenge).eval()
    task = env_task.with_changes(challenge=challenge)
    for name, reconstructor in (("zero_filled", ZeroFilledReconstructor()), ("unet", unet)):
        n = args.num_envs
        progress(f"measuring {challenge} {name}")
        runs = {
            "env": (env_stepper(make_vec(folder, n, task, reconstructor)), n),
            "bare": (bare_forward(make_vec(folder, n, task, reconstructor), reconstructor), n),
        }
        if challenge == "singlecoil":
            per_episode = args.candidates if name == "zero_filled" else args.unet_candidates
            runs["look_ahead"] = look_ahead(make_vec(folder, n, task, reconstructor), per_episode)
        rates = measure(runs, args.rounds, args.seconds)
        bare = float(np.median(rates["bare"]))
        for key, what, unit in (("env", f"env step N={n}", "steps/s"), ("look_ahead", "oracle look-ahead", "cand/s")):
            if key in rates:
                what += f" ({runs[key][1]} cand)" if key == "look_ahead" else ""
                lines.append(
                    {
                        "challenge": challenge,
                        "data": "single-coil" if challenge == "singlecoil" else f"{args.coils} coils",
                        "reconstructor": name,
                        "what": what,
                        "key": key,
                        "rate": float(np.median(rates[key])),
                        "unit": unit,
                        "bare": bare,
                        "ratio": float(np.median(rates[key] / rates["bare"])),
                    }
                )
    return lines


def replay_lines(recon_size: tuple[int, int], width: int, num_envs: int) -> list[tuple[str, int]]:
    """Bytes per transition of the replay buffer for the env's observation space."""
    lines = []
    for spectrum in (False, True):
        space = observation_space(recon_size, width, column_spectrum=spectrum)
        for compact in (True, False):
            buffer = ReplayBuffer(2 * num_envs, num_envs, space, width, compact_images=compact)
            per_transition = buffer.bytes_per_transition  # its arrays' bytes / slots
            label = f"{'float16' if compact else 'float32'} images{', column spectrum' if spectrum else ''}"
            lines.append((label, per_transition))
    return lines


def run_evaluations(data: Path, args: argparse.Namespace, out_root: Path) -> list[dict[str, Any]]:
    """The same evaluation in this process (one torch thread) and on 1 and ``--workers`` Ray workers."""
    setup = EvaluationSetup(
        data=data,
        task=AcquisitionTask(budget=args.budget, initial_lines=args.initial_lines),
        split="test",
        seeds=(0,),
        batch_size=args.batch_size,
        any_folder=True,
    )
    torch.set_num_threads(1)  # the single process against Ray's workers of one thread each (OMP_NUM_THREADS=1)
    counts = [0, 1] + ([args.workers] if args.workers > 1 else [])
    results = []
    for count in counts:
        out = out_root / f"evaluation_{count}"
        progress(f"evaluating: {'single process' if count == 0 else f'{count} Ray worker(s)'}")
        start = time.perf_counter()
        if count == 0:
            evaluate_policies(setup, args.policies, out, progress=False)
        elif count == 1:
            # Workers(count=1) alone runs in this process: start a one-CPU Ray instance here (timed too)
            # and give an address so the shards go to it; Ray is running, so the address is not used.
            with ray_instance(Workers(count=1)):
                evaluate_policies(setup, args.policies, out, progress=False, workers=Workers(count=1, address="auto"))
        else:
            evaluate_policies(setup, args.policies, out, progress=False, workers=Workers(count=count))
        seconds = time.perf_counter() - start
        label = "single process" if count == 0 else f"{count} Ray worker{'s' if count > 1 else ''}"
        results.append({"label": label, "count": count, "seconds": seconds, "out": out})
    return results


def write_data(root: Path, args: argparse.Namespace) -> None:
    """Synthetic single-coil test volumes of ``--slices`` slices (or a few more), and with ``--coils``
    one multicoil volume of 2 slices."""
    volumes = math.ceil(args.slices / SLICES_PER_VOLUME)
    geometry = {"size": args.size, "kspace_width": args.kspace_width, "padding": args.padding}
    spec = SyntheticSpec(num_slices=math.ceil(args.slices / volumes), **geometry)
    write_synthetic_dataset(root, spec, {"test": volumes}, progress=False)
    if args.coils:
        multicoil = SyntheticSpec(challenge="multicoil", num_coils=args.coils, num_slices=2, **geometry)
        write_synthetic_dataset(root, multicoil, {"test": 1}, progress=False)


def oracle_candidates(measurable: int, initial_lines: int, budget: int) -> int:
    """Columns the greedy oracle scores in one episode: every free column at every step."""
    return sum(max(measurable - initial_lines - step, 0) for step in range(budget))


def print_projection(
    lines: list[dict[str, Any]], evaluations: list[dict[str, Any]], measurable: int, args: argparse.Namespace
) -> None:
    """Time for the knee validation split in Pineda et al.'s setting, from the measured single-coil rates."""
    per_slice = oracle_candidates(measurable, PINEDA_INITIAL_LINES, PINEDA_BUDGET)
    print(
        f"\nPROJECTION (not measured): the greedy oracle on the fastMRI knee validation split, {KNEE_VAL_SLICES} "
        f"slices, {PINEDA_BUDGET} columns from {PINEDA_INITIAL_LINES} initial lines (Pineda et al.), "
        f"{measurable} measurable columns:\n  {per_slice} candidates per slice (every free column at every step, "
        f"about {PINEDA_BUDGET} x {per_slice / PINEDA_BUDGET:.0f}) + {PINEDA_BUDGET} env steps, at the rates above"
    )
    if args.size != 320:
        print(f"  (rates measured at target size {args.size}, not the knee's 320: the hours are not the knee's)")
    rates = {(line["reconstructor"], line["key"]): line["rate"] for line in lines if line["challenge"] == "singlecoil"}
    if args.threads != 1:
        print(f"  (rates measured with {args.threads} torch threads: one process here uses {args.threads} CPUs)")
    parallel = next((e for e in evaluations if e["count"] == args.workers and e["count"] > 1), None)
    efficiency = None
    if parallel is not None:
        speedup = evaluations[0]["seconds"] / parallel["seconds"]
        efficiency = speedup / parallel["count"]
        print(
            f"  N processes: the single-process time / (N x {efficiency:.2f}), the speedup per worker measured with "
            f"{parallel['count']} Ray workers ({speedup:.2f}x); ASSUMES the speedup stays linear in workers beyond "
            f"{parallel['count']} (no contention for memory, disk or the scheduler)"
        )
    else:
        print("  N processes: not projected (no multi-worker evaluation measured)")
    counts = [1] + ([n for n in args.project_processes if n > 1] if efficiency else [])
    print(f"  {'reconstructor':<13} {'s/slice':>9} " + " ".join(f"{f'{n} proc h':>11}" for n in counts))
    for name in ("zero_filled", "unet"):
        seconds = per_slice / rates[(name, "look_ahead")] + PINEDA_BUDGET / rates[(name, "env")]
        hours = [seconds * KNEE_VAL_SLICES / 3600 / (1 if n == 1 else n * (efficiency or 1)) for n in counts]
        print(f"  {name:<13} {seconds:>9.1f} " + " ".join(f"{h:>11.1f}" for h in hours))
    if evaluations:
        single = evaluations[0]
        slices = single["slices"]
        scored = slices * oracle_candidates(measurable, args.initial_lines, args.budget)
        if "oracle" in args.policies and scored:
            print(
                f"  cross-check: the single-process evaluation took {single['seconds'] / scored * 1e3:.1f} ms per "
                f"oracle candidate ({scored} candidates, everything else of the run included), "
                f"against {1e3 / rates[('zero_filled', 'look_ahead')]:.1f} ms from the look-ahead rate"
            )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=320, help="target size N (k-space has 2N readout rows)")
    parser.add_argument("--kspace-width", type=int, default=368, help="phase-encode columns of the k-space")
    parser.add_argument("--padding", type=int, default=20, help="zero-filled phase-encode columns on each side")
    parser.add_argument("--data", type=Path, help="reuse this data (a root with singlecoil_test/, or a folder)")
    parser.add_argument(
        "--slices", type=int, default=8, help="single-coil test slices written (volumes of up to 4; not with --data)"
    )
    parser.add_argument(
        "--coils",
        type=int,
        default=0,
        help="also measure env steps on multicoil data of this many coils (with --data: its multicoil_test/)",
    )
    parser.add_argument("--num-envs", type=int, default=8, help="episodes N of the batched env (measurements 1-2)")
    parser.add_argument(
        "--env-budget", type=int, default=PINEDA_BUDGET, help="columns per episode of the env (measurement 1)"
    )
    parser.add_argument(
        "--initial-lines", type=int, default=8, help="initial low-frequency lines (measurements 1, 2, 4)"
    )
    parser.add_argument(
        "--candidates", type=int, default=16, help="zero-filled look-ahead columns per episode (measurement 2)"
    )
    parser.add_argument(
        "--unet-candidates", type=int, default=1, help="U-Net look-ahead columns per episode (measurement 2)"
    )
    parser.add_argument("--unet-chans", type=int, default=32)
    parser.add_argument("--unet-pools", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of measurements 1-2")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of measurements 1-2")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing window per measurement and round")
    parser.add_argument(
        "--policies", nargs="+", default=["oracle", "lowtohigh"], help="evaluated baselines (measurement 4)"
    )
    parser.add_argument("--budget", type=int, default=4, help="columns acquired per evaluation episode (measurement 4)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=2,
        help="slices per evaluation batch: shards are whole batches (measurement 4)",
    )
    parser.add_argument("--workers", type=int, default=2, help="Ray workers of the parallel evaluation (measurement 4)")
    parser.add_argument("--skip-evaluation", action="store_true", help="skip measurement 4")
    parser.add_argument(
        "--project-processes", type=int, nargs="+", default=[8, 32, 128], help="process counts of the projection"
    )
    return parser.parse_args()


def print_table(lines: list[dict[str, Any]]) -> None:
    print(
        f"\n{'data':<13} {'reconstructor':<13} {'measurement':<28} {'rate':>10} {'unit':<8} "
        f"{'bare img/s':>11} {'ratio':>6}"
    )
    for line in lines:
        print(
            f"{line['data']:<13} {line['reconstructor']:<13} {line['what']:<28} {rate_text(line['rate']):>10} "
            f"{line['unit']:<8} {rate_text(line['bare']):>11} {line['ratio']:>6.2f}"
        )


def print_evaluations(evaluations: list[dict[str, Any]]) -> None:
    single = evaluations[0]
    reference = {name: (single["out"] / name).read_bytes() for name in COMPARED_FILES}
    print(f"\n{'evaluation':<16} {'s':>8} {'slices/s':>9} {'vs single':>10}  files vs single process")
    for run in evaluations:
        same = [(run["out"] / name).read_bytes() == reference[name] for name in COMPARED_FILES]
        check = (
            ""
            if run is single
            else ", ".join(f"{n} {'OK' if s else 'DIFFERENT'}" for n, s in zip(COMPARED_FILES, same))
        )
        print(
            f"{run['label']:<16} {run['seconds']:>8.1f} {run['slices'] / run['seconds']:>9.3f} "
            f"{single['seconds'] / run['seconds']:>9.2f}x  {check}"
        )


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        root = args.data or Path(tmp) / "data"
        if args.data is None:
            start = time.perf_counter()
            write_data(root, args)
            print(f"data: written to {root} in {time.perf_counter() - start:.1f} s")
        folder = resolve_split_folder(root, "singlecoil", "test")
        env_task = AcquisitionTask(budget=args.env_budget, initial_lines=args.initial_lines)
        probe = make_vec(folder, 1, env_task, ZeroFilledReconstructor()).unwrapped
        source = probe.episodes.source
        measurable, slices = source.measurable_columns, probe.num_slices
        print(
            f"data: single-coil k-space {tuple(source.kspace_shape)}, target {source.recon_size}, "
            f"{measurable} of {probe.episodes.width} columns measured, {slices} test slices; torch threads "
            f"{torch.get_num_threads()}; U-Net chans={args.unet_chans} pools={args.unet_pools} (untrained); "
            f"env episodes of {args.env_budget} columns from {args.initial_lines} initial lines; "
            f"{args.rounds} interleaved rounds of >= {args.seconds} s per measurement, medians"
        )

        lines = reconstructor_lines("singlecoil", folder, args, env_task)
        multicoil = Path(root) / "multicoil_test"
        if args.coils and multicoil.is_dir():
            lines += reconstructor_lines("multicoil", multicoil, args, env_task)
        elif args.coils:
            print(f"(no multicoil lines: {multicoil} does not exist)")
        print_table(lines)
        print("ratio: env steps/s or candidates/s over the bare forward's images/s on the env's batch, per round")

        dqn_buffer = load_config("dqn_mri")[0]["hyperparameters"]["buffer_size"]
        print(
            f"\n{'replay buffer storage':<40} {'bytes/transition':>17} {'GiB per 100k':>13} "
            f"{f'GiB at {dqn_buffer} (dqn_mri)':>24}"
        )
        for label, size in replay_lines(source.recon_size, probe.episodes.width, args.num_envs):
            print(f"{label:<40} {size:>17,} {size * 1e5 / 2**30:>13.2f} {size * dqn_buffer / 2**30:>24.2f}")

        evaluations = []
        if not args.skip_evaluation:
            evaluations = run_evaluations(Path(root), args, Path(tmp))
            for run in evaluations:
                run["slices"] = slices
            print(
                f"\nevaluation: {' '.join(args.policies)}, seed 0, {slices} slices in batches of {args.batch_size}, "
                f"{args.budget} columns from {args.initial_lines} initial lines, zero-filled; one torch thread per "
                f"process; slices/s counts each slice once (every policy rolls it)"
            )
            print_evaluations(evaluations)
        print_projection(lines, evaluations, measurable, args)


if __name__ == "__main__":
    main()
