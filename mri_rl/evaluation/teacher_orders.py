"""Rolling a teacher policy on training slices and keeping what a nearest-neighbour policy imitates:
each slice's first observation and acquisition order (:class:`~mri_rl.policies.neighbour_orders.TeacherOrders`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mri_rl.agents.policy import Policy
from mri_rl.evaluation.rollout import acquisition_orders, rollout_policy
from mri_rl.policies.neighbour_orders import TeacherOrders


def collect_teacher_orders(teacher: Policy, env: Any, budget: int, slice_indices: Sequence[int]) -> TeacherOrders:
    """Roll ``teacher`` for ``budget`` steps on ``slice_indices`` of the batched ``env`` and keep each
    slice's first observation and acquisition order (:class:`TeacherOrders`, in the given order)."""
    indices = [int(i) for i in slice_indices]
    if len(set(indices)) != len(indices):
        raise ValueError(f"teacher orders need distinct slices, got {indices}")
    rows = rollout_policy(teacher, env, budget, "teacher", 0, indices, progress=False)
    names = [env.unwrapped.slice_name(i) for i in indices]
    orders = acquisition_orders(rows)
    observations = []
    for start in range(0, len(indices), env.num_envs):
        chunk = indices[start : start + env.num_envs]
        padded = chunk + [chunk[-1]] * (env.num_envs - len(chunk))
        obs, _ = env.reset(options={"indices": padded})
        observations.append(np.asarray(obs["reconstruction"])[: len(chunk), 0])
    lengths = {len(order) for order in orders.values()}
    if len(lengths) != 1:
        raise ValueError(f"the teacher's episodes ran different step counts {sorted(lengths)}: lower the budget")
    return TeacherOrders(np.concatenate(observations).astype(np.float32), np.array([orders[n] for n in names]))
