"""Benchmark: environment steps per second against the bare reconstructor, in one run.

For the zero-filled and a U-Net reconstructor (``fastmri.models.Unet``, untrained), it
times the single environment and the batched environment at N = 1, 8, 32, and the bare
reconstructor forward pass on the same batch size. A batched step advances N episodes,
so its rate counts N env steps; the bare rate counts N images per forward call.

    python scripts/bench_env.py [--size 64] [--seconds 1] [--rounds 5] [--unet-chans 32]

The measurements run in interleaved rounds and each ratio is the median of the ratios
measured within one round, so a slow spell of a noisy machine hits both sides of it.

Targets (issue 3): U-Net batched at N=32 >= 0.9 of the bare forward rate; zero-filled
batched at N=32 >= 5x the single environment's steps/s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import mri_rl  # noqa: F401  (registers the environment)
from mri_rl.data import SyntheticSpec, write_synthetic_dataset
from mri_rl.envs import ENV_ID
from mri_rl.kspace import apply_mask
from mri_rl.reconstruct import UnetReconstructor, ZeroFilledReconstructor


def timed_rate(run_once, items_per_call: int, seconds: float, warmup: int = 2) -> float:
    """Items per second of ``run_once`` over at least ``seconds`` of wall time."""
    for _ in range(warmup):
        run_once()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run_once()
        calls += 1
    return calls * items_per_call / (time.perf_counter() - start)


def first_free_columns(action_mask: np.ndarray) -> np.ndarray:
    """A cheap valid policy: the lowest column not yet acquired, per episode."""
    return np.argmax(action_mask, axis=-1)


def single_stepper(env_kwargs: dict):
    """One step of the single env (resetting when its episode ends)."""
    env = gym.make(ENV_ID, **env_kwargs)
    env.reset(seed=0)

    def step() -> None:
        _, _, terminated, _, _ = env.step(int(first_free_columns(env.unwrapped.action_masks())))
        if terminated:
            env.reset()

    return step


def batched_stepper(env_kwargs: dict, num_envs: int):
    """One step of the batched env (N env steps)."""
    env = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **env_kwargs)
    env.reset(seed=0)
    return lambda: env.step(first_free_columns(env.unwrapped.action_masks()))


def bare_forward(reconstructor: torch.nn.Module, env_kwargs: dict, num_envs: int):
    """The reconstructor alone on a batch of masked k-space of the env's shape (N images)."""
    env = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **env_kwargs)
    env.reset(seed=0)
    episodes = env.unwrapped.episodes
    rows = torch.arange(num_envs)
    masked = apply_mask(episodes.kspace[rows], episodes.acquired)
    mask = episodes.acquired.clone()

    @torch.no_grad()
    def forward() -> None:
        reconstructor(masked, mask, episodes.recon_size)

    return forward


def median_ratio(rates: dict[tuple[str, int], list[float]], a: tuple[str, int], b: tuple[str, int]) -> float:
    """Median over rounds of the ratio of ``a``'s to ``b``'s rate, measured within each round."""
    return float(np.median(np.asarray(rates[a]) / np.asarray(rates[b])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="target size of the synthetic data")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing window per measurement and round")
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds of all measurements, interleaved; medians are reported"
    )
    parser.add_argument("--unet-chans", type=int, default=32)
    parser.add_argument("--unet-pools", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_dataset(tmp, SyntheticSpec(size=args.size, num_slices=8), {"train": 4}, progress=False)
        data_path = Path(tmp) / "singlecoil_train"
        unet = UnetReconstructor(chans=args.unet_chans, num_pool_layers=args.unet_pools).eval()
        reconstructors = {"zero_filled": ZeroFilledReconstructor(), "unet": unet}
        print(
            f"data: synthetic single-coil, target {args.size}x{args.size}, k-space {2 * args.size}x{args.size}; "
            f"torch threads {torch.get_num_threads()}; U-Net chans={args.unet_chans} pools={args.unet_pools}; "
            f"{args.rounds} interleaved rounds of {args.seconds} s per measurement, medians"
        )
        print(
            f"{'reconstructor':<13} {'env':<8} {'N':>3} {'env steps/s':>12} {'bare fwd img/s':>15} "
            f"{'env/bare':>9} {'vs single':>10}"
        )
        summary = {}
        for name, reconstructor in reconstructors.items():
            env_kwargs = {"data_path": data_path, "reconstructor": reconstructor, "budget": args.size // 2}
            runs = {("single", 1): (single_stepper(env_kwargs), 1)}
            for n in (1, 8, 32):
                runs[("batched", n)] = (batched_stepper(env_kwargs, n), n)
                runs[("bare", n)] = (bare_forward(reconstructor, env_kwargs, n), n)
            rates: dict[tuple[str, int], list[float]] = {key: [] for key in runs}
            for _ in range(args.rounds):
                for key, (run_once, items) in runs.items():
                    rates[key].append(timed_rate(run_once, items, args.seconds))

            single = float(np.median(rates[("single", 1)]))
            print(f"{name:<13} {'single':<8} {1:>3} {single:>12.1f} {'':>15} {'':>9} {1.0:>9.2f}x")
            for n in (1, 8, 32):
                batched, bare = float(np.median(rates[("batched", n)])), float(np.median(rates[("bare", n)]))
                print(
                    f"{name:<13} {'batched':<8} {n:>3} {batched:>12.1f} {bare:>15.1f} "
                    f"{median_ratio(rates, ('batched', n), ('bare', n)):>9.2f} "
                    f"{median_ratio(rates, ('batched', n), ('single', 1)):>9.2f}x"
                )
            summary[name] = {
                "vs_bare": median_ratio(rates, ("batched", 32), ("bare", 32)),
                "vs_single": median_ratio(rates, ("batched", 32), ("single", 1)),
                "vs_single_range": (np.asarray(rates[("batched", 32)]) / np.asarray(rates[("single", 1)])),
            }
        unet_ratio = summary["unet"]["vs_bare"]
        zf_speedup = summary["zero_filled"]["vs_single"]
        spread = summary["zero_filled"]["vs_single_range"]
        print(
            f"\nU-Net batched N=32 / bare forward: {unet_ratio:.2f} (target >= 0.9): "
            f"{'met' if unet_ratio >= 0.9 else 'NOT met'}"
        )
        print(
            f"zero-filled batched N=32 / single env: {zf_speedup:.1f}x, rounds {spread.min():.1f}x-{spread.max():.1f}x "
            f"(target >= 5x): {'met' if zf_speedup >= 5 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
