"""REINFORCE: Monte Carlo policy gradient, and its greedy variant for active acquisition.

Monte Carlo (Williams, Machine Learning 1992): the gradient of
``sum_t A_t log pi(a_t | s_t)`` over whole episodes, with reward-to-go returns
``G_t = sum_{k>=t} gamma^(k-t) r_k`` (causality) and a baseline: none, the batch mean,
or a learned state value (then truncated episodes bootstrap from the value of their
last observation). An entropy bonus keeps the policy exploring. A batch may be reused
for several updates with truncated importance weights ``pi_new / pi_old``.

Greedy (Bakker, Hoof & Welling, "Experimental design for MRI by greedy policy search",
NeurIPS 2020): at every state K actions are sampled from the policy and each is scored
with its one-step reward by the environment's look-ahead (``score_actions``), without
changing the state; the baseline of each sample is the mean reward of the other K-1.
The episode goes on with the first sample.

Illegal actions are masked in the logits (-inf), so they are never sampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium.vector import SyncVectorEnv, VectorEnv
from tqdm.auto import tqdm

from mri_rl.agents.base import Agent, Callback
from mri_rl.agents.networks import PolicyNetwork, masked_logits

BASELINES = ("none", "mean", "value")


@dataclass
class Episode:
    """One episode's steps. ``actions`` is (T,) or, in greedy mode, (T, K) with ``rewards`` alike."""

    observations: list[Any] = field(default_factory=list)
    action_masks: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[np.ndarray] = field(default_factory=list)
    bootstrap_observation: Any = None  # last observation of a truncated episode


