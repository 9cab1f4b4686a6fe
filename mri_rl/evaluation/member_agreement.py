"""How alike the members of an ensemble of learned policies are, on the states the ensemble reaches.

A product of experts (:class:`~mri_rl.policies.product_of_experts.ProductOfExpertsPolicy`) gains over
its members only where they differ: members that always share their first choice make the same
acquisitions as any one of them. Measuring how often the members' first choices coincide, and how
sharp each member's distribution is, tells apart two reasons why a change that improves every member
(more training, RL fine-tuning) may leave the ensemble where it was: members that have become alike
(agreement up), or members that have become sharper without agreeing more (entropy down, agreement
unchanged), which changes the weight a confident member has in the pooled log-probabilities. Deep
ensembles rest on the members' diversity (Lakshminarayanan et al., NeurIPS 2017).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mri_rl.evaluation.rollout import visit_own_states
from mri_rl.policies.baselines import best_legal_columns
from mri_rl.policies.product_of_experts import ProductOfExpertsPolicy


@dataclass(frozen=True)
class MemberAgreement:
    """K >= 2 members of an ensemble over N states.

    Attributes:
        steps: N, the states (slices x steps).
        pairwise_top1: share of (state, pair of members) where the two members' first choices are
            one column (1: members alike; about 1/(free columns) for unrelated uniform members).
        unanimous: share of the states where every member's first choice is one column.
        member_is_choice: share of (state, member) where the member's first choice is the
            ensemble's column.
        entropy: mean over states and members of the entropy (nats) of the member's distribution
            over the legal columns (log of their count for a uniform member, 0 for a certain one).
        top_probability: mean over states and members of the member's largest probability.
    """

    steps: int
    pairwise_top1: float
    unanimous: float
    member_is_choice: float
    entropy: float
    top_probability: float

    @classmethod
    def of(cls, member_log_probabilities: np.ndarray, choices: np.ndarray) -> MemberAgreement:
        """The agreement of the members' log-probabilities float (K, N, A) (-inf where illegal) of N
        states, where the ensemble took ``choices`` int (N,).

        Raises:
            ValueError: fewer than 2 members, no state, or arrays of other shapes.
        """
        log_p, choices = np.asarray(member_log_probabilities, dtype=np.float64), np.asarray(choices)
        if log_p.ndim != 3 or len(log_p) < 2 or log_p.shape[1] == 0 or choices.shape != log_p.shape[1:2]:
            raise ValueError(
                "member agreement needs log-probabilities (K, N, A) with K >= 2 members and N >= 1 states, and "
                f"choices (N,); got {log_p.shape} and {choices.shape}"
            )
        tops = log_p.argmax(axis=2)  # (K, N)
        probabilities = np.exp(log_p)
        plogp = np.where(probabilities > 0, probabilities * np.where(np.isfinite(log_p), log_p, 0.0), 0.0)
        return cls(
            steps=log_p.shape[1],
            pairwise_top1=float(np.mean([tops[i] == tops[j] for i, j in itertools.combinations(range(len(tops)), 2)])),
            unanimous=float((tops == tops[0]).all(axis=0).mean()),
            member_is_choice=float((tops == choices).mean()),
            entropy=float(-plogp.sum(axis=2).mean()),
            top_probability=float(probabilities.max(axis=2).mean()),
        )


def member_agreement(
    policy: ProductOfExpertsPolicy, env: Any, budget: int, slice_indices: Sequence[int]
) -> MemberAgreement:
    """Roll the ensemble ``policy`` (its own deterministic choices) for ``budget`` steps on
    ``slice_indices`` of the batched MRI ``env``, ``env.num_envs`` slices at a time, and compare its
    members on every state it reaches.

    Raises:
        ValueError: an ensemble of fewer than 2 members, no slice, or a budget below 1.
    """
    if len(policy.agents) < 2:
        raise ValueError(f"member agreement needs an ensemble of at least 2 members, got {len(policy.agents)}")
    member_log_probabilities: list[np.ndarray] = []
    choices: list[np.ndarray] = []

    def act(obs: Any, legal: np.ndarray, which: np.ndarray) -> np.ndarray:
        log_p = policy.member_log_probabilities(obs, legal)
        actions = best_legal_columns(policy.pool(log_p), legal)
        member_log_probabilities.append(log_p[:, which])
        choices.append(actions[which])
        return actions

    visit_own_states(policy, env, budget, slice_indices, act)
    return MemberAgreement.of(np.concatenate(member_log_probabilities, axis=1), np.concatenate(choices))
