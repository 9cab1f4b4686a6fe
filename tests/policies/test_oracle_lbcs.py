"""The oracle and LBCS on the tiny synthetic splits: their greedy choices checked against the
env's look-ahead (``look_ahead``).

The oracle is greedy with the ground truth: each step acquires the column that most improves the
metric against the target. Its first step is the best one-step gain by construction; over a whole
episode it is myopic and NOT an upper bound (a fixed order can beat it over a whole budget). On these
tiny slices it happens to have the best mean SSIM AUC, which the last oracle
test checks as a regression figure, not as a property of the oracle."""

from __future__ import annotations

import json
import re

import gymnasium as gym
import numpy as np
import pytest

from mri_rl.agents.look_ahead import standardised
from mri_rl.envs import ENV_ID
from mri_rl.evaluation.report import summarize
from mri_rl.evaluation.rollout import rollout_policy
from mri_rl.policies import (
    BalancedOraclePolicy,
    EquispacedPolicy,
    LBCSPolicy,
    LowToHighPolicy,
    OraclePolicy,
    RandomPolicy,
    cached_lbcs_order,
    learn_lbcs_order,
)
from mri_rl.policies.lbcs import LBCSEpisodes, greedy_order
from mri_rl.provenance import RecordMismatchError, make_record
from mri_rl.task import AcquisitionTask

BUDGET = 3
WIDTH = 16
NUM_TEST = 3  # slices of singlecoil_test
NUM_TRAIN = 6  # slices of singlecoil_train


def all_scores(env) -> np.ndarray:
    """look_ahead of every column for every episode: float64 (N, W)."""
    width = env.single_action_space.n
    return env.unwrapped.look_ahead(np.tile(np.arange(width), (env.num_envs, 1)))


@pytest.fixture(scope="module")
def lbcs_train_order(singlecoil_root):
    """The LBCS order learned on all train slices with the SSIM reward (budget 3)."""
    env = gym.make_vec(
        ENV_ID,
        num_envs=NUM_TRAIN,
        vectorization_mode="vector_entry_point",
        data_path=singlecoil_root / "singlecoil_train",
        budget=BUDGET,
        initial_lines=2,
        reward_metric="ssim",
    )
    return learn_lbcs_order(env, list(range(NUM_TRAIN)), BUDGET, progress=False)


# ---------------------------------------------------------------------------- oracle
@pytest.fixture
def make_env_single(make_vec_env):
    """A batched env of one episode."""
    return lambda folder: make_vec_env(folder, 1)


def test_oracle_reward_is_the_best_lookahead_reward_at_every_step(make_vec_env, test_folder):
    env = make_vec_env(test_folder, NUM_TEST)
    oracle = OraclePolicy(env)
    obs, info = env.reset(options={"indices": list(range(NUM_TEST))})
    for step in range(BUDGET):
        free = np.asarray(info["action_mask"], dtype=bool)
        scores = all_scores(env)
        assert np.all(scores[~free] == 0.0)  # acquired columns score nothing
        best = np.where(free, scores, -np.inf)
        actions, _ = oracle.predict(obs, action_mask=free)
        np.testing.assert_array_equal(actions, best.argmax(axis=1))
        assert free[np.arange(NUM_TEST), actions].all()
        obs, rewards, terminated, _, info = env.step(actions)
        # the reward stepped equals the look-ahead's, up to float32 reconstructions in another batch
        np.testing.assert_allclose(rewards, best.max(axis=1), rtol=0, atol=1e-6)
        assert np.all(rewards > 0)
        np.testing.assert_array_equal(terminated, step == BUDGET - 1)


def test_oracle_one_step_by_hand_on_one_slice(make_env_single, test_folder):
    """The first oracle pick on slice 1 against a single env acquiring every column in turn."""
    single = gym.make(ENV_ID, data_path=test_folder, budget=BUDGET, initial_lines=2, reward_metric="ssim")
    _, info = single.reset(options={"index": 1})
    start = info["ssim"]
    gains = {}
    for column in np.flatnonzero(info["action_mask"]):
        single.reset(options={"index": 1})
        _, reward, _, _, after = single.step(int(column))
        assert reward == pytest.approx(after["ssim"] - start, abs=1e-12)
        gains[int(column)] = reward
    assert len(gains) == WIDTH - 2  # 2 initial lines
    env = make_env_single(test_folder)
    obs, info = env.reset(options={"indices": [1]})
    actions, _ = OraclePolicy(env).predict(obs, action_mask=np.asarray(info["action_mask"], dtype=bool))
    assert int(actions[0]) == max(gains, key=gains.get)
    _, rewards, _, _, _ = env.step(actions)
    assert rewards[0] == pytest.approx(max(gains.values()), abs=1e-6)


