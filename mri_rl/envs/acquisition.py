"""``mri_rl/ActiveAcquisition-v0``: one episode of active k-space acquisition."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from mri_rl.envs.episodes import AcquisitionEpisodes
from mri_rl.envs.slice_source import SliceSource
from mri_rl.envs.spaces import action_space, observation_space
from mri_rl.provenance import checkpoint_fingerprint, data_fingerprint, make_record
from mri_rl.reconstruct.base import Reconstructor
from mri_rl.reconstruct.checkpoint import build_reconstructor
from mri_rl.task import DEFAULT_TASK, ZERO_FILLED, AcquisitionTask


def build_episodes(
    num_episodes: int,
    data_path: str | Path,
    task: AcquisitionTask | Mapping[str, Any] | None,
    reconstructor: str | Path | Reconstructor | None,
    task_fields: dict[str, Any],
    on_bad_file: str,
    device: str | torch.device,
    lookahead_batch_size: int,
    slice_cache_mb: float,
) -> AcquisitionEpisodes:
    """Build the episode batch behind both environments from their keyword arguments.

    The task is ``task`` (default: :data:`~mri_rl.task.DEFAULT_TASK`) with ``task_fields``
    and a path ``reconstructor`` applied, then bound to the data and the reconstructor:
    its ``kspace_shape`` and ``reconstructor_fingerprint`` are filled in.

    Raises:
        TaskError: an unknown task field or a bad value.
        ValueError: a task whose recorded reconstructor fingerprint is not the file's now.
    """
    base = (
        task
        if isinstance(task, AcquisitionTask)
        else (DEFAULT_TASK if task is None else AcquisitionTask.from_dict(task))
    )
    if isinstance(reconstructor, (str, Path)):
        task_fields = {**task_fields, "reconstructor": str(reconstructor)}
    resolved = base.with_changes(**task_fields)
    if isinstance(reconstructor, Reconstructor):
        model, fingerprint = reconstructor, reconstructor.fingerprint()
        resolved = resolved.with_changes(reconstructor=f"in-memory {type(reconstructor).__name__}")
    else:
        model = build_reconstructor(resolved.reconstructor)
        fingerprint = (
            ZERO_FILLED if resolved.reconstructor == ZERO_FILLED else checkpoint_fingerprint(resolved.reconstructor)
        )
    recorded = resolved.reconstructor_fingerprint
    if recorded is not None and recorded != fingerprint and "reconstructor" not in task_fields:
        raise ValueError(
            f"the task's reconstructor {resolved.reconstructor} has fingerprint {fingerprint}, not the "
            f"{recorded} recorded with the task: the file changed since"
        )
    source = SliceSource(data_path, resolved.challenge, on_bad_file, resolved.kspace_shape, slice_cache_mb)
    resolved = resolved.with_changes(kspace_shape=source.kspace_shape, reconstructor_fingerprint=fingerprint)
    return AcquisitionEpisodes(source, model, num_episodes, resolved, device, lookahead_batch_size)


def episodes_record(episodes: AcquisitionEpisodes) -> dict[str, Any]:
    """The record of an env (:mod:`mri_rl.provenance`): its bound task and the fingerprint
    of its data folder, under "train" since whatever learns on an env trains on its data."""
    return make_record(episodes.task, {"train": data_fingerprint(episodes.source.folder)})


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
        task: the :class:`~mri_rl.task.AcquisitionTask` (or a mapping of its fields);
            default :data:`~mri_rl.task.DEFAULT_TASK`.
        reconstructor: "zero_filled", the path of an exported reconstructor checkpoint,
            or a :class:`~mri_rl.reconstruct.Reconstructor` (default: the task's).
        on_bad_file: "raise" or "skip" bad files in ``data_path``.
        device: where reconstructions run.
        lookahead_batch_size: reconstructions per call in :meth:`score_actions`.
        slice_cache_mb: slices kept in memory after their first read (0: always read).
        **task_fields: task fields to change: ``challenge``, ``budget`` (None: until every
            column is acquired), ``initial_lines``, ``reward_metric`` ("mse" or "nmse":
            reward = decrease; "ssim" or "psnr": increase), ``kspace_shape`` (which shape
            to use when the folder mixes several).

    Attributes:
        task: the task bound to the data and reconstructor (geometry and fingerprint set).

    Observation: ``reconstruction`` float32 (1, h, w), scaled by the maximum of the
    initial zero-filled image, and ``mask`` int8 (W,). ``info`` holds ``action_mask``
    (1 = may acquire) and the metrics ``mse`` (in units of the data range squared),
    ``nmse``, ``psnr``, ``ssim`` for evaluation only.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        data_path: str | Path,
        task: AcquisitionTask | Mapping[str, Any] | None = None,
        *,
        reconstructor: str | Path | Reconstructor | None = None,
        on_bad_file: str = "raise",
        device: str | torch.device = "cpu",
        lookahead_batch_size: int = 256,
        slice_cache_mb: float = 1024,
        **task_fields: Any,
    ) -> None:
        self.episodes = build_episodes(
            1, data_path, task, reconstructor, task_fields, on_bad_file, device, lookahead_batch_size, slice_cache_mb
        )
        self.task = self.episodes.task
        self.observation_space = observation_space(self.episodes.recon_size, self.episodes.width)
        self.action_space = action_space(self.episodes.width)
        self._rows = np.zeros(1, dtype=np.int64)
        self._episode_over = True

    @property
    def num_slices(self) -> int:
        return len(self.episodes.source)

    def record(self) -> dict[str, Any]:
        """How this env's episodes are made: the task and the data fingerprint (agents store it)."""
        return episodes_record(self.episodes)

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

    def score_actions(self, actions: Any) -> np.ndarray:
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
