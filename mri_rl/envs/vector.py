"""The batched environment: N acquisition episodes, one reconstructor call per step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from mri_rl.checks import check_int
from mri_rl.envs.acquisition import check_render_mode, episode_picture, episodes_record, make_episodes, pick_slice
from mri_rl.envs.episodes import NEW_EPISODE, column_indices
from mri_rl.task import AcquisitionTask


class BatchedActiveAcquisitionEnv(VectorEnv):
    """``num_envs`` episodes of :class:`~mri_rl.envs.acquisition.ActiveAcquisitionEnv` in one batch.

    Built by ``gymnasium.make_vec("mri_rl/ActiveAcquisition-v0", num_envs=N,
    vectorization_mode="vector_entry_point", ...)`` with the single environment's keyword
    arguments. Sub-environment i seeded with ``seed + i`` gives the same episodes as a
    single environment reset with ``seed + i``. Finished episodes restart on the next
    ``step`` (gymnasium's ``AutoresetMode.NEXT_STEP``); all the episodes that change in
    a step, restarted ones included, are reconstructed in one batched call.

    With ``render_mode="rgb_array"``, ``render()`` returns one picture per episode
    (:func:`~mri_rl.envs.acquisition.episode_picture`).

    Observations are numpy arrays; with :attr:`tensor_observations` set, torch tensors on
    :attr:`device` instead (no copy to the host and back for a policy on that device; the
    agents' :class:`~mri_rl.agents.collect.Collector` sets it while it trains an agent there).
    Rewards, flags and infos stay numpy.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int,
        data_path: str | Path,
        task: AcquisitionTask | Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        **options: Any,
    ) -> None:
        num_envs = check_int("num_envs", num_envs)
        self.render_mode = check_render_mode(render_mode, self.metadata)
        self.episodes = make_episodes(num_envs, data_path, task, **options)
        self.task = self.episodes.task
        self.num_envs = num_envs
        self.single_observation_space = self.episodes.observation_space()
        self.single_action_space = spaces.Discrete(self.episodes.width)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rngs = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self._needs_reset = np.ones(num_envs, dtype=bool)
        self._started = False
        self._all_rows = np.arange(num_envs)
        #: Return observations as torch tensors on :attr:`device` (True) or numpy arrays (False).
        self.tensor_observations = False

    @property
    def device(self) -> torch.device:
        """Where the episodes' tensors live and reconstructions run."""
        return self.episodes.device

    @property
    def num_slices(self) -> int:
        """Slices of the data folder (of the env's k-space geometry) that episodes draw from."""
        return len(self.episodes.source)

    def record(self) -> dict[str, Any]:
        """How this env's episodes are made: the task and the data fingerprint (agents store it)."""
        return episodes_record(self.episodes)

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict | None = None
    ) -> tuple[dict, dict]:
        """Start episodes: all of them, or those in ``options["reset_mask"]``.

        Args:
            seed: an int (sub-environment i gets ``seed + i``) or one seed per sub-environment.
            options: ``{"indices": [slice per sub-environment]}`` to choose slices;
                ``{"reset_mask": bool (N,)}`` to restart only some episodes.
        """
        options = options or {}
        seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, (int, np.integer)) else seed
        if seeds is not None:
            if len(seeds) != self.num_envs:
                raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}")
            for i, s in enumerate(seeds):
                if s is not None:
                    self._rngs[i] = seeding.np_random(int(s))[0]
        reset_mask = np.asarray(options.get("reset_mask", np.ones(self.num_envs, dtype=bool)), dtype=bool)
        if reset_mask.shape != (self.num_envs,):
            raise ValueError(f"options['reset_mask'] must have shape ({self.num_envs},), got {reset_mask.shape}")
        if not self._started and not reset_mask.all():
            raise RuntimeError("the first reset() must start every sub-environment")
        indices = options.get("indices")
        if indices is not None and len(indices) != self.num_envs:
            raise ValueError(f"options['indices'] must give {self.num_envs} slice indices, got {len(indices)}")
        rows = self._all_rows[reset_mask]
        self._start(rows, None if indices is None else [indices[r] for r in rows])
        self._started = True
        return self.episodes.observation(self.tensor_observations), self._info()

    def _start(self, rows: np.ndarray, indices: Sequence[int] | None = None) -> None:
        slice_ids = [
            pick_slice(self._rngs[r], self.num_slices, None if indices is None else indices[i])
            for i, r in enumerate(rows)
        ]
        self.episodes.start_slices(rows, slice_ids)
        self.episodes.reconstruct(rows, np.full(len(rows), NEW_EPISODE))
        self._needs_reset[rows] = False

    def step(self, actions: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Acquire one column in every running episode; restart the finished ones.

        ``actions`` must be of shape exactly (N,), as the action space ``MultiDiscrete``: no
        other shape is flattened ((N, 1), (1, N), and for N = 1 a 0-d array, are refused).
        Integers of any numpy dtype act alike; bools, floats and columns outside [0, W) are
        refused, also those of episodes that restart in this step (whose action is ignored),
        and a refused step changes nothing.
        """
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = column_indices(actions, (self.num_envs,), self.episodes.width)
        episodes = self.episodes
        restarting = self._all_rows[self._needs_reset]
        running = self._all_rows[~self._needs_reset]
        before = episodes.metrics[self.task.reward_metric].clone()
        is_new = episodes.acquire(running, actions[running])
        if len(restarting):
            episodes.start_slices(restarting, [pick_slice(self._rngs[r], self.num_slices, None) for r in restarting])
        added_columns = np.where(self._needs_reset, NEW_EPISODE, actions)
        changed = self._needs_reset.copy()
        changed[running[is_new]] = True
        changed = np.flatnonzero(changed)  # in order: all N in the usual step
        episodes.reconstruct(changed, added_columns[changed])
        rewards = episodes.step_rewards(before)
        rewards[restarting] = 0.0
        rewards[running[~is_new]] = 0.0
        terminations = np.zeros(self.num_envs, dtype=bool)
        terminations[running] = episodes.done(running)
        self._needs_reset = terminations.copy()
        truncations = np.zeros(self.num_envs, dtype=bool)
        return episodes.observation(self.tensor_observations), rewards, terminations, truncations, self._info()

    def action_masks(self) -> np.ndarray:
        """bool (N, W): the legal actions, True where a column may still be acquired (sb3-contrib's name)."""
        return self.episodes.legal_actions()

    def look_ahead(self, candidates: np.ndarray) -> np.ndarray:
        """Rewards each candidate column would give now, per episode, without changing state.

        Args:
            candidates: int (N, K).

        Returns:
            float64 (N, K).
        """
        return self.episodes.look_ahead(self._all_rows, candidates)

    def look_ahead_gains(self, candidates: np.ndarray, metrics: Sequence[str]) -> np.ndarray:
        """How much each candidate column would improve each metric now, per episode, without
        changing state (one reconstruction per candidate; see ``AcquisitionEpisodes.look_ahead_gains``).

        Args:
            candidates: int (N, K).
            metrics: M metric names (``mse``, ``nmse``, ``psnr``, ``ssim``).

        Returns:
            float64 (N, M, K).
        """
        return self.episodes.look_ahead_gains(self._all_rows, candidates, metrics)

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One uint8 (H, W', 3) picture per episode (see :meth:`ActiveAcquisitionEnv.render`); None
        without ``render_mode="rgb_array"``."""
        if self.render_mode is None:
            return None
        return tuple(episode_picture(self.episodes, row) for row in range(self.num_envs))

    def slice_name(self, index: int) -> tuple[str, int]:
        """(file name, slice within the file) of slice ``index`` of the data, without reading it."""
        return self.episodes.source.describe(index)

    def _info(self) -> dict[str, Any]:
        info = self.episodes.info()
        info.update({f"_{key}": np.ones(self.num_envs, dtype=bool) for key in list(info)})
        return info
