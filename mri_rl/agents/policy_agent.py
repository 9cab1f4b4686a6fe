"""What the agents with one policy network share: REINFORCE, greedy REINFORCE and DAgger.

Their learned state is a :class:`~mri_rl.agents.networks.PolicyNetwork` (action logits over the
legal actions, optionally a state value) and its Adam optimiser; they act by its most likely legal
action, or by a sample of it when not deterministic. One of them can start from another's policy
(:meth:`PolicyNetworkAgent.start_from_policy`): RL fine-tuning of a policy learned by imitation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mri_rl.agents.base import Agent, read_agent_checkpoint, space_entry
from mri_rl.agents.networks import PolicyNetwork, masked_logits
from mri_rl.checkpointing import entry_error, load_module_state, load_optimizer_state, typed_entry
from mri_rl.task import AcquisitionTask

#: The parts of a :class:`~mri_rl.agents.networks.PolicyNetwork` that make its action logits.
POLICY_PARTS = ("encoder", "policy")


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
        weight_decay: float = 0.0,
    ) -> None:
        """The policy network and its Adam optimiser; ``weight_decay`` is decoupled from the gradient
        (AdamW: Loshchilov & Hutter, ICLR 2019), each step shrinking the weights by ``learning_rate *
        weight_decay`` of themselves; 0 is plain Adam."""
        self.policy = PolicyNetwork(
            self.observation_space,
            self.num_actions,
            net_arch,
            value_head=value_head,
            per_action=per_action,
            image_columns=image_columns,
        ).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.policy.parameters(), lr=learning_rate, weight_decay=weight_decay, decoupled_weight_decay=True
        )

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

    def start_from_policy(self, path: str | Path) -> None:
        """Copy the action logits' weights (encoder and policy layers; not a value head, nor the
        optimiser) of the policy-network agent saved at ``path`` into this one's network.

        The saved agent (any of DAgger, REINFORCE, greedy REINFORCE) must have this agent's spaces,
        network layout (``net_arch``, ``per_action``, ``image_columns``) and, when both record one,
        acquisition task.

        Raises:
            FileNotFoundError: no such file.
            CheckpointError: not a verified agent checkpoint, no policy network in it, or weights
                of another layout (naming the file and the entry).
            ValueError: other spaces or another task than this agent's.
        """
        checkpoint = read_agent_checkpoint(path, str(self.device))
        for name in ("observation_space", "action_space"):
            saved = space_entry(checkpoint, path, name)
            if saved != getattr(self, name):
                raise ValueError(f"{path} was trained with {name} {saved}; this agent has {getattr(self, name)}")
        self._check_same_task(checkpoint.get("record"), path)
        weights = typed_entry(checkpoint, path, "state", dict).get("policy")
        if not isinstance(weights, dict):
            algorithm = checkpoint.get("algorithm")
            raise entry_error(path, "state.policy", f"is missing: a {algorithm!r} agent has no policy network")
        for part in POLICY_PARTS:
            module = getattr(self.policy, part)
            prefix = f"{part}."
            found = {key.removeprefix(prefix): value for key, value in weights.items() if key.startswith(prefix)}
            if module is None:  # a per-action network: its encoder makes the logits
                if found:
                    raise entry_error(path, f"state.policy.{part}", "is there; this agent's network has none")
                continue
            load_module_state(module, found, path, f"state.policy.{part}")

    def _check_same_task(self, record: Any, path: str | Path) -> None:
        """Raise ValueError when ``record`` (of the agent at ``path``) and this agent's record both
        hold an acquisition task, and the tasks differ in more than the reward."""
        saved = record.get("task") if isinstance(record, dict) else None
        own = (self.record or {}).get("task")
        if saved is None or own is None:
            return
        differences = [
            difference  # the reward does not change what the policy sees: fine-tuning may change it
            for difference in AcquisitionTask.from_dict(saved).differences(AcquisitionTask.from_dict(own))
            if not difference.startswith("reward_metric")
        ]
        if differences:
            raise ValueError(f"{path} was trained on another task ({'; '.join(differences)}; saved vs this agent's)")

    def _state(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict()}

    def _load_state(self, state: dict[str, Any], path: str | Path) -> None:
        load_module_state(self.policy, state.get("policy"), path, "state.policy")
        load_optimizer_state(self.optimizer, state.get("optimizer"), path, "state.optimizer")
