"""Benchmark: one oracle step against the bare batched reconstructor on the same candidates.

An oracle step scores every free column of every episode (``OraclePolicy.scores``:
masked k-space, reconstruction and reward metric, in chunks of ``look_ahead_batch_size``).
The reference is the reconstructor alone on the same number of pre-built masked k-space
inputs, in the same chunk sizes. Both are timed in this process, alternately.

    python scripts/bench_oracle.py [--size 64] [--episodes 16] [--repeats 5] [--reward-metrics mse ssim]

Target (issue 6): oracle step <= 1.3 x the bare reconstructor time.

It then times one step of ``oracle_rollout`` (:class:`~mri_rl.policies.RolloutOraclePolicy`, its
``--rollout-candidates`` greedy columns and its base order's next one, each continued along the base
order to the end of a ``--rollout-budget`` episode; the low-to-high order as the base) from the same
state, against the oracle step and against the bare reconstructor on the same continuation masks
(:meth:`~mri_rl.policies.RolloutOraclePolicy.continuations`).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from mri_rl.data import SyntheticSpec, write_synthetic_dataset
from mri_rl.envs import ENV_ID
from mri_rl.kspace import apply_mask, low_frequency_order
from mri_rl.policies import OraclePolicy, RolloutOraclePolicy
from mri_rl.reconstruct import UnetReconstructor, ZeroFilledReconstructor


def best_time(function, repeats: int) -> float:
    """Fastest of ``repeats`` calls (the least disturbed by other processes)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


@torch.no_grad()
def bare_reconstructions(
    reconstructor, inputs: torch.Tensor, masks: torch.Tensor, size: tuple[int, int], chunk: int
) -> None:
    """The reconstructor alone on pre-built inputs, ``chunk`` at a time."""
    for start in range(0, len(inputs), chunk):
        reconstructor(inputs[start : start + chunk], masks[start : start + chunk], size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reward-metrics", nargs="+", default=["mse", "ssim"])
    parser.add_argument("--rollout-candidates", type=int, default=5, help="oracle_rollout's greedy candidates")
    parser.add_argument("--rollout-budget", type=int, default=16, help="columns per episode of the roll-out step")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_dataset(tmp, SyntheticSpec(size=args.size), {"test": 2}, progress=False)
        reconstructors = {
            "zero_filled": ZeroFilledReconstructor(),
            "unet": UnetReconstructor(chans=32, num_pool_layers=3).eval(),
        }
        print(
            f"{'reconstructor':<13} {'metric':<6} {'candidates':>10} {'oracle step s':>14} {'bare recon s':>13} "
            f"{'ratio':>6} {'rollout masks':>13} {'rollout step s':>14} {'/ oracle':>8} {'/ bare':>6}"
        )
        for (name, reconstructor), metric in itertools.product(reconstructors.items(), args.reward_metrics):
            env = gym.make_vec(
                ENV_ID,
                num_envs=args.episodes,
                vectorization_mode="vector_entry_point",
                data_path=Path(tmp) / "singlecoil_test",
                reconstructor=reconstructor,
                reward_metric=metric,
                budget=args.rollout_budget,
            )  # the default task's initial lines
            env.reset(seed=0)
            episodes = env.unwrapped.episodes
            masks = env.unwrapped.action_masks()
            oracle = OraclePolicy(env)

            rows = np.repeat(np.arange(args.episodes), masks.sum(axis=1))
            columns = np.concatenate([np.flatnonzero(m) for m in masks])
            candidate_masks = episodes.acquired[torch.as_tensor(rows)].clone()
            candidate_masks[torch.arange(len(rows)), torch.as_tensor(columns)] = True
            chunk = episodes.look_ahead_batch_size

            oracle_time = best_time(functools.partial(oracle.scores, None, masks), args.repeats)
            bare_time = best_time(bare_call(reconstructor, episodes, rows, candidate_masks, chunk), args.repeats)

            rollout = RolloutOraclePolicy(env, low_frequency_order(masks.shape[1]), args.rollout_candidates)
            candidates, valid = rollout.candidate_columns(oracle.scores(None, masks), masks)
            mask_rows, rollout_masks, _, _ = rollout.continuations(candidates, valid, masks)
            rollout_time = best_time(functools.partial(rollout.scores, None, masks), args.repeats)
            rollout_bare = bare_call(reconstructor, episodes, mask_rows, torch.as_tensor(rollout_masks), chunk)
            rollout_bare_time = best_time(rollout_bare, args.repeats)
            print(
                f"{name:<13} {metric:<6} {len(rows):>10} {oracle_time:>14.4f} {bare_time:>13.4f} "
                f"{oracle_time / bare_time:>6.2f} {len(mask_rows):>13} {rollout_time:>14.4f} "
                f"{rollout_time / oracle_time:>8.2f} {rollout_time / (bare_time + rollout_bare_time):>6.2f}"
            )


def bare_call(reconstructor, episodes, rows: np.ndarray, masks: torch.Tensor, chunk: int) -> functools.partial:
    """The bare reconstructor on the episodes ``rows``' k-space under ``masks`` (P, W), pre-built."""
    inputs = apply_mask(episodes.kspace[torch.as_tensor(rows)], masks)
    return functools.partial(bare_reconstructions, reconstructor, inputs, masks, episodes.recon_size, chunk)


if __name__ == "__main__":
    main()
