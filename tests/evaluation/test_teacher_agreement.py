"""``teacher_agreement``: the teacher against itself agrees on every step; a policy that takes the
teacher's worst column never does; padding rows of a short last batch are not counted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import yaml

from mri_rl.envs import ENV_ID
from mri_rl.evaluation.teacher_agreement import teacher_agreement
from mri_rl.policies import BalancedOraclePolicy, OraclePolicy

BUDGET = 3


def make_env(singlecoil_root: Path, num_envs: int) -> gym.vector.VectorEnv:
    """The batched env on the tiny test split (3 slices, 16 columns), zero-filled, 2 initial lines."""
    return gym.make_vec(
        ENV_ID,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        data_path=singlecoil_root / "singlecoil_test",
        reconstructor="zero_filled",
        budget=BUDGET,
        initial_lines=2,
    )


class WorstColumnPolicy(BalancedOraclePolicy):
    """Takes the free column the SSIM + PSNR teacher scores lowest."""

    def scores(self, obs: Any, action_masks: np.ndarray) -> np.ndarray:
        scores = super().scores(obs, action_masks)
        return np.where(np.isfinite(scores), -scores, -np.inf)


def test_the_teacher_agrees_with_itself(singlecoil_root):
    env = make_env(singlecoil_root, 2)
    agreement = teacher_agreement(BalancedOraclePolicy(env), env, BUDGET, ("ssim", "psnr"), [0, 1, 2])
    assert agreement.steps == 3 * BUDGET  # the short second batch's padding row is not counted
    assert (agreement.top1, agreement.regret, agreement.rank) == (1.0, 0.0, 0.0)


def test_the_ssim_oracle_agrees_with_an_ssim_teacher(singlecoil_root):
    env = make_env(singlecoil_root, 3)
    agreement = teacher_agreement(OraclePolicy(env), env, BUDGET, ("ssim",), [0, 1, 2])
    assert (agreement.top1, agreement.regret, agreement.rank) == (1.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("make_policy", "weights"),
    [
        (lambda env: BalancedOraclePolicy(env, (2.0, 1.0)), (2.0, 1.0)),
        (OraclePolicy, (1.0, 0.0)),  # the SSIM oracle is the SSIM + PSNR teacher with PSNR weighed 0
    ],
)
def test_a_weighted_teacher_agrees_with_the_oracle_of_its_weights(singlecoil_root, make_policy, weights):
    env = make_env(singlecoil_root, 3)
    agreement = teacher_agreement(make_policy(env), env, BUDGET, ("ssim", "psnr"), [0, 1, 2], weights)
    assert (agreement.top1, agreement.regret, agreement.rank) == (1.0, 0.0, 0.0)


def test_the_worst_column_is_never_the_teachers_choice(singlecoil_root):
    env = make_env(singlecoil_root, 3)
    agreement = teacher_agreement(WorstColumnPolicy(env), env, BUDGET, ("ssim", "psnr"), [0, 1, 2])
    assert agreement.top1 == 0.0
    assert agreement.regret > 0.0
    assert agreement.rank >= 1.0


def test_no_slices_is_refused(singlecoil_root):
    env = make_env(singlecoil_root, 1)
    with pytest.raises(ValueError, match="0 slice"):
        teacher_agreement(OraclePolicy(env), env, BUDGET, ("ssim",), [])


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (None, "config.yaml does not exist"),
        ({"agent": "dqn", "env_id": "CartPole-v1"}, "missing required key(s) ['total_steps']"),
        ({"agent": "dqn", "env_id": "CartPole-v1", "total_steps": 10}, "trained on CartPole-v1"),
    ],
)
def test_the_script_refuses_what_it_cannot_score_in_one_line(tmp_path, config, expected):
    """``scripts/teacher_agreement.py``: no run, a broken config or a run of another env is one usage error."""
    run = tmp_path / "run"
    if config is not None:
        run.mkdir()
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        (run / "model.pt").write_bytes(b"")  # never read: the config is refused first
    script = Path(__file__).parents[2] / "scripts" / "teacher_agreement.py"
    done = subprocess.run([sys.executable, str(script), str(run)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert expected in done.stderr.strip().splitlines()[-1]
