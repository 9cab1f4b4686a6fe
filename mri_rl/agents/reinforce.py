"""REINFORCE: Monte Carlo policy gradient (Williams, Machine Learning 1992).

The gradient of ``sum_t A_t log pi(a_t | s_t)`` over whole episodes, with reward-to-go
returns ``G_t = sum_{k>=t} gamma^(k-t) r_k`` (causality) and a baseline: none, the batch
mean, or a learned state value (then truncated episodes bootstrap from the value of their
last observation). An entropy bonus keeps the policy exploring. A batch may be reused for
several updates with truncated importance weights ``pi_new / pi_old``. Illegal actions
are masked in the logits (-inf), so they are never sampled.

:class:`PolicyGradientAgent` holds what REINFORCE shares with the greedy variant
(:mod:`mri_rl.agents.greedy_reinforce`): the policy network, the episode collection and
the update; the subclasses say what is sampled and what the advantages are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from mri_rl.agents.base import AgentSettings, Callback
from mri_rl.agents.collect import Step
from mri_rl.agents.policy_agent import PolicyNetworkAgent


@dataclass
class Episode:
    """One episode's steps. ``actions`` and ``rewards`` are (T,), or (T, K) for K samples per state."""

    observations: list[Any] = field(default_factory=list)
    legal: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[np.ndarray] = field(default_factory=list)
    bootstrap_observation: Any = None  # last observation of a truncated episode


