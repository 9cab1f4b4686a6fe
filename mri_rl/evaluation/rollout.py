"""Rolling acquisition policies over every slice of a split, batched across slices, and
replaying a recorded acquisition order to get its images back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mri_rl.agents.collect import Collector
from mri_rl.agents.policy import Policy
from mri_rl.envs.episodes import NEW_EPISODE, AcquisitionEpisodes
from mri_rl.task import METRIC_NAMES
from mri_rl.threads import follow_free_cpus

#: ``column`` of a step-0 row: no column acquired yet, the row scores the initial mask
#: (the task's initial lines and the zero-filled edges, which the env's ``reset`` sets).
NO_COLUMN = -1
METRIC_COLUMNS = (
    "policy",
    "seed",
    "file",
    "slice",
    "step",
    "column",
    "acquired_columns",
    "sampling_rate",
    *METRIC_NAMES,
)


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
            ``reset(legal, slice_ids)`` is called when a batch of episodes starts, if it has one.
        env: the batched acquisition env (N = ``env.num_envs`` slices at a time).
        budget: steps per episode.
        policy_name, seed: written into each row.
        slice_indices: slices to roll (default: all of the env's).

    Returns:
        One row per (slice, step) with the columns of :data:`METRIC_COLUMNS`; step 0 is
        the initial mask (``column`` :data:`NO_COLUMN`), step t >= 1 the mask after the
        t-th acquired column, ``column`` being that column's index in [0, W).
    """
    unwrapped = env.unwrapped
    indices = list(range(unwrapped.num_slices)) if slice_indices is None else list(slice_indices)
    num_envs = env.num_envs
    collector = Collector(env, env.single_action_space.n)
    rows: list[dict[str, Any]] = []
    chunks = [indices[i : i + num_envs] for i in range(0, len(indices), num_envs)]
    for chunk in tqdm(chunks, desc=f"{policy_name} seed {seed}", unit="batch", disable=not progress):
        padded, real, obs, legal, info = start_batch(collector, policy, chunk)
        names = [unwrapped.slice_name(i) for i in padded]
        rows += metric_rows(info, names, real, policy_name, seed, 0)
        step_number = 0
        while (budget is None or step_number < budget) and (collector.in_first_episode & real).any():
            step_number += 1
            follow_free_cpus()
            legal[~(collector.in_first_episode & real)] = True  # finished or padding: any action, result discarded
            actions = predicted_indices(policy, obs, legal, collector.action_start)
            step = collector.step(actions)
            which = step.in_first_episode & real
            rows += metric_rows(step.infos, names, which, policy_name, seed, step_number, actions)
            obs, legal = step.observations, step.legal
    return rows


def predicted_indices(policy: Policy, obs: Any, legal: np.ndarray, action_start: int) -> np.ndarray:
    """int64 (N,): the policy's deterministic actions for a batch as action indices in [0, A), those of
    ``legal`` bool (N, A) and :meth:`~mri_rl.agents.collect.Collector.step`: ``predict`` returns the
    env's actions, which start at ``action_start`` (the Discrete space's ``start``)."""
    actions, _ = policy.predict(obs, deterministic=True, action_mask=legal)
    return np.asarray(actions, dtype=np.int64) - action_start


def acquisition_orders(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, int], list[int]]:
    """Each episode's acquired columns, in order, from the rows of one policy and seed
    (:func:`rollout_policy`): (file, slice) -> columns of steps 1, 2, ..."""
    orders: dict[tuple[str, int], list[int]] = {}
    for row in sorted(rows, key=lambda row: row["step"]):
        order = orders.setdefault((row["file"], row["slice"]), [])
        if row["step"] > 0:
            order.append(row["column"])
    return orders


def visit_own_states(
    policy: Policy,
    env: Any,
    budget: int,
    slice_indices: Sequence[int],
    act: Callable[[Any, np.ndarray, np.ndarray], np.ndarray],
) -> None:
    """One episode per slice of ``slice_indices``, ``env.num_envs`` slices at a time, for ``budget``
    steps, on the states the acting policy reaches itself: at each step ``act(obs, legal, which)``
    gives the batch's action indices int (N,) in [0, A), not env actions (:func:`predicted_indices`
    turns a policy's ``predict`` into them), from its observations and legal actions bool (N, A);
    ``which`` bool (N,) marks the rows still in their first episode on a real slice (not padding),
    the rows to count. ``policy`` is the one whose ``reset`` starts each batch (:func:`start_batch`).

    Raises:
        ValueError: no slice, or a budget below 1.
    """
    indices = [int(i) for i in slice_indices]
    if not indices or budget < 1:
        raise ValueError(f"rolling on own states needs slices and a budget >= 1, got {len(indices)} slice(s), {budget}")
    collector = Collector(env, env.single_action_space.n)
    for start in range(0, len(indices), env.num_envs):
        _, real, obs, legal, _ = start_batch(collector, policy, indices[start : start + env.num_envs])
        for _ in range(budget):
            which = collector.in_first_episode & real
            if not which.any():
                break
            step = collector.step(np.asarray(act(obs, legal, which)))
            obs, legal = step.observations, step.legal


