"""How closely an acquisition policy follows a greedy look-ahead teacher on the states it reaches itself.

An imitation learner such as DAgger that falls short of its teacher either does not fit the teacher
on the slices it trained on (too weak a model, too little training) or fits them and not new slices
(too little data, or an observation that does not tell slices apart). Rolling the policy on train
and on held-out slices, and asking the teacher about every state it reaches, tells the two apart:
DAgger's guarantee bounds the learner's loss by exactly this imitation error on its own state
distribution (Ross, Gordon & Bagnell, AISTATS 2011).

The teacher is DAgger's and the greedy oracles': every free column scored by the env's one-step
look-ahead gains on ``metrics``, each standardised over the free columns and summed
(:func:`~mri_rl.agents.look_ahead.balanced_scores`; ``("ssim", "psnr")`` is ``oracle_ssim_psnr``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mri_rl.agents.collect import first_action
from mri_rl.agents.look_ahead import balanced_action_scores, look_ahead_gains_of
from mri_rl.agents.policy import Policy
from mri_rl.evaluation.rollout import predicted_indices, visit_own_states


@dataclass(frozen=True)
class Agreement:
    """A policy against its teacher over the states it visited.

    Attributes:
        steps: states scored (slices x steps).
        top1: share of the states where the policy took the teacher's best column (ties count).
        regret: mean of the teacher's best score less its score of the column taken, in the
            teacher's standardised units (0: always a best column).
        rank: mean count of free columns the teacher scores above the one taken (0: its best).
    """

    steps: int
    top1: float
    regret: float
    rank: float

    @classmethod
    def of(cls, scores: np.ndarray, actions: np.ndarray) -> Agreement:
        """The agreement of ``actions`` int (N,) with the teacher's ``scores`` float (N, A) of the same
        N states (-inf where illegal).

        Raises:
            ValueError: no state, or scores and actions of other lengths.
        """
        scores, actions = np.asarray(scores), np.asarray(actions)
        if len(scores) == 0 or scores.ndim != 2 or actions.shape != (len(scores),):
            raise ValueError(
                f"agreement needs scores (N, A) and actions (N,), N >= 1; got {scores.shape} and {actions.shape}"
            )
        taken = np.take_along_axis(scores, actions[:, None], axis=1)[:, 0]
        best = scores.max(axis=1)
        return cls(
            steps=len(scores),
            top1=float((taken >= best).mean()),
            regret=float((best - taken).mean()),
            rank=float((scores > taken[:, None]).sum(axis=1).mean()),
        )


def teacher_agreement(
    policy: Policy,
    env: Any,
    budget: int,
    metrics: Sequence[str],
    slice_indices: Sequence[int],
    weights: Sequence[float] | None = None,
) -> Agreement:
    """Roll ``policy`` (deterministic) for ``budget`` steps on ``slice_indices`` of the batched MRI
    ``env``, ``env.num_envs`` slices at a time, and score each step's column with the teacher
    (``weights``: of the metrics' standardised gains, DAgger's ``teacher_weights``; None: 1 each).

    Raises:
        ValueError: no slice, or a budget below 1.
    """
    gains_of = look_ahead_gains_of(env)
    scored: list[np.ndarray] = []
    taken: list[np.ndarray] = []

    def act(obs: Any, legal: np.ndarray, which: np.ndarray) -> np.ndarray:
        scored.append(balanced_action_scores(gains_of, legal, metrics, weights)[0][which])
        actions = predicted_indices(policy, obs, legal, first_action(env.single_action_space))
        taken.append(actions[which])
        return actions

    visit_own_states(policy, env, budget, slice_indices, act)
    return Agreement.of(np.concatenate(scored), np.concatenate(taken))
