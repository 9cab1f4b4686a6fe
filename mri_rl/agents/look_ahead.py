"""Scoring candidate actions by an env's one-step look-ahead, without changing its state.

An env with a look-ahead (the MRI envs) answers, for every sub-environment, how much reward each
candidate action would give now (``look_ahead``) or how much it would improve each of several
metrics (``look_ahead_gains``). Greedy REINFORCE scores its samples with the first; the greedy
oracles and DAgger's teacher score every legal action with either. The helpers here know
Gymnasium vector envs and arrays, not MRI.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import SyncVectorEnv, VectorEnv

from mri_rl.checks import is_valid


def _batched(env: VectorEnv, method: str) -> Callable[..., np.ndarray]:
    """``env``'s batched look-ahead ``method``, or one that loops over a SyncVectorEnv's envs.

    Raises:
        TypeError: the env has no such method.
    """
    if hasattr(env.unwrapped, method):
        return getattr(env.unwrapped, method)
    if isinstance(env, SyncVectorEnv) and all(hasattr(e.unwrapped, method) for e in env.envs):
        envs: list[Any] = env.envs  # duck-typed: each one's unwrapped env has the method (checked above)
        return lambda candidates, *args: np.stack(
            [getattr(e.unwrapped, method)(c, *args) for e, c in zip(envs, candidates)]
        )
    raise TypeError(f"this agent needs an env with {method} (e.g. mri_rl/ActiveAcquisition-v0)")


def look_ahead_of(env: VectorEnv) -> Callable[[np.ndarray], np.ndarray]:
    """The batched ``look_ahead(candidates (N, K)) -> rewards (N, K)`` of ``env``.

    Raises:
        TypeError: the env has no look-ahead.
    """
    return _batched(env, "look_ahead")


def look_ahead_gains_of(env: VectorEnv) -> Callable[[np.ndarray, Sequence[str]], np.ndarray]:
    """The batched ``look_ahead_gains(candidates (N, K), metrics (M,)) -> gains (N, M, K)`` of ``env``.

    Raises:
        TypeError: the env has no such look-ahead.
    """
    return _batched(env, "look_ahead_gains")


def legal_candidates(legal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every row's legal actions as one candidate array for a batched look-ahead.

    Args:
        legal: bool (N, A), True where an action is legal.

    Returns:
        candidates int (N, K), K the most legal actions of a row (rows with fewer are padded
        with their first legal action), and bool (N, K): True where not padding.
    """
    count = legal.sum(axis=1)
    width = max(int(count.max()), 1)
    candidates = np.zeros((len(legal), width), dtype=np.int64)
    for row, free in enumerate(legal):
        actions = np.flatnonzero(free)
        candidates[row, : len(actions)] = actions
        candidates[row, len(actions) :] = actions[0] if len(actions) else 0
    return candidates, np.arange(width)[None, :] < count[:, None]


def _mean_and_spread(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and standard deviation, each (N, M, 1), of ``values`` (N, M, K) over the valid K of
    each row and metric (``valid`` bool (N, K))."""
    weights = valid[:, None, :].astype(np.float64)
    count = np.maximum(weights.sum(axis=2, keepdims=True), 1.0)
    mean = (values * weights).sum(axis=2, keepdims=True) / count
    return mean, np.sqrt((((values - mean) * weights) ** 2).sum(axis=2, keepdims=True) / count)


def spreads(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """float (N, M): the standard deviation of ``values`` (N, M, K) over the valid K of each row and
    metric (``valid`` bool (N, K)), the scale :func:`standardised` divides by; 0 where all are equal."""
    return _mean_and_spread(values, valid)[1][:, :, 0]


def standardised(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``values`` (N, M, K) less their mean, over their standard deviation, over the valid K
    of each row and metric (``valid`` bool (N, K)); 0 where invalid or where all are equal."""
    mean, deviation = _mean_and_spread(values, valid)
    z = np.divide(values - mean, deviation, out=np.zeros_like(values), where=deviation > 0)
    return np.where(valid[:, None, :], z, 0.0)


def check_metric_weights(name: str, weights: Sequence[Any], metrics: Sequence[str]) -> tuple[float, ...]:
    """``weights`` as floats when they give one finite weight >= 0 per metric of ``metrics``, not all 0
    (the weights of :func:`balanced_scores`).

    Raises:
        ValueError: naming ``name``, the metrics and the weights given.
    """
    values: list[Any] = (
        [weights] if isinstance(weights, (str, bytes)) or not hasattr(weights, "__iter__") else list(weights)
    )
    if len(values) != len(metrics) or not all(is_valid(w, False, 0) for w in values) or not any(values):
        raise ValueError(
            f"{name}: expected one finite weight >= 0 per metric of {list(metrics)}, not all 0, got {values}"
        )
    return tuple(float(w) for w in values)


def balanced_scores(gains: np.ndarray, valid: np.ndarray, weights: Sequence[float] | None = None) -> np.ndarray:
    """float (N, K): the candidates' gains on M metrics (N, M, K), each standardised over the
    valid candidates of its row, summed with ``weights`` (M,) (None: 1 each), so that no metric
    outweighs another by its scale, only by its weight."""
    factors = np.ones(gains.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    if factors.shape != (gains.shape[1],):
        raise ValueError(f"weights: expected one per metric ({gains.shape[1]}), got {factors.tolist()}")
    return (standardised(gains, valid) * factors[None, :, None]).sum(axis=1)


def scores_over_actions(
    candidates: np.ndarray, candidate_scores: np.ndarray, valid: np.ndarray, num_actions: int
) -> np.ndarray:
    """Scatter candidate scores (N, K) into float (N, A), -inf where no valid candidate.

    Padding repeats a row's first candidate, so it is given that candidate's own score.
    """
    candidate_scores = np.where(valid, candidate_scores, candidate_scores[:, :1])
    scores = np.full((len(candidates), num_actions), -np.inf)
    np.put_along_axis(scores, candidates, candidate_scores, axis=1)
    return scores


def balanced_action_scores(
    look_ahead_gains: Callable[[np.ndarray, Sequence[str]], np.ndarray],
    legal: np.ndarray,
    metrics: Sequence[str],
    weights: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every legal action's look-ahead gains on ``metrics``, each standardised over the row's legal
    actions and summed with ``weights`` (:func:`balanced_scores`).

    Args:
        look_ahead_gains: a batched look-ahead, e.g. :func:`look_ahead_gains_of` of an env.
        legal: bool (N, A), True where an action is legal.
        metrics: M metric names the look-ahead knows.
        weights: M weights of the standardised gains (None: 1 each).

    Returns:
        scores float (N, A), -inf where illegal, and the spread float (N, M) of each metric's gains
        over the row's legal actions (:func:`spreads`: what is at stake in the choice, in that
        metric's units).
    """
    candidates, valid = legal_candidates(legal)
    gains = look_ahead_gains(candidates, tuple(metrics))  # (N, M, K)
    scores = scores_over_actions(candidates, balanced_scores(gains, valid, weights), valid, legal.shape[1])
    return scores, spreads(gains, valid)
