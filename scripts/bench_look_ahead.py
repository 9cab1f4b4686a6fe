"""Benchmark: look-ahead (oracle) scoring time against the number of reconstructions per call.

One look-ahead scores every free column of every episode: one U-Net reconstruction and one
reward metric per candidate, ``look_ahead_batch_size`` candidates per reconstructor call.
This times it at several call sizes on the same episodes, in interleaved rounds (each
ratio is the median of the ratios within one round, so a slow spell of a noisy machine hits
both sides of it), against the reference of 256 per call (the earlier fixed default), and
checks that the scores do not depend on the call size.

    python scripts/bench_look_ahead.py [--size 64] [--chans 16] [--episodes 16] [--rounds 3]
                                       [--batch-sizes 1 4 16 64 256] [--threads N]

The default on a CPU (``default_look_ahead_batch_size``) is marked with *.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import mri_rl  # noqa: F401  (registers the environment)
from mri_rl.data import SyntheticSpec, write_synthetic_dataset
from mri_rl.envs import ENV_ID
from mri_rl.envs.episodes import default_look_ahead_batch_size
from mri_rl.reconstruct import UnetReconstructor

REFERENCE = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="target image size (k-space is 2x as tall)")
    parser.add_argument("--chans", type=int, default=16, help="U-Net channels (the quick start's: 16)")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16, 64, REFERENCE])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: as mri_rl sets them)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sizes = sorted(set(args.batch_sizes) | {REFERENCE})
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_dataset(tmp, SyntheticSpec(size=args.size), {"test": 2}, progress=False)
        env = gym.make_vec(
            ENV_ID,
            num_envs=args.episodes,
            vectorization_mode="vector_entry_point",
            data_path=Path(tmp) / "singlecoil_test",
            reconstructor=UnetReconstructor(chans=args.chans, num_pool_layers=3).eval(),
            reward_metric="ssim",
        )
        env.reset(seed=0)
        episodes = env.unwrapped.episodes
        default = default_look_ahead_batch_size(episodes.device, episodes.recon_size)
        width = env.single_action_space.n
        candidates = np.tile(np.arange(width), (args.episodes, 1))
        rows = np.arange(args.episodes)
        free = int((~episodes.acquired).sum())
        scores: dict[int, np.ndarray] = {}
        rounds: list[dict[int, float]] = []
        for _ in range(args.rounds):
            seconds = {}
            for size in sizes:
                episodes.look_ahead_batch_size = size
                start = time.perf_counter()
                scores[size] = episodes.look_ahead(rows, candidates)
                seconds[size] = time.perf_counter() - start
            rounds.append(seconds)
        print(
            f"{args.size}x{args.size} images, U-Net chans {args.chans}, {free} candidates per look-ahead, "
            f"{torch.get_num_threads()} torch thread(s), {args.rounds} rounds"
        )
        print(f"{'per call':>9} {'ms/candidate':>13} {'time / time at 256':>19} {'max |score diff|':>17}")
        for size in sizes:
            best = min(r[size] for r in rounds)
            ratio = statistics.median(r[size] / r[REFERENCE] for r in rounds)
            diff = float(np.abs(scores[size] - scores[REFERENCE]).max())
            mark = "*" if size == default else " "
            print(f"{size:>8}{mark} {best / free * 1e3:>13.2f} {ratio:>19.2f} {diff:>17.3g}")


if __name__ == "__main__":
    main()
