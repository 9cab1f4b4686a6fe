"""Fixtures of the evaluation tests: a batched env on the tiny test split."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import yaml
from gymnasium import spaces

from mri_rl.envs import ENV_ID


@pytest.fixture
def make_test_env(singlecoil_root: Path) -> Callable[[int, int], gym.vector.VectorEnv]:
    """``make_test_env(num_envs, budget)``: the batched env on the tiny test split (3 slices, 16
    columns), zero-filled, 2 initial lines."""

    def factory(num_envs: int, budget: int) -> gym.vector.VectorEnv:
        return gym.make_vec(
            ENV_ID,
            num_envs=num_envs,
            vectorization_mode="vector_entry_point",
            data_path=singlecoil_root / "singlecoil_test",
            reconstructor="zero_filled",
            budget=budget,
            initial_lines=2,
        )

    return factory


#: The first action of :class:`ShiftedActions`: env action ``SHIFT + i`` is the MRI env's column i.
SHIFT = 3


class ShiftedActions(gym.vector.VectorActionWrapper):
    """A vector env whose Discrete action space starts at :data:`SHIFT` (its column i is the action
    ``SHIFT + i``); the actions it was given are kept in ``taken``, one outside its space is a ValueError."""

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        super().__init__(env)
        width, n = int(env.single_action_space.n), env.num_envs
        self.single_action_space = spaces.Discrete(width, start=SHIFT)
        self.action_space = spaces.MultiDiscrete([width] * n, start=[SHIFT] * n)
        self.taken: list[list[int]] = []

    def actions(self, actions: np.ndarray) -> np.ndarray:
        if not self.action_space.contains(np.asarray(actions, dtype=np.int64)):
            raise ValueError(f"actions {actions} are not in {self.action_space}")
        self.taken.append([int(action) for action in actions])
        return np.asarray(actions) - SHIFT


class EnvActionPolicy:
    """``policy`` (a baseline, whose columns are indices from 0) giving :class:`ShiftedActions`'s env
    actions, as an agent's ``predict`` does: column i is the action ``SHIFT + i``."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy

    def reset(self, action_masks: np.ndarray, slice_ids: Any = None) -> None:
        self.policy.reset(action_masks, slice_ids)

    def predict(self, obs: Any, deterministic: bool = True, action_mask: np.ndarray | None = None) -> tuple[Any, None]:
        return self.policy.predict(obs, deterministic, action_mask)[0] + SHIFT, None


@pytest.fixture
def shifted_actions() -> tuple[Callable[[gym.vector.VectorEnv], ShiftedActions], Callable[[Any], EnvActionPolicy]]:
    """(``ShiftedActions``, ``EnvActionPolicy``): wrap an env, or a baseline, to act from :data:`SHIFT`."""
    return ShiftedActions, EnvActionPolicy


@pytest.fixture
def script_usage_error() -> Callable[..., str]:
    """``script_usage_error(name, *args)``: run ``scripts/NAME`` with ``args``, check that it stops with
    a usage error (status 2, no traceback), and return the last line of its stderr."""

    def run(name: str, *args: str) -> str:
        script = Path(__file__).parents[2] / "scripts" / name
        done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        return done.stderr.strip().splitlines()[-1]

    return run


@pytest.fixture
def cartpole_run(tmp_path: Path) -> Path:
    """A run folder of ``mri-rl train`` on CartPole (a config and an empty model, never read)."""
    run = tmp_path / "cartpole_run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"agent": "dqn", "env_id": "CartPole-v1", "total_steps": 10}))
    (run / "model.pt").write_bytes(b"")
    return run
