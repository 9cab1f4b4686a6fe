"""N acquisition episodes advanced together: the POMDP of active MRI acquisition.

State of episode n: the hidden target image x_n and the column mask M_n. Acquiring
column a sets M_n[a]; the emission is the reconstruction x̂ = f(k ⊙ M, M); the reward is
the improvement of a metric of x̂ against x (Pineda et al., "Active MR k-space sampling
with reinforcement learning", MICCAI 2020). Every update of several episodes is one
batched reconstructor call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mri_rl.envs.masks import initial_mask
from mri_rl.envs.slice_source import SliceSource
from mri_rl.metrics import HIGHER_IS_BETTER, image_metric, image_metrics, target_statistics
from mri_rl.reconstruct.base import Reconstructor, root_sum_of_squares, zero_filled_image
from mri_rl.reconstruct.zero_filled import ZeroFilledReconstructor
from mri_rl.task import METRIC_NAMES, AcquisitionTask

METRICS_CHUNK = 8  # episodes whose metrics are computed together


class AcquisitionEpisodes:
    """The state of ``num_episodes`` episodes as batched tensors.

    Args:
        source: the slices to draw from (one k-space geometry).
        reconstructor: the emission function.
        num_episodes: N, the batch size.
        task: the acquisition task: budget (None: until every column is acquired),
            initial lines and reward metric ("mse", "nmse": reward = decrease; "ssim",
            "psnr": increase) are read from it.
        device: where k-space and reconstructions live.
        lookahead_batch_size: reconstructions per call when scoring candidate columns.
    """

    def __init__(
        self,
        source: SliceSource,
        reconstructor: Reconstructor,
        num_episodes: int,
        task: AcquisitionTask,
        device: str | torch.device = "cpu",
        lookahead_batch_size: int = 256,
    ) -> None:
        budget, initial_lines, reward_metric = task.budget, task.initial_lines, task.reward_metric
        if initial_lines >= source.measurable_columns:
            raise ValueError(
                f"initial_lines ({initial_lines}) leaves no column to acquire: the slices have "
                f"{source.measurable_columns} measurable columns of {source.width}"
            )
        if num_episodes < 1:
            raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
        if lookahead_batch_size < 1:
            raise ValueError(f"lookahead_batch_size must be >= 1, got {lookahead_batch_size}")
        self.device = torch.device(device)
        reconstructor.check_compatible(source.challenge, source.kspace_shape, source.recon_size)
        self.source = source
        self.task = task
        self.reconstructor = reconstructor.to(self.device).eval()
        self.budget = budget
        self.initial_lines = initial_lines
        self.reward_metric = reward_metric
        self.lookahead_batch_size = lookahead_batch_size
        n, width, (h, w) = num_episodes, source.width, source.recon_size
        coils, rows = source.num_coils, source.kspace_shape[-2]
        self.num_episodes = n
        self.width = width
        self.recon_size = (h, w)
        # Tensors of the batch (N = num_episodes, C coils, H rows, W columns, h x w target).
        self.kspace = torch.zeros((n, coils, rows, width), dtype=torch.complex64, device=self.device)
        self.target = torch.zeros((n, h, w), device=self.device)
        self.data_range = torch.ones(n, dtype=torch.float64, device=self.device)
        self.target_statistics = target_statistics(self.target, self.data_range)  # kept for SSIM
        self.mask = torch.zeros((n, width), dtype=torch.bool, device=self.device)
        self.reconstruction = torch.zeros((n, h, w), device=self.device)
        # Zero-filled episodes keep their complex coil images and add one column per step
        # (ZeroFilledReconstructor.column_images) instead of transforming again.
        self.coil_images = (
            torch.zeros((n, coils, h, w), dtype=torch.complex64, device=self.device)
            if isinstance(self.reconstructor, ZeroFilledReconstructor)
            else None
        )
        self.observation_scale = torch.ones((n, 1, 1), device=self.device)
        self.metrics = {name: torch.zeros(n, dtype=torch.float64, device=self.device) for name in METRIC_NAMES}
        self.steps = np.zeros(n, dtype=np.int64)
        self.acquirable = np.zeros(n, dtype=np.int64)  # measurable (non-padded) columns per episode
        self.slice_ids = np.zeros(n, dtype=np.int64)

    # ----------------------------------------------------------------- transitions
    def load(self, rows: Sequence[int], slice_ids: Sequence[int]) -> None:
        """Put new slices into ``rows`` with their initial masks (no reconstruction yet)."""
        for row, slice_id in zip(rows, slice_ids):
            item = self.source[int(slice_id)]
            meta = item.metadata
            self.kspace[row] = item.kspace.reshape(self.kspace.shape[1:]).to(self.device)
            self.target[row] = item.target.to(self.device)
            self.data_range[row] = meta.max_value if meta.max_value is not None else float(item.target.max())
            self.mask[row] = torch.from_numpy(
                initial_mask(self.width, meta.padding_left, meta.padding_right, self.initial_lines)
            )
            self.steps[row] = 0
            self.acquirable[row] = meta.padding_right - meta.padding_left
            self.slice_ids[row] = slice_id
        rows_t = torch.as_tensor(np.asarray(rows), device=self.device)
        fresh_statistics = target_statistics(self.target[rows_t], self.data_range[rows_t])
        for kept, fresh in zip(self.target_statistics, fresh_statistics):
            kept[rows_t] = fresh

    def mark(self, rows: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Set the mask bits of ``actions`` in ``rows``; count one step each.

        Returns:
            bool array (len(rows),): True where the column was new.

        Raises:
            ValueError: an action outside [0, W).
        """
        actions = np.asarray(actions).reshape(-1)
        if not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"actions must be integer column indices, got dtype {actions.dtype}")
        bad = (actions < 0) | (actions >= self.width)
        if bad.any():
            raise ValueError(f"action {int(actions[bad][0])} is outside the k-space columns [0, {self.width})")
        rows_t = torch.as_tensor(rows, device=self.device)
        actions_t = torch.as_tensor(actions, device=self.device)
        is_new = ~self.mask[rows_t, actions_t]
        self.mask[rows_t, actions_t] = True
        self.steps[rows] += 1
        return is_new.cpu().numpy()

    @torch.no_grad()
    def refresh(
        self, rows: np.ndarray, new_episode: np.ndarray | None = None, added_columns: np.ndarray | None = None
    ) -> None:
        """Reconstruct ``rows`` in one call and update their metrics.

        Args:
            rows: the episodes whose mask changed (R,).
            new_episode: bool (R,), True for episodes just loaded; they also get their
                observation scale: the maximum of the zero-filled image of the initially
                acquired data (observed data only).
            added_columns: int (R,), the one column each other episode acquired since its
                last refresh; the zero-filled reconstruction then adds that column instead
                of transforming the whole k-space again.
        """
        if len(rows) == 0:
            return
        rows_t = torch.as_tensor(rows, device=self.device)
        # All episodes in order (the usual batched step): views instead of gathered copies.
        index = slice(None) if np.array_equal(rows, np.arange(self.num_episodes)) else rows_t
        new = np.zeros(len(rows), dtype=bool) if new_episode is None else np.asarray(new_episode, dtype=bool)
        if self.coil_images is None:
            masked = self.masked_kspace(rows_t, self.mask[index])
            reconstruction = self.reconstructor(masked, self.mask[index], self.recon_size).float()
        else:
            recompute = np.ones(len(rows), dtype=bool) if added_columns is None else new
            self._update_coil_images(rows_t, recompute, added_columns)
            reconstruction = root_sum_of_squares(self.coil_images[index])
        self.reconstruction[index] = reconstruction
        for start in range(0, len(rows), METRICS_CHUNK):
            # A few episodes at a time: the dozen passes of SSIM then stay in the CPU cache.
            part = slice(start, start + METRICS_CHUNK)
            chunk = part if isinstance(index, slice) else index[part]  # rows of the episode tensors
            for name, values in image_metrics(
                reconstruction[part], self.target[chunk], self.data_range[chunk], self.target_statistics.select(chunk)
            ).items():
                self.metrics[name][chunk] = values
        if new.any():
            fresh = rows_t[torch.as_tensor(new, device=self.device)]
            if self.coil_images is not None:
                zero_filled = self.reconstruction[fresh]
            else:
                zero_filled = zero_filled_image(self.masked_kspace(fresh, self.mask[fresh]), self.recon_size)
            scale = zero_filled.flatten(1).amax(dim=1)
            self.observation_scale[fresh] = torch.where(scale > 0, scale, torch.ones_like(scale))[:, None, None]

    def _update_coil_images(self, rows: torch.Tensor, recompute: np.ndarray, added_columns: np.ndarray | None) -> None:
        """Complex zero-filled coil images of ``rows``: transformed again where
        ``recompute``, else the kept images plus the added column."""
        recompute_t = torch.as_tensor(recompute, device=self.device)
        if recompute.any():
            again = rows[recompute_t]
            self.coil_images[again] = self.reconstructor.coil_images(
                self.masked_kspace(again, self.mask[again]), self.recon_size
            )
        if not recompute.all():
            updated = rows[~recompute_t]
            columns = torch.as_tensor(np.asarray(added_columns)[~recompute], device=self.device)
            self.coil_images.index_add_(
                0,
                updated,
                self.reconstructor.column_images(
                    self.kspace[updated, :, :, columns], columns, self.width, self.recon_size
                ),
            )

    def masked_kspace(self, rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """k ⊙ M for ``rows`` under ``mask`` (len(rows), W): complex (len(rows), C, H, W)."""
        return self.kspace[rows] * mask[:, None, None, :].to(self.kspace.real.dtype)

    def improvement(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """Reward: decrease of mse/nmse, increase of ssim/psnr."""
        return after - before if HIGHER_IS_BETTER[self.reward_metric] else before - after

    def done(self, rows: np.ndarray) -> np.ndarray:
        """True where the budget is spent or no column is left."""
        full = self.mask[torch.as_tensor(rows, device=self.device)].all(dim=1).cpu().numpy()
        if self.budget is None:
            return full
        return full | (self.steps[rows] >= self.budget)

    # ------------------------------------------------------------------ look-ahead
    @torch.no_grad()
    def lookahead(self, rows: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Rewards that acquiring each candidate column would give, without changing state.

        Args:
            rows: episodes (R,).
            candidates: int (R, K) columns to score for each episode.

        Returns:
            float64 (R, K); already acquired candidates score 0.
        """
        candidates = np.asarray(candidates)
        if candidates.ndim != 2 or candidates.shape[0] != len(rows):
            raise ValueError(f"candidates must have shape ({len(rows)}, K), got {candidates.shape}")
        if candidates.size and (candidates.min() < 0 or candidates.max() >= self.width):
            raise ValueError(f"candidate columns must lie in [0, {self.width})")
        rows_t = torch.as_tensor(rows, device=self.device)
        pair_rows = rows_t.repeat_interleave(candidates.shape[1])
        pair_columns = torch.as_tensor(candidates.reshape(-1), device=self.device)
        scores = torch.zeros(len(pair_rows), dtype=torch.float64, device=self.device)
        todo = torch.nonzero(~self.mask[pair_rows, pair_columns]).squeeze(1)
        if len(todo):
            todo_rows = pair_rows[todo]
            for chunk, reconstruction in self.reconstructor.with_one_more_column(
                self.kspace, self.mask, todo_rows, pair_columns[todo], self.recon_size, self.lookahead_batch_size
            ):
                chunk_rows = todo_rows[chunk]
                after = image_metric(
                    self.reward_metric,
                    reconstruction.float(),
                    self.target[chunk_rows],
                    self.data_range[chunk_rows],
                    self.target_statistics.select(chunk_rows),
                )
                scores[todo[chunk]] = self.improvement(self.metrics[self.reward_metric][chunk_rows], after)
        return scores.reshape(candidates.shape).cpu().numpy()

    # --------------------------------------------------------------- what agents see
    def observation(self) -> dict[str, np.ndarray]:
        """Batched observation: ``reconstruction`` float32 (N, 1, h, w) scaled by observed
        data only, and ``mask`` int8 (N, W)."""
        scaled = (self.reconstruction / self.observation_scale).unsqueeze(1)
        return {"reconstruction": scaled.cpu().numpy(), "mask": self.mask.cpu().numpy().astype(np.int8)}

    def action_masks(self) -> np.ndarray:
        """bool (N, W): True where a column may still be acquired."""
        return ~self.mask.cpu().numpy()

    def info(self) -> dict[str, np.ndarray]:
        """Batched info: ``action_mask`` int8 (N, W), metrics (N,), acquisition counts (N,).

        The metrics compare with the ground truth: for evaluation, never for agents.
        """
        mask = self.mask.cpu().numpy()
        info: dict[str, np.ndarray] = {"action_mask": (~mask).astype(np.int8)}
        info.update({name: values.cpu().numpy() for name, values in self.metrics.items()})
        measured = self.acquirable - (~mask).sum(axis=1)  # acquired columns that hold data
        info["acquired_columns"] = measured
        info["sampling_rate"] = measured / self.acquirable
        info["slice_id"] = self.slice_ids.copy()
        info["steps"] = self.steps.copy()
        return info
