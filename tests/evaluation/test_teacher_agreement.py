"""``teacher_agreement``: the teacher against itself agrees on every step; a policy that takes the
teacher's worst column never does; padding rows of a short last batch are not counted."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mri_rl.evaluation.teacher_agreement import teacher_agreement
from mri_rl.policies import BalancedOraclePolicy, OraclePolicy

BUDGET = 3


class WorstColumnPolicy(BalancedOraclePolicy):
    """Takes the free column the SSIM + PSNR teacher scores lowest."""

    def scores(self, obs: Any, action_masks: np.ndarray) -> np.ndarray:
        scores = super().scores(obs, action_masks)
        return np.where(np.isfinite(scores), -scores, -np.inf)


def test_the_teacher_agrees_with_itself(make_test_env):
    env = make_test_env(2, BUDGET)
    agreement = teacher_agreement(BalancedOraclePolicy(env), env, BUDGET, ("ssim", "psnr"), [0, 1, 2])
    assert agreement.steps == 3 * BUDGET  # the short second batch's padding row is not counted
    assert (agreement.top1, agreement.regret, agreement.rank) == (1.0, 0.0, 0.0)


def test_the_teacher_agrees_with_itself_in_an_action_space_that_starts_elsewhere_than_0(make_test_env, shifted_actions):
    """``predict`` gives env actions (from the space's start, 3): the columns they name are scored and
    acquired, not those 3 (or 6) further on."""
    wrap_env, wrap_policy = shifted_actions
    env = wrap_env(make_test_env(3, BUDGET))
    agreement = teacher_agreement(wrap_policy(BalancedOraclePolicy(env)), env, BUDGET, ("ssim", "psnr"), [0, 1, 2])
    assert (agreement.steps, agreement.top1, agreement.regret, agreement.rank) == (3 * BUDGET, 1.0, 0.0, 0.0)
    assert len(env.taken) == BUDGET


def test_the_ssim_oracle_agrees_with_an_ssim_teacher(make_test_env):
    env = make_test_env(3, BUDGET)
    agreement = teacher_agreement(OraclePolicy(env), env, BUDGET, ("ssim",), [0, 1, 2])
    assert (agreement.top1, agreement.regret, agreement.rank) == (1.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("make_policy", "weights"),
    [
        (lambda env: BalancedOraclePolicy(env, (2.0, 1.0)), (2.0, 1.0)),
        (OraclePolicy, (1.0, 0.0)),  # the SSIM oracle is the SSIM + PSNR teacher with PSNR weighed 0
    ],
)
def test_a_weighted_teacher_agrees_with_the_oracle_of_its_weights(make_test_env, make_policy, weights):
    env = make_test_env(3, BUDGET)
    agreement = teacher_agreement(make_policy(env), env, BUDGET, ("ssim", "psnr"), [0, 1, 2], weights)
    assert (agreement.top1, agreement.regret, agreement.rank) == (1.0, 0.0, 0.0)


def test_the_worst_column_is_never_the_teachers_choice(make_test_env):
    env = make_test_env(3, BUDGET)
    agreement = teacher_agreement(WorstColumnPolicy(env), env, BUDGET, ("ssim", "psnr"), [0, 1, 2])
    assert agreement.top1 == 0.0
    assert agreement.regret > 0.0
    assert agreement.rank >= 1.0


def test_no_slices_is_refused(make_test_env):
    env = make_test_env(1, BUDGET)
    with pytest.raises(ValueError, match="0 slice"):
        teacher_agreement(OraclePolicy(env), env, BUDGET, ("ssim",), [])


def test_the_script_refuses_a_run_it_cannot_score_in_one_line(tmp_path, script_usage_error, cartpole_run):
    """``scripts/teacher_agreement.py``: no run, or a run of another env, is one usage error (the run
    folder's checks: :func:`~mri_rl.runs.training.read_mri_run`)."""
    assert "config.yaml does not exist" in script_usage_error("teacher_agreement.py", str(tmp_path / "none"))
    assert "trained on CartPole-v1" in script_usage_error("teacher_agreement.py", str(cartpole_run))
