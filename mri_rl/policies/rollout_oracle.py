"""``oracle_rollout``: a non-greedy reference with the ground truth, the roll-out of a fixed order.

The greedy oracle scores each free column by what it gives *now*. The roll-out algorithm (Bertsekas,
Tsitsiklis & Wu, "Rollout algorithms for combinatorial optimization", J. Heuristics 1997; Bertsekas,
"Reinforcement Learning and Optimal Control", 2019, ch. 2) scores each candidate column by the
whole rest of the episode: the candidate, then a base policy to the budget. Here the base policy is
the LBCS order and the score is the area under the reward metric's curve over the steps to come
(trapezoid, as the reports' AUC: the last step counts half). The candidates are the greedy oracle's
best columns and the base order's own next column.

A fixed order is sequentially consistent (after its own next column it goes on as it would have),
and the base's next column is always a candidate, so on every image the roll-out's reward-metric
AUC is at least the base order's (the cost improvement property of roll-out). It reads the target,
as the greedy oracle does, so it is no policy either; it is not an upper bound, only a stronger
reference: it looks to the end of the budget, but only along the base order.

Cost per step and episode: (candidates + 1) x (steps left) reconstructions, on top of the greedy
oracle's look-ahead; batched across the episodes and candidates (the env's ``mask_metrics``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mri_rl.agents.look_ahead import scores_over_actions
from mri_rl.checks import check_int
from mri_rl.metrics import HIGHER_IS_BETTER
from mri_rl.policies.baselines import OraclePolicy, best_legal_columns, checked_order, fixed_order_scores

#: The greedy oracle's best columns that the roll-out scores at each step, besides the base's own.
DEFAULT_CANDIDATES = 5


class RolloutOraclePolicy(OraclePolicy):
    """Roll-out of a fixed base order with the ground truth (see the module's docstring).

    Args:
        env: the batched acquisition env whose episodes ``predict`` is asked about.
        base_order: the base policy's order (the LBCS order); columns outside it come after, from low
            to high frequency, as :class:`~mri_rl.policies.baselines.FixedOrderPolicy` takes them.
        candidates: how many of the greedy oracle's best columns are scored besides the base's next
            one (0: the base order itself).

    Raises:
        ValueError: an order that is not distinct columns in ``[0, W)``, or ``candidates`` < 0.
    """

    name = "oracle_rollout"

    def __init__(self, env: Any, base_order: Sequence[int], candidates: int = DEFAULT_CANDIDATES) -> None:
        super().__init__(env)
        self.base_scores = fixed_order_scores(checked_order(base_order, self.width), self.frequency_rank)  # (W,)
        self.base_ranking = np.argsort(-self.base_scores, kind="stable")  # (W,) the base's columns, first first
        self.candidates = check_int("candidates", candidates, 0)
        self.episodes = self.env.episodes

    def scores(self, obs: Any, action_masks: np.ndarray) -> np.ndarray:
        """float (N, W): each candidate column's reward-metric AUC over the rest of its episode (the
        candidate, then the base order to the budget); -inf for the other columns."""
        greedy = super().scores(obs, action_masks) if self.candidates else np.zeros(action_masks.shape)
        candidates, valid = self.candidate_columns(greedy, action_masks)
        return scores_over_actions(candidates, self.rest_of_episode(candidates, valid, action_masks), valid, self.width)

    def candidate_columns(self, greedy: np.ndarray, action_masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The base's next column and the greedy oracle's best :attr:`candidates` legal ones.

        Args:
            greedy: float (N, W), the greedy oracle's scores.
            action_masks: bool (N, W), the legal columns.

        Returns:
            int (N, K) candidates, the base's next column first (rows with fewer distinct legal
            candidates are padded with it), and bool (N, K): True where not padding.
        """
        base_next = best_legal_columns(np.broadcast_to(self.base_scores, greedy.shape), action_masks)
        ranked = np.argsort(-np.where(action_masks, greedy, -np.inf), axis=1, kind="stable")[:, : self.candidates]
        candidates = np.repeat(base_next[:, None], self.candidates + 1, axis=1)
        valid = np.zeros(candidates.shape, dtype=bool)
        valid[:, 0] = True
        for row, columns in enumerate(ranked):
            picked = [c for c in columns.tolist() if action_masks[row, c] and c != base_next[row]]
            candidates[row, 1 : len(picked) + 1] = picked
            valid[row, 1 : len(picked) + 1] = True
        return candidates, valid

    def steps_left(self, action_masks: np.ndarray) -> np.ndarray:
        """int (N,): the acquisitions each episode has left, this one included (at least 1: a finished
        episode's action is discarded), at most its legal columns."""
        legal = action_masks.sum(axis=1)
        budget = self.episodes.task.budget
        left = legal if budget is None else np.minimum(budget - self.episodes.steps, legal)
        return np.maximum(left, 1)

    def continuations(
        self, candidates: np.ndarray, valid: np.ndarray, action_masks: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every mask along the rest of each valid candidate's episode: the candidate, then the base's
        legal columns in turn, up to the budget (:meth:`steps_left`).

        Args:
            candidates, valid: int and bool (N, K), from :meth:`candidate_columns`.
            action_masks: bool (N, W), the legal columns.

        Returns:
            P masks: the episode of each, int (P,); the masks, bool (P, W); the flat index n * K + k of
            the candidate each continues, int (P,); and each mask's weight in the trapezoid sum, float
            (P,) (1, and 0.5 for a continuation's last mask).
        """
        steps = self.steps_left(action_masks)
        rows, masks, pairs, weights = [], [], [], []
        for row, (left, free) in enumerate(zip(steps, action_masks)):
            base_free = self.base_ranking[free[self.base_ranking]]
            for k in np.flatnonzero(valid[row]):
                column = candidates[row, k]
                order = np.concatenate([[column], base_free[base_free != column][: left - 1]])
                mask = np.repeat(~free[None, :], len(order), axis=0)
                step, taken = np.tril_indices(len(order))
                mask[step, order[taken]] = True  # mask j holds the order's first j + 1 columns
                rows += [row] * len(order)
                masks.append(mask)
                pairs += [row * candidates.shape[1] + k] * len(order)
                weights += [1.0] * (len(order) - 1) + [0.5]
        return np.array(rows), np.concatenate(masks), np.array(pairs), np.array(weights)

    def rest_of_episode(self, candidates: np.ndarray, valid: np.ndarray, action_masks: np.ndarray) -> np.ndarray:
        """float (N, K): for each valid candidate, the reward metric's trapezoid sum over the masks of
        the rest of its episode (:meth:`continuations`, reconstructed in batches); 0 for padding. Higher
        is better (the metric is negated where lower is)."""
        metric = self.episodes.task.reward_metric
        rows, masks, pairs, weights = self.continuations(candidates, valid, action_masks)
        values = self.episodes.mask_metrics(rows, masks, (metric,))[0]
        signed = values if HIGHER_IS_BETTER[metric] else -values
        totals = np.zeros(candidates.size)
        np.add.at(totals, pairs, signed * weights)
        return totals.reshape(candidates.shape)
