"""Learned policies combined as a product of experts, with an optional low-to-high frequency prior.

At each step the policy acquires the legal column that maximises

    (1/K) * sum_k log pi_k(column | observation) - weight * rank(column),

where ``pi_1 .. pi_K`` are learned policy networks' distributions over the legal columns (K = 1:
one policy; K > 1: an ensemble of policies trained with other seeds) and ``rank`` is the column's
place in the low-to-high order (0 at the centre of k-space, then alternating sides: the
``lowtohigh`` baseline). It is the argmax of ``prod_k pi_k(c)^(1/K) * exp(-weight * rank(c))``, a
product of experts (Hinton, "Training products of experts by minimizing contrastive divergence",
Neural Computation 2002): a column wins when every member finds it likely, so one member's
confident mistake is outvoted, as in deep ensembles (Lakshminarayanan et al., NeurIPS 2017), here
pooled geometrically. Weight 0 is the members alone, a large weight the ``lowtohigh`` order, with
the members only breaking near-ties between neighbouring ranks. Neither adds anything learned; the
members and the weight are settings to choose on validation data, never on the test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from mri_rl.checks import is_valid
from mri_rl.policies.baselines import AcquisitionPolicy


class LogProbabilityPolicy(Protocol):
    """A learned policy that gives its log-probabilities (the policy-network agents: DAgger,
    REINFORCE, greedy REINFORCE)."""

    def log_probabilities(self, obs: Any, action_mask: np.ndarray) -> np.ndarray: ...


class ProductOfExpertsPolicy(AcquisitionPolicy):
    """The mean of ``agents``' log-probabilities minus ``weight`` times each column's low-to-high rank.

    Args:
        agents: K >= 1 policies, each with ``log_probabilities(obs, action_mask) -> float (B, W)``,
            all reading the same observations.
        width: W, the columns.
        weight: nats per rank of the low-to-high prior (>= 0; 0: none).

    Raises:
        ValueError: no agents, an agent without log-probabilities, or a negative or non-finite weight.
    """

    name = "product_of_experts"

    def __init__(self, agents: Sequence[LogProbabilityPolicy], width: int, weight: float = 0.0) -> None:
        super().__init__(width)
        if not agents:
            raise ValueError("a product of experts needs at least one learned policy")
        for agent in agents:
            if not callable(getattr(agent, "log_probabilities", None)):
                raise ValueError(
                    f"a frequency prior or an ensemble needs policy-network agents (dagger, reinforce, "
                    f"greedy_reinforce) that give log-probabilities, not {type(agent).__name__}"
                )
        if not is_valid(weight, False, 0):
            raise ValueError(f"the frequency prior's weight must be a finite number >= 0, got {weight}")
        self.agents = tuple(agents)
        self.weight = float(weight)

    def member_log_probabilities(self, obs: Any, action_masks: np.ndarray) -> np.ndarray:
        """float (K, N, W): each member's log-probabilities of the N observations' columns, -inf where illegal."""
        return np.stack([agent.log_probabilities(obs, action_masks) for agent in self.agents])

    def pool(self, member_log_probabilities: np.ndarray) -> np.ndarray:
        """The scores (N, W) of the members' log-probabilities (K, N, W): their mean less the prior."""
        return member_log_probabilities.mean(axis=0) - self.weight * self.frequency_rank

    def scores(self, obs: Any, action_masks: np.ndarray) -> np.ndarray:
        return self.pool(self.member_log_probabilities(obs, action_masks))
