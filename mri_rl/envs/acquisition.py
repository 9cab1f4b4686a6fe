"""``mri_rl/ActiveAcquisition-v0``: one episode of active k-space acquisition."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from mri_rl.checks import check_int, check_number, resolve_device
from mri_rl.envs.episodes import NEW_EPISODE, AcquisitionEpisodes, column_indices
from mri_rl.envs.slice_source import SliceSource
from mri_rl.envs.spaces import OPTIONAL_OBSERVATIONS
from mri_rl.provenance import checkpoint_fingerprint, data_fingerprint, make_record
from mri_rl.reconstruct.base import Reconstructor, check_precision
from mri_rl.reconstruct.checkpoint import build_reconstructor
from mri_rl.task import DEFAULT_TASK, ZERO_FILLED, AcquisitionTask


def make_episodes(
    num_episodes: int,
    data_path: str | Path,
    task: AcquisitionTask | Mapping[str, Any] | None = None,
    *,
    reconstructor: str | Path | Reconstructor | None = None,
    on_bad_file: str = "raise",
    device: str | torch.device = "cpu",
    look_ahead_batch_size: int | None = None,
    slice_cache_mb: float = 1024,
    column_spectrum: bool = False,
    column_energy: bool = False,
    reconstructor_features: bool = False,
    measured_energy: bool = False,
    auc_weighted_rewards: bool = False,
    **task_fields: Any,
) -> AcquisitionEpisodes:
    """The episode batch behind both environments, from their keyword arguments.

    The task is ``task`` (default: :data:`~mri_rl.task.DEFAULT_TASK`) with ``task_fields`` and a path
    ``reconstructor`` applied, bound to the data and reconstructor (kspace_shape, fingerprint set).

    Args:
        num_episodes: N, episodes stepped together.
        data_path: folder of fastMRI ``.h5`` files (one split); slices need targets.
        task: the :class:`~mri_rl.task.AcquisitionTask` (or a mapping of its fields).
        reconstructor: "zero_filled", the path of an exported reconstructor checkpoint,
            or a :class:`~mri_rl.reconstruct.Reconstructor` (default: the task's).
        on_bad_file: "raise" or "skip" bad files in ``data_path``.
        device: where tensors live and reconstructions run (not part of the task or of any record).
        look_ahead_batch_size: reconstructions per look-ahead call (None: by device and image size).
        slice_cache_mb: slices kept in memory after their first read (0: always read).
        column_spectrum, column_energy, reconstructor_features, measured_energy: observe too the
            reconstruction's column power spectrum, its energy per k-space column, the reconstructor's
            feature maps, the acquired data's energy per column (:mod:`mri_rl.envs.spaces`).
        auc_weighted_rewards: weigh each step's reward by its weight in the AUC (``step_rewards`` of the episodes).
        **task_fields: task fields to change: ``challenge``, ``budget`` (None: until every
            column is acquired), ``initial_lines``, ``reward_metric`` ("mse" or "nmse":
            reward = decrease; "ssim" or "psnr": increase), ``kspace_shape`` (which shape
            to use when the folder mixes several), ``precision`` ("32", "bf16", "16": the
            autocast of the reconstructor's forward; "16" needs a CUDA or MPS device).

    Raises:
        TaskError: an unknown task field or a bad value.
        ValueError: a count that is not a positive integer, a ``slice_cache_mb`` that is not a finite number
            >= 0, a device this machine does not have (checked before any data is read), precision "16" on
            the CPU, or a task whose recorded reconstructor fingerprint is not the file's now.
    """
    num_episodes = check_int("num_episodes", num_episodes)
    if look_ahead_batch_size is not None:
        look_ahead_batch_size = check_int("look_ahead_batch_size", look_ahead_batch_size)
    slice_cache_mb = check_number("slice_cache_mb", slice_cache_mb, 0)
    flags = (column_spectrum, column_energy, reconstructor_features, measured_energy, auc_weighted_rewards)
    check_flags(zip((*OPTIONAL_OBSERVATIONS, "auc_weighted_rewards"), flags, strict=True))
    device = resolve_device(device)
    resolved, model, fingerprint = resolve_task(task, reconstructor, task_fields)
    check_precision(device, resolved.precision)
    source = SliceSource(data_path, resolved.challenge, on_bad_file, resolved.kspace_shape, slice_cache_mb)
    resolved = resolved.with_changes(kspace_shape=source.kspace_shape, reconstructor_fingerprint=fingerprint)
    return AcquisitionEpisodes(source, model, num_episodes, resolved, device, look_ahead_batch_size, *flags)


def check_flags(flags: Iterable[tuple[str, Any]]) -> None:
    """ValueError naming the first of ``flags`` (name, value) whose value is not True or False."""
    for name, flag in flags:
        if not isinstance(flag, (bool, np.bool_)):
            raise ValueError(f"{name}: expected True or False, got {flag!r}")


def resolve_task(
    task: AcquisitionTask | Mapping[str, Any] | None,
    reconstructor: str | Path | Reconstructor | None,
    task_fields: dict[str, Any],
) -> tuple[AcquisitionTask, Reconstructor, str]:
    """The task with its field changes, the reconstructor it names (or was given) and its fingerprint.

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
        resolved = resolved.with_changes(reconstructor=f"in-memory {type(reconstructor).__name__}")
        return resolved, reconstructor, reconstructor.fingerprint()
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
    return resolved, model, fingerprint


def episodes_record(episodes: AcquisitionEpisodes) -> dict[str, Any]:
    """The record of an env (:mod:`mri_rl.provenance`): its bound task and the fingerprint
    of its data folder, under "train" since whatever learns on an env trains on its data."""
    return make_record(episodes.task, {"train": data_fingerprint(episodes.source.folder)})


#: Rendered pictures are enlarged by a whole factor to at least this height (tiny test images).
PICTURE_MIN_HEIGHT = 128
PICTURE_GAP = 2  # grey pixels between the panels
_ACQUIRED_RGB, _FREE_RGB, _GAP_GREY = (255, 200, 0), (40, 40, 40), 128


def check_render_mode(render_mode: str | None, metadata: Mapping[str, Any]) -> str | None:
    """``render_mode`` if it is None or one of ``metadata["render_modes"]``.

    Raises:
        ValueError: another render mode, naming those the env has.
    """
    if render_mode is not None and render_mode not in metadata["render_modes"]:
        raise ValueError(f"render_mode: expected None or one of {metadata['render_modes']}, got {render_mode!r}")
    return render_mode


def episode_picture(episodes: AcquisitionEpisodes, row: int) -> np.ndarray:
    """What ``render()`` shows of episode ``row``: uint8 (H, W', 3) RGB.

    Side by side, separated by :data:`PICTURE_GAP` grey columns: the reconstruction
    (h, w), the acquired mask as an image of the k-space width (h, W: amber columns
    acquired, the zero-filled edges included, dark ones free) and the target (h, w). The
    images are grey, 0 to the data range (the volume's maximum), clipped. Everything is
    enlarged by the smallest whole factor f that makes H = f h at least
    :data:`PICTURE_MIN_HEIGHT`, so W' = f (2 w + W) + 2 :data:`PICTURE_GAP`.
    """
    h, _ = episodes.recon_size
    zoom = max(1, -(-PICTURE_MIN_HEIGHT // h))
    scale = float(episodes.data_range[row])

    def grey(image: torch.Tensor) -> np.ndarray:
        values = (image.float() / scale).clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
        return np.repeat(values[:, :, None], 3, axis=2)

    acquired = episodes.acquired[row].cpu().numpy()
    strip = np.where(acquired[:, None], _ACQUIRED_RGB, _FREE_RGB).astype(np.uint8)  # (W, 3)
    mask = np.broadcast_to(strip[None], (h, episodes.width, 3))
    panels = [grey(episodes.reconstruction[row]), mask, grey(episodes.target[row])]
    panels = [panel.repeat(zoom, axis=0).repeat(zoom, axis=1) for panel in panels]
    gap = np.full((h * zoom, PICTURE_GAP, 3), _GAP_GREY, dtype=np.uint8)
    return np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)


def pick_slice(rng: np.random.Generator, num_slices: int, index: Any | None) -> int:
    """A slice index: ``index`` if given (checked), else uniform from ``rng``."""
    if index is None:
        return int(rng.integers(num_slices))
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < num_slices:
        raise ValueError(f"options['index'] must be an integer slice index in [0, {num_slices}), got {index!r}")
    return int(index)


class ActiveAcquisitionEnv(gym.Env):
    """Acquire k-space columns of one slice, one per step (see DESIGN.md's POMDP table).

    Args:
        data_path: folder of fastMRI ``.h5`` files (one split); slices need targets.
        task: the :class:`~mri_rl.task.AcquisitionTask` (or a mapping of its fields);
            default :data:`~mri_rl.task.DEFAULT_TASK`.
        render_mode: None, or "rgb_array": ``render()`` returns the picture of
            :func:`episode_picture` (reconstruction, mask, target).
        **options: ``reconstructor``, ``on_bad_file``, ``device``, ``look_ahead_batch_size``,
            ``slice_cache_mb``, ``column_spectrum``, ``column_energy``, ``reconstructor_features``,
            ``measured_energy``, ``auc_weighted_rewards`` and single task fields (``budget=8``),
            as documented in :func:`make_episodes`.

    Attributes:
        task: the task bound to the data and reconstructor (geometry and fingerprint set).

    Observation: ``reconstruction`` float32 (1, h, w), scaled by the maximum of the
    initial zero-filled image, ``acquired`` int8 (W,) (1 = acquired) and, with
    ``column_spectrum=True``, ``column_spectrum`` float32 (w // 2 + 1,), with ``column_energy=True``,
    ``column_energy`` float32 (W,), with ``reconstructor_features=True``, ``reconstructor_features``
    float32 (C, rows, columns) (:func:`~mri_rl.envs.spaces.feature_grid`), with ``measured_energy=True``,
    ``measured_energy`` float32 (W,) (:func:`~mri_rl.envs.spaces.measured_column_energy`). ``info`` holds
    ``action_mask`` (1 = legal: not yet acquired) and the metrics ``mse`` (in units of the
    data range squared), ``nmse``, ``psnr``, ``ssim`` for evaluation only.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        data_path: str | Path,
        task: AcquisitionTask | Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        **options: Any,
    ) -> None:
        self.render_mode = check_render_mode(render_mode, self.metadata)
        self.episodes = make_episodes(1, data_path, task, **options)
        self.task = self.episodes.task
        self.observation_space = self.episodes.observation_space()
        self.action_space = spaces.Discrete(self.episodes.width)
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
        self.episodes.start_slices(self._rows, [index])
        self.episodes.reconstruct(self._rows, np.array([NEW_EPISODE]))
        self._episode_over = False
        return self._observation(), self._info()

    def step(self, action: int) -> tuple[dict, float, bool, bool, dict]:
        """Acquire column ``action``; an already acquired column leaves the mask and the
        reconstruction as they are and gives 0, but spends one step of the budget.

        ``action`` is one integer: a Python int or a numpy integer of any dtype (or a 0-d
        array of one), as ``Discrete.contains`` accepts; bools, floats and arrays of
        another shape are refused (ValueError) and spend nothing.
        """
        if self._episode_over:
            raise RuntimeError("the episode is over (or never started): call reset() before step()")
        actions = column_indices(action, (), self.episodes.width).reshape(1)
        before = self.episodes.metrics[self.task.reward_metric].clone()
        if self.episodes.acquire(self._rows, actions)[0]:
            self.episodes.reconstruct(self._rows, actions)
        reward = float(self.episodes.step_rewards(before)[0])
        terminated = bool(self.episodes.done(self._rows)[0])
        self._episode_over = terminated
        return self._observation(), reward, terminated, False, self._info()

    def action_masks(self) -> np.ndarray:
        """bool (W,): the legal actions, True where a column may still be acquired (sb3-contrib's name)."""
        return self.episodes.legal_actions()[0]

    def look_ahead(self, candidates: Any) -> np.ndarray:
        """Rewards that each candidate column would give now, without changing the state.

        Args:
            candidates: K candidate columns, integers of shape (K,).

        Returns:
            float64 (K,).
        """
        columns = column_indices(candidates, (None,), self.episodes.width, "candidates")
        return self.episodes.look_ahead(self._rows, columns.reshape(1, -1))[0]

    def look_ahead_gains(self, candidates: Any, metrics: Sequence[str]) -> np.ndarray:
        """How much each candidate column would improve each metric now, without changing the
        state (one reconstruction per candidate).

        Args:
            candidates: K candidate columns, integers of shape (K,).
            metrics: M metric names (``mse``, ``nmse``, ``psnr``, ``ssim``).

        Returns:
            float64 (M, K).
        """
        columns = column_indices(candidates, (None,), self.episodes.width, "candidates")
        return self.episodes.look_ahead_gains(self._rows, columns.reshape(1, -1), metrics)[0]

    def render(self) -> np.ndarray | None:
        """uint8 (H, W', 3): the episode's reconstruction, mask and target (:func:`episode_picture`);
        None (with a warning) without ``render_mode="rgb_array"``."""
        if self.render_mode is None:
            gym.logger.warn("render() without a render_mode: make the env with render_mode='rgb_array'")
            return None
        return episode_picture(self.episodes, 0)

    def _observation(self) -> dict[str, np.ndarray]:
        return {key: value[0] for key, value in self.episodes.observation().items()}

    def _info(self) -> dict[str, Any]:
        info = self.episodes.info()
        return {key: value[0] if value.ndim > 1 else value[0].item() for key, value in info.items()}
