"""Fixtures of the policy tests: the tiny test split and a batched-env factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import mri_rl  # noqa: F401  (registers the environment)
from mri_rl.envs import ENV_ID


@pytest.fixture(scope="session")
def test_folder(singlecoil_root: Path) -> Path:
    """singlecoil_test of the tiny root: 1 volume x 3 slices, 16 x 16 targets, 16 k-space columns."""
    return singlecoil_root / "singlecoil_test"


POLICY_ENV_KWARGS = dict(
    challenge="singlecoil",
    reconstructor="zero_filled",
    budget=3,
    initial_lines=2,
    reward_metric="ssim",
    on_bad_file="raise",
)


@pytest.fixture
def make_vec_env() -> Callable[..., gym.vector.VectorEnv]:
    """``make_vec_env(data_path, num_envs, **overrides)``: the batched env (budget 3, 2 initial lines, SSIM reward)."""

    def factory(data_path: Path, num_envs: int, **overrides: Any) -> gym.vector.VectorEnv:
        return gym.make_vec(
            ENV_ID,
            num_envs=num_envs,
            vectorization_mode="vector_entry_point",
            data_path=data_path,
            **{**POLICY_ENV_KWARGS, **overrides},
        )

    return factory