class PolicyGradientAgent(PolicyNetworkAgent):
    """Episodes in, policy-gradient updates out; subclasses implement :meth:`_choose` and
    :meth:`_advantages` (and :meth:`_targets`)."""

    def _build(self) -> None:
        self._build_policy(self.settings.net_arch, self.settings.learning_rate, self._uses_value_head())

    def _uses_value_head(self) -> bool:
        return False

    # --------------------------------------------------------------------- acting
    def _choose(
        self, distribution: torch.distributions.Categorical
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(actions to take (N,), actions to learn from, their rewards or None for the env's)."""
        raise NotImplementedError

    # ------------------------------------------------------------------- learning
    def learn(
        self,
        total_timesteps: int,
        callback: Callback = None,
        progress_bar: bool = True,
        reset_num_timesteps: bool = True,
    ) -> PolicyGradientAgent:
        """Train for ``total_timesteps`` env steps (see :class:`~mri_rl.agents.base.TrainingRun`),
        one update per batch of at least ``episodes_per_update`` complete episodes (the episodes that
        end in the vector step that fills it all join it, so it can hold ``num_envs`` − 1 more). An
        agent that has not trained yet first copies the policy of ``init_policy`` when that is set. A
        batch being collected is not saved in checkpoints: a loaded agent collects its next batch from
        empty."""
        if self.settings.init_policy and self.num_timesteps == 0:
            self.start_from_policy(self.settings.init_policy)
        with self._training(total_timesteps, callback, progress_bar, reset_num_timesteps) as run:
            obs, legal = run.start()
            running = [Episode() for _ in range(run.num_envs)]
            batch: list[Episode] = []
            while run.running():
                with torch.no_grad():
                    distribution = self._distribution(self.to_tensor(obs), torch.as_tensor(legal, device=self.device))
                    actions, learned, rewards = self._choose(distribution)
                step = run.step(actions)
                batch += self._record(running, obs, legal, learned, step.rewards if rewards is None else rewards, step)
                obs, legal = step.observations, step.legal
                if len(batch) >= self.settings.episodes_per_update:
                    self.last_loss = self._update(batch)
                    batch = []
                run.report()
        return self

    @staticmethod
    def _record(
        running: list[Episode], obs: Any, legal: np.ndarray, actions: np.ndarray, rewards: np.ndarray, step: Step
    ) -> list[Episode]:
        """Append step t of every valid row to its episode; return the episodes that ended."""
        finished = []
        for e in np.flatnonzero(step.valid):
            episode = running[e]
            episode.observations.append(_row(obs, e))
            episode.legal.append(legal[e])
            episode.actions.append(actions[e])
            episode.rewards.append(rewards[e])
            if step.terminated[e] or step.truncated[e]:
                if step.truncated[e] and not step.terminated[e]:
                    episode.bootstrap_observation = _row(step.observations, e)
                finished.append(episode)
                running[e] = Episode()
        return finished

    def _targets(self, episodes: list[Episode]) -> torch.Tensor:
        """What the advantages are computed from, per step of the batch."""
        raise NotImplementedError

    def _advantages(self, obs: Any, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(advantages like the actions, value loss) at the current parameters."""
        raise NotImplementedError

    def _update(self, episodes: list[Episode]) -> float:
        """Policy-gradient update(s) on a batch of complete episodes; returns the last loss."""
        s = self.settings
        obs = self.to_tensor(_stack([o for ep in episodes for o in ep.observations]))
        legal = torch.as_tensor(np.stack([m for ep in episodes for m in ep.legal]), device=self.device)
        actions = torch.as_tensor(np.stack([a for ep in episodes for a in ep.actions]), device=self.device)
        targets = self._targets(episodes)
        old_log_probs = None
        for _ in range(s.reuse_epochs):
            distribution = self._distribution(obs, legal)
            log_probs = distribution.log_prob(actions.movedim(-1, 0)).movedim(0, -1)  # (T,) or (T, K)
            advantages, value_loss = self._advantages(obs, targets)
            if s.normalize_advantages and advantages.numel() > 1:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            if old_log_probs is None:
                old_log_probs = log_probs.detach()
            weights = torch.exp(log_probs - old_log_probs).clamp(max=s.max_importance_weight)
            policy_loss = -(weights * advantages.detach()).mean()
            loss = policy_loss - s.entropy_coef * distribution.entropy().mean() + value_loss
            self._gradient_step(loss, s.max_grad_norm)
        return float(loss.detach())


@dataclass(frozen=True)
class PolicyGradientSettings(AgentSettings):
    """What every policy-gradient agent here takes.

    Attributes:
        learning_rate: Adam step size.
        normalize_advantages: standardise the advantages of each batch.
        entropy_coef: weight of the entropy bonus.
        episodes_per_update: complete episodes per batch, at least: every episode that ends in the
            vector step that reaches this count joins the batch.
        reuse_epochs: updates per batch; beyond the first, importance-weighted.
        max_importance_weight: truncation of the importance weights.
        max_grad_norm: gradient clipping threshold.
        net_arch: hidden layer sizes after the observation encoder (empty: linear heads on its features).
    """

    learning_rate: float = field(default=1e-3, metadata={"above": 0})
    normalize_advantages: bool = True
    entropy_coef: float = field(default=0.0, metadata={"min": 0})
    episodes_per_update: int = field(default=8, metadata={"min": 1})
    reuse_epochs: int = field(default=1, metadata={"min": 1})
    max_importance_weight: float = field(default=10.0, metadata={"above": 0})
    max_grad_norm: float = field(default=1.0, metadata={"above": 0})
    net_arch: tuple[int, ...] = field(default=(64, 64), metadata={"min": 1})
    init_policy: str = ""


@dataclass(frozen=True)
class REINFORCESettings(PolicyGradientSettings):
    """Monte Carlo REINFORCE's settings: those of :class:`PolicyGradientSettings` and

    Attributes:
        gamma: discount of the returns.
        baseline: "none", "mean" (batch mean of the returns) or "value" (learned V(s)).
        value_coef: weight of the value loss (baseline "value").
    """

    gamma: float = field(default=0.99, metadata={"min": 0, "max": 1})
    baseline: Literal["none", "mean", "value"] = "value"
    value_coef: float = field(default=0.5, metadata={"min": 0})


class REINFORCE(PolicyGradientAgent):
    """Monte Carlo REINFORCE for Discrete action spaces, e.g. ``REINFORCE(env, baseline="mean")``
    (settings: :class:`REINFORCESettings`; arguments: :class:`~mri_rl.agents.base.Agent`)."""

    algorithm = "reinforce"
    settings_class = REINFORCESettings
    settings: REINFORCESettings

    def _uses_value_head(self) -> bool:
        return self.settings.baseline == "value"

    def _choose(self, distribution: torch.distributions.Categorical) -> tuple[np.ndarray, np.ndarray, None]:
        actions = distribution.sample().cpu().numpy()
        return actions, actions, None

    def _targets(self, episodes: list[Episode]) -> torch.Tensor:
        return torch.as_tensor(
            np.concatenate([self._returns_to_go(ep) for ep in episodes]), dtype=torch.float32, device=self.device
        )

    def _advantages(self, obs: Any, returns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns minus the baseline, and the weighted value loss (0 unless the baseline is learned)."""
        baseline = self.settings.baseline
        if baseline == "value":
            values = self.policy.state_value(obs)
            return returns - values.detach(), self.settings.value_coef * F.mse_loss(values, returns)
        zero = torch.zeros((), device=self.device)
        return (returns - returns.mean(), zero) if baseline == "mean" else (returns, zero)

    @torch.no_grad()
    def _returns_to_go(self, episode: Episode) -> np.ndarray:
        """G_t = r_t + gamma G_{t+1}; a truncated episode starts from V(last observation)."""
        gamma = self.settings.gamma
        rewards = np.asarray(episode.rewards, dtype=np.float64)
        running = 0.0
        if episode.bootstrap_observation is not None and self.policy.value is not None:
            running = float(self.policy.state_value(self.to_tensor(_stack([episode.bootstrap_observation])))[0])
        returns = np.empty_like(rewards)
        for t in range(len(rewards) - 1, -1, -1):
            running = rewards[t] + gamma * running
            returns[t] = running
        return returns


def _row(obs: Any, e: int | np.integer) -> Any:
    """Observation of sub-environment ``e``, copied out of the batch: numpy arrays, or torch
    tensors on their device (an env that returns tensors on the agent's device)."""

    def copy(value: Any) -> Any:
        return value[e].clone() if isinstance(value, torch.Tensor) else np.array(value[e])

    return {k: copy(v) for k, v in obs.items()} if isinstance(obs, dict) else copy(obs)


def _stack(observations: list[Any]) -> Any:
    """Stack observations (numpy arrays or tensors) along a new first dimension."""

    def stack(values: list[Any]) -> Any:
        return torch.stack(values) if isinstance(values[0], torch.Tensor) else np.stack(values)

    if isinstance(observations[0], dict):
        return {k: stack([o[k] for o in observations]) for k in observations[0]}
    return stack(observations)
