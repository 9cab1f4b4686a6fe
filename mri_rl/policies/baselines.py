"""Non-learned acquisition policies: the baselines every comparison needs.

All act on the batched environment (:class:`~mri_rl.envs.BatchedActiveAcquisitionEnv`)
through the :class:`~mri_rl.agents.Policy` seam: ``predict(obs, deterministic=True,
action_mask=legal) -> (actions, None)`` for a batch; ``reset(legal)`` is called when
episodes start.

- ``random``: uniform over the columns not yet acquired (seeded).
- ``lowtohigh``: the lowest frequency not yet acquired, alternating sides of the centre.
- ``equispaced``: the budget spread evenly over the columns free at the start, acquired
  from low to high frequency.
- ``lbcs``: one fixed order, the non-adaptive greedy mask of learning-based compressive
  sensing (Gözcü et al., IEEE TMI 2018; Sanchez et al., "Scalable learning-based
  sampling optimization for compressive dynamic MRI", ICASSP 2020): at each step the
  column that most improves the mean reward over training slices.
- ``lbcs_kind``: one LBCS order per kind of volume (e.g. fastMRI's ``acquisition``, PD or
  PDFS), each learned on the training slices of its kind; an episode follows its slice's kind.
  It uses what the scanner knows before the first line (the protocol), nothing the data says.
- ``oracle``: greedy with the ground truth: each step acquires the column that most
  improves the reward metric against the target (every free column scored by the env's
  batched look-ahead). It reads the target, so it is no policy; and it is myopic, NOT an
  upper bound: a column that helps little now but much later is never chosen early, so a
  fixed order can beat it over a whole budget.
- ``oracle_ssim_psnr``: the same, greedy on SSIM and PSNR gains at once (each standardised
  over the free columns, summed, by default with equal weights), so that neither metric is
  traded for the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mri_rl.agents.look_ahead import balanced_scores, check_metric_weights, legal_candidates, scores_over_actions
from mri_rl.kspace import low_frequency_order


class AcquisitionPolicy:
    """Base class: ``predict`` picks, per episode, the best-ranked legal column."""

    name = ""

    def __init__(self, width: int) -> None:
        self.width = width
        self.frequency_rank = np.argsort(low_frequency_order(width))  # rank of each column, 0 = centre

    def reset(self, action_masks: np.ndarray, slice_ids: Sequence[int] | None = None) -> None:
        """Episodes start with legal columns ``action_masks`` bool (N, W), on the slices ``slice_ids``
        (N,) of the data when the caller knows them."""

    def scores(self, obs: Any, action_masks: np.ndarray) -> np.ndarray:
        """Preference of each column (N, W); higher is better."""
        raise NotImplementedError

    def predict(
        self, obs: Any, deterministic: bool = True, action_mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, None]:
        if action_mask is None:
            raise ValueError(f"the {self.name} policy needs the action mask of each episode")
        masks = np.asarray(action_mask, dtype=bool).reshape(-1, self.width)
        return best_legal_columns(self.scores(obs, masks), masks), None


def best_legal_columns(scores: np.ndarray, action_masks: np.ndarray) -> np.ndarray:
    """int (N,): each row's best-scored column of ``scores`` (N, W) among its legal ones ``action_masks``
    bool (N, W); the first of tied columns."""
    return np.where(action_masks, scores, -np.inf).argmax(axis=1)


class RandomPolicy(AcquisitionPolicy):
    """Uniform over the columns not yet acquired.

    Episodes reset with their ``slice_ids`` each draw from a generator seeded by (seed, slice):
    a slice's order is the same whichever batch, shard or worker rolls it. Without them (or
    without a reset), the episodes' generators are spawned from the seed's, in turn.
    """

    name = "random"

    def __init__(self, width: int, seed: int = 0) -> None:
        super().__init__(width)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.episode_rngs: list[np.random.Generator] = []

    def reset(self, action_masks: np.ndarray, slice_ids: Sequence[int] | None = None) -> None:
        if slice_ids is None:
            self.episode_rngs = self.rng.spawn(len(action_masks))
        else:
            self.episode_rngs = [np.random.default_rng([self.seed, int(i)]) for i in slice_ids]

    def scores(self, obs: Any, action_masks: np.ndarray) -> np.ndarray:
        if len(self.episode_rngs) != len(action_masks):
            self.reset(action_masks)
        return np.stack([rng.random(self.width) for rng in self.episode_rngs])


class LowToHighPolicy(AcquisitionPolicy):
    """The lowest frequency not yet acquired: c, c-1, c+1, c-2, ... around the centre c."""

    name = "lowtohigh"

    def scores(self, obs: Any, action_masks: np.ndarray) -> np.ndarray:
        return np.broadcast_to(-self.frequency_rank, action_masks.shape).astype(np.float64)


def fixed_order_scores(order: Sequence[int], frequency_rank: np.ndarray) -> np.ndarray:
    """float (W,): minus each column's rank, the columns of ``order`` first, in turn, then the others
    by ``frequency_rank`` (W,) (low to high frequency)."""
    rank = len(frequency_rank) + frequency_rank.astype(np.float64)
    rank[list(order)] = np.arange(len(order))
    return -rank


def checked_order(order: Sequence[int], width: int) -> list[int]:
    """``order`` as a list of ints.

    Raises:
        ValueError: a column repeated or outside ``[0, width)``.
    """
    columns = [int(c) for c in order]
    if len(set(columns)) != len(columns) or any(not 0 <= c < width for c in columns):
        raise ValueError(f"order must list distinct columns in [0, {width}), got {columns}")
    return columns


class FixedOrderPolicy(AcquisitionPolicy):
    """Columns in a fixed order; columns outside it come after, from low to high frequency."""

    name = "fixed"

    def __init__(self, width: int, order: Sequence[int]) -> None:
        super().__init__(width)
        self.order = checked_order(order, width)
        self._scores = fixed_order_scores(self.order, self.frequency_rank)

    def scores(self, obs: Any, action_masks: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._scores, action_masks.shape)


class LBCSPolicy(FixedOrderPolicy):
    """The learned non-adaptive greedy order (see :func:`mri_rl.policies.lbcs.learn_lbcs_order`)."""

    name = "lbcs"


class LBCSByKindPolicy(AcquisitionPolicy):
    """One LBCS order per kind of volume: each episode follows the order of its slice's kind (as
    :class:`FixedOrderPolicy`, columns outside the order after it, low to high frequency).

    Args:
        width: k-space columns.
        orders: kind -> its order (learned on the training slices of that kind).
        slice_kinds: the kind of each slice of the data, by slice index (the ``slice_ids`` that
            :meth:`reset` is given).

    Raises:
        ValueError: an order that is not distinct columns in ``[0, width)``, or a slice of a kind
            without an order.
    """

    name = "lbcs_kind"

    def __init__(self, width: int, orders: Mapping[str, Sequence[int]], slice_kinds: Sequence[str]) -> None:
        super().__init__(width)
        self.kind_scores = {
            kind: fixed_order_scores(checked_order(order, width), self.frequency_rank) for kind, order in orders.items()
        }
        missing = sorted(set(slice_kinds) - set(orders))
        if missing:
            raise ValueError(f"no order for the kind(s) {missing} of some slices; orders for {sorted(orders)}")
        self.slice_kinds = list(slice_kinds)
        self.episode_scores = np.zeros((0, width))

    def reset(self, action_masks: np.ndarray, slice_ids: Sequence[int] | None = None) -> None:
        """Each episode takes the order of its slice's kind.

        Raises:
            ValueError: without ``slice_ids`` (the policy cannot tell the episodes' kinds).
        """
        if slice_ids is None:
            raise ValueError(f"the {self.name} policy needs the slice of each episode at reset")
        self.episode_scores = np.stack([self.kind_scores[self.slice_kinds[index]] for index in slice_ids])

    def scores(self, obs: Any, action_masks: np.ndarray) -> np.ndarray:
        if self.episode_scores.shape != action_masks.shape:
            raise RuntimeError("call reset(action_masks, slice_ids) at the start of the episodes")
        return self.episode_scores


class EquispacedPolicy(AcquisitionPolicy):
    """``budget`` columns spread evenly over the columns free at the start, low frequencies first.

    Args:
        width: k-space columns.
        budget: columns to acquire per episode (None: every column).
    """

    name = "equispaced"

    def __init__(self, width: int, budget: int | None) -> None:
        super().__init__(width)
        self.budget = budget
        self.planned = np.zeros((0, width), dtype=bool)

    @staticmethod
    def plan(free_columns: np.ndarray, budget: int | None) -> np.ndarray:
        """Evenly spaced picks among the sorted free columns (bool (W,) -> planned column indices);
        every free column without a budget."""
        free = np.flatnonzero(free_columns)
        if budget is None or len(free) <= budget:
            return free
        return free[np.round(np.linspace(0, len(free) - 1, budget)).astype(int)]

    def reset(self, action_masks: np.ndarray, slice_ids: Sequence[int] | None = None) -> None:
        self.planned = np.zeros(action_masks.shape, dtype=bool)
        for row, free in enumerate(action_masks):
            self.planned[row, self.plan(free, self.budget)] = True

    def scores(self, obs: Any, action_masks: np.ndarray) -> np.ndarray:
        if self.planned.shape != action_masks.shape:
            raise RuntimeError("call reset(action_masks) at the start of the episodes")
        return np.where(self.planned, self.width, 0) - self.frequency_rank


class OraclePolicy(AcquisitionPolicy):
    """Greedy with the ground truth: each step acquires the column that most improves the reward
    metric against the target (the env's batched look-ahead). Myopic, NOT an upper bound.

    Args:
        env: the batched acquisition env whose episodes ``predict`` is asked about.
    """

    name = "oracle"

    def __init__(self, env: Any) -> None:
        super().__init__(env.single_action_space.n)
        self.env = env.unwrapped

    def scores(self, obs: Any, action_masks: np.ndarray) -> np.ndarray:
        """The score of every free column, from batched reconstructor calls."""
        candidates, valid = legal_candidates(action_masks)
        return scores_over_actions(candidates, self.candidate_scores(candidates, valid), valid, self.width)

    def candidate_scores(self, candidates: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """float (N, K): the reward each candidate column would give now."""
        return self.env.look_ahead(candidates)


class BalancedOraclePolicy(OraclePolicy):
    """Greedy with the ground truth on SSIM and PSNR at once: each free column's SSIM gain and
    PSNR gain, each standardised over the episode's free columns, summed; the column with the
    largest sum is acquired. Whatever the reward metric, it trades neither metric for the
    other as a greedy oracle on one of them does. Myopic, NOT an upper bound.

    Args:
        env: the batched acquisition env.
        weights: the weights of the standardised SSIM and PSNR gains in the sum (DAgger's
            ``teacher_weights``); (1, 0) ranks the columns as the SSIM oracle does.

    Raises:
        ValueError: not one finite weight >= 0 per metric, or both 0.
    """

    name = "oracle_ssim_psnr"
    metrics = ("ssim", "psnr")
    equal_weights = (1.0, 1.0)

    def __init__(self, env: Any, weights: Sequence[float] = equal_weights) -> None:
        super().__init__(env)
        self.weights = check_metric_weights("oracle weights", weights, self.metrics)

    def candidate_scores(self, candidates: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """float (N, K): the weighted sum of the candidates' standardised SSIM and PSNR gains."""
        return balanced_scores(self.env.look_ahead_gains(candidates, self.metrics), valid, self.weights)
