"""Nearest-neighbour imitation of a teacher's acquisition orders, chosen from the first observation.

A measure of how much of the greedy oracle's adaptivity the first observation predicts. A teacher
(the greedy oracle, :class:`~mri_rl.policies.BalancedOraclePolicy` by default) is rolled on
training slices; its acquisition order and the first observation of each slice are kept
(:class:`TeacherOrders`, collected by :func:`mri_rl.evaluation.teacher_orders.collect_teacher_orders`).
On a new slice, :class:`NeighbourOrderPolicy` finds the training slice whose first reconstruction
is nearest (Euclidean distance between unit-norm images) and acquires that slice's teacher order,
then a fallback order (LBCS). It adapts once, to what the initial lines show, not to later
measurements: non-parametric behaviour cloning of the oracle's whole episode. The teacher is the
greedy look-ahead oracle whose scores Pineda et al. (MICCAI 2020) also learn from; the learned,
image-conditioned order is in the spirit of Bakker et al. (NeurIPS 2020).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mri_rl.policies.baselines import AcquisitionPolicy, fixed_order_scores


@dataclass(frozen=True)
class TeacherOrders:
    """The teacher's episodes on training slices.

    Attributes:
        observations: float32 (S, h, w), each slice's first reconstruction as the env observes it.
        orders: int64 (S, B), the columns the teacher acquired on each slice, in order.
    """

    observations: np.ndarray
    orders: np.ndarray

    def __post_init__(self) -> None:
        if self.observations.ndim != 3 or self.orders.ndim != 2 or len(self.observations) != len(self.orders):
            raise ValueError(
                "teacher orders need observations (S, h, w) and orders (S, B) for the same S slices, got "
                f"{self.observations.shape} and {self.orders.shape}"
            )
        if len(self.orders) == 0:
            raise ValueError("teacher orders need at least one slice, got none")

    def nearest(self, reconstructions: np.ndarray) -> np.ndarray:
        """int (N,): the slice whose first observation is nearest each of ``reconstructions`` (N, h, w)."""
        if reconstructions.shape[1:] != self.observations.shape[1:]:
            raise ValueError(
                f"observations of shape {reconstructions.shape[1:]} cannot be matched against teacher "
                f"orders collected on {self.observations.shape[1:]} images"
            )
        bank, query = unit_rows(self.observations), unit_rows(reconstructions)
        distances = (query**2).sum(1)[:, None] - 2 * query @ bank.T + (bank**2).sum(1)[None, :]
        return distances.argmin(axis=1)


def unit_rows(images: np.ndarray) -> np.ndarray:
    """float64 (N, h*w): each image flattened and scaled to unit norm (an empty image stays 0)."""
    rows = images.reshape(len(images), -1).astype(np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


class NeighbourOrderPolicy(AcquisitionPolicy):
    """The teacher order of the training slice whose first observation is nearest, then ``fallback``.

    The order of each episode is chosen at its first ``predict`` after ``reset``, from the
    observation's ``reconstruction`` (N, 1, h, w); columns outside both orders come last, from
    low to high frequency.
    """

    name = "neighbour_orders"

    def __init__(self, width: int, teacher: TeacherOrders, fallback: Sequence[int]) -> None:
        super().__init__(width)
        if teacher.orders.min() < 0 or teacher.orders.max() >= width:
            low, high = teacher.orders.min(), teacher.orders.max()
            raise ValueError(f"teacher orders must hold columns in [0, {width}), got {low} .. {high}")
        self.teacher = teacher
        self.fallback = [int(c) for c in fallback]
        self.episode_scores: np.ndarray | None = None

    def reset(self, action_masks: np.ndarray, slice_ids: Sequence[int] | None = None) -> None:
        self.episode_scores = None

    def order_scores(self, neighbours: np.ndarray) -> np.ndarray:
        """float (N, W): minus each column's rank in its episode's order (teacher, fallback, frequency)."""
        scores = []
        for neighbour in neighbours:
            order = [int(c) for c in self.teacher.orders[neighbour]]
            scores.append(fixed_order_scores(order + [c for c in self.fallback if c not in order], self.frequency_rank))
        return np.stack(scores)

    def scores(self, obs: Any, action_masks: np.ndarray) -> np.ndarray:
        if self.episode_scores is None or len(self.episode_scores) != len(action_masks):
            neighbours = self.teacher.nearest(np.asarray(obs["reconstruction"])[:, 0])
            self.episode_scores = self.order_scores(neighbours)
        return self.episode_scores
