"""Fixtures of the environment tests: small data folders and environment factories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import mri_rl  # noqa: F401  (registers the environment)
from mri_rl.data import SyntheticSpec, write_synthetic_dataset
from mri_rl.envs import ENV_ID

#: Geometry of ``padded_folder``: k-space 32 x 24, measurable columns [3, 21), 16 x 16 target.
PADDED_WIDTH = 24
PADDED_PADDING = 3


@pytest.fixture(scope="session")
def one_volume_folder(singlecoil_volume: Path, copy_volume, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding only ``singlecoil_volume``: slice index i of the env is slice i of the file."""
    folder = tmp_path_factory.mktemp("one_volume")
    copy_volume(singlecoil_volume, folder)
    return folder


@pytest.fixture(scope="session")
def one_multicoil_folder(multicoil_volume: Path, copy_volume, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding only ``multicoil_volume`` (3 slices, 3 coils)."""
    folder = tmp_path_factory.mktemp("one_multicoil")
    copy_volume(multicoil_volume, folder)
    return folder


@pytest.fixture(scope="session")
def padded_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One single-coil volume of 2 slices with zero-filled edges: k-space 32 x 24, acquired [3, 21)."""
    root = tmp_path_factory.mktemp("padded")
    spec = SyntheticSpec(
        challenge="singlecoil", size=16, kspace_width=PADDED_WIDTH, padding=PADDED_PADDING, num_slices=2
    )
    write_synthetic_dataset(root, spec, {"train": 1}, seed=3, progress=False)
    return root / "singlecoil_train"


@pytest.fixture
def make_env() -> Callable[..., gym.Env]:
    """``make_env(data_path, **overrides)``: the single env through ``gymnasium.make``."""

    def factory(data_path: Path, **overrides: Any) -> gym.Env:
        kwargs = dict(
            challenge="singlecoil",
            reconstructor="zero_filled",
            budget=4,
            initial_lines=2,
            reward_metric="mse",
            on_bad_file="raise",
        )
        kwargs.update(overrides)
        return gym.make(ENV_ID, data_path=data_path, **kwargs)

    return factory


@pytest.fixture
def make_vec_env() -> Callable[..., gym.vector.VectorEnv]:
    """``make_vec_env(data_path, num_envs, **overrides)``: the batched env through ``gymnasium.make_vec``."""

    def factory(data_path: Path, num_envs: int, **overrides: Any) -> gym.vector.VectorEnv:
        kwargs = dict(
            challenge="singlecoil",
            reconstructor="zero_filled",
            budget=4,
            initial_lines=2,
            reward_metric="mse",
            on_bad_file="raise",
        )
        kwargs.update(overrides)
        return gym.make_vec(
            ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", data_path=data_path, **kwargs
        )

    return factory