class REINFORCE(Agent):
    """Policy-gradient agent for Discrete action spaces.

    Args:
        env: a Gymnasium env or vector env (None when only predicting after ``load``).
        learning_rate: Adam step size (policy and value heads).
        gamma: discount of the returns.
        baseline: "none", "mean" (batch mean of the returns) or "value" (learned V(s)).
        normalize_advantages: standardise the advantages of each batch.
        entropy_coef: weight of the entropy bonus.
        value_coef: weight of the value loss (baseline "value").
        episodes_per_update: complete episodes per batch.
        reuse_epochs: updates per batch; beyond the first, importance-weighted.
        max_importance_weight: truncation of the importance weights.
        max_grad_norm: gradient clipping threshold.
        greedy_samples: K > 1 switches to the greedy variant with K sampled actions per
            state (needs an env with ``score_actions``); 0 for Monte Carlo.
        net_arch: hidden layer sizes after the observation encoder.
        image_spectrum: image encoders also read the column power spectrum.
        seed: seeds numpy, torch and the env resets.
        device: torch device.
    """

    algorithm = "reinforce"

    def __init__(
        self,
        env: gym.Env | VectorEnv | None,
        learning_rate: float = 1e-3,
        gamma: float = 0.99,
        baseline: str = "value",
        normalize_advantages: bool = True,
        entropy_coef: float = 0.0,
        value_coef: float = 0.5,
        episodes_per_update: int = 8,
        reuse_epochs: int = 1,
        max_importance_weight: float = 10.0,
        max_grad_norm: float = 1.0,
        greedy_samples: int = 0,
        net_arch: Sequence[int] = (64, 64),
        image_spectrum: bool = False,
        seed: int = 0,
        device: str = "cpu",
        **spaces: Any,
    ) -> None:
        if baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
        if greedy_samples == 1 or greedy_samples < 0:
            raise ValueError(f"greedy_samples must be 0 (Monte Carlo) or >= 2, got {greedy_samples}")
        if episodes_per_update < 1 or reuse_epochs < 1:
            raise ValueError("episodes_per_update and reuse_epochs must be >= 1")
        hyperparameters = {
            "learning_rate": learning_rate,
            "gamma": gamma,
            "baseline": baseline,
            "normalize_advantages": normalize_advantages,
            "entropy_coef": entropy_coef,
            "value_coef": value_coef,
            "episodes_per_update": episodes_per_update,
            "reuse_epochs": reuse_epochs,
            "max_importance_weight": max_importance_weight,
            "max_grad_norm": max_grad_norm,
            "greedy_samples": greedy_samples,
            "net_arch": list(net_arch),
            "image_spectrum": image_spectrum,
        }
        super().__init__(env, hyperparameters, seed=seed, device=device, **spaces)

    def _build(self) -> None:
        h = self.hyperparameters
        self.policy = PolicyNetwork(
            self.observation_space,
            self.num_actions,
            h["net_arch"],
            value_head=h["baseline"] == "value" and h["greedy_samples"] == 0,
            image_spectrum=h["image_spectrum"],
        ).to(self.device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=h["learning_rate"])
        if h["greedy_samples"] and self.env is not None:
            self._score_actions = _look_ahead_of(self.env)

    # --------------------------------------------------------------------- acting
    def _distribution(self, obs: Any, action_mask: torch.Tensor | None) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(logits=masked_logits(self.policy(obs), action_mask))

    def _act(self, obs: Any, action_mask: torch.Tensor | None, deterministic: bool) -> np.ndarray:
        distribution = self._distribution(obs, action_mask)
        actions = distribution.probs.argmax(dim=1) if deterministic else distribution.sample()
        return actions.cpu().numpy()

    # ------------------------------------------------------------------- learning
    def learn(self, total_timesteps: int, callback: Callback | None = None, progress_bar: bool = True) -> REINFORCE:
        """Train until :attr:`num_timesteps` reaches ``total_timesteps`` or ``callback(agent)``
        returns False; one update per ``episodes_per_update`` complete episodes."""
        if self.env is None:
            raise RuntimeError("this agent has no env: pass one to the constructor or to load()")
        h = self.hyperparameters
        env, num_envs = self.env, self.env.num_envs
        obs, infos = env.reset(seed=self.seed + self.num_timesteps)
        masks = self.legal_actions(infos)
        autoresetting = np.zeros(num_envs, dtype=bool)
        running = [Episode() for _ in range(num_envs)]
        finished: list[Episode] = []
        with tqdm(
            total=total_timesteps, initial=self.num_timesteps, disable=not progress_bar, unit="step", desc="reinforce"
        ) as bar:
            while self.num_timesteps < total_timesteps:
                with torch.no_grad():
                    distribution = self._distribution(self.to_tensor(obs), torch.as_tensor(masks, device=self.device))
                    if h["greedy_samples"]:
                        samples = distribution.sample((h["greedy_samples"],)).T.cpu().numpy()  # (N, K)
                        sample_rewards = self._score_actions(samples)
                        actions = samples[:, 0]
                    else:
                        actions = distribution.sample().cpu().numpy()
                next_obs, rewards, terminated, truncated, infos = env.step(actions)
                valid = ~autoresetting
                for e in np.flatnonzero(valid):
                    episode = running[e]
                    episode.observations.append(_index(obs, e))
                    episode.action_masks.append(masks[e])
                    episode.actions.append(samples[e] if h["greedy_samples"] else actions[e])
                    episode.rewards.append(sample_rewards[e] if h["greedy_samples"] else rewards[e])
                    if terminated[e] or truncated[e]:
                        if truncated[e] and not terminated[e]:
                            episode.bootstrap_observation = _index(next_obs, e)
                        finished.append(episode)
                        running[e] = Episode()
                        self.episode_returns.append(
                            float(
                                np.sum(episode.rewards if not h["greedy_samples"] else [r[0] for r in episode.rewards])
                            )
                        )
                        self.num_episodes += 1
                autoresetting = terminated | truncated
                obs, masks = next_obs, self.legal_actions(infos)
                new_steps = int(valid.sum())
                self.num_timesteps += new_steps
                bar.update(new_steps)
                if len(finished) >= h["episodes_per_update"]:
                    self.last_loss = self._update(finished)
                    finished = []
                if callback is not None and callback(self) is False:
                    break
        return self

    def _update(self, episodes: list[Episode]) -> float:
        """Policy-gradient update(s) on a batch of complete episodes; returns the last loss."""
        h = self.hyperparameters
        obs = self.to_tensor(_stack([o for ep in episodes for o in ep.observations]))
        masks = torch.as_tensor(np.stack([m for ep in episodes for m in ep.action_masks]), device=self.device)
        actions = torch.as_tensor(np.stack([a for ep in episodes for a in ep.actions]), device=self.device)
        if h["greedy_samples"]:
            rewards = torch.as_tensor(
                np.stack([r for ep in episodes for r in ep.rewards]), dtype=torch.float32, device=self.device
            )  # (T, K)
            k = rewards.shape[1]
            advantages = rewards - (rewards.sum(dim=1, keepdim=True) - rewards) / (k - 1)
            returns = None
        else:
            returns = torch.as_tensor(
                np.concatenate([self._returns_to_go(ep) for ep in episodes]), dtype=torch.float32, device=self.device
            )
            advantages = None
        old_log_probs = None
        for _ in range(h["reuse_epochs"]):
            distribution = self._distribution(obs, masks)
            log_probs = distribution.log_prob(actions.T).T if h["greedy_samples"] else distribution.log_prob(actions)
            value_loss = torch.zeros((), device=self.device)
            if returns is not None:
                advantages, value_loss = self._advantages(obs, returns)
            if h["normalize_advantages"] and advantages.numel() > 1:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            if old_log_probs is None:
                old_log_probs = log_probs.detach()
            weights = torch.exp(log_probs - old_log_probs).clamp(max=h["max_importance_weight"])
            policy_loss = -(weights * advantages.detach()).mean()
            entropy = distribution.entropy().mean()
            loss = policy_loss - h["entropy_coef"] * entropy + h["value_coef"] * value_loss
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), h["max_grad_norm"])
            self.optimizer.step()
        return float(loss.detach())

    def _advantages(self, obs: Any, returns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns minus the baseline, and the value loss (0 unless the baseline is learned)."""
        baseline = self.hyperparameters["baseline"]
        if baseline == "value":
            values = self.policy.state_value(obs)
            return returns - values.detach(), F.mse_loss(values, returns)
        if baseline == "mean":
            return returns - returns.mean(), torch.zeros((), device=self.device)
        return returns, torch.zeros((), device=self.device)

    @torch.no_grad()
    def _returns_to_go(self, episode: Episode) -> np.ndarray:
        """G_t = r_t + gamma G_{t+1}; a truncated episode starts from V(last observation)."""
        gamma = self.hyperparameters["gamma"]
        rewards = np.asarray(episode.rewards, dtype=np.float64)
        running = 0.0
        if episode.bootstrap_observation is not None and self.policy.value is not None:
            running = float(self.policy.state_value(self.to_tensor(_stack([episode.bootstrap_observation])))[0])
        returns = np.empty_like(rewards)
        for t in range(len(rewards) - 1, -1, -1):
            running = rewards[t] + gamma * running
            returns[t] = running
        return returns

    # -------------------------------------------------------------- save and load
    def _state(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])


def _index(obs: Any, e: int) -> Any:
    """Observation of sub-environment ``e`` (copied out of the batch)."""
    return {k: np.array(v[e]) for k, v in obs.items()} if isinstance(obs, dict) else np.array(obs[e])


def _stack(observations: list[Any]) -> Any:
    if isinstance(observations[0], dict):
        return {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    return np.stack(observations)


def _look_ahead_of(env: VectorEnv):
    """The batched ``score_actions(candidates (N, K)) -> (N, K)`` of ``env``.

    Raises:
        TypeError: the env has no look-ahead (the greedy variant needs one).
    """
    if hasattr(env.unwrapped, "score_actions"):
        return env.unwrapped.score_actions
    if isinstance(env, SyncVectorEnv) and all(hasattr(e.unwrapped, "score_actions") for e in env.envs):
        return lambda candidates: np.stack([e.unwrapped.score_actions(c) for e, c in zip(env.envs, candidates)])
    raise TypeError("greedy REINFORCE needs an env with score_actions (e.g. mri_rl/ActiveAcquisition-v0)")
