"""Deep Q-learning with the common improvements and action masking.

DQN (Mnih et al., Nature 2015): replay memory, target network, epsilon-greedy
exploration and the Huber loss; Double DQN (van Hasselt et al., AAAI 2016); dueling
heads (Wang et al., ICML 2016); n-step returns (Sutton, 1988; Hessel et al., AAAI 2018).
Illegal actions (``info["action_mask"]`` or the env's ``action_masks()``) are excluded
from the greedy argmax, from random exploration and from the bootstrap target, as in the
double DQN of Pineda et al. (MICCAI 2020) that never re-acquires a column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mri_rl.agents.base import Agent, AgentSettings, Callback
from mri_rl.agents.networks import QNetwork, masked_logits
from mri_rl.agents.replay import ReplayBuffer
from mri_rl.checkpointing import load_module_state, load_optimizer_state
from mri_rl.schedules import LinearSchedule


@dataclass(frozen=True)
class DQNSettings(AgentSettings):
    """DQN's settings (SB3's names where SB3 has the setting).

    Attributes:
        learning_rate: Adam step size.
        buffer_size: transitions kept in replay memory, at least (n_step + 1) * num_envs.
        learning_starts: env steps before the first update; gradient steps also wait until the
            replay memory holds as many transitions, so an agent loaded to resume training (its
            memory refilled from empty) first collects ``learning_starts`` steps again.
        batch_size: transitions per gradient step.
        gamma: discount.
        train_freq: env steps between updates.
        gradient_steps: gradient steps per update.
        target_update_interval: env steps between target updates.
        tau: 1.0 for hard target copies, < 1 for Polyak averaging at every target update.
        exploration_fraction: share of training over which epsilon decays.
        exploration_initial_eps, exploration_final_eps: epsilon at the start and the end.
        max_grad_norm: gradient clipping threshold.
        double_q: use Double DQN targets.
        dueling: use a dueling head.
        n_step: length of the bootstrapped returns.
        net_arch: hidden layer sizes after the observation encoder (empty: a linear head on its features).
        compact_images: keep image observations in float16 in the replay memory.
    """

    learning_rate: float = field(default=1e-4, metadata={"above": 0})
    buffer_size: int = field(default=100_000, metadata={"min": 1})
    learning_starts: int = field(default=1000, metadata={"min": 0})
    batch_size: int = field(default=64, metadata={"min": 1})
    gamma: float = field(default=0.99, metadata={"min": 0, "max": 1})
    train_freq: int = field(default=4, metadata={"min": 1})
    gradient_steps: int = field(default=1, metadata={"min": 1})
    target_update_interval: int = field(default=1000, metadata={"min": 1})
    tau: float = field(default=1.0, metadata={"above": 0, "max": 1})
    exploration_fraction: float = field(default=0.1, metadata={"min": 0, "max": 1})
    exploration_initial_eps: float = field(default=1.0, metadata={"min": 0, "max": 1})
    exploration_final_eps: float = field(default=0.05, metadata={"min": 0, "max": 1})
    max_grad_norm: float = field(default=10.0, metadata={"above": 0})
    double_q: bool = True
    dueling: bool = False
    n_step: int = field(default=1, metadata={"min": 1})
    net_arch: tuple[int, ...] = field(default=(64, 64), metadata={"min": 1})
    compact_images: bool = True


class DQN(Agent):
    """Deep Q-network agent for Discrete action spaces, e.g. ``DQN(env, learning_rate=2.3e-3,
    dueling=True)`` (settings: :class:`DQNSettings`; arguments: :class:`~mri_rl.agents.base.Agent`)."""

    algorithm = "dqn"
    settings_class = DQNSettings
    settings: DQNSettings

    def _build(self) -> None:
        s = self.settings
        self.q_network, self.target_network = (
            QNetwork(self.observation_space, self.num_actions, s.net_arch, s.dueling).to(self.device) for _ in range(2)
        )
        self.target_network.load_state_dict(self.q_network.state_dict())
        self.target_network.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=s.learning_rate, fused=True)
        self.exploration = LinearSchedule(s.exploration_initial_eps, s.exploration_final_eps, s.exploration_fraction)
        self.epsilon = s.exploration_initial_eps
        self.buffer: ReplayBuffer | None = None
        if self.env is not None:
            num_envs = self.env.num_envs
            if s.buffer_size < (s.n_step + 1) * num_envs:  # an n-step transition spans n + 1 steps of one env
                raise ValueError(
                    f"buffer_size {s.buffer_size} is too small for n_step {s.n_step} with {num_envs} envs: each "
                    f"env keeps buffer_size // num_envs steps and an n-step transition needs n_step + 1; "
                    f"expected buffer_size >= (n_step + 1) * num_envs = {(s.n_step + 1) * num_envs}"
                )
            self.buffer = ReplayBuffer(
                s.buffer_size, num_envs, self.observation_space, self.num_actions, s.compact_images
            )

    # --------------------------------------------------------------------- acting
    def _act(self, obs: Any, action_mask: torch.Tensor | None, deterministic: bool) -> np.ndarray:
        if deterministic:
            return masked_logits(self.q_network(obs), action_mask).argmax(dim=1).cpu().numpy()
        if action_mask is None:
            batch = len(next(iter(obs.values())) if isinstance(obs, dict) else obs)
            return self._epsilon_greedy(obs, np.ones((batch, self.num_actions), dtype=bool))
        return self._epsilon_greedy(obs, action_mask.cpu().numpy())

    @torch.no_grad()
    def _epsilon_greedy(self, obs: Any, masks: np.ndarray) -> np.ndarray:
        """With probability epsilon a uniform legal action, else the greedy legal one; the
        Q-network runs only when some row is greedy. ``masks`` bool (B, A)."""
        explore = self.rng.random(len(masks)) < self.epsilon
        random_scores = np.where(masks, self.rng.random(masks.shape), -1.0)
        actions = random_scores.argmax(axis=1)
        if not explore.all():
            q_values = masked_logits(self.q_network(self.to_tensor(obs)), torch.as_tensor(masks, device=self.device))
            actions = np.where(explore, actions, q_values.argmax(dim=1).cpu().numpy())
        return actions

    # ------------------------------------------------------------------- learning
    def learn(
        self,
        total_timesteps: int,
        callback: Callback = None,
        progress_bar: bool = True,
        reset_num_timesteps: bool = True,
    ) -> DQN:
        """Train for ``total_timesteps`` env steps (see :class:`~mri_rl.agents.base.TrainingRun`),
        or until the callback returns False. The reset steps of next-step autoreset do not count.
        The last steps of a run bootstrap from the observations they ended in, as after a truncation:
        the next call starts from a reset, whose steps the replay memory does not join to these.
        """
        s = self.settings
        with self._training(total_timesteps, callback, progress_bar, reset_num_timesteps) as run:
            assert self.buffer is not None  # _training checked there is an env, so _build made the buffer
            train_every = max(s.train_freq // run.num_envs, 1)
            target_every = max(s.target_update_interval // run.num_envs, 1)
            obs, legal = run.start()
            while run.running():
                self.epsilon = self.exploration(run.progress)
                actions = self._epsilon_greedy(obs, legal)
                step = run.step(actions)
                self.buffer.add(obs, legal, actions, step.rewards, step.terminated, step.truncated, step.valid)
                obs, legal = step.observations, step.legal
                if self.num_timesteps >= s.learning_starts:
                    if self.vector_steps % train_every == 0 and self._replay_ready():
                        for _ in range(s.gradient_steps):
                            self.last_loss = self._train_step()
                    if self.vector_steps % target_every == 0:  # a copy of itself until the first gradient step
                        self._update_target()
                run.report()
            self.buffer.end_streams(obs, legal)  # a later run resets the env: its steps do not follow these
        return self

    def _replay_ready(self) -> bool:
        """Whether the replay memory has had ``learning_starts`` transitions written since it was
        made (since training started, or an agent was loaded) and can give an ``n_step`` batch."""
        assert self.buffer is not None  # called from learn, which has a buffer
        return self.buffer.num_added >= self.settings.learning_starts and self.buffer.can_sample(self.settings.n_step)

    def _train_step(self) -> float:
        """One gradient step on a replay batch; returns the loss."""
        s = self.settings
        assert self.buffer is not None  # called from learn, which has a buffer
        batch = self.buffer.sample(s.batch_size, self.rng, s.n_step, s.gamma, self.device)
        next_masks = batch.next_action_masks if self.buffer.has_illegal_actions else None
        with torch.no_grad():
            next_q_target = self.target_network(batch.next_observations)
            selector = self.q_network(batch.next_observations) if s.double_q else next_q_target
            next_actions = masked_logits(selector, next_masks).argmax(dim=1, keepdim=True)
            next_values = next_q_target.gather(1, next_actions).squeeze(1)
            targets = batch.returns + batch.bootstrap_discounts * next_values
        q_values = self.q_network(batch.observations).gather(1, batch.actions[:, None]).squeeze(1)
        loss = F.smooth_l1_loss(q_values, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.q_network.parameters(), s.max_grad_norm, foreach=True)
        self.optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def _update_target(self) -> None:
        tau = self.settings.tau
        if tau == 1.0:
            self.target_network.load_state_dict(self.q_network.state_dict())
            return
        for target, online in zip(self.target_network.parameters(), self.q_network.parameters()):
            target.lerp_(online, tau)

    # -------------------------------------------------------------- save and load
    def _state(self) -> dict[str, Any]:
        return {
            "q_network": self.q_network.state_dict(),
            "target_network": self.target_network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def _load_state(self, state: dict[str, Any], path: str | Path) -> None:
        load_module_state(self.q_network, state.get("q_network"), path, "state.q_network")
        load_module_state(self.target_network, state.get("target_network"), path, "state.target_network")
        load_optimizer_state(self.optimizer, state.get("optimizer"), path, "state.optimizer")
