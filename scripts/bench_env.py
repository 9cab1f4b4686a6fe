"""Benchmark: environment steps per second against the bare reconstructor, in one run.

For the zero-filled and a U-Net reconstructor (``fastmri.models.Unet``, untrained), it
times the single environment and the batched environment at N = 1, 8, 32, and the bare
reconstructor forward pass on the same batch size. A batched step advances N episodes,
so its rate counts N env steps; the bare rate counts N images per forward call.

    python scripts/bench_env.py [--size 64] [--seconds 3] [--unet-chans 32]

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


def bench_single(env_kwargs: dict, seconds: float) -> float:
    env = gym.make(ENV_ID, **env_kwargs)
    env.reset(seed=0)

    def step() -> None:
        _, _, terminated, _, _ = env.step(int(first_free_columns(env.unwrapped.action_masks())))
        if terminated:
            env.reset()

    return timed_rate(step, 1, seconds)


def bench_batched(env_kwargs: dict, num_envs: int, seconds: float) -> float:
    env = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **env_kwargs)
    env.reset(seed=0)
    return timed_rate(lambda: env.step(first_free_columns(env.unwrapped.action_masks())), num_envs, seconds)


def bench_bare(reconstructor: torch.nn.Module, env_kwargs: dict, num_envs: int, seconds: float) -> float:
    """Forward rate of the reconstructor alone on a batch of masked k-space of the env's shape."""
    env = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **env_kwargs)
    env.reset(seed=0)
    episodes = env.unwrapped.episodes
    rows = torch.arange(num_envs)
    masked = episodes.masked_kspace(rows, episodes.mask)
    mask = episodes.mask.clone()

    @torch.no_grad()
    def forward() -> None:
        reconstructor(masked, mask, episodes.recon_size)

    return timed_rate(forward, num_envs, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="target size of the synthetic data")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing window per measurement")
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
        print(f"data: synthetic single-coil, target {args.size}x{args.size}, k-space {2 * args.size}x{args.size}; "
              f"torch threads {torch.get_num_threads()}; U-Net chans={args.unet_chans} pools={args.unet_pools}")
        print(f"{'reconstructor':<13} {'env':<8} {'N':>3} {'env steps/s':>12} {'bare fwd img/s':>15} "
              f"{'env/bare':>9} {'vs single':>10}")
        results = {}
        for name, reconstructor in reconstructors.items():
            env_kwargs = {"data_path": data_path, "reconstructor": reconstructor, "budget": args.size // 2,
                          "initial_lines": 4}
            single = bench_single(env_kwargs, args.seconds)
            print(f"{name:<13} {'single':<8} {1:>3} {single:>12.1f} {'':>15} {'':>9} {1.0:>9.2f}x")
            for n in (1, 8, 32):
                batched = bench_batched(env_kwargs, n, args.seconds)
                bare = bench_bare(reconstructor, env_kwargs, n, args.seconds)
                results[(name, n)] = (batched, bare, single)
                print(f"{name:<13} {'batched':<8} {n:>3} {batched:>12.1f} {bare:>15.1f} {batched / bare:>9.2f} "
                      f"{batched / single:>9.2f}x")
        unet_ratio = results[("unet", 32)][0] / results[("unet", 32)][1]
        zf_speedup = results[("zero_filled", 32)][0] / results[("zero_filled", 32)][2]
        print(f"\nU-Net batched N=32 / bare forward: {unet_ratio:.2f} (target >= 0.9): "
              f"{'met' if unet_ratio >= 0.9 else 'NOT met'}")
        print(f"zero-filled batched N=32 / single env: {zf_speedup:.1f}x (target >= 5x): "
              f"{'met' if zf_speedup >= 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
