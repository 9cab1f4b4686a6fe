"""What an evaluation rolls its policies on: the :class:`EvaluationSetup` (data, task, seeds, LBCS's
training data) and the batched env it builds over a folder (:func:`make_batched_env`). Shared by
``mri-rl evaluate`` (:mod:`mri_rl.evaluation.evaluate`), the LBCS orders it learns
(:mod:`mri_rl.evaluation.lbcs_orders`) and ``mri-rl orders`` (:mod:`mri_rl.evaluation.policy_orders`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from mri_rl.agents.look_ahead import check_metric_weights
from mri_rl.checks import check_int, check_number, resolve_device
from mri_rl.envs import ENV_ID
from mri_rl.evaluation.policy_specs import acquisition_env
from mri_rl.policies import BalancedOraclePolicy
from mri_rl.policies.rollout_oracle import DEFAULT_CANDIDATES
from mri_rl.task import DEFAULT_TASK, SPLITS, AcquisitionTask

#: How to start fresh, in the message that refuses a stored rollout or order of other settings.
FRESH_START = "pass --overwrite (deletes this folder's rollouts and report) or choose a new --out"


@dataclass
class EvaluationSetup:
    """What every policy is evaluated on, and how.

    Attributes:
        data: a folder of ``.h5`` files or a fastMRI root with ``{challenge}_{split}``.
        task: the acquisition task (budget, initial lines, reward metric, reconstructor...).
        split: which split; a folder whose name says another split is refused.
        seeds: evaluation seeds.
        batch_size: slices stepped together.
        lbcs_train_data: where LBCS learns its order (default: the root's train split).
        lbcs_slices: training slices LBCS averages over (``lbcs_kind``: per kind).
        lbcs_by: the file attribute whose values are the kinds of volume ``lbcs_kind`` learns an
            order for each (fastMRI knee: ``acquisition``; ``mri-rl data anatomy``: ``orientation``).
        device: torch device of the reconstructor ("cpu", "cuda", "cuda:1", "mps"); one this
            machine does not have is refused at construction.
        allow_task_mismatch: evaluate learned policies trained on another task (the
            summary records what differs) instead of refusing them.
        any_folder: accept a folder whose name says another split than ``split``.
        examples: slices shown in examples.png (:func:`example_slices`).
        examples_sampling_rate: the sampling rate examples.png shows each policy at: the
            first step that reaches it (None: the last step, the end of the budget).
        oracle_weights: ``oracle_ssim_psnr``'s weights of the standardised SSIM and PSNR gains
            (:class:`~mri_rl.policies.baselines.BalancedOraclePolicy`; DAgger's ``teacher_weights``).
        rollout_candidates: how many of the greedy oracle's best columns ``oracle_rollout`` scores at
            each step besides LBCS's next one (:class:`~mri_rl.policies.RolloutOraclePolicy`).
        reference_from: an evaluation of the val split (its folder) whose strongest fixed order in
            SSIM AUC becomes a further reference of the room shares
            (:mod:`~mri_rl.evaluation.reference_choice`); None: none.
    """

    data: Path
    task: AcquisitionTask = field(default=DEFAULT_TASK)
    split: str = "test"
    seeds: tuple[int, ...] = (0, 1, 2)
    batch_size: int = 32
    lbcs_train_data: Path | None = None
    lbcs_slices: int = 32
    lbcs_by: str | None = None
    device: str = "cpu"
    allow_task_mismatch: bool = False
    any_folder: bool = False
    examples: int = 3
    examples_sampling_rate: float | None = None
    oracle_weights: tuple[float, ...] = BalancedOraclePolicy.equal_weights
    rollout_candidates: int = DEFAULT_CANDIDATES
    reference_from: Path | None = None

    def __post_init__(self) -> None:
        """Check the settings before anything is read: the split, the counts, the seeds and the device.

        Raises:
            ValueError: naming the bad value and what was expected.
        """
        if self.split not in SPLITS:
            raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {self.split!r}")
        self.batch_size = check_int("batch_size", self.batch_size)
        self.lbcs_slices = check_int("lbcs_slices", self.lbcs_slices)
        if self.lbcs_by is not None and not (isinstance(self.lbcs_by, str) and self.lbcs_by.strip()):
            raise ValueError(
                f"lbcs_by: expected the name of a file attribute, e.g. 'acquisition', got {self.lbcs_by!r}"
            )
        if isinstance(self.seeds, (str, bytes)) or not hasattr(self.seeds, "__iter__"):
            raise ValueError(f"seeds: expected a sequence of integers >= 0, got {self.seeds!r}")
        self.seeds = tuple(check_int("seeds", seed, 0) for seed in self.seeds)
        if not self.seeds:
            raise ValueError("seeds: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: expected distinct seeds, got {list(self.seeds)}")
        self.examples = check_int("examples", self.examples)
        if self.examples_sampling_rate is not None:
            rate = check_number("examples_sampling_rate", self.examples_sampling_rate, 0)
            if not 0 < rate <= 1:
                raise ValueError(f"examples_sampling_rate: expected a number in (0, 1] or None, got {rate}")
            self.examples_sampling_rate = rate
        self.oracle_weights = check_metric_weights("oracle_weights", self.oracle_weights, BalancedOraclePolicy.metrics)
        self.rollout_candidates = check_int("rollout_candidates", self.rollout_candidates, 0)
        resolve_device(self.device)

    def env_kwargs(self, folder: Path) -> dict[str, Any]:
        return {"data_path": folder, "task": self.task, "device": self.device}


def make_batched_env(
    setup: EvaluationSetup, folder: Path, num_envs: int, observations: tuple[str, ...] = ()
) -> gym.vector.VectorEnv:
    """The batched env of the setup's task over ``folder``, at most ``num_envs`` episodes at a
    time: a folder of fewer slices gets one episode per slice (a second, small env), not padding.
    ``observations``: optional observation keys to add (of :data:`~mri_rl.envs.spaces.OPTIONAL_OBSERVATIONS`)."""

    def build(n: int) -> gym.vector.VectorEnv:
        return gym.make_vec(
            ENV_ID,
            num_envs=n,
            vectorization_mode="vector_entry_point",
            **(setup.env_kwargs(folder) | dict.fromkeys(observations, True)),
        )

    env = build(num_envs)
    num_slices = acquisition_env(env).num_slices
    return env if num_slices >= num_envs else build(num_slices)
