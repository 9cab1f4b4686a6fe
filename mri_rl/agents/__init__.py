"""Agents that know Gymnasium spaces, not MRI: DQN, REINFORCE, greedy REINFORCE and DAgger."""

from mri_rl.agents.base import Agent
from mri_rl.agents.dagger import DAgger, DAggerSettings
from mri_rl.agents.dqn import DQN, DQNSettings
from mri_rl.agents.episode_returns import evaluate_agent
from mri_rl.agents.greedy_reinforce import GreedyREINFORCE, GreedyREINFORCESettings
from mri_rl.agents.policy import Policy
from mri_rl.agents.reinforce import REINFORCE, REINFORCESettings

AGENTS: dict[str, type[Agent]] = {
    "dqn": DQN,
    "reinforce": REINFORCE,
    "greedy_reinforce": GreedyREINFORCE,
    "dagger": DAgger,
}

__all__ = [
    "AGENTS",
    "DQN",
    "REINFORCE",
    "Agent",
    "DAgger",
    "DAggerSettings",
    "DQNSettings",
    "GreedyREINFORCE",
    "GreedyREINFORCESettings",
    "Policy",
    "REINFORCESettings",
    "evaluate_agent",
]