def test_balanced_oracle_picks_the_largest_sum_of_standardised_ssim_and_psnr_gains(make_vec_env, test_folder):
    """Its pick, by hand from every column's stepped SSIM and PSNR changes, at two states."""
    single = gym.make(ENV_ID, data_path=test_folder, budget=BUDGET, initial_lines=2, reward_metric="ssim")
    env = make_vec_env(test_folder, 1)
    oracle = BalancedOraclePolicy(env)
    prefix: list[int] = []
    for _ in range(2):
        single.reset(options={"index": 2})
        for column in prefix:
            _, _, _, _, start = single.step(column)
        if not prefix:
            _, start = single.reset(options={"index": 2})
        free = np.flatnonzero(start["action_mask"])
        gains = np.zeros((2, len(free)))
        for k, column in enumerate(free):
            single.reset(options={"index": 2})
            for earlier in prefix:
                single.step(earlier)
            _, _, _, _, after = single.step(int(column))
            gains[:, k] = after["ssim"] - start["ssim"], after["psnr"] - start["psnr"]
        z = (gains - gains.mean(axis=1, keepdims=True)) / gains.std(axis=1, keepdims=True)
        expected = int(free[z.sum(axis=0).argmax()])
        obs, info = env.reset(options={"indices": [2]})
        for column in prefix:
            obs, _, _, _, info = env.step(np.array([column]))
        actions, _ = oracle.predict(obs, action_mask=np.asarray(info["action_mask"], dtype=bool))
        assert int(actions[0]) == expected
        prefix.append(expected)


def test_balanced_oracle_padding_does_not_overwrite_a_real_score():
    """Episodes with fewer free columns are padded with their first free column; the padding's
    (zero) standardised score must not replace that column's own."""

    class Gains:  # the env seam the oracle uses: look_ahead_gains (N, M, K) of known values
        single_action_space = gym.spaces.Discrete(4)
        unwrapped = None

        def look_ahead_gains(self, candidates, metrics):
            table = np.array([0.0, 3.0, 2.5, 0.0])  # the gain of each column, both metrics alike
            return np.repeat(table[candidates][:, None, :], len(metrics), axis=1)

    env = Gains()
    env.unwrapped = env
    masks = np.array([[True, True, True, True], [False, True, True, True]])  # 4 and 3 free columns
    scores = BalancedOraclePolicy(env).scores(None, masks)
    assert scores[1].argmax() == 1 and scores[1, 1] > scores[1, 2] > scores[1, 3]
    assert scores[1, 0] == -np.inf


def test_standardised_ignores_padding_and_constant_rows():
    values = np.array([[[1.0, 3.0, 100.0]], [[2.0, 2.0, 2.0]]])  # (N=2, M=1, K=3)
    valid = np.array([[True, True, False], [True, True, True]])
    z = standardised(values, valid)
    np.testing.assert_allclose(z[0, 0], [-1.0, 1.0, 0.0])
    np.testing.assert_array_equal(z[1, 0], 0.0)


def other_policies(width: int, lbcs_order: list[int]) -> dict[str, object]:
    policies = {f"random{seed}": RandomPolicy(width, seed) for seed in range(3)}
    policies.update(
        lowtohigh=LowToHighPolicy(width), equispaced=EquispacedPolicy(width, BUDGET), lbcs=LBCSPolicy(width, lbcs_order)
    )
    return policies


def test_oracle_first_step_gain_beats_every_other_policy_on_every_slice(make_vec_env, test_folder, lbcs_train_order):
    env = make_vec_env(test_folder, NUM_TEST)
    obs, info = env.reset(options={"indices": list(range(NUM_TEST))})
    free = np.asarray(info["action_mask"], dtype=bool)
    scores = all_scores(env)  # the one-step gain of every column from the same state
    rows = np.arange(NUM_TEST)
    oracle = OraclePolicy(env)
    oracle.reset(free)
    oracle_actions, _ = oracle.predict(obs, action_mask=free)
    oracle_gain = scores[rows, oracle_actions]
    for name, policy in other_policies(WIDTH, lbcs_train_order).items():
        policy.reset(free)
        actions, _ = policy.predict(obs, action_mask=free)
        assert free[rows, actions].all(), name
        gain = scores[rows, actions]
        assert np.all(oracle_gain >= gain), (name, oracle_gain, gain)


