"""Agents that know Gymnasium spaces, not MRI: DQN, REINFORCE and tabular methods."""

from mri_rl.agents.base import Agent
from mri_rl.agents.dqn import DQN
from mri_rl.agents.evaluation import evaluate_agent
from mri_rl.agents.reinforce import REINFORCE

AGENTS: dict[str, type[Agent]] = {"dqn": DQN, "reinforce": REINFORCE}

__all__ = ["AGENTS", "DQN", "REINFORCE", "Agent", "evaluate_agent"]
