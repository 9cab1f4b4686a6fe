"""N acquisition episodes advanced together: the POMDP of active MRI acquisition.

State of episode n: the hidden target image x_n and the acquired-column mask M_n.
Acquiring column a sets M_n[a]; the emission is the reconstruction x̂ = f(k ⊙ M, M); the
reward is the improvement of a metric of x̂ against x (Pineda et al., "Active MR k-space
sampling with reinforcement learning", MICCAI 2020). Every update of several episodes is
one batched call of the reconstructor's :class:`~mri_rl.reconstruct.base.EpisodeReconstructions`.

Vocabulary: *acquired* columns are those in M (the mask); *legal* actions are the columns
not yet acquired (``info["action_mask"]`` and ``action_masks()``, Gymnasium's names).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from mri_rl.checks import check_int, resolve_device, show
from mri_rl.envs.slice_source import SliceSource
from mri_rl.envs.spaces import (
    column_data_energy,
    column_energy,
    column_power_spectrum,
    feature_grid,
    measured_column_energy,
    observation_space,
    pooled_features,
)
from mri_rl.kspace import check_initial_lines, data_range, initial_mask, measured_width
from mri_rl.metrics import HIGHER_IS_BETTER, image_metric, image_metrics, target_statistics
from mri_rl.reconstruct.base import FeatureLayer, Reconstructor, check_precision
from mri_rl.task import METRIC_NAMES, AcquisitionTask

METRICS_CHUNK = 8  # episodes whose metrics are computed together
NEW_EPISODE = -1  # in place of an added column: the episode (re)starts
#: Image pixels per look-ahead reconstructor call on a CPU. Larger calls leave the caches: on a
#: 2-core CPU a 64 x 64 U-Net look-ahead took 0.64x the time at 16 per call as at 256, and
#: a 128 x 128 U-Net 1.5x as long per image at 16 per call as at 2 to 4 (README, Benchmarks).
CPU_LOOK_AHEAD_PIXELS = 64 * 64 * 16
#: Look-ahead reconstructions per call on an accelerator (CUDA, MPS).
ACCELERATOR_LOOK_AHEAD_BATCH = 256


def default_look_ahead_batch_size(device: torch.device, recon_size: tuple[int, int]) -> int:
    """Candidates per look-ahead call: :data:`CPU_LOOK_AHEAD_PIXELS` worth of (h, w) images on
    a CPU (at least one: one 320 x 320 knee image), :data:`ACCELERATOR_LOOK_AHEAD_BATCH` elsewhere.
    The chunking changes the speed only: each candidate is reconstructed and scored on its own."""
    if device.type != "cpu":
        return ACCELERATOR_LOOK_AHEAD_BATCH
    return max(1, CPU_LOOK_AHEAD_PIXELS // (recon_size[0] * recon_size[1]))


def column_indices(actions: Any, shape: tuple[int | None, ...], width: int, what: str = "actions") -> np.ndarray:
    """``actions`` as int64 column indices of ``shape`` (None: any length), each in [0, width).

    Integers of any numpy dtype are accepted alike; another shape (nothing is flattened or
    squeezed), floats (2.5, nan, also 2.0), bools and columns outside [0, width) are refused,
    naming the value. An empty array may be of any dtype.

    Raises:
        ValueError: naming ``what`` and the shape, or the first bad value, and what was expected.
    """
    wanted = str(tuple("K" if n is None else n for n in shape)).replace("'", "") if shape else "() (one integer)"
    try:
        array = np.asarray(actions)
    except (ValueError, TypeError):  # e.g. ragged lists
        raise ValueError(f"expected {what} of shape {wanted}, got {actions!r}") from None
    if array.ndim != len(shape) or any(n is not None and n != m for n, m in zip(shape, array.shape)):
        raise ValueError(f"expected {what} of shape {wanted}, got shape {array.shape}")
    if array.size == 0:
        return array.astype(np.int64)
    if isinstance(actions, (list, tuple)) and any(_is_bool(a) for a in np.ravel(np.asarray(actions, dtype=object))):
        array = np.asarray(actions, dtype=object)  # np.asarray([True, 1]) is int64: the bool would pass unseen
    if not np.issubdtype(array.dtype, np.integer):
        flat = array.reshape(-1)
        first = next((v for v in flat if _is_bool(v) or not _is_whole(v)), flat[0])
        raise ValueError(
            f"{what} must be integer column indices in [0, {width}), got {show(first)} (dtype {array.dtype})"
        )
    bad = (array < 0) | (array >= width)
    if bad.any():
        raise ValueError(f"{what.removesuffix('s')} {show(array[bad][0])} is outside the k-space columns [0, {width})")
    return array.astype(np.int64)


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _is_whole(value: Any) -> bool:
    """Whether ``value`` is a real number with an integer value (2.0 yes; 2.5, nan, 3+0j, 'a' no)."""
    if np.iscomplexobj(value):  # float() of a numpy complex drops the imaginary part with a warning
        return False
    try:
        return float(value).is_integer()
    except (TypeError, ValueError, OverflowError):
        return False


def checked_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    """``metrics`` as a tuple; ValueError unless they are one or more of :data:`~mri_rl.task.METRIC_NAMES`."""
    metrics = tuple(metrics)
    if not metrics or not set(metrics) <= set(METRIC_NAMES):
        raise ValueError(f"metrics: expected one or more of {METRIC_NAMES}, got {list(metrics)}")
    return metrics


def observed_feature_layer(reconstructor: Reconstructor) -> FeatureLayer:
    """The reconstructor's feature layer, for ``reconstructor_features``; ValueError if it has none."""
    layer = reconstructor.feature_layer()
    if layer is None:
        raise ValueError(
            f"reconstructor_features: the {type(reconstructor).__name__} reconstructor has no feature "
            "maps to observe (a U-Net reconstructor has); leave it False"
        )
    return layer


