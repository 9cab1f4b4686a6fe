"""``mri_rl/ActiveAcquisition-v0``: one episode of active k-space acquisition."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch

from mri_rl.envs.episodes import AcquisitionEpisodes
from mri_rl.envs.slice_source import SliceSource
from mri_rl.envs.spaces import action_space, observation_space
from mri_rl.reconstruct.base import Reconstructor
from mri_rl.reconstruct.checkpoint import build_reconstructor


def build_episodes(num_episodes: int, data_path: str | Path, challenge: str, reconstructor: str | Path | Reconstructor,
                   budget: int | None, initial_lines: int, reward_metric: str, on_bad_file: str,
                   kspace_shape: Sequence[int] | None, device: str | torch.device,
                   lookahead_batch_size: int, slice_cache_mb: float) -> AcquisitionEpisodes:
    """Build the episode batch behind both environments from their keyword arguments."""
    source = SliceSource(data_path, challenge, on_bad_file,
                         None if kspace_shape is None else tuple(kspace_shape), slice_cache_mb)
    return AcquisitionEpisodes(source, build_reconstructor(reconstructor), num_episodes, budget, initial_lines,
                               reward_metric, device, lookahead_batch_size)


def pick_slice(rng: np.random.Generator, num_slices: int, index: Any | None) -> int:
    """A slice index: ``index`` if given (checked), else uniform from ``rng``."""
    if index is None:
        return int(rng.integers(num_slices))
    if not isinstance(index, (int, np.integer)) or not 0 <= index < num_slices:
        raise ValueError(f"options['index'] must be an integer slice index in [0, {num_slices}), got {index!r}")
    return int(index)


class ActiveAcquisitionEnv(gym.Env):
    """Acquire k-space columns of one slice, one per step (see DESIGN.md's POMDP table).

    Args:
        data_path: folder of fastMRI ``.h5`` files (one split); slices need targets.
        challenge: "singlecoil" or "multicoil".
        reconstructor: "zero_filled", the path of an exported reconstructor checkpoint,
            or a :class:`~mri_rl.reconstruct.Reconstructor`.
        budget: acquisition steps per episode (None: until every column is acquired).
        initial_lines: lowest-frequency columns acquired at reset.
        reward_metric: "mse" or "nmse" (reward = decrease), "ssim" or "psnr" (increase).
        on_bad_file: "raise" or "skip" bad files in ``data_path``.
        kspace_shape: which k-space shape to use when the folder mixes several.
        device: where reconstructions run.
        lookahead_batch_size: reconstructions per call in :meth:`score_actions`.
        slice_cache_mb: slices kept in memory after their first read (0: always read).

    Observation: ``reconstruction`` float32 (1, h, w), scaled by the maximum of the
    initial zero-filled image, and ``mask`` int8 (W,). ``info`` holds ``action_mask``
    (1 = may acquire) and the metrics ``mse`` (in units of the data range squared),
    ``nmse``, ``psnr``, ``ssim`` for evaluation only.
    """

    metadata = {"render_modes": []}

    def __init__(self, data_path: str | Path, challenge: str = "singlecoil",
                 reconstructor: str | Path | Reconstructor = "zero_filled", budget: int | None = None,
                 initial_lines: int = 8, reward_metric: str = "mse", on_bad_file: str = "raise",
                 kspace_shape: Sequence[int] | None = None, device: str | torch.device = "cpu",
                 lookahead_batch_size: int = 256, slice_cache_mb: float = 1024) -> None:
        self.episodes = build_episodes(1, data_path, challenge, reconstructor, budget, initial_lines, reward_metric,
                                       on_bad_file, kspace_shape, device, lookahead_batch_size, slice_cache_mb)
        self.observation_space = observation_space(self.episodes.recon_size, self.episodes.width)
        self.action_space = action_space(self.episodes.width)
        self._rows = np.zeros(1, dtype=np.int64)
        self._episode_over = True

    @property
    def num_slices(self) -> int:
        return len(self.episodes.source)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Start an episode on a random slice, or on ``options["index"]``."""
        super().reset(seed=seed)
        index = pick_slice(self.np_random, self.num_slices, (options or {}).get("index"))
        self.episodes.load(self._rows, [index])
        self.episodes.refresh(self._rows, new_episode=np.ones(1, dtype=bool))
        self._episode_over = False
        return self._observation(), self._info()

    def step(self, action: int) -> tuple[dict, float, bool, bool, dict]:
        """Acquire column ``action``; an already acquired column changes nothing and gives 0."""
        if self._episode_over:
            raise RuntimeError("the episode is over (or never started): call reset() before step()")
        metric = self.episodes.metrics[self.episodes.reward_metric]
        before = metric[0].clone()
        if self.episodes.mark(self._rows, np.asarray([action]))[0]:
            self.episodes.refresh(self._rows, added_columns=np.asarray([action]))
        reward = float(self.episodes.improvement(before, metric[0]))
        terminated = bool(self.episodes.done(self._rows)[0])
        self._episode_over = terminated
        return self._observation(), reward, terminated, False, self._info()

    def action_masks(self) -> np.ndarray:
        """bool (W,): True where a column may still be acquired (sb3-contrib convention)."""
        return self.episodes.action_masks()[0]

    def score_actions(self, actions: Sequence[int]) -> np.ndarray:
        """Rewards that each candidate column would give now, without changing the state.

        Args:
            actions: K candidate columns.

        Returns:
            float64 (K,).
        """
        return self.episodes.lookahead(self._rows, np.asarray(actions, dtype=np.int64).reshape(1, -1))[0]

    def _observation(self) -> dict[str, np.ndarray]:
        return {key: value[0] for key, value in self.episodes.observation().items()}

    def _info(self) -> dict[str, Any]:
        info = self.episodes.info()
        return {key: value[0] if value.ndim > 1 else value[0].item() for key, value in info.items()}
