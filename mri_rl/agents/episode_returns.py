"""Deterministic evaluation of an agent on a Gymnasium env."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from mri_rl.agents.collect import env_action_masks


def evaluate_agent(
    agent: Any, env: gym.Env, episodes: int = 20, deterministic: bool = True, seed: int | None = None
) -> tuple[float, float, list[float]]:
    """Roll ``agent.predict`` for whole episodes, respecting the env's action masks
    (``info["action_mask"]`` or its ``action_masks()``, :func:`~mri_rl.agents.collect.env_action_masks`).

    Args:
        agent: anything with SB3's ``predict(obs, deterministic, action_mask=...)``.
        env: a single (not vector) Gymnasium env.
        episodes: number of episodes.
        deterministic: greedy actions.
        seed: seed of the first reset (later resets continue its stream).

    Returns:
        (mean return, std of returns, returns).
    """
    returns = []
    for episode in range(episodes):
        obs, info = env.reset(seed=seed if episode == 0 else None)
        done, total = False, 0.0
        while not done:
            mask = env_action_masks(env, info)
            action, _ = agent.predict(obs, deterministic=deterministic, action_mask=mask)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns)), float(np.std(returns)), returns