class AcquisitionEpisodes:
    """The state of ``num_episodes`` episodes as batched tensors.

    Args:
        source: the slices to draw from (one k-space geometry).
        reconstructor: the emission function.
        num_episodes: N, the batch size.
        task: the acquisition task: budget (None: until every column is acquired),
            initial lines, reward metric ("mse", "nmse": reward = decrease; "ssim",
            "psnr": increase) and the precision of the reconstructor's forward are read from it.
        device: where k-space and reconstructions live.
        look_ahead_batch_size: reconstructions per call when scoring candidate columns (None:
            :func:`default_look_ahead_batch_size` of the device and the image size).
        column_spectrum: observe the reconstruction's column power spectrum too.
        column_energy: observe the reconstruction's energy in each k-space column too.
        reconstructor_features: observe the feature maps of the reconstructor's
            :meth:`~mri_rl.reconstruct.base.Reconstructor.feature_layer` too, averaged down to
            :func:`~mri_rl.envs.spaces.feature_grid` (the U-Net's last decoder block: what it
            inferred of the image, of which the reconstruction is one channel).
        measured_energy: observe the acquired data's energy per k-space column too
            (:func:`~mri_rl.envs.spaces.measured_column_energy`).
        auc_weighted_rewards: weigh each step's reward by its weight in the metric's AUC (:meth:`step_rewards`).

    Raises:
        ValueError: ``reconstructor_features`` for a reconstructor without a feature layer.
    """

    def __init__(
        self,
        source: SliceSource,
        reconstructor: Reconstructor,
        num_episodes: int,
        task: AcquisitionTask,
        device: str | torch.device = "cpu",
        look_ahead_batch_size: int | None = None,
        column_spectrum: bool = False,
        column_energy: bool = False,
        reconstructor_features: bool = False,
        measured_energy: bool = False,
        auc_weighted_rewards: bool = False,
    ) -> None:
        check_initial_lines(task.initial_lines, source.measurable_columns, source.width)
        num_episodes = check_int("num_episodes", num_episodes)
        self.device = resolve_device(device)
        if look_ahead_batch_size is None:
            look_ahead_batch_size = default_look_ahead_batch_size(self.device, source.recon_size)
        look_ahead_batch_size = check_int("look_ahead_batch_size", look_ahead_batch_size)
        check_precision(self.device, task.precision)
        reconstructor.check_compatible(source.challenge, source.kspace_shape, source.recon_size)
        self.source = source
        self.task = task
        self.look_ahead_batch_size = look_ahead_batch_size
        self.column_spectrum = column_spectrum
        self.column_energy = column_energy
        self.auc_weighted_rewards = auc_weighted_rewards
        self.feature_layer = observed_feature_layer(reconstructor) if reconstructor_features else None
        n, width, (h, w) = num_episodes, source.width, source.recon_size
        coils, rows = source.num_coils, source.kspace_shape[-2]
        self.num_episodes, self.width, self.recon_size = n, width, (h, w)
        self.reconstructions = (
            reconstructor.to(self.device)
            .eval()
            .episode_reconstructions(n, (coils, rows, width), (h, w), self.device, task.precision)
        )
        # Tensors of the batch (N = num_episodes, C coils, H rows, W columns, h x w target).
        self.kspace = torch.zeros((n, coils, rows, width), dtype=torch.complex64, device=self.device)
        self.target = torch.zeros((n, h, w), device=self.device)
        self.data_range = torch.ones(n, dtype=torch.float64, device=self.device)
        self.target_statistics = target_statistics(self.target, self.data_range)  # kept for SSIM
        self.acquired = torch.zeros((n, width), dtype=torch.bool, device=self.device)
        self.reconstruction = torch.zeros((n, h, w), device=self.device)
        self.observation_scale = torch.ones((n, 1, 1), device=self.device)
        # With measured_energy: each slice's k-space energy per column, (N, W), kept from its start.
        self.data_energy = torch.zeros((n, width), device=self.device) if measured_energy else None
        self.features = (
            None
            if self.feature_layer is None
            else torch.zeros((n, self.feature_layer.channels, *feature_grid((h, w))), device=self.device)
        )
        self.metrics = {name: torch.zeros(n, dtype=torch.float64, device=self.device) for name in METRIC_NAMES}
        self.steps = np.zeros(n, dtype=np.int64)
        self.measurable = np.zeros(n, dtype=np.int64)  # measured (non-padded) columns per episode
        self.slice_ids = np.zeros(n, dtype=np.int64)

    # ----------------------------------------------------------------- transitions
    def start_slices(self, rows: Sequence[int] | np.ndarray, slice_ids: Sequence[int] | np.ndarray) -> None:
        """Put new slices into ``rows`` with their initial masks (no reconstruction yet)."""
        for row, slice_id in zip(rows, slice_ids):
            item = self.source[int(slice_id)]
            assert item.target is not None  # the source's dataset requires targets
            meta = item.metadata
            self.kspace[row] = item.kspace.reshape(self.kspace.shape[1:]).to(self.device)
            self.target[row] = item.target.to(self.device)
            self.data_range[row] = data_range(meta.max_value, item.target)
            self.acquired[row] = torch.from_numpy(
                initial_mask(self.width, meta.padding_left, meta.padding_right, self.task.initial_lines)
            )
            self.steps[row] = 0
            self.measurable[row] = measured_width(meta.padding_left, meta.padding_right)
            self.slice_ids[row] = slice_id
        rows_t = torch.as_tensor(np.asarray(rows), device=self.device)
        if self.data_energy is not None:
            self.data_energy[rows_t] = column_data_energy(self.kspace[rows_t])
        fresh_statistics = target_statistics(self.target[rows_t], self.data_range[rows_t])
        for kept, fresh in zip(self.target_statistics, fresh_statistics):
            kept[rows_t] = fresh

    def acquire(self, rows: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Acquire column ``actions[i]`` in episode ``rows[i]``; count one step each.

        Returns:
            bool array (len(rows),): True where the column was new.

        Raises:
            ValueError: not one integer column in [0, W) per row (see :func:`column_indices`).
        """
        actions = column_indices(actions, (len(rows),), self.width)
        rows_t = torch.as_tensor(rows, device=self.device)
        actions_t = torch.as_tensor(actions, device=self.device)
        is_new = ~self.acquired[rows_t, actions_t]
        self.acquired[rows_t, actions_t] = True
        self.steps[rows] += 1
        return is_new.cpu().numpy()

    @torch.inference_mode()
    def reconstruct(self, rows: np.ndarray, added_columns: np.ndarray) -> None:
        """Reconstruct ``rows`` in one call and update their metrics.

        Runs in inference mode: no autograd, and what it writes goes into the episode
        tensors in place (made outside, so they stay normal tensors). The reconstruction is
        float32 whatever the task's precision, and the metrics are computed from it.

        Args:
            rows: the episodes whose mask changed (R,).
            added_columns: int (R,), the one column each episode acquired since its last
                reconstruction, or :data:`NEW_EPISODE` for episodes just started; those also
                get their observation scale: the maximum of the zero-filled image of the
                initially acquired data (observed data only).
        """
        if len(rows) == 0:
            return
        rows_t = torch.as_tensor(rows, device=self.device)
        added = torch.as_tensor(np.asarray(added_columns, dtype=np.int64), device=self.device)
        with self.captured_features() as features:
            reconstruction = self.reconstructions.update(self.kspace, self.acquired, rows_t, added).float()  # (R, h, w)
        # All episodes in order (the usual batched step): views instead of gathered copies.
        index = slice(None) if np.array_equal(rows, np.arange(self.num_episodes)) else rows_t
        self.reconstruction[index] = reconstruction
        if self.features is not None:
            self.features[index] = pooled_features(torch.cat(features), self.recon_size)
        for start in range(0, len(rows), METRICS_CHUNK):
            # A few episodes at a time: the dozen passes of SSIM then stay in the CPU cache.
            part = slice(start, start + METRICS_CHUNK)
            chunk = part if isinstance(index, slice) else index[part]  # rows of the episode tensors
            statistics = self.target_statistics.select(chunk)
            values = image_metrics(reconstruction[part], self.target[chunk], self.data_range[chunk], statistics)
            for name, value in values.items():
                self.metrics[name][chunk] = value
        new = added == NEW_EPISODE
        if new.any():
            fresh = rows_t[new]
            scale = self.reconstructions.zero_filled(self.kspace, self.acquired, fresh).flatten(1).amax(dim=1)
            self.observation_scale[fresh] = torch.where(scale > 0, scale, torch.ones_like(scale))[:, None, None]

    @contextlib.contextmanager
    def captured_features(self) -> Iterator[list[torch.Tensor]]:
        """A list that collects the outputs of the feature layer (in call order) while the context
        is open; stays empty without ``reconstructor_features`` (the look-ahead never opens it)."""
        outputs: list[torch.Tensor] = []
        if self.feature_layer is None:
            yield outputs
            return
        hook = self.feature_layer.module.register_forward_hook(lambda _module, _inputs, out: outputs.append(out))
        try:
            yield outputs
        finally:
            hook.remove()

    def improvement(self, before: torch.Tensor, after: torch.Tensor, metric: str | None = None) -> torch.Tensor:
        """Reward: decrease of mse/nmse, increase of ssim/psnr (of ``metric``; default the reward metric)."""
        return after - before if HIGHER_IS_BETTER[metric or self.task.reward_metric] else before - after

    def step_rewards(self, before: torch.Tensor) -> np.ndarray:
        """float64 (N,): each episode's reward for its last step, the reward metric's :meth:`improvement`
        since ``before`` (N,).

        With ``auc_weighted_rewards`` the improvement from the episode's j-th new column of T is weighted by
        (T − j + ½) / T, its weight in the trapezoid AUC of the metric over the sampling rate (one
        column per step), up to a constant. With γ = 1 the return from step t is then M / T times the
        part of the AUC that the actions from t on decide (M measurable columns): the metric policies
        are compared on, for which one-step rewards with γ < 1 only stand in (cf. the non-greedy
        policy gradient of Bakker et al., "Experimental design for MRI by greedy policy search",
        NeurIPS 2020).
        """
        gains = self.improvement(before, self.metrics[self.task.reward_metric])
        if not self.auc_weighted_rewards:
            return gains.cpu().numpy()
        # j counts new columns, not steps: a repeated column spends a step but does not move the sampling rate;
        # the counts travel to the host with the gains, in one transfer (exact as floats: at most W)
        gains_host, acquired = torch.stack((gains, self.acquired.sum(dim=1).to(gains.dtype))).cpu().numpy()
        return gains_host * self.auc_weights(np.arange(self.num_episodes), acquired)

    def auc_weights(self, rows: np.ndarray, acquired: np.ndarray) -> np.ndarray:
        """float64 (R,): the weight (T − j + ½) / T of :meth:`step_rewards` for the gain of a column that
        leaves episodes ``rows`` (R,) with ``acquired`` (R,) acquired columns, padding included (the j-th
        new column of T)."""
        horizon = self.measurable[rows] - self.task.initial_lines  # the free columns at the start
        if self.task.budget is not None:
            horizon = np.minimum(horizon, self.task.budget)
        columns = acquired - (self.width - self.measurable[rows]) - self.task.initial_lines
        return (horizon - columns + 0.5) / np.maximum(horizon, 1)

    def done(self, rows: np.ndarray) -> np.ndarray:
        """True where the budget is spent or no column is left."""
        full = self.acquired[torch.as_tensor(rows, device=self.device)].all(dim=1).cpu().numpy()
        if self.task.budget is None:
            return full
        return full | (self.steps[rows] >= self.task.budget)

    # ------------------------------------------------------------------ look-ahead
    def look_ahead(self, rows: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Rewards that acquiring each candidate column would give, without changing state:
        :meth:`look_ahead_gains` of the task's reward metric, float64 (R, K), weighted as
        :meth:`step_rewards` with ``auc_weighted_rewards``."""
        gains = self.look_ahead_gains(rows, candidates, (self.task.reward_metric,))[:, 0]
        if not self.auc_weighted_rewards:
            return gains
        acquired = self.acquired[torch.as_tensor(rows, device=self.device)].sum(dim=1).cpu().numpy()
        return gains * self.auc_weights(rows, acquired + 1)[:, None]  # a new column (acquired ones score 0)

    @torch.inference_mode()
    def look_ahead_gains(self, rows: np.ndarray, candidates: np.ndarray, metrics: Sequence[str]) -> np.ndarray:
        """How much acquiring each candidate column would improve each metric, without changing
        state (in inference mode; reconstructions in the task's precision, metrics in float32/64).

        One reconstruction per candidate serves every metric. An improvement is a decrease of
        mse/nmse and an increase of psnr/ssim, as the rewards.

        Args:
            rows: episodes (R,).
            candidates: int (R, K) columns to score for each episode.
            metrics: M metric names (of ``mse``, ``nmse``, ``psnr``, ``ssim``).

        Returns:
            float64 (R, M, K); already acquired candidates score 0.

        Raises:
            ValueError: not integer columns in [0, W) of shape (R, K) (see :func:`column_indices`),
                or an unknown metric.
        """
        metrics = checked_metrics(metrics)
        candidates = column_indices(candidates, (len(rows), None), self.width, "candidates")
        rows_t = torch.as_tensor(rows, device=self.device)
        pair_rows = rows_t.repeat_interleave(candidates.shape[1])
        pair_columns = torch.as_tensor(candidates.reshape(-1), device=self.device)
        gains = torch.zeros((len(metrics), len(pair_rows)), dtype=torch.float64, device=self.device)
        todo = torch.nonzero(~self.acquired[pair_rows, pair_columns]).squeeze(1)
        if len(todo):
            todo_rows = pair_rows[todo]
            for chunk, reconstruction in self.reconstructions.with_one_more_column(
                self.kspace, self.acquired, todo_rows, pair_columns[todo], self.look_ahead_batch_size
            ):
                chunk_rows = todo_rows[chunk]
                after = self._scored(reconstruction, chunk_rows, metrics)
                for m, name in enumerate(metrics):
                    gains[m, todo[chunk]] = self.improvement(self.metrics[name][chunk_rows], after[name], name)
        return gains.reshape(len(metrics), *candidates.shape).permute(1, 0, 2).cpu().numpy()

    @torch.inference_mode()
    def mask_metrics(self, rows: np.ndarray, masks: np.ndarray, metrics: Sequence[str]) -> np.ndarray:
        """The metrics of episodes' reconstructions under masks of the caller's, without changing state
        (e.g. every mask along continuations of the episodes, for a roll-out; chunked as the look-ahead).

        Args:
            rows: int (P,) the episode of each mask (its k-space and target).
            masks: bool (P, W).
            metrics: M metric names (of ``mse``, ``nmse``, ``psnr``, ``ssim``).

        Returns:
            float64 (M, P), as :attr:`metrics` would hold them with those masks acquired.

        Raises:
            ValueError: masks not of shape (P, W), or an unknown metric.
        """
        metrics = checked_metrics(metrics)
        masks = np.asarray(masks, dtype=bool)
        if masks.shape != (len(rows), self.width):
            raise ValueError(f"masks: expected shape ({len(rows)}, {self.width}), got {masks.shape}")
        rows_t = torch.as_tensor(np.asarray(rows, dtype=np.int64), device=self.device)
        values = torch.zeros((len(metrics), len(rows_t)), dtype=torch.float64, device=self.device)
        masks_t = torch.as_tensor(masks, device=self.device)
        for chunk, reconstruction in self.reconstructions.under_masks(
            self.kspace, rows_t, masks_t, self.look_ahead_batch_size
        ):
            scored = self._scored(reconstruction, rows_t[chunk], metrics)
            for m, name in enumerate(metrics):
                values[m, chunk] = scored[name].double()
        return values.cpu().numpy()

    def _scored(
        self, reconstruction: torch.Tensor, rows: torch.Tensor, metrics: tuple[str, ...]
    ) -> dict[str, torch.Tensor]:
        """``metrics`` (each (R,)) of reconstructions (R, h, w) of episodes ``rows`` against their targets."""
        images = (reconstruction.float(), self.target[rows], self.data_range[rows])
        statistics = self.target_statistics.select(rows)
        if len(metrics) == 1:
            return {metrics[0]: image_metric(metrics[0], *images, statistics)}
        return image_metrics(*images, statistics)

    # --------------------------------------------------------------- what agents see
    def observation_space(self) -> spaces.Dict:
        """The space of one episode's observation (see :meth:`observation`)."""
        channels = 0 if self.feature_layer is None else self.feature_layer.channels
        return observation_space(
            self.recon_size,
            self.width,
            self.column_spectrum,
            self.column_energy,
            channels,
            self.data_energy is not None,
        )

    def observation(self, as_tensors: bool = False) -> dict[str, Any]:
        """Batched observation: ``reconstruction`` float32 (N, 1, h, w) scaled by observed
        data only, ``acquired`` int8 (N, W) and, when asked for, ``column_spectrum``
        float32 (N, w // 2 + 1) and ``column_energy`` float32 (N, W) of the scaled reconstruction,
        ``reconstructor_features`` float32 (N, C, rows, columns) of the last reconstruction
        (unscaled: the U-Net's input is normalised by its own mean and deviation), and
        ``measured_energy`` float32 (N, W) of the acquired data.

        Numpy arrays, or with ``as_tensors`` torch tensors on :attr:`device` (no copy to the
        host: for a policy on the same device). Either way fresh arrays, no views of the
        episodes' state, and normal tensors (made outside inference mode) that training may
        use with autograd.
        """
        with torch.inference_mode(False):
            scaled = self.reconstruction / self.observation_scale
            tensors = {"reconstruction": scaled.unsqueeze(1), "acquired": self.acquired.to(torch.int8)}
            if self.column_spectrum:
                tensors["column_spectrum"] = column_power_spectrum(scaled)
            if self.column_energy:
                tensors["column_energy"] = column_energy(scaled, self.width)
            if self.features is not None:
                tensors["reconstructor_features"] = self.features.clone()
            if self.data_energy is not None:
                tensors["measured_energy"] = measured_column_energy(
                    self.data_energy, self.acquired, self.observation_scale
                )
        if as_tensors:
            return tensors
        return {key: value.cpu().numpy() for key, value in tensors.items()}

    def legal_actions(self) -> np.ndarray:
        """bool (N, W): True where a column may still be acquired."""
        return ~self.acquired.cpu().numpy()

    def info(self) -> dict[str, np.ndarray]:
        """Batched info: ``action_mask`` int8 (N, W) of legal actions, metrics (N,), counts (N,).

        The metrics compare with the ground truth: for evaluation, never for agents.
        """
        acquired = self.acquired.cpu().numpy()
        info: dict[str, np.ndarray] = {"action_mask": (~acquired).astype(np.int8)}
        info.update({name: values.cpu().numpy().copy() for name, values in self.metrics.items()})  # no views of state
        measured = self.measurable - (~acquired).sum(axis=1)  # acquired columns that hold data
        info["acquired_columns"] = measured
        info["sampling_rate"] = measured / self.measurable
        info["slice_id"] = self.slice_ids.copy()
        info["steps"] = self.steps.copy()
        return info
