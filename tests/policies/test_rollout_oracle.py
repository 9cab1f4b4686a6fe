"""``oracle_rollout``, the roll-out of a fixed order with the ground truth, on the tiny synthetic test
split (zero-filled reconstructor, 16 columns, 2 initial lines): its scores against episodes stepped by
hand, its known special cases (no candidate: its base order; one step left: the greedy oracle) and the
cost improvement property of roll-out (never below its base order's reward AUC on any slice)."""

from __future__ import annotations

from collections import defaultdict

import gymnasium as gym
import numpy as np
import pytest

from mri_rl.envs import ENV_ID
from mri_rl.evaluation.report import curve_auc
from mri_rl.evaluation.rollout import rollout_policy
from mri_rl.policies import FixedOrderPolicy, OraclePolicy, RolloutOraclePolicy

WIDTH = 16
NUM_TEST = 3
BASE_ORDER = [0, 15, 3, 12, 6, 9, 1, 14]  # a poor fixed order (edges first): room for the roll-out


def reward_aucs(rows: list[dict]) -> dict[tuple[str, int], float]:
    """Each episode's SSIM AUC (the reward metric's) from rollout rows."""
    episodes: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for row in rows:
        episodes[(row["file"], row["slice"])].append(row)
    return {
        key: curve_auc(np.array([r["sampling_rate"] for r in steps]), np.array([r["ssim"] for r in steps]))
        for key, steps in episodes.items()
    }


def columns_of(rows: list[dict]) -> list[tuple[str, int, int, int]]:
    return sorted((row["file"], row["slice"], row["step"], row["column"]) for row in rows)


def test_scores_are_the_rest_of_each_episode_stepped_by_hand(make_vec_env, test_folder):
    """Each candidate's score: the trapezoid sum of SSIM over the candidate, then the base order's free
    columns to the budget, stepped one by one in a single env; the other columns score -inf."""
    budget = 4
    env = make_vec_env(test_folder, NUM_TEST, budget=budget)
    policy = RolloutOraclePolicy(env, BASE_ORDER, candidates=3)
    single = gym.make(ENV_ID, data_path=test_folder, budget=budget, initial_lines=2, reward_metric="ssim")
    obs, info = env.reset(options={"indices": list(range(NUM_TEST))})
    obs, _, _, _, info = env.step(np.array([5, 10, 0]))  # one step in: 3 left, column 0 taken on slice 2
    legal = np.asarray(info["action_mask"], dtype=bool)
    scores = policy.scores(obs, legal)
    for row, first in enumerate([5, 10, 0]):
        scored = np.flatnonzero(np.isfinite(scores[row]))
        assert 2 <= len(scored) <= 4 and legal[row, scored].all()
        base_free = [c for c in BASE_ORDER if legal[row, c]]
        assert base_free[0] in scored  # the base's own next column is always a candidate
        for column in scored:
            single.reset(options={"index": row})
            single.step(first)
            rest = [int(column)] + [c for c in base_free if c != column][: budget - 2]
            values = [single.step(c)[4]["ssim"] for c in rest]
            expected = sum(values[:-1]) + 0.5 * values[-1]
            assert scores[row, column] == pytest.approx(expected, abs=1e-6)


def test_without_candidates_it_is_its_base_order(make_vec_env, test_folder):
    env = make_vec_env(test_folder, NUM_TEST, budget=5)
    rolled = rollout_policy(RolloutOraclePolicy(env, BASE_ORDER, candidates=0), env, 5, "p", 0, progress=False)
    fixed = rollout_policy(FixedOrderPolicy(WIDTH, BASE_ORDER), env, 5, "p", 0, progress=False)
    assert columns_of(rolled) == columns_of(fixed)


def test_with_one_step_left_it_is_the_greedy_oracle(make_vec_env, test_folder):
    """The rest of a one-step episode is the candidate alone: the greedy oracle's best column wins."""
    env = make_vec_env(test_folder, NUM_TEST, budget=1)
    rolled = rollout_policy(RolloutOraclePolicy(env, BASE_ORDER, candidates=2), env, 1, "p", 0, progress=False)
    greedy = rollout_policy(OraclePolicy(env), env, 1, "p", 0, progress=False)
    assert columns_of(rolled) == columns_of(greedy)


@pytest.mark.parametrize("candidates", [1, 4])
def test_never_below_its_base_order_on_any_slice(make_vec_env, test_folder, candidates):
    """Roll-out's cost improvement: a fixed order is sequentially consistent and its next column is
    always a candidate, so the reward metric's AUC is at least the base order's on every episode; here
    the roll-out also gains somewhere, as the base order is poor."""
    budget = 6
    env = make_vec_env(test_folder, NUM_TEST, budget=budget)
    policy = RolloutOraclePolicy(env, BASE_ORDER, candidates=candidates)
    rolled = reward_aucs(rollout_policy(policy, env, budget, "rollout", 0, progress=False))
    base = reward_aucs(rollout_policy(FixedOrderPolicy(WIDTH, BASE_ORDER), env, budget, "base", 0, progress=False))
    assert rolled.keys() == base.keys() and len(rolled) == NUM_TEST
    gains = np.array([rolled[key] - base[key] for key in rolled])
    assert np.all(gains >= -1e-9), gains
    assert gains.max() > 1e-3, gains


def test_bad_arguments_are_refused(make_vec_env, test_folder):
    env = make_vec_env(test_folder, 1)
    with pytest.raises(ValueError, match="candidates: expected an integer >= 0, got -1"):
        RolloutOraclePolicy(env, BASE_ORDER, candidates=-1)
    with pytest.raises(ValueError, match="distinct columns in \\[0, 16\\)"):
        RolloutOraclePolicy(env, [0, 0, 3])


def test_mask_metrics_agree_with_the_look_ahead(make_vec_env, test_folder):
    """The metrics under the current mask plus one column, by ``mask_metrics``, are the current metric
    plus that column's look-ahead gain; masks of another shape are refused."""
    env = make_vec_env(test_folder, NUM_TEST)
    env.reset(options={"indices": list(range(NUM_TEST))})
    episodes = env.unwrapped.episodes
    columns = np.array([[4, 7], [9, 4], [11, 5]])
    gains = env.unwrapped.look_ahead_gains(columns, ("ssim", "psnr"))  # (N, M, K)
    rows = np.repeat(np.arange(NUM_TEST), 2)
    masks = episodes.acquired.numpy()[rows].copy()
    masks[np.arange(len(rows)), columns.reshape(-1)] = True
    values = episodes.mask_metrics(rows, masks, ("ssim", "psnr"))  # (M, P)
    for m, name in enumerate(("ssim", "psnr")):
        now = episodes.metrics[name].numpy()[rows]
        np.testing.assert_allclose(values[m], now + gains[:, m, :].reshape(-1), atol=1e-5)
    with pytest.raises(ValueError, match=r"masks: expected shape \(6, 16\), got \(6, 15\)"):
        episodes.mask_metrics(rows, masks[:, :15], ("ssim",))
    with pytest.raises(ValueError, match="metrics: expected one or more of"):
        episodes.mask_metrics(rows, masks, ("auc",))
