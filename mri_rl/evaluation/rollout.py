"""Rolling acquisition policies over every slice of a split, batched across slices."""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mri_rl.task import METRIC_NAMES

METRIC_COLUMNS = ("policy", "seed", "file", "slice", "step", "acquired_columns", "sampling_rate", *METRIC_NAMES)


def rollout_policy(
    policy: Any,
    env: Any,
    budget: int,
    policy_name: str,
    seed: int,
    slice_indices: list[int] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """One episode per slice, ``budget`` steps each, N slices at a time.

    Args:
        policy: anything with ``predict(obs, deterministic=True, action_mask=...)`` over a
            batch; ``reset(action_masks)`` is called at the start when present.
        env: the batched acquisition env (N = ``env.num_envs`` slices at a time).
        budget: steps per episode.
        policy_name, seed: written into each row.
        slice_indices: slices to roll (default: all of the env's).

    Returns:
        One row per (slice, step) with the columns of :data:`METRIC_COLUMNS`; step 0 is
        the initial mask.
    """
    source = env.unwrapped.episodes.source
    indices = list(range(len(source))) if slice_indices is None else list(slice_indices)
    num_envs = env.num_envs
    rows: list[dict[str, Any]] = []
    chunks = [indices[i : i + num_envs] for i in range(0, len(indices), num_envs)]
    for chunk in tqdm(chunks, desc=f"{policy_name} seed {seed}", unit="batch", disable=not progress):
        padded = chunk + [chunk[-1]] * (num_envs - len(chunk))
        obs, info = env.reset(options={"indices": padded})
        masks = np.asarray(info["action_mask"], dtype=bool)
        if hasattr(policy, "reset"):
            policy.reset(masks)
        running = np.arange(num_envs) < len(chunk)
        names = [source.describe(i) for i in padded]

        def record(info: dict[str, Any], step: int, which: np.ndarray) -> None:
            for row in np.flatnonzero(which):
                rows.append(
                    {
                        "policy": policy_name,
                        "seed": seed,
                        "file": names[row][0],
                        "slice": names[row][1],
                        "step": step,
                        "acquired_columns": int(info["acquired_columns"][row]),
                        "sampling_rate": float(info["sampling_rate"][row]),
                        **{name: float(info[name][row]) for name in METRIC_NAMES},
                    }
                )

        record(info, 0, running)
        for step in range(1, budget + 1):
            masks[~running] = True  # finished episodes: any action, the result is discarded
            actions, _ = policy.predict(obs, deterministic=True, action_mask=masks)
            obs, _, terminated, _, info = env.step(np.asarray(actions))
            record(info, step, running)
            running &= ~terminated
            if not running.any():
                break
            masks = np.asarray(info["action_mask"], dtype=bool)
    return rows
