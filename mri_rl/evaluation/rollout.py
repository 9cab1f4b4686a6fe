"""Rolling acquisition policies over every slice of a split, batched across slices."""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mri_rl.agents.collect import Collector
from mri_rl.agents.policy import Policy
from mri_rl.task import METRIC_NAMES

METRIC_COLUMNS = ("policy", "seed", "file", "slice", "step", "acquired_columns", "sampling_rate", *METRIC_NAMES)


def rollout_policy(
    policy: Policy,
    env: Any,
    budget: int | None,
    policy_name: str,
    seed: int,
    slice_indices: list[int] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """One episode per slice, ``budget`` steps each (None: until the columns run out), N slices at a time.

    Args:
        policy: picks actions for the batch (:class:`~mri_rl.agents.Policy`); its
            ``reset(legal)`` is called when a batch of episodes starts, if it has one.
        env: the batched acquisition env (N = ``env.num_envs`` slices at a time).
        budget: steps per episode.
        policy_name, seed: written into each row.
        slice_indices: slices to roll (default: all of the env's).

    Returns:
        One row per (slice, step) with the columns of :data:`METRIC_COLUMNS`; step 0 is
        the initial mask.
    """
    unwrapped = env.unwrapped
    indices = list(range(unwrapped.num_slices)) if slice_indices is None else list(slice_indices)
    num_envs = env.num_envs
    collector = Collector(env, env.single_action_space.n)
    rows: list[dict[str, Any]] = []
    chunks = [indices[i : i + num_envs] for i in range(0, len(indices), num_envs)]
    for chunk in tqdm(chunks, desc=f"{policy_name} seed {seed}", unit="batch", disable=not progress):
        padded = chunk + [chunk[-1]] * (num_envs - len(chunk))
        names = [unwrapped.slice_name(i) for i in padded]
        real = np.arange(num_envs) < len(chunk)
        obs, legal, info = collector.reset(options={"indices": padded})
        if hasattr(policy, "reset"):
            policy.reset(legal)
        rows += metric_rows(info, names, real, policy_name, seed, 0)
        step_number = 0
        while (budget is None or step_number < budget) and (collector.in_first_episode & real).any():
            step_number += 1
            legal[~(collector.in_first_episode & real)] = True  # finished or padding: any action, result discarded
            actions, _ = policy.predict(obs, deterministic=True, action_mask=legal)
            step = collector.step(np.asarray(actions))
            rows += metric_rows(step.infos, names, step.in_first_episode & real, policy_name, seed, step_number)
            obs, legal = step.observations, step.legal
    return rows


def metric_rows(
    info: dict[str, Any], names: list[tuple[str, int]], which: np.ndarray, policy_name: str, seed: int, step: int
) -> list[dict[str, Any]]:
    """Rows of :data:`METRIC_COLUMNS` for the episodes ``which`` of a batch's ``info``."""
    return [
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
        for row in np.flatnonzero(which)
    ]
