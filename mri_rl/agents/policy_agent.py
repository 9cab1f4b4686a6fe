"""What the agents with one policy network share: REINFORCE, greedy REINFORCE and DAgger.

Their learned state is a :class:`~mri_rl.agents.networks.PolicyNetwork` (action logits over the
legal actions, optionally a state value) and its Adam optimiser; they act by its most likely legal
action, or by a sample of it when not deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mri_rl.agents.base import Agent
from mri_rl.agents.networks import PolicyNetwork, masked_logits
from mri_rl.checkpointing import load_module_state, load_optimizer_state


class PolicyNetworkAgent(Agent):
    """An :class:`~mri_rl.agents.base.Agent` whose whole learned state is ``self.policy`` and
    ``self.optimizer`` (made by :meth:`_build_policy` in the subclass's ``_build``)."""

    policy: PolicyNetwork
    optimizer: torch.optim.Optimizer

    def _build_policy(
        self,
        net_arch: Sequence[int],
        learning_rate: float,
        value_head: bool = False,
        per_action: bool = False,
        image_columns: bool = False,
    ) -> None:
        self.policy = PolicyNetwork(
            self.observation_space,
            self.num_actions,
            net_arch,
            value_head=value_head,
            per_action=per_action,
            image_columns=image_columns,
        ).to(self.device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=learning_rate)

    def _distribution(self, obs: Any, legal: torch.Tensor | None) -> torch.distributions.Categorical:
        """The policy over the legal actions (``legal`` bool (B, A), or None: all legal)."""
        return torch.distributions.Categorical(logits=masked_logits(self.policy(obs), legal))

    @torch.no_grad()
    def log_probabilities(self, obs: Any, action_mask: np.ndarray) -> np.ndarray:
        """float (B, A): the policy's log-probability of each action of a batch of observations,
        over the legal actions ``action_mask`` bool (B, A); -inf where illegal."""
        legal = torch.as_tensor(np.asarray(action_mask, dtype=bool), device=self.device)
        return self._distribution(self.to_tensor(obs), legal).logits.cpu().numpy()

    def _act(self, obs: Any, action_mask: torch.Tensor | None, deterministic: bool) -> np.ndarray:
        distribution = self._distribution(obs, action_mask)
        actions = distribution.probs.argmax(dim=1) if deterministic else distribution.sample()
        return actions.cpu().numpy()

    def _gradient_step(self, loss: torch.Tensor, max_grad_norm: float) -> None:
        """One Adam step on ``loss`` with the policy's gradient norm clipped to ``max_grad_norm``."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), max_grad_norm)
        self.optimizer.step()

    def _state(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict()}

    def _load_state(self, state: dict[str, Any], path: str | Path) -> None:
        load_module_state(self.policy, state.get("policy"), path, "state.policy")
        load_optimizer_state(self.optimizer, state.get("optimizer"), path, "state.optimizer")
