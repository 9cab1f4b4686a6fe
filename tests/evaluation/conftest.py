"""Fixtures of the evaluation tests: a batched env on the tiny test split."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import pytest
import yaml

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
