"""Deep Q-learning with the common improvements and action masking.

DQN (Mnih et al., Nature 2015): replay memory, target network, epsilon-greedy
exploration and the Huber loss; Double DQN (van Hasselt et al., AAAI 2016); dueling
heads (Wang et al., ICML 2016); n-step returns (Sutton, 1988; Hessel et al., AAAI 2018).
Illegal actions (``info["action_mask"]`` or the env's ``action_masks()``) are excluded
from the greedy argmax, from random exploration and from the bootstrap target, as in the
double DQN of Pineda et al. (MICCAI 2020) that never re-acquires a column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium.vector import VectorEnv
from tqdm.auto import tqdm

from mri_rl.agents.base import Agent, Callback, EpisodeTracker
from mri_rl.agents.networks import QNetwork, masked_logits
from mri_rl.agents.replay import ReplayBuffer
from mri_rl.agents.schedules import LinearSchedule


class DQN(Agent):
    """Deep Q-network agent for Discrete action spaces.

    Args:
        env: a Gymnasium env or vector env (None when only predicting after ``load``).
        learning_rate: Adam step size.
        buffer_size: transitions kept in replay memory.
        learning_starts: env steps before the first update.
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
        net_arch: hidden layer sizes after the observation encoder.
        image_spectrum: image encoders also read the column power spectrum.
        compact_images: keep image observations in float16 in the replay memory.
        seed: seeds numpy, torch and the env resets.
        device: torch device.
    """

    algorithm = "dqn"

    def __init__(
        self,
        env: gym.Env | VectorEnv | None,
        learning_rate: float = 1e-4,
        buffer_size: int = 100_000,
        learning_starts: int = 1000,
        batch_size: int = 64,
        gamma: float = 0.99,
        train_freq: int = 4,
        gradient_steps: int = 1,
        target_update_interval: int = 1000,
        tau: float = 1.0,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        max_grad_norm: float = 10.0,
        double_q: bool = True,
        dueling: bool = False,
        n_step: int = 1,
        net_arch: Sequence[int] = (64, 64),
        image_spectrum: bool = False,
        compact_images: bool = True,
        seed: int = 0,
        device: str = "cpu",
        **spaces: Any,
    ) -> None:
        if not 0 < tau <= 1:
            raise ValueError(f"tau must be in (0, 1], got {tau}")
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        if not 0 <= gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        hyperparameters = {
            "learning_rate": learning_rate,
            "buffer_size": buffer_size,
            "learning_starts": learning_starts,
            "batch_size": batch_size,
            "gamma": gamma,
            "train_freq": train_freq,
            "gradient_steps": gradient_steps,
            "target_update_interval": target_update_interval,
            "tau": tau,
            "exploration_fraction": exploration_fraction,
            "exploration_initial_eps": exploration_initial_eps,
            "exploration_final_eps": exploration_final_eps,
            "max_grad_norm": max_grad_norm,
            "double_q": double_q,
            "dueling": dueling,
            "n_step": n_step,
            "net_arch": list(net_arch),
            "image_spectrum": image_spectrum,
            "compact_images": compact_images,
        }
        super().__init__(env, hyperparameters, seed=seed, device=device, **spaces)

    def _build(self) -> None:
        h = self.hyperparameters
        self.q_network, self.target_network = (
            QNetwork(self.observation_space, self.num_actions, h["net_arch"], h["dueling"], h["image_spectrum"]).to(
                self.device
            )
            for _ in range(2)
        )
        self.target_network.load_state_dict(self.q_network.state_dict())
        self.target_network.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=h["learning_rate"], fused=True)
        self.exploration = LinearSchedule(
            h["exploration_initial_eps"], h["exploration_final_eps"], h["exploration_fraction"]
        )
        self.epsilon = h["exploration_initial_eps"]
        self.buffer = (
            None
            if self.env is None
            else ReplayBuffer(
                h["buffer_size"], self.env.num_envs, self.observation_space, self.num_actions, h["compact_images"]
            )
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
    def learn(self, total_timesteps: int, callback: Callback | None = None, progress_bar: bool = True) -> DQN:
        """Train until :attr:`num_timesteps` reaches ``total_timesteps`` (a resumed agent
        finishes the same run) or ``callback(agent)`` returns False.

        Env steps count transitions; the reset steps of next-step autoreset do not count.
        """
        if self.env is None or self.buffer is None:
            raise RuntimeError("this agent has no env: pass one to the constructor or to load()")
        h = self.hyperparameters
        env, num_envs = self.env, self.env.num_envs
        train_every = max(h["train_freq"] // num_envs, 1)
        target_every = max(h["target_update_interval"] // num_envs, 1)
        obs, infos = env.reset(seed=self.seed + self.num_timesteps)
        masks = self.legal_actions(infos)
        autoresetting = np.zeros(num_envs, dtype=bool)
        tracker = EpisodeTracker(num_envs)
        vector_steps = 0
        with tqdm(
            total=total_timesteps, initial=self.num_timesteps, disable=not progress_bar, unit="step", desc="dqn"
        ) as bar:
            while self.num_timesteps < total_timesteps:
                self.epsilon = self.exploration(self.num_timesteps / total_timesteps)
                actions = self._epsilon_greedy(obs, masks)
                next_obs, rewards, terminated, truncated, infos = env.step(actions)
                valid = ~autoresetting
                self.buffer.add(obs, masks, actions, rewards, terminated, truncated, valid)
                finished = tracker.update(rewards, terminated, truncated, valid)
                self.episode_returns += finished
                self.num_episodes += len(finished)
                autoresetting = terminated | truncated
                obs, masks = next_obs, self.legal_actions(infos)
                new_steps = int(valid.sum())
                self.num_timesteps += new_steps
                bar.update(new_steps)
                vector_steps += 1
                if self.num_timesteps >= h["learning_starts"] and self.buffer.can_sample(h["n_step"]):
                    if vector_steps % train_every == 0:
                        for _ in range(h["gradient_steps"]):
                            self.last_loss = self._train_step()
                    if vector_steps % target_every == 0:
                        self._update_target()
                if callback is not None and callback(self) is False:
                    break
        return self

    def _train_step(self) -> float:
        """One gradient step on a replay batch; returns the loss."""
        h = self.hyperparameters
        batch = self.buffer.sample(h["batch_size"], self.rng, h["n_step"], h["gamma"], self.device)
        next_masks = batch.next_action_masks if self.buffer.has_illegal_actions else None
        with torch.no_grad():
            next_q_target = self.target_network(batch.next_observations)
            selector = self.q_network(batch.next_observations) if h["double_q"] else next_q_target
            next_actions = masked_logits(selector, next_masks).argmax(dim=1, keepdim=True)
            next_values = next_q_target.gather(1, next_actions).squeeze(1)
            targets = batch.returns + batch.bootstrap_discounts * next_values
        q_values = self.q_network(batch.observations).gather(1, batch.actions[:, None]).squeeze(1)
        loss = F.smooth_l1_loss(q_values, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.q_network.parameters(), h["max_grad_norm"], foreach=True)
        self.optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def _update_target(self) -> None:
        tau = self.hyperparameters["tau"]
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

    def _load_state(self, state: dict[str, Any]) -> None:
        self.q_network.load_state_dict(state["q_network"])
        self.target_network.load_state_dict(state["target_network"])
        self.optimizer.load_state_dict(state["optimizer"])
