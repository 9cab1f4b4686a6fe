"""A learned policy with a low-to-high frequency prior: a product of two experts.

At each step the policy acquires the legal column that maximises

    log pi(column | observation) - weight * rank(column),

where ``pi`` is a learned policy network's distribution over the legal columns and ``rank`` is the
column's place in the low-to-high order (0 at the centre of k-space, then alternating sides: the
``lowtohigh`` baseline). It is the argmax of ``pi(c) * exp(-weight * rank(c))``, a product of
experts (Hinton, "Training products of experts by minimizing contrastive divergence", Neural
Computation 2002): weight 0 is the learned policy, a large weight the ``lowtohigh`` order, with the
policy only breaking near-ties between neighbouring ranks. The prior adds nothing learned; the
weight is a setting to choose on validation data, never on the test split.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from mri_rl.checks import is_valid
from mri_rl.policies.baselines import AcquisitionPolicy


class LogProbabilityPolicy(Protocol):
    """A learned policy that gives its log-probabilities (the policy-network agents: DAgger,
    REINFORCE, greedy REINFORCE)."""

    def log_probabilities(self, obs: Any, action_mask: np.ndarray) -> np.ndarray: ...


class FrequencyPriorPolicy(AcquisitionPolicy):
    """``agent``'s log-probabilities minus ``weight`` times each column's low-to-high rank.

    Args:
        agent: has ``log_probabilities(obs, action_mask) -> float (B, W)``.
        width: W, the columns.
        weight: nats per rank of the prior (>= 0).

    Raises:
        ValueError: a negative or non-finite weight, or an agent without log-probabilities.
    """

    name = "frequency_prior"

    def __init__(self, agent: LogProbabilityPolicy, width: int, weight: float) -> None:
        super().__init__(width)
        if not is_valid(weight, False, 0):
            raise ValueError(f"the frequency prior's weight must be a finite number >= 0, got {weight}")
        if not callable(getattr(agent, "log_probabilities", None)):
            raise ValueError(
                f"a frequency prior needs a policy-network agent (dagger, reinforce, greedy_reinforce) "
                f"that gives log-probabilities, not {type(agent).__name__}"
            )
        self.agent = agent
        self.weight = float(weight)

    def scores(self, obs: Any, action_masks: np.ndarray) -> np.ndarray:
        return self.agent.log_probabilities(obs, action_masks) - self.weight * self.frequency_rank
