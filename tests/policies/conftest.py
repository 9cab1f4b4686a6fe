"""Fixtures of the policy tests: one torch thread, the tiny splits, a folder of mixed
zero-filled edges, a batched-env factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import pytest
import torch

import mri_rl  # noqa: F401  (registers the environment)
from mri_rl.envs import ENV_ID


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    """One intra-op thread (tiny tensors, busy machine). Module-scoped so that it is also
    in force while module-scoped fixtures compute; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def test_folder(singlecoil_root: Path) -> Path:
    """singlecoil_test of the tiny root: 1 volume x 3 slices, 16 x 16 targets, 16 k-space columns."""
    return singlecoil_root / "singlecoil_test"


@pytest.fixture(scope="session")
def train_folder(singlecoil_root: Path) -> Path:
    """singlecoil_train of the tiny root: 2 volumes x 3 slices."""
    return singlecoil_root / "singlecoil_train"


POLICY_ENV_KWARGS = dict(challenge="singlecoil", reconstructor="zero_filled", budget=3, initial_lines=2,
                         reward_metric="ssim", on_bad_file="raise")


@pytest.fixture
def make_vec_env() -> Callable[..., gym.vector.VectorEnv]:
    """``make_vec_env(data_path, num_envs, **overrides)``: the batched env (budget 3, 2 initial lines, SSIM reward)."""

    def factory(data_path: Path, num_envs: int, **overrides: Any) -> gym.vector.VectorEnv:
        return gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point",
                            data_path=data_path, **{**POLICY_ENV_KWARGS, **overrides})

    return factory


@pytest.fixture(scope="session")
def mixed_padding_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of two volumes with the same k-space width but different zero-filled edges
    (as fastMRI knee files), so episodes of one batch run out of columns at different steps.

    K-space 32 x 24, 16 x 16 targets. ``synthetic_s1_train_000.h5`` (2 slices) measures columns
    [3, 21), ``synthetic_s2_train_000.h5`` (3 slices) [5, 19): with 2 initial lines, 16 and 12
    free columns. Slice indices 0, 1 are s1's, 2, 3, 4 are s2's.
    """
    from mri_rl.data import SyntheticSpec, write_synthetic_dataset

    root = tmp_path_factory.mktemp("mixed_padding")
    folder = root / "mixed"
    folder.mkdir()
    for seed, padding, slices in [(1, 3, 2), (2, 5, 3)]:
        spec = SyntheticSpec(challenge="singlecoil", num_slices=slices, size=16, kspace_width=24,
                             padding=padding)
        written = write_synthetic_dataset(root / f"s{seed}", spec, {"train": 1}, seed=seed, progress=False)
        for path in written:
            Path(path).rename(folder / Path(path).name)
    assert sorted(p.name for p in folder.iterdir()) == ["synthetic_s1_train_000.h5", "synthetic_s2_train_000.h5"]
    return folder