def test_oracle_mean_ssim_auc_beats_every_baseline(make_vec_env, test_folder, lbcs_train_order):
    """On these tiny slices only (greedy is myopic: no upper bound in general)."""
    env = make_vec_env(test_folder, NUM_TEST)
    policies = {"oracle": OraclePolicy(env), **other_policies(WIDTH, lbcs_train_order)}
    rows = []
    for name, policy in policies.items():
        rows += rollout_policy(policy, env, BUDGET, name, 0, progress=False)
    assert len(rows) == len(policies) * NUM_TEST * (BUDGET + 1)
    summary = summarize(rows)
    assert all(summary[name]["ssim_auc"]["n"] == NUM_TEST for name in policies)
    oracle = summary["oracle"]["ssim_auc"]["mean"]
    for name in policies:
        assert oracle >= summary[name]["ssim_auc"]["mean"], (name, oracle, summary[name]["ssim_auc"]["mean"])
    # the oracle is strictly better than the baselines that ignore the data
    for name in ("random0", "random1", "random2", "equispaced"):
        assert oracle > summary[name]["ssim_auc"]["mean"]


# ------------------------------------------------------------------------------ LBCS
def test_learn_lbcs_order_is_the_greedy_mean_gain_order(make_vec_env, singlecoil_train, lbcs_train_order):
    order = lbcs_train_order
    assert len(order) == BUDGET and len(set(order)) == BUDGET
    assert all(isinstance(c, int) for c in order)
    env = make_vec_env(singlecoil_train, NUM_TRAIN)
    _, info = env.reset(options={"indices": list(range(NUM_TRAIN))})
    free = np.asarray(info["action_mask"], dtype=bool)
    assert free[:, order].all()  # free in every training slice at the start
    # each column of the order is the one with the best mean one-step gain, given the ones before
    for position, column in enumerate(order):
        mean_gain = all_scores(env).mean(axis=0)
        mean_gain[~free.any(axis=0)] = -np.inf
        best = int(np.argmax(mean_gain))
        assert column == best, (position, column, best, mean_gain)
        assert mean_gain[column] > 0
        _, _, _, _, info = env.step(np.full(NUM_TRAIN, column))
        free = np.asarray(info["action_mask"], dtype=bool)


def test_lbcs_order_scored_in_shares_of_the_columns_is_the_same(make_vec_env, singlecoil_train, lbcs_train_order):
    """Three workers' shares of the columns, each in its own env, give the one-env order."""
    shares = np.array_split(np.arange(WIDTH), 3)
    members = [LBCSEpisodes(make_vec_env(singlecoil_train, NUM_TRAIN), list(range(NUM_TRAIN)), s) for s in shares]
    order = greedy_order(
        lambda done: np.concatenate([m.mean_gains(done) for m in members]),
        lambda column: [m.acquire(column) for m in members],
        BUDGET,
        progress=False,
    )
    assert order == lbcs_train_order


def test_learn_lbcs_order_checks_the_number_of_episodes(make_vec_env, singlecoil_train):
    env = make_vec_env(singlecoil_train, 2)
    with pytest.raises(ValueError, match="episodes"):
        learn_lbcs_order(env, [0, 1, 2], BUDGET, progress=False)


def test_learn_lbcs_order_on_a_subset_of_slices(make_vec_env, singlecoil_train):
    env = make_vec_env(singlecoil_train, 2, budget=5)
    order = learn_lbcs_order(env, [1, 4], 5, progress=False)
    assert len(order) == 5 and len(set(order)) == 5
    assert not set(order) & {7, 8}  # the initial lines
    check = make_vec_env(singlecoil_train, 2, budget=5)
    check.reset(options={"indices": [1, 4]})
    gains = all_scores(check).mean(axis=0)
    assert order[0] == int(np.argmax(gains))


def test_cached_lbcs_order_reads_the_cache_for_the_same_record_and_refuses_another(tmp_path):
    calls = []

    def learn(order):
        def run():
            calls.append(order)
            return list(order)

        return run

    cache = tmp_path / "sub" / "lbcs_order.json"
    record = make_record(
        AcquisitionTask(budget=3),
        {"lbcs_train": {"folder": "/data/train", "digest": "sha256:1"}},
        {"lbcs_slices": [0, 1, 2]},
    )
    assert cached_lbcs_order(cache, record, learn([5, 9, 2]), "start afresh") == [5, 9, 2]
    assert len(calls) == 1
    assert json.loads(cache.read_text()) == {"record": record, "order": [5, 9, 2]}
    # the same record (a new but equal dict): read, learn not called
    assert cached_lbcs_order(cache, json.loads(json.dumps(record)), learn([1, 1, 1]), "start afresh") == [5, 9, 2]
    assert len(calls) == 1
    # a cache made under another task, data or slices is refused, naming what differs, and kept
    before = cache.read_bytes()
    other_task = make_record(AcquisitionTask(budget=4), record["data"], record["settings"])
    other_data = {**record, "data": {"lbcs_train": {"folder": "/data/train", "digest": "sha256:2"}}}
    for other, named in ((other_task, "task.budget: 3 vs 4"), (other_data, "data.lbcs_train.digest")):
        with pytest.raises(RecordMismatchError, match=re.escape(named) + ".*start afresh"):
            cached_lbcs_order(cache, other, learn([3, 4, 5, 6]), "start afresh")
    assert len(calls) == 1
    assert cache.read_bytes() == before
    assert [p.name for p in cache.parent.iterdir()] == ["lbcs_order.json"]  # no temporary file left