def start_batch(
    collector: Collector, policy: Policy, chunk: list[int]
) -> tuple[list[int], np.ndarray, Any, np.ndarray, dict[str, Any]]:
    """Start one episode per slice of ``chunk`` (at most N slices; padded with its last slice to the
    env's N) and the policy's ``reset``, if it has one.

    Returns:
        the padded slice ids (N,), bool (N,) True for the rows of ``chunk`` (not padding), and the
        collector's observations, legal actions bool (N, A) and info.
    """
    num_envs = collector.env.num_envs
    padded = chunk + [chunk[-1]] * (num_envs - len(chunk))
    obs, legal, info = collector.reset(options={"indices": padded})
    if hasattr(policy, "reset"):
        policy.reset(legal, padded)
    return padded, np.arange(num_envs) < len(chunk), obs, legal, info


def metric_rows(
    info: dict[str, Any],
    names: list[tuple[str, int]],
    which: np.ndarray,
    policy_name: str,
    seed: int,
    step: int,
    columns: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Rows of :data:`METRIC_COLUMNS` for the episodes ``which`` of a batch's ``info``.

    Args:
        columns: int (N,), the column each episode acquired in this step (None: step 0,
            written as :data:`NO_COLUMN`).
    """
    return [
        {
            "policy": policy_name,
            "seed": seed,
            "file": names[row][0],
            "slice": names[row][1],
            "step": step,
            "column": NO_COLUMN if columns is None else int(columns[row]),
            "acquired_columns": int(info["acquired_columns"][row]),
            "sampling_rate": float(info["sampling_rate"][row]),
            **{name: float(info[name][row]) for name in METRIC_NAMES},
        }
        for row in np.flatnonzero(which)
    ]


@dataclass
class Replay:
    """One episode replayed from its acquisition order (see :func:`replay_orders`).

    Attributes:
        target: float32 (h, w), the ground truth.
        reconstruction: float32 (h, w), the reconstruction after the replayed columns.
        acquired: bool (W,), the mask after them.
        initial: bool (W,), the mask the episode started from (initial lines and zero-filled edges).
        data_range: the metrics' data range (the volume's maximum).
        metrics: ``mse``, ``nmse``, ``psnr``, ``ssim`` of the reconstruction, as the env scores them.
    """

    target: np.ndarray
    reconstruction: np.ndarray
    acquired: np.ndarray
    initial: np.ndarray
    data_range: float
    metrics: dict[str, float]


def replay_orders(
    episodes: AcquisitionEpisodes, slice_ids: Sequence[int], orders: Sequence[Sequence[int]]
) -> list[Replay]:
    """Acquire ``orders[i]`` on slice ``slice_ids[i]`` from its initial mask, and keep the result.

    Replays run on the episode batch of an env (``env.unwrapped.episodes``), N at a time,
    one batched reconstructor call per step; they overwrite that batch's state, so the env
    must be reset before it is stepped again. The same order gives the same images as the
    rollout that recorded it.

    Args:
        episodes: the env's episode batch (N rows).
        slice_ids: slice indices of the env's data.
        orders: the columns to acquire on each slice, in order (lengths may differ).

    Returns:
        One :class:`Replay` per slice, in the order given.
    """
    replays: list[Replay] = []
    n = episodes.num_episodes
    for start in range(0, len(slice_ids), n):
        ids, chunk_orders = list(slice_ids[start : start + n]), list(orders[start : start + n])
        rows = np.arange(len(ids))
        episodes.start_slices(rows, ids)
        initial = episodes.acquired[: len(ids)].cpu().numpy().copy()
        episodes.reconstruct(rows, np.full(len(ids), NEW_EPISODE))
        for step in range(max((len(order) for order in chunk_orders), default=0)):
            moving = np.array([row for row in rows if step < len(chunk_orders[row])], dtype=np.int64)
            columns = np.array([chunk_orders[row][step] for row in moving], dtype=np.int64)
            is_new = episodes.acquire(moving, columns)
            episodes.reconstruct(moving[is_new], columns[is_new])
        replays += [
            Replay(
                target=episodes.target[row].cpu().numpy().copy(),
                reconstruction=episodes.reconstruction[row].cpu().numpy().copy(),
                acquired=episodes.acquired[row].cpu().numpy().copy(),
                initial=initial[row],
                data_range=float(episodes.data_range[row]),
                metrics={name: float(values[row]) for name, values in episodes.metrics.items()},
            )
            for row in rows
        ]
    return replays
