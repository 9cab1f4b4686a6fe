"""Greedy policy gradients (Bakker, Hoof & Welling, "Experimental design for MRI by greedy
policy search", NeurIPS 2020).

At every state K actions are sampled from the policy and each is scored with its one-step
reward by the environment's look-ahead (``look_ahead(candidates (N, K)) -> (N, K)``),
without changing the state; the baseline of each sample is the mean reward of the other
K - 1. The episode goes on with the first sample. Only envs with a look-ahead (such as
``mri_rl/ActiveAcquisition-v0``) can train it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mri_rl.agents.look_ahead import look_ahead_of
from mri_rl.agents.reinforce import Episode, PolicyGradientAgent, PolicyGradientSettings


@dataclass(frozen=True)
class GreedyREINFORCESettings(PolicyGradientSettings):
    """Greedy REINFORCE's settings: those of :class:`~mri_rl.agents.reinforce.PolicyGradientSettings` and

    Attributes:
        samples: K >= 2 actions sampled and scored per state.
    """

    samples: int = field(default=8, metadata={"min": 2})


class GreedyREINFORCE(PolicyGradientAgent):
    """Greedy REINFORCE, e.g. ``GreedyREINFORCE(env, samples=4)`` on an env with a look-ahead
    (settings: :class:`GreedyREINFORCESettings`; arguments: :class:`~mri_rl.agents.base.Agent`).

    Raises:
        TypeError: an env without a look-ahead.
    """

    algorithm = "greedy_reinforce"
    settings_class = GreedyREINFORCESettings
    settings: GreedyREINFORCESettings

    def _build(self) -> None:
        super()._build()
        if self.env is not None:
            self._look_ahead = look_ahead_of(self.env)

    def _choose(self, distribution: torch.distributions.Categorical) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        samples = distribution.sample((self.settings.samples,)).T.cpu().numpy()  # (N, K)
        return samples[:, 0], samples, self._look_ahead(samples)

    def _targets(self, episodes: list[Episode]) -> torch.Tensor:
        return torch.as_tensor(
            np.stack([r for ep in episodes for r in ep.rewards]), dtype=torch.float32, device=self.device
        )  # (T, K)

    def _advantages(self, obs: Any, rewards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each sample's reward minus the mean of the other K - 1 (leave-one-out); no value loss."""
        k = rewards.shape[1]
        return rewards - (rewards.sum(dim=1, keepdim=True) - rewards) / (k - 1), torch.zeros((), device=self.device)
