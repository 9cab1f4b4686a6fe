"""``rollout_policy`` on slices with different zero-filled edges, where the episodes of one batch
run out of columns at different steps, independence from the batch size, the recorded acquisition
order, and replaying it (``replay_orders``)."""

from __future__ import annotations

import json
from collections import defaultdict

import gymnasium as gym
import numpy as np
import pytest

from mri_rl.envs import ENV_ID
from mri_rl.evaluation.evaluate import EvaluationSetup, evaluate_policies
from mri_rl.evaluation.rollout import METRIC_COLUMNS, NO_COLUMN, replay_orders, rollout_policy
from mri_rl.policies import EquispacedPolicy, LBCSPolicy, LowToHighPolicy, OraclePolicy, RandomPolicy
from mri_rl.task import METRIC_NAMES, AcquisitionTask

WIDTH = 24
FREE = {"synthetic_s1_train_000.h5": 16, "synthetic_s2_train_000.h5": 12}  # 2 initial lines
MEASURED = {"synthetic_s1_train_000.h5": 18, "synthetic_s2_train_000.h5": 14}
MEASURED_COLUMNS = {"synthetic_s1_train_000.h5": range(3, 21), "synthetic_s2_train_000.h5": range(5, 19)}
INITIAL = {11, 12}  # the 2 lowest frequencies around the centre 12


def make_env(folder, num_envs, budget):
    return gym.make_vec(
        ENV_ID,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        data_path=folder,
        budget=budget,
        initial_lines=2,
        reward_metric="ssim",
    )


def policies(env, budget):
    return {
        "random": RandomPolicy(WIDTH, 0),
        "lowtohigh": LowToHighPolicy(WIDTH),
        "equispaced": EquispacedPolicy(WIDTH, budget),
        "lbcs": LBCSPolicy(WIDTH, [0, 23, 12, 5, 6]),
        "oracle": OraclePolicy(env),
    }


def episodes(rows):
    grouped = defaultdict(list)
    for row in rows:
        grouped[(row["file"], row["slice"])].append(row)
    return {key: sorted(steps, key=lambda r: r["step"]) for key, steps in grouped.items()}


@pytest.mark.parametrize("name", ["random", "lowtohigh", "equispaced", "lbcs", "oracle"])
def test_episodes_end_when_their_columns_run_out(mixed_padding_folder, name):
    budget = 30  # more than any slice's free columns
    env = make_env(mixed_padding_folder, 2, budget)  # chunks (s1 0, s1 1), (s2 0, s2 1), (s2 2, padding)
    rows = rollout_policy(policies(env, budget)[name], env, budget, name, 7, progress=False)
    assert all(list(row) == list(METRIC_COLUMNS) for row in rows)
    assert {(r["policy"], r["seed"]) for r in rows} == {(name, 7)}
    by_episode = episodes(rows)
    assert set(by_episode) == {
        (f, s) for f, n in (("synthetic_s1_train_000.h5", 2), ("synthetic_s2_train_000.h5", 3)) for s in range(n)
    }
    for (file, _), steps in by_episode.items():
        assert [r["step"] for r in steps] == list(range(FREE[file] + 1))
        # a new measurable column at every step, never a zero-filled one: legal actions only
        assert [r["acquired_columns"] for r in steps] == list(range(2, MEASURED[file] + 1))
        assert steps[-1]["sampling_rate"] == 1.0
        # the recorded order: every measurable column but the initial ones, once each
        assert steps[0]["column"] == NO_COLUMN
        assert sorted(r["column"] for r in steps[1:]) == sorted(set(MEASURED_COLUMNS[file]) - INITIAL)
        np.testing.assert_allclose(
            [r["sampling_rate"] for r in steps], np.arange(2, MEASURED[file] + 1) / MEASURED[file]
        )
    # every policy ends at the same fully sampled image
    final = {key: steps[-1]["ssim"] for key, steps in by_episode.items()}
    reference = episodes(rollout_policy(LowToHighPolicy(WIDTH), env, budget, "lowtohigh", 0, progress=False))
    for key, value in final.items():
        assert value == pytest.approx(reference[key][-1]["ssim"], abs=1e-6)