def test_learn_lbcs_order_when_slices_run_out_of_columns(make_vec_env, mixed_padding_folder):
    """A budget beyond the free columns of some slices: the slices that are full stop counting
    (they would restart on random slices), the order stays distinct and reproducible, and it
    ends when no column is left."""
    env = make_vec_env(mixed_padding_folder, 5, budget=30)
    assert env.single_action_space.n == 24
    _, info = env.reset(options={"indices": list(range(5))})
    free_at_start = np.asarray(info["action_mask"], dtype=bool)
    assert sorted(free_at_start.sum(axis=1)) == [12, 12, 12, 16, 16]
    order = learn_lbcs_order(env, list(range(5)), 30, progress=False)
    assert len(order) == 16 == len(set(order))
    assert set(order) == set(np.flatnonzero(free_at_start.any(axis=0)))  # every column free in some slice
    again = learn_lbcs_order(make_vec_env(mixed_padding_folder, 5, budget=30), list(range(5)), 30, progress=False)
    assert again == order
    check = make_vec_env(mixed_padding_folder, 5, budget=30)
    check.reset(options={"indices": list(range(5))})
    assert order[0] == int(np.argmax(np.where(free_at_start.any(axis=0), all_scores(check).mean(axis=0), -np.inf)))
    LBCSPolicy(24, order)  # a valid order


def rolled_columns(policy, env, steps: int) -> np.ndarray:
    """int (steps, N): the columns ``policy`` acquires on the N test slices, step by step."""
    obs, info = env.reset(options={"indices": list(range(env.num_envs))})
    columns = []
    for _ in range(steps):
        actions, _ = policy.predict(obs, action_mask=np.asarray(info["action_mask"], dtype=bool))
        columns.append(np.asarray(actions))
        obs, _, _, _, info = env.step(actions)
    return np.array(columns)


@pytest.mark.parametrize(("weights", "metric"), [((1.0, 0.0), "ssim"), ((0.0, 3.0), "psnr")])
def test_the_balanced_oracle_weighing_one_metric_acquires_as_that_metrics_oracle(
    make_vec_env, test_folder, weights, metric
):
    """Standardising is monotone per episode, so with the other metric's weight 0 it ranks the columns
    as the greedy oracle on that metric does (the env's reward metric)."""
    env = make_vec_env(test_folder, 3, reward_metric=metric)
    weighted = rolled_columns(BalancedOraclePolicy(env, weights), env, BUDGET)
    assert np.array_equal(weighted, rolled_columns(OraclePolicy(env), env, BUDGET))
    other = (0.0, 1.0) if metric == "ssim" else (1.0, 0.0)
    assert not np.array_equal(weighted, rolled_columns(BalancedOraclePolicy(env, other), env, BUDGET))


class KnownGains:
    """The env seam the oracle uses, with known look-ahead gains (N, M, K) per column."""

    GAINS = np.array([[0.9, 0.5, 0.3, 0.2], [0.2, 1.0, 0.3, 0.1]])  # SSIM, PSNR gains of columns 0..3
    single_action_space = gym.spaces.Discrete(4)

    @property
    def unwrapped(self):
        return self

    def look_ahead_gains(self, candidates, metrics):
        return self.GAINS[:, candidates].transpose(1, 0, 2)


def test_the_balanced_oracle_weighs_the_standardised_gains():
    """Equal weights pick column 1 (the best PSNR gain), SSIM weighted twice picks column 0."""
    free = np.ones((1, 4), dtype=bool)
    gains = KnownGains.GAINS
    z = (gains - gains.mean(axis=1, keepdims=True)) / gains.std(axis=1, keepdims=True)
    for weights, best in (((1.0, 1.0), 1), ((2.0, 1.0), 0)):
        scores = BalancedOraclePolicy(KnownGains(), weights).scores(None, free)[0]
        np.testing.assert_allclose(scores, weights[0] * z[0] + weights[1] * z[1])
        assert scores.argmax() == best


@pytest.mark.parametrize("weights", [(1.0,), (1.0, 1.0, 1.0), (0.0, 0.0), (-1.0, 2.0), (float("nan"), 1.0), 2.0])
def test_the_balanced_oracle_refuses_weights_that_are_not_one_per_metric_at_least_zero(weights):
    expected = "oracle weights: expected one finite weight >= 0 per metric of ['ssim', 'psnr'], not all 0, got "
    with pytest.raises(ValueError, match=re.escape(expected)):
        BalancedOraclePolicy(KnownGains(), weights)