@pytest.mark.parametrize("name", ["lowtohigh", "equispaced", "lbcs", "oracle"])
def test_deterministic_policies_do_not_depend_on_the_batch_size(mixed_padding_folder, name):
    budget = 4
    results = []
    for num_envs in (1, 2, 5):
        env = make_env(mixed_padding_folder, num_envs, budget)
        rows = rollout_policy(policies(env, budget)[name], env, budget, name, 0, progress=False)
        assert len(rows) == 5 * (budget + 1)
        results.append(sorted(rows, key=lambda r: (r["file"], r["slice"], r["step"])))
    for rows in results[1:]:
        for row, reference in zip(rows, results[0]):
            assert {k: row[k] for k in ("file", "slice", "step", "acquired_columns", "sampling_rate")} == {
                k: reference[k] for k in ("file", "slice", "step", "acquired_columns", "sampling_rate")
            }
            for metric in METRIC_NAMES:
                assert row[metric] == pytest.approx(reference[metric], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", ["random", "oracle"])
def test_replaying_the_recorded_orders_gives_the_rollouts_final_images(mixed_padding_folder, name):
    """Orders of different lengths (the slices run out of columns at different steps), replayed 2 at a time."""
    budget = 30
    env = make_env(mixed_padding_folder, 2, budget)
    rows = rollout_policy(policies(env, budget)[name], env, budget, name, 3, progress=False)
    by_episode = episodes(rows)
    names = [env.unwrapped.slice_name(i) for i in range(env.unwrapped.num_slices)]
    ids = [4, 0, 2, 1, 3]
    orders = [[r["column"] for r in by_episode[names[i]][1:]] for i in ids]
    replays = replay_orders(env.unwrapped.episodes, ids, orders)
    assert [len(order) for order in orders] == [12, 16, 12, 16, 12]
    for index, order, replay in zip(ids, orders, replays):
        final = by_episode[names[index]][-1]
        for metric in METRIC_NAMES:
            assert replay.metrics[metric] == pytest.approx(final[metric], rel=1e-6, abs=1e-9)
        assert set(np.flatnonzero(replay.acquired & ~replay.initial)) == set(order)
        assert replay.acquired.all()  # the zero-filled edges count as acquired from the start
    # part of an order: the state after that many steps
    halfway = replay_orders(env.unwrapped.episodes, [0], [orders[1][:5]])[0]
    assert halfway.metrics["ssim"] == pytest.approx(by_episode[names[0]][5]["ssim"], rel=1e-6)
    assert int((halfway.acquired & ~halfway.initial).sum()) == 5


def test_rollout_of_chosen_slices(mixed_padding_folder):
    env = make_env(mixed_padding_folder, 2, 2)
    rows = rollout_policy(LowToHighPolicy(WIDTH), env, 2, "lowtohigh", 0, slice_indices=[4, 0, 3], progress=False)
    assert [(r["file"][:12], r["slice"]) for r in rows if r["step"] == 0] == [
        ("synthetic_s2", 2),
        ("synthetic_s1", 0),
        ("synthetic_s2", 1),
    ]
    assert len(rows) == 3 * 3


def test_evaluation_with_a_budget_beyond_the_free_columns(mixed_padding_folder, mixed_padding_writer, tmp_path):
    """Every baseline, LBCS learned on other volumes of the same paddings (they fill up at different steps)."""
    lbcs_train = mixed_padding_writer(tmp_path, (3, 4))
    setup = EvaluationSetup(
        data=mixed_padding_folder,
        task=AcquisitionTask(budget=30, initial_lines=2),
        seeds=(0,),
        batch_size=2,
        lbcs_train_data=lbcs_train,
    )
    summary = evaluate_policies(
        setup, ["random", "lowtohigh", "equispaced", "lbcs", "oracle"], tmp_path / "out", progress=False
    )
    assert all(s["ssim_auc"]["n"] == 5 for s in summary.values())
    assert all(
        s["final_ssim"]["mean"] == pytest.approx(summary["oracle"]["final_ssim"]["mean"], abs=1e-6)
        for s in summary.values()
    )  # all end fully sampled
    order = json.loads((tmp_path / "out" / "lbcs_order.json").read_text())["order"]
    assert len(order) == 16 == len(set(order))
    # the area under the curve: on these slices the greedy oracle (which reads the target) ends above the
    # data-blind baselines; it is myopic, no upper bound in general
    assert summary["oracle"]["ssim_auc"]["mean"] > summary["random"]["ssim_auc"]["mean"]
    assert summary["oracle"]["ssim_auc"]["mean"] > summary["equispaced"]["ssim_auc"]["mean"]


def test_a_policy_acts_in_an_action_space_that_starts_elsewhere_than_0(mixed_padding_folder, shifted_actions):
    """``predict`` gives env actions (an agent's: network index + the space's start); the rollout steps the
    env with them once, not shifted again, and records each column's index."""
    wrap_env, wrap_policy = shifted_actions
    budget = 4
    plain = rollout_policy(
        LowToHighPolicy(WIDTH), make_env(mixed_padding_folder, 2, budget), budget, "p", 0, progress=False
    )
    env = wrap_env(make_env(mixed_padding_folder, 2, budget))
    rows = rollout_policy(wrap_policy(LowToHighPolicy(WIDTH)), env, budget, "p", 0, progress=False)
    assert rows == plain  # the same columns acquired, recorded and scored
    columns = {(row["file"][:12], row["slice"], row["step"]): row["column"] for row in rows}
    first_batch = [[columns["synthetic_s1", i, step] + 3 for i in (0, 1)] for step in range(1, budget + 1)]
    assert env.single_action_space.start == 3 and env.taken[:budget] == first_batch  # the env's actions
