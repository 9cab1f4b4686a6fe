"""``evaluate_policies`` end to end on the tiny synthetic root: files, row counts, the recorded
acquisition order, the pictures, per-volume metrics against fastMRI's, agreement with a single
env, resumption after a crash, learned policies and argument errors."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest
import torch
from gymnasium import spaces

from mri_rl.agents import DQN, REINFORCE
from mri_rl.data import SyntheticSpec, write_synthetic_dataset
from mri_rl.envs import ENV_ID
from mri_rl.evaluation import evaluate as evaluate_module
from mri_rl.evaluation.evaluate import EvaluationSetup, evaluate_policies, example_slices, make_batched_env
from mri_rl.evaluation.figures import DPI, acquisition_counts, examples_figure, masks_figure, pyplot
from mri_rl.evaluation.policy_specs import (
    PolicySpec,
    check_groups,
    ensemble_members,
    load_agent,
    optional_observations,
    parse_policy_specs,
)
from mri_rl.evaluation.report import paired_differences, read_rows_csv, read_summary, room_share, volume_curves
from mri_rl.evaluation.rollout import NO_COLUMN, replay_orders
from mri_rl.kspace import low_frequency_order
from mri_rl.policies import LowToHighPolicy
from mri_rl.provenance import RecordMismatchError, checkpoint_fingerprint
from mri_rl.reconstruct import UnetReconstructor, export_reconstructor
from mri_rl.task import METRIC_NAMES, AcquisitionTask

BASELINES = ["random", "lowtohigh", "equispaced", "lbcs", "oracle"]
SEEDS = (0, 1)
BUDGET = 3
INITIAL_LINES = 2
WIDTH = 16
TEST_SLICES = 3  # one test volume of 3 slices; batch_size 2 -> chunks [0, 1] and [2, (2)]
HEADER = "policy,seed,file,slice,step,column,acquired_columns,sampling_rate,mse,nmse,psnr,ssim"
REPORT_FILES = ("metrics.csv", "summary.json", "summary.md")


TASK = AcquisitionTask(budget=BUDGET, initial_lines=INITIAL_LINES, reward_metric="ssim")


def make_setup(data: Path, **overrides) -> EvaluationSetup:
    values = dict(data=data, split="test", task=TASK, seeds=SEEDS, batch_size=2)
    values.update(overrides)
    return EvaluationSetup(**values)


def partial_names(policies=BASELINES, seeds=SEEDS) -> set[str]:
    return {f"{name}_seed{seed}.csv" for name in policies for seed in (seeds if name == "random" else seeds[:1])}


@pytest.fixture(scope="module")
def full_run(singlecoil_root, tmp_path_factory):
    """Every baseline evaluated once into a fresh folder: (folder, summary)."""
    out = tmp_path_factory.mktemp("evaluation_a")
    summary = evaluate_policies(make_setup(singlecoil_root), BASELINES, out, progress=False)
    return out, summary


@pytest.fixture(scope="module")
def test_volume(singlecoil_root) -> str:
    return sorted((singlecoil_root / "singlecoil_test").glob("*.h5"))[0].name


# ------------------------------------------------------------------------- the files
def test_evaluation_writes_every_file(full_run, test_volume):
    out, summary = full_run
    assert {p.name for p in out.iterdir()} == {
        "metrics.csv",
        "metrics.csv.record.json",
        "summary.json",
        "summary.md",
        "curves.png",
        "masks.png",
        "examples.png",
        "lbcs_order.json",
        "partial",
    }
    assert {p.name for p in (out / "partial").iterdir()} == partial_names() | {
        f"{name}.record.json" for name in partial_names()
    }
    assert (out / "metrics.csv").read_text().splitlines()[0] == HEADER
    stored = json.loads((out / "summary.json").read_text())
    assert stored["policies"] == summary
    assert stored["record"]["task"] == {
        **TASK.to_dict(),
        "kspace_shape": [32, WIDTH],
        "reconstructor_fingerprint": "zero_filled",
    }
    assert stored["record"]["data"]["evaluated"]["files"] == [test_volume]
    assert set(summary) == set(BASELINES)
    markdown = (out / "summary.md").read_text()
    assert markdown.startswith(
        "# singlecoil_test: singlecoil 32x16, budget 3 from 2 initial lines, ssim reward, zero_filled reconstructor"
    )
    assert all(f"| {name} |" in markdown for name in BASELINES)
    for name in ("curves.png", "masks.png", "examples.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    order = json.loads((out / "lbcs_order.json").read_text())
    assert order["record"]["task"]["budget"] == BUDGET and order["record"]["task"]["reward_metric"] == "ssim"
    assert len(order["order"]) == BUDGET and len(set(order["order"])) == BUDGET
    assert not list(out.rglob("*.tmp"))


def test_metrics_has_one_row_per_policy_seed_slice_and_step(full_run, test_volume):
    out, summary = full_run
    rows = read_rows_csv(out / "metrics.csv")
    keys = [(r["policy"], r["seed"], r["file"], r["slice"], r["step"]) for r in rows]
    assert len(keys) == len(set(keys))
    episodes = Counter((r["policy"], r["seed"], r["file"], r["slice"]) for r in rows)
    expected = {("random", seed, test_volume, s) for seed in SEEDS for s in range(TEST_SLICES)}
    expected |= {(name, SEEDS[0], test_volume, s) for name in BASELINES[1:] for s in range(TEST_SLICES)}
    assert set(episodes) == expected
    assert set(episodes.values()) == {BUDGET + 1}  # steps 0..budget
    per_policy = Counter(r["policy"] for r in rows)
    assert per_policy == {
        "random": 2 * TEST_SLICES * (BUDGET + 1),
        **{name: TEST_SLICES * (BUDGET + 1) for name in BASELINES[1:]},
    }
    assert len(rows) == 6 * TEST_SLICES * (BUDGET + 1)
    for r in rows:
        assert r["acquired_columns"] == INITIAL_LINES + r["step"]  # one new column per step: legal actions
        assert r["sampling_rate"] == pytest.approx((INITIAL_LINES + r["step"]) / WIDTH)
        assert 0 < r["ssim"] <= 1 and r["mse"] > 0
    for name in BASELINES:
        assert summary[name]["ssim_auc"]["n"] == (2 if name == "random" else 1) * TEST_SLICES
    # on these tiny slices the ssim-greedy oracle happens to be the best on average; being myopic it is
    # no upper bound in general (see tests/policies/test_oracle_lbcs.py)
    assert all(summary["oracle"]["ssim_auc"]["mean"] >= s["ssim_auc"]["mean"] for s in summary.values())
    # the random seeds are different rollouts
    random_rows = {seed: [r["ssim"] for r in rows if r["policy"] == "random" and r["seed"] == seed] for seed in SEEDS}
    assert random_rows[0] != random_rows[1]


# ------------------------------------------------------------- the acquisition order
def episode_columns(rows: list[dict], policy: str, seed: int = 0) -> dict[int, list[int]]:
    """Per slice, the ``column`` of steps 0, 1, ... of one policy's episode."""
    columns: dict[int, list[int]] = {}
    for r in sorted((r for r in rows if r["policy"] == policy and r["seed"] == seed), key=lambda r: r["step"]):
        columns.setdefault(r["slice"], []).append(r["column"])
    return columns


def test_the_csv_records_the_column_acquired_at_each_step(full_run):
    out, _ = full_run
    rows = read_rows_csv(out / "metrics.csv")
    order = [int(c) for c in low_frequency_order(WIDTH)]  # 8, 7, 9, 6, 10, ...: the initial lines are 8, 7
    for columns in episode_columns(rows, "lowtohigh").values():
        assert columns == [NO_COLUMN, *order[INITIAL_LINES : INITIAL_LINES + BUDGET]]  # [-1, 9, 6, 10]
    lbcs = json.loads((out / "lbcs_order.json").read_text())["order"]
    assert all(columns == [NO_COLUMN, *lbcs] for columns in episode_columns(rows, "lbcs").values())
    for policy, seed in {(r["policy"], r["seed"]) for r in rows}:
        for columns in episode_columns(rows, policy, seed).values():  # legal: new columns, none of the initial ones
            assert columns[0] == NO_COLUMN and len(set(columns[1:])) == BUDGET
            assert not set(columns[1:]) & set(order[:INITIAL_LINES]) and all(0 <= c < WIDTH for c in columns[1:])


def test_masks_png_counts_every_acquisition_of_every_slice_and_seed(full_run):
    out, _ = full_run
    counts = acquisition_counts(read_rows_csv(out / "metrics.csv"), WIDTH)
    assert set(counts) == set(BASELINES)
    for name, table in counts.items():
        seeds = len(SEEDS) if name == "random" else 1
        assert table.shape == (BUDGET, WIDTH) and table.sum() == TEST_SLICES * seeds * BUDGET
        np.testing.assert_array_equal(table.sum(axis=1), TEST_SLICES * seeds)  # one column a step per episode
    order = low_frequency_order(WIDTH)
    for step in range(BUDGET):  # low-to-high: the same column on every slice
        assert counts["lowtohigh"][step, order[INITIAL_LINES + step]] == TEST_SLICES
    figure = masks_figure(counts)
    width, height = figure.get_size_inches() * DPI
    pyplot().close(figure)
    from PIL import Image

    assert Image.open(out / "masks.png").size == (round(width), round(height))


@pytest.fixture(scope="module")
def examples_of_the_full_run(full_run, singlecoil_root):
    """What evaluate_policies drew into examples.png: (examples, policies), from its rows again."""
    out, _ = full_run
    setup = make_setup(singlecoil_root)
    env = make_batched_env(setup, singlecoil_root / "singlecoil_test", setup.batch_size)
    drawn = {}
    original = evaluate_module.plot_examples
    evaluate_module.plot_examples = lambda examples, policies, path, title: drawn.update(e=examples, p=policies)
    try:
        evaluate_module.write_examples(env, read_rows_csv(out / "metrics.csv"), setup, BASELINES, out / "unused.png")
    finally:
        evaluate_module.plot_examples = original
    return drawn["e"], drawn["p"]


def test_examples_replay_the_recorded_order_to_the_end_of_the_budget(full_run, examples_of_the_full_run, test_volume):
    out, _ = full_run
    examples, policies = examples_of_the_full_run
    assert policies == BASELINES
    assert [example.name for example in examples] == [f"{test_volume} slice {s}" for s in range(TEST_SLICES)]
    rows = read_rows_csv(out / "metrics.csv")
    final = {(r["policy"], r["slice"]): r for r in rows if r["step"] == BUDGET and r["seed"] == SEEDS[0]}
    for index, example in enumerate(examples):
        columns = episode_columns(rows, "lowtohigh")[index]
        for policy, replay in example.replays.items():
            row = final[(policy, index)]
            assert example.sampling_rates[policy] == row["sampling_rate"]
            for name in METRIC_NAMES:  # the replayed reconstruction is the one the rollout scored
                assert replay.metrics[name] == pytest.approx(row[name], rel=1e-6, abs=1e-9), (policy, name)
            assert replay.acquired.sum() == INITIAL_LINES + BUDGET and replay.initial.sum() == INITIAL_LINES
        lowtohigh = example.replays["lowtohigh"]
        assert set(np.flatnonzero(lowtohigh.acquired & ~lowtohigh.initial)) == set(columns[1:])


def test_examples_png_shows_target_reconstructions_errors_and_masks_on_shared_scales(
    full_run, examples_of_the_full_run
):
    out, _ = full_run
    examples, policies = examples_of_the_full_run
    figure = examples_figure(examples, policies)
    axes = np.array(figure.axes[: 3 * TEST_SLICES * (1 + len(policies))]).reshape(3 * TEST_SLICES, -1)
    for index, example in enumerate(examples):
        images, errors, masks = axes[3 * index : 3 * index + 3]
        target = example.replays["lowtohigh"].target
        assert {axis.images[0].get_clim() for axis in images} == {(0.0, float(target.max()))}  # one scale a row
        error_scales = {axis.images[0].get_clim() for axis in errors[1:]}
        assert len(error_scales) == 1 and min(error_scales)[0] == 0.0
        largest = max(np.abs(r.reconstruction - target).max() for r in example.replays.values())
        assert min(error_scales)[1] == pytest.approx(largest)
        np.testing.assert_array_equal(images[0].images[0].get_array(), target)
        for column, policy in enumerate(policies, start=1):
            np.testing.assert_array_equal(images[column].images[0].get_array(), example.replays[policy].reconstruction)
            assert masks[column].images[0].get_array().shape == (1, WIDTH, 3)
        assert not errors[0].images and not masks[0].images  # the first column labels the rows
    width, height = figure.get_size_inches() * DPI
    pyplot().close(figure)
    from PIL import Image

    assert Image.open(out / "examples.png").size == (round(width), round(height))


def test_examples_at_a_chosen_sampling_rate(singlecoil_root, tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(evaluate_module, "plot_examples", lambda examples, *args: drawn.update(examples=examples))
    rate = (INITIAL_LINES + 1) / WIDTH  # one column after the initial lines
    setup = make_setup(singlecoil_root, seeds=(0,), examples=2, examples_sampling_rate=rate)
    evaluate_policies(setup, ["lowtohigh", "equispaced"], tmp_path, progress=False)
    assert [example.name.split()[-1] for example in drawn["examples"]] == ["0", "2"]  # the central half of 3 slices
    for example in drawn["examples"]:
        assert example.sampling_rates == {"lowtohigh": rate, "equispaced": rate}
        assert all(replay.acquired.sum() == INITIAL_LINES + 1 for replay in example.replays.values())


@pytest.mark.parametrize(
    ("names", "count", "expected"),
    [
        ([("a.h5", s) for s in range(3)], 3, [0, 1, 2]),
        ([("a.h5", s) for s in range(3)], 1, [1]),
        ([(f"{f}.h5", s) for f in "abcde" for s in range(10)], 3, [4, 24, 44]),  # middle slices of a, c, e
        ([(f"{f}.h5", s) for f in "ba" for s in range(4)], 3, [5, 6, 2]),  # a: slices 1, 2; b: slice 2
        ([("a.h5", 2), ("a.h5", 0), ("a.h5", 1)], 1, [2]),  # by slice number, not position
    ],
)
def test_example_slices_are_central_slices_of_volumes_spread_over_the_files(names, count, expected):
    assert example_slices(names, count) == expected


def test_per_volume_metrics_are_fastmris_on_the_replayed_volume(full_run, singlecoil_root):
    """The volume's SSIM and PSNR as ``fastmri.evaluate`` computes them on the stacked slices, for the
    low-to-high reconstructions at every step (replayed), equal the per-volume curves from the CSV."""
    fastmri_evaluate = pytest.importorskip("fastmri.evaluate")
    out, _ = full_run
    rows = [r for r in read_rows_csv(out / "metrics.csv") if r["policy"] == "lowtohigh"]
    curves = volume_curves(rows)
    setup = make_setup(singlecoil_root)
    env = make_batched_env(setup, singlecoil_root / "singlecoil_test", TEST_SLICES)
    columns = episode_columns(rows, "lowtohigh")
    for step in range(BUDGET + 1):
        orders = [columns[s][1 : step + 1] for s in range(TEST_SLICES)]
        replays = replay_orders(env.unwrapped.episodes, list(range(TEST_SLICES)), orders)
        target = np.stack([r.target for r in replays]).astype(np.float64)
        volume = np.stack([r.reconstruction for r in replays]).astype(np.float64)
        assert [r.data_range for r in replays] == pytest.approx([target.max()] * TEST_SLICES)  # the volume's max
        assert fastmri_evaluate.ssim(target, volume)[0] == pytest.approx(curves["ssim"][step], abs=1e-5)
        assert fastmri_evaluate.psnr(target, volume) == pytest.approx(curves["psnr"][step], abs=1e-4)
    summary = read_summary(out / "summary.json")["lowtohigh"]
    assert summary["final_psnr_volume"] == {"mean": pytest.approx(curves["psnr"][-1]), "std": 0.0, "n": 1}
    assert summary["final_ssim_volume"]["mean"] == pytest.approx(curves["ssim"][-1])


@pytest.mark.parametrize("index", [0, 2])  # slice 2 ran in the padded second chunk
def test_rollout_rows_equal_a_single_env_stepped_with_the_same_actions(full_run, singlecoil_root, test_volume, index):
    out, _ = full_run
    rows = sorted(
        (r for r in read_rows_csv(out / "partial" / "lowtohigh_seed0.csv") if r["slice"] == index),
        key=lambda r: r["step"],
    )
    assert [r["step"] for r in rows] == list(range(BUDGET + 1))
    env = gym.make(
        ENV_ID,
        data_path=singlecoil_root / "singlecoil_test",
        budget=BUDGET,
        initial_lines=INITIAL_LINES,
        reward_metric="ssim",
    )
    assert env.unwrapped.episodes.source.describe(index) == (test_volume, index)
    policy = LowToHighPolicy(WIDTH)
    _, info = env.reset(options={"index": index})
    infos = [info]
    for _ in range(BUDGET):
        action, _ = policy.predict(None, action_mask=np.asarray(info["action_mask"], dtype=bool)[None])
        _, _, terminated, _, info = env.step(int(action[0]))
        infos.append(info)
    assert terminated
    for row, info in zip(rows, infos):
        assert row["file"] == test_volume
        assert row["acquired_columns"] == info["acquired_columns"]
        assert row["sampling_rate"] == info["sampling_rate"]
        for name in METRIC_NAMES:
            assert row[name] == pytest.approx(info[name], rel=1e-6, abs=1e-9), (row["step"], name)


# ------------------------------------------------------------------------ resumption
def test_an_interrupted_evaluation_rerun_writes_the_same_files(full_run, singlecoil_root, tmp_path):
    reference, _ = full_run
    out = tmp_path / "evaluation_b"
    setup = make_setup(singlecoil_root)
    evaluate_policies(setup, BASELINES, out, progress=False)
    # a crash after random seed 0 and lowtohigh, equispaced, lbcs were stored: the rest and the report lost
    for name in ("random_seed1.csv", "oracle_seed0.csv"):
        (out / "partial" / name).unlink()
    for name in (*REPORT_FILES, "curves.png", "masks.png", "examples.png"):
        (out / name).unlink()
    (out / "partial" / "tmpabc123.tmp").write_text("policy,seed\nhalf a line")  # a temporary file of the crash
    kept = {
        name: (out / "partial" / name).read_bytes()
        for name in partial_names() - {"random_seed1.csv", "oracle_seed0.csv"}
    }
    evaluate_policies(setup, BASELINES, out, progress=False)
    for name in REPORT_FILES:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert all((out / name).is_file() for name in ("curves.png", "masks.png", "examples.png"))
    for name in partial_names():
        assert (out / "partial" / name).read_bytes() == (reference / "partial" / name).read_bytes(), name
    for name, content in kept.items():  # resumed, not rewritten differently
        assert (out / "partial" / name).read_bytes() == content


def test_stored_rollouts_are_reused_not_recomputed(singlecoil_root, tmp_path, monkeypatch):
    import mri_rl.evaluation.evaluate as evaluate_module

    setup = make_setup(singlecoil_root, seeds=(0,))
    evaluate_policies(setup, ["lowtohigh"], tmp_path, progress=False)
    before = (tmp_path / "metrics.csv").read_bytes()

    def fail(*args, **kwargs):
        raise AssertionError("a stored rollout was computed again")

    monkeypatch.setattr(evaluate_module, "rollout_policy", fail)
    evaluate_policies(setup, ["lowtohigh"], tmp_path, progress=False)
    assert (tmp_path / "metrics.csv").read_bytes() == before


def test_the_oracle_weighing_ssim_only_rolls_as_the_ssim_oracle_and_says_so(singlecoil_root, tmp_path):
    setup = make_setup(singlecoil_root, seeds=(0,), oracle_weights=(1.0, 0.0))
    evaluate_policies(setup, ["oracle", "oracle_ssim_psnr"], tmp_path, progress=False)
    rows = read_rows_csv(tmp_path / "metrics.csv")
    rolled = {
        name: [{k: v for k, v in row.items() if k != "policy"} for row in rows if row["policy"] == name]
        for name in ("oracle", "oracle_ssim_psnr")
    }
    assert rolled["oracle"] == rolled["oracle_ssim_psnr"] and len(rolled["oracle"]) == TEST_SLICES * (BUDGET + 1)
    assert "oracle_ssim_psnr weighs SSIM 1, PSNR 0" in (tmp_path / "summary.md").read_text()
    assert json.loads((tmp_path / "summary.json").read_text())["record"]["settings"]["oracle_weights"] == [1.0, 0.0]


def test_a_weighted_oracle_rollout_is_reused_under_its_weights_only(singlecoil_root, tmp_path, monkeypatch):
    weighted = make_setup(singlecoil_root, seeds=(0,), oracle_weights=(2.0, 1.0))
    evaluate_policies(weighted, ["oracle_ssim_psnr"], tmp_path, progress=False)
    before = (tmp_path / "metrics.csv").read_bytes()
    with pytest.raises(
        RecordMismatchError,
        match=re.escape(
            "oracle_ssim_psnr_seed0.csv was made under other settings than this run "
            "(settings.oracle_weights: [2.0, 1.0] vs (none); recorded vs now)"
        ),
    ):
        evaluate_policies(make_setup(singlecoil_root, seeds=(0,)), ["oracle_ssim_psnr"], tmp_path, progress=False)

    def fail(*args, **kwargs):
        raise AssertionError("a stored rollout was computed again")

    monkeypatch.setattr(evaluate_module, "rollout_policy", fail)
    evaluate_policies(weighted, ["oracle_ssim_psnr"], tmp_path, progress=False)
    assert (tmp_path / "metrics.csv").read_bytes() == before


def test_the_rollout_oracle_rolls_over_the_lbcs_order_and_is_never_below_it(singlecoil_root, tmp_path):
    """``oracle_rollout`` learns (or reads) the LBCS order, records what it was made with, is drawn and
    noted as reading the target, and ends at or above LBCS's SSIM AUC (the reward's) on average (on
    every slice: tests/policies/test_rollout_oracle.py)."""
    setup = make_setup(singlecoil_root, seeds=(0,), lbcs_slices=2)
    evaluate_policies(setup, ["oracle_rollout", "lbcs"], tmp_path, progress=False)
    record = json.loads((tmp_path / "partial" / "oracle_rollout_seed0.csv.record.json").read_text())["record"]
    assert record["settings"]["rollout_candidates"] == 5 and record["settings"]["lbcs_slices"] == 2
    assert "lbcs_train" in record["data"]
    pair = paired_differences(read_rows_csv(tmp_path / "metrics.csv"))[("oracle_rollout", "lbcs")]
    assert pair["n"] == TEST_SLICES and pair["mean"] >= -1e-9
    assert "oracle_rollout reads the target too" in (tmp_path / "summary.md").read_text()


# ------------------------------------------------------------------ learned policies
def train_tiny_dqn(
    folder: Path, path: Path, steps: int = 50, task: AcquisitionTask = TASK, **observations: bool
) -> Path:
    """A DQN trained ``steps`` steps and saved at ``path``; ``observations``: optional keys (column_energy=True)."""
    env = gym.make_vec(
        ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", data_path=folder, task=task, **observations
    )
    agent = DQN(
        env,
        learning_starts=10,
        batch_size=8,
        buffer_size=200,
        train_freq=2,
        target_update_interval=20,
        net_arch=(16,),
        seed=0,
    )
    agent.learn(steps, progress_bar=False)
    assert agent.num_timesteps >= steps
    agent.save(path)
    return path


def test_a_learned_dqn_policy_is_evaluated(singlecoil_root, tmp_path, test_volume):
    checkpoint = train_tiny_dqn(singlecoil_root / "singlecoil_train", tmp_path / "dqn.pt")
    out = tmp_path / "out"
    summary = evaluate_policies(make_setup(singlecoil_root), ["lowtohigh", f"dqn={checkpoint}"], out, progress=False)
    assert set(summary) == {"lowtohigh", "dqn"}
    assert {p.name for p in (out / "partial").glob("*.csv")} == {"lowtohigh_seed0.csv", "dqn_seed0.csv"}
    rows = [r for r in read_rows_csv(out / "metrics.csv") if r["policy"] == "dqn"]
    assert len(rows) == TEST_SLICES * (BUDGET + 1)
    assert {(r["seed"], r["file"], r["slice"]) for r in rows} == {(0, test_volume, s) for s in range(TEST_SLICES)}
    assert all(r["acquired_columns"] == INITIAL_LINES + r["step"] for r in rows)  # legal actions only


def test_policies_that_read_different_optional_observations_are_evaluated_side_by_side(singlecoil_root, tmp_path):
    """One evaluation env serves both: it observes every optional key that any of them reads."""
    train = singlecoil_root / "singlecoil_train"
    spectral = train_tiny_dqn(train, tmp_path / "spectral.pt", steps=20, column_spectrum=True)
    energetic = train_tiny_dqn(train, tmp_path / "energetic.pt", steps=20, column_energy=True)
    measured = train_tiny_dqn(train, tmp_path / "measured.pt", steps=20, measured_energy=True)
    agents = [load_agent(spectral), load_agent(energetic), load_agent(measured)]
    assert optional_observations(agents) == ("column_spectrum", "column_energy", "measured_energy")
    assert optional_observations(agents[1:2]) == ("column_energy",)
    specs = [f"spectral={spectral}", f"energetic={energetic}", f"measured={measured}"]
    summary = evaluate_policies(make_setup(singlecoil_root), specs, tmp_path / "out", progress=False)
    assert set(summary) == {"spectral", "energetic", "measured"}


def test_a_policy_that_reads_the_unets_feature_maps_is_evaluated_with_them(singlecoil_root, tmp_path):
    """The evaluation env observes the feature maps that the policy was trained on (16 x 16 images:
    4 maps of 16 x 16), and the policy's rollout acquires legal columns only."""
    exported = export_reconstructor(
        UnetReconstructor(chans=4, num_pool_layers=1, recon_size=(16, 16)), tmp_path / "u.pt"
    )
    task = TASK.with_changes(reconstructor=str(exported))
    checkpoint = train_tiny_dqn(
        singlecoil_root / "singlecoil_train", tmp_path / "dqn.pt", steps=20, task=task, reconstructor_features=True
    )
    agent = load_agent(checkpoint)
    assert agent.observation_space["reconstructor_features"].shape == (4, 16, 16)
    assert optional_observations([agent]) == ("reconstructor_features",)
    out = tmp_path / "out"
    evaluate_policies(make_setup(singlecoil_root, seeds=(0,), task=task), [f"dqn={checkpoint}"], out, progress=False)
    rows = read_rows_csv(out / "metrics.csv")
    assert len(rows) == TEST_SLICES * (BUDGET + 1)
    assert all(r["acquired_columns"] == INITIAL_LINES + r["step"] for r in rows)


def save_untrained_reinforce(data: Path, path: Path, seed: int = 0, task: AcquisitionTask = TASK) -> Path:
    """A REINFORCE agent of ``seed`` made on ``task`` over ``data``, saved untrained at ``path``."""
    env = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", data_path=data, task=task)
    return REINFORCE(env, net_arch=(16,), seed=seed).save(path)


def test_a_frequency_prior_of_large_weight_rolls_the_lowtohigh_order(singlecoil_root, tmp_path):
    checkpoint = save_untrained_reinforce(singlecoil_root / "singlecoil_train", tmp_path / "pg.pt")
    setup, out = make_setup(singlecoil_root, seeds=(0,)), tmp_path / "out"
    evaluate_policies(setup, ["lowtohigh", f"pg={checkpoint}", f"pg_low={checkpoint}@1000"], out, progress=False)
    rows = read_rows_csv(out / "metrics.csv")
    assert episode_columns(rows, "pg_low") == episode_columns(rows, "lowtohigh")
    settings = json.loads((out / "partial" / "pg_low_seed0.csv.record.json").read_text())["record"]["settings"]
    assert settings["frequency_prior"] == 1000.0
    plain = json.loads((out / "partial" / "pg_seed0.csv.record.json").read_text())["record"]["settings"]
    assert "frequency_prior" not in plain  # records of policies without a prior are as before
    with pytest.raises(RecordMismatchError, match="frequency_prior"):
        evaluate_policies(setup, [f"pg_low={checkpoint}@0.5"], out, progress=False)


def test_an_ensemble_of_one_policy_twice_rolls_that_policy_and_records_each_member(singlecoil_root, tmp_path):
    train = singlecoil_root / "singlecoil_train"
    first, other = (
        save_untrained_reinforce(train, tmp_path / "a.pt"),
        save_untrained_reinforce(train, tmp_path / "c.pt", 1),
    )
    copy = tmp_path / "b.pt"
    copy.write_bytes(first.read_bytes())
    setup, out = make_setup(singlecoil_root, seeds=(0,)), tmp_path / "out"
    evaluate_policies(setup, [f"pg={first}", f"twice={first}+{copy}", f"pair={first}+{other}"], out, progress=False)
    rows = read_rows_csv(out / "metrics.csv")
    assert episode_columns(rows, "twice") == episode_columns(rows, "pg")
    assert episode_columns(rows, "pair") != episode_columns(rows, "pg")  # a member of another seed changes the orders
    settings = json.loads((out / "partial" / "twice_seed0.csv.record.json").read_text())["record"]["settings"]
    assert settings["checkpoints"] == [checkpoint_fingerprint(first), checkpoint_fingerprint(copy)]
    copy.write_bytes(other.read_bytes())  # a member changed since: its stored rollout is refused
    with pytest.raises(RecordMismatchError, match="checkpoints"):
        evaluate_policies(setup, [f"twice={first}+{copy}"], out, progress=False)


def test_a_group_of_policies_rolled_alone_gets_their_shares_and_spread_in_the_summary(singlecoil_root, tmp_path):
    train = singlecoil_root / "singlecoil_train"
    first, second = (save_untrained_reinforce(train, tmp_path / f"{seed}.pt", seed) for seed in (0, 1))
    setup, out = make_setup(singlecoil_root, seeds=(0,)), tmp_path / "out"
    policies = ["lbcs", "oracle", f"a={first}", f"b={second}"]
    evaluate_policies(setup, policies, out, progress=False, groups={"seeds": ["a", "b"]})
    differences = paired_differences(read_rows_csv(out / "metrics.csv"))
    shares = [room_share(differences, name) for name in ("a", "b")]
    spread = f"{np.mean(shares):+.1%} ± {np.std(shares, ddof=1):.1%}"
    markdown = (out / "summary.md").read_text()
    assert "## Members one by one (ensembles and groups), against lbcs\n" in markdown
    assert f"| seeds | a, b | {shares[0]:+.1%}, {shares[1]:+.1%} | {spread} |" in markdown


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ({"a": ["a", "b"]}, "group 'a': the name is taken by a policy"),
        ({"g": ["a"]}, "group 'g': two or more different policies are needed, got ['a']"),
        ({"g": ["a", "a"]}, "group 'g': two or more different policies are needed, got ['a', 'a']"),
        ({"g": ["a", "c"]}, "group 'g': ['c'] are not among the policies rolled (['lbcs', 'a', 'b'])"),
    ],
)
def test_a_group_that_is_not_two_rolled_policies_under_a_new_name_is_refused(groups, message, tmp_path):
    check_groups({}, parse_policy_specs(["lbcs", "a=x.pt", "b=y.pt"]))
    with pytest.raises(ValueError, match=re.escape(message)):
        check_groups(groups, parse_policy_specs(["lbcs", "a=x.pt", "b=y.pt"]))
    with pytest.raises(ValueError, match=re.escape(message)):  # before anything is read or rolled
        evaluate_policies(make_setup(tmp_path / "none"), ["lbcs", "a=x.pt", "b=y.pt"], tmp_path / "out", groups=groups)
    assert not (tmp_path / "out").exists()


def test_an_ensemble_of_members_trained_on_other_tasks_is_refused_before_any_rollout(singlecoil_root, tmp_path):
    train = singlecoil_root / "singlecoil_train"
    first = save_untrained_reinforce(train, tmp_path / "a.pt")
    longer = save_untrained_reinforce(
        train, tmp_path / "b.pt", task=AcquisitionTask(budget=BUDGET + 1, initial_lines=2)
    )
    with pytest.raises(ValueError, match=f"members must be trained on one task and data, but {longer} and {first}"):
        evaluate_policies(make_setup(singlecoil_root), [f"e={first}+{longer}"], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("suffix", ["@0.1", "+{other}"], ids=["frequency prior", "ensemble"])
def test_a_frequency_prior_or_ensemble_of_dqns_is_refused_before_any_rollout(singlecoil_root, tmp_path, suffix):
    checkpoint = train_tiny_dqn(singlecoil_root / "singlecoil_train", tmp_path / "dqn.pt", steps=12)
    other = tmp_path / "copy.pt"
    other.write_bytes(checkpoint.read_bytes())
    spec = f"dqn={checkpoint}" + suffix.format(other=other)
    with pytest.raises(ValueError, match="a frequency prior or an ensemble needs policy-network agents"):
        evaluate_policies(make_setup(singlecoil_root), [spec], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_of_another_geometry_is_refused(singlecoil_root, tmp_path):
    other = tmp_path / "wide"
    spec = SyntheticSpec(challenge="singlecoil", num_slices=2, size=16, kspace_width=24, padding=3)
    write_synthetic_dataset(other, spec, {"train": 1}, seed=1, progress=False)
    checkpoint = train_tiny_dqn(other / "singlecoil_train", tmp_path / "wide.pt", steps=12)
    assert DQN.load(checkpoint).action_space == spaces.Discrete(24)  # a good checkpoint, of 24 columns
    with pytest.raises(ValueError, match="observation/action spaces"):
        evaluate_policies(make_setup(singlecoil_root), [f"dqn={checkpoint}"], tmp_path / "out", progress=False)


def test_a_file_that_is_not_an_agent_checkpoint_is_refused(singlecoil_root, tmp_path):
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be loaded"):
        evaluate_policies(make_setup(singlecoil_root), [f"dqn={bogus}"], tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "metrics.csv").exists()


# ------------------------------------------------------------------- argument errors
def test_parse_policy_specs():
    assert parse_policy_specs(["random", "dqn=runs/a/model.pt", "oracle", "pg=runs/@b/model.pt@0.25"]) == [
        PolicySpec("random"),
        PolicySpec("dqn", (Path("runs/a/model.pt"),)),
        PolicySpec("oracle"),
        PolicySpec("pg", (Path("runs/@b/model.pt"),), 0.25),
    ]
    assert parse_policy_specs(["pg=runs/@b/model.pt"]) == [PolicySpec("pg", (Path("runs/@b/model.pt"),))]
    assert parse_policy_specs(["e=a.pt+runs/@b/b.pt@0.1"]) == [
        PolicySpec("e", (Path("a.pt"), Path("runs/@b/b.pt")), 0.1)
    ]


def test_an_ensemble_s_members_are_the_policies_that_roll_its_checkpoints_alone():
    specs = parse_policy_specs(
        ["lbcs", "a=x.pt", "b=y.pt", "bp=y.pt@0.1", "e=x.pt+y.pt", "ep=y.pt+x.pt@0.1", "f=x.pt+z.pt"]
    )
    # members in the ensemble's order; bp has a prior, so it is not y alone; z.pt is not rolled alone
    assert ensemble_members(specs) == {"e": ("a", "b"), "ep": ("b", "a")}
    assert ensemble_members(parse_policy_specs(["a=x.pt", "b=y.pt"])) == {}
    # one file written two ways is one member
    assert ensemble_members(parse_policy_specs(["a=./runs/x.pt", "b=y.pt", "e=runs/../runs/x.pt+y.pt"])) == {
        "e": ("a", "b")
    }


@pytest.mark.parametrize("checkpoints", ["a.pt+", "+a.pt", "a.pt++b.pt", "a.pt+a.pt"])
def test_an_ensemble_of_empty_or_repeated_checkpoints_is_refused(checkpoints):
    with pytest.raises(ValueError, match=f"'e={re.escape(checkpoints)}': an ensemble's checkpoints, joined by"):
        parse_policy_specs([f"e={checkpoints}"])


@pytest.mark.parametrize("weight", ["-1", "x", "", "nan", "inf"])
def test_a_frequency_prior_weight_that_is_not_a_number_at_least_zero_is_refused(weight):
    with pytest.raises(ValueError, match=f"'pg=a.pt@{weight}': the frequency prior's weight after '@' must be"):
        parse_policy_specs([f"pg=a.pt@{weight}"])


@pytest.mark.parametrize("specs", [["bogus"], ["random", "Random"], ["dqn"], ["random", "lowtohigh", "ppo"]])
def test_unknown_policy_names_raise(singlecoil_root, tmp_path, specs):
    with pytest.raises(ValueError, match="unknown policy"):
        evaluate_policies(make_setup(singlecoil_root), specs, tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("specs", [["random", "random"], ["dqn=a.pt", "dqn=b.pt"], ["lowtohigh", "lowtohigh=a.pt"]])
def test_duplicate_policy_names_raise(singlecoil_root, tmp_path, specs):
    with pytest.raises(ValueError, match="unique"):
        evaluate_policies(make_setup(singlecoil_root), specs, tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


def test_no_seed_raises(singlecoil_root, tmp_path):
    with pytest.raises(ValueError, match="seed"):
        evaluate_policies(make_setup(singlecoil_root, seeds=()), ["random"], tmp_path, progress=False)


ORACLE_WEIGHTS = "oracle_weights: expected one finite weight >= 0 per metric of ['ssim', 'psnr'], not all 0"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 0}, "batch_size: expected an integer >= 1, got 0"),
        ({"batch_size": -1}, "batch_size: expected an integer >= 1, got -1"),
        ({"batch_size": 2.5}, "batch_size: expected an integer >= 1, got 2.5"),
        ({"lbcs_slices": 0}, "lbcs_slices: expected an integer >= 1, got 0"),
        ({"seeds": ()}, "seeds: give at least one seed"),
        ({"seeds": (-1,)}, "seeds: expected an integer >= 0, got -1"),
        ({"seeds": (0, 1.5)}, "seeds: expected an integer >= 0, got 1.5"),
        ({"seeds": (0, 0)}, "seeds: expected distinct seeds, got [0, 0]"),
        ({"seeds": 3}, "seeds: expected a sequence of integers >= 0, got 3"),
        ({"split": "training"}, "split: expected one of train, val, test, got 'training'"),
        ({"device": "nonsense"}, "device 'nonsense' is not a torch device name; expected cpu, cuda, cuda:N or mps"),
        ({"device": "cuda:7"}, "device 'cuda:7' is not available on this machine: torch.cuda.is_available() is False"),
        ({"examples": 0}, "examples: expected an integer >= 1, got 0"),
        ({"examples_sampling_rate": 0.0}, "examples_sampling_rate: expected a number in (0, 1] or None, got 0.0"),
        ({"examples_sampling_rate": 1.5}, "examples_sampling_rate: expected a number in (0, 1] or None, got 1.5"),
        ({"examples_sampling_rate": "all"}, "examples_sampling_rate: expected a finite number >= 0, got 'all'"),
        ({"oracle_weights": (1.0,)}, f"{ORACLE_WEIGHTS}, got [1.0]"),
        ({"oracle_weights": (0, 0)}, f"{ORACLE_WEIGHTS}, got [0, 0]"),
        ({"oracle_weights": (-1.0, 1.0)}, f"{ORACLE_WEIGHTS}, got [-1.0, 1.0]"),
        ({"oracle_weights": (float("inf"), 1.0)}, f"{ORACLE_WEIGHTS}, got [inf, 1.0]"),
        ({"rollout_candidates": -1}, "rollout_candidates: expected an integer >= 0, got -1"),
        ({"rollout_candidates": 1.5}, "rollout_candidates: expected an integer >= 0, got 1.5"),
    ],
)
def test_bad_settings_are_refused_when_the_setup_is_made(tmp_path, monkeypatch, overrides, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a machine with a GPU
    with pytest.raises(ValueError) as raised:
        make_setup(tmp_path / "no_such_data", **overrides)
    assert str(raised.value) == message


def test_setup_seeds_become_a_tuple_of_ints(tmp_path):
    setup = make_setup(tmp_path, seeds=[np.int64(3), 1])
    assert setup.seeds == (3, 1) and all(type(seed) is int for seed in setup.seeds)


@pytest.mark.parametrize("policy", ["lbcs", "oracle_rollout"])
def test_lbcs_on_a_plain_folder_needs_training_data(singlecoil_root, tmp_path, policy):
    plain = singlecoil_root / "singlecoil_test"  # a folder of .h5 files, no train split beside it
    message = (
        f"the LBCS order (of lbcs, lbcs_kind and oracle_rollout) is learned on training slices: "
        f"{plain / 'singlecoil_train'} does not exist; pass --lbcs-train-data"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        evaluate_policies(make_setup(plain), [policy], tmp_path / "out", progress=False)
    # with the training data named, it runs (the order is learned on the train split)
    setup = make_setup(plain, seeds=(0,), lbcs_train_data=singlecoil_root, lbcs_slices=2)
    summary = evaluate_policies(setup, ["lbcs"], tmp_path / "ok", progress=False)
    assert summary["lbcs"]["ssim_auc"]["n"] == TEST_SLICES
    record = json.loads((tmp_path / "ok" / "lbcs_order.json").read_text())["record"]
    assert record["data"]["lbcs_train"]["folder"] == str((singlecoil_root / "singlecoil_train").resolve())
    assert record["settings"]["lbcs_slices"] == [0, 5]


def test_lbcs_learns_on_the_training_slices_of_the_evaluated_kspace_width(singlecoil_root, tmp_path):
    """fastMRI knee mixes 368 and 372 columns: an order learned on the folder's most common width
    would name other frequencies where the evaluated slices are narrower."""
    mixed = tmp_path / "mixed"
    wide = SyntheticSpec(challenge="singlecoil", num_slices=3, size=16, kspace_width=20)
    write_synthetic_dataset(mixed, wide, {"train": 3}, seed=5, progress=False)  # 9 slices 20 wide: the most common
    for volume in (singlecoil_root / "singlecoil_train").glob("*.h5"):  # and the 6 slices 16 wide
        shutil.copy(volume, mixed / "singlecoil_train" / volume.name)
    plain = singlecoil_root / "singlecoil_test"
    orders = {}
    for name, train in (("mixed", mixed), ("only_16", singlecoil_root)):
        setup = make_setup(plain, seeds=(0,), lbcs_train_data=train, lbcs_slices=6)
        evaluate_policies(setup, ["lbcs"], tmp_path / name, progress=False)
        orders[name] = json.loads((tmp_path / name / "lbcs_order.json").read_text())["order"]
    assert orders["mixed"] == orders["only_16"]
    shutil.rmtree(mixed / "singlecoil_train")
    write_synthetic_dataset(mixed, wide, {"train": 1}, seed=5, progress=False)  # no slice 16 wide is left
    setup = make_setup(plain, seeds=(0,), lbcs_train_data=mixed)
    with pytest.raises(
        ValueError, match=r"training slices of the evaluated k-space shape.*\(32, 16\); found \[\(32, 20\)\]"
    ):
        evaluate_policies(setup, ["lbcs"], tmp_path / "none", progress=False)


def test_metrics_csv_is_plain_csv(full_run):
    out, _ = full_run
    with (out / "metrics.csv").open(newline="") as f:
        records = list(csv.reader(f))
    assert all(len(record) == 12 for record in records)
    assert b"\r" not in (out / "metrics.csv").read_bytes()


# ------------------------------------------------------- records: nothing reused silently
def test_a_rerun_with_another_budget_is_refused_then_overwritten(singlecoil_root, tmp_path):
    out = tmp_path / "out"
    evaluate_policies(make_setup(singlecoil_root, seeds=(0,)), ["lowtohigh"], out, progress=False)
    before = (out / "summary.json").read_bytes()
    other = make_setup(singlecoil_root, seeds=(0,), task=TASK.with_changes(budget=BUDGET + 1))
    with pytest.raises(
        RecordMismatchError,
        match=r"lowtohigh_seed0.csv was made under other settings than this run "
        r"\(task.budget: 3 vs 4; recorded vs now\).*--overwrite",
    ):
        evaluate_policies(other, ["lowtohigh"], out, progress=False)
    assert (out / "summary.json").read_bytes() == before  # nothing lost
    summary = evaluate_policies(other, ["lowtohigh"], out, progress=False, overwrite=True)
    assert {r["step"] for r in read_rows_csv(out / "metrics.csv")} == set(range(BUDGET + 2))
    assert json.loads((out / "summary.json").read_text())["record"]["task"]["budget"] == BUDGET + 1
    assert summary["lowtohigh"]["ssim_auc"]["n"] == TEST_SLICES


def test_a_rerun_with_another_reconstructor_is_refused(singlecoil_root, tmp_path):
    out = tmp_path / "out"
    evaluate_policies(make_setup(singlecoil_root, seeds=(0,)), ["lowtohigh"], out, progress=False)
    exported = export_reconstructor(
        UnetReconstructor(chans=2, num_pool_layers=1, recon_size=(16, 16)), tmp_path / "unet.pt"
    )
    other = make_setup(singlecoil_root, seeds=(0,), task=TASK.with_changes(reconstructor=str(exported)))
    with pytest.raises(
        RecordMismatchError,
        match=r"task.reconstructor: zero_filled \(zero_filled\) vs "
        + re.escape(f"{exported} ({checkpoint_fingerprint(exported)})"),
    ):
        evaluate_policies(other, ["lowtohigh"], out, progress=False)


def test_an_lbcs_cache_of_another_task_is_refused(singlecoil_root, tmp_path):
    out = tmp_path / "out"
    evaluate_policies(make_setup(singlecoil_root, seeds=(0,), lbcs_slices=2), ["lbcs"], out, progress=False)
    for rollout in (out / "partial").iterdir():  # only the cached order is left to reuse
        rollout.unlink()
    other = make_setup(singlecoil_root, seeds=(0,), lbcs_slices=2, task=TASK.with_changes(reward_metric="mse"))
    with pytest.raises(
        RecordMismatchError,
        match=r"lbcs_order.json was made under other settings than this run "
        r"\(task.reward_metric: ssim vs mse",
    ):
        evaluate_policies(other, ["lbcs"], out, progress=False)


def test_a_dqn_trained_with_budget_8_is_not_evaluated_with_budget_16(singlecoil_root, tmp_path):
    checkpoint = train_tiny_dqn(
        singlecoil_root / "singlecoil_train", tmp_path / "dqn.pt", steps=20, task=TASK.with_changes(budget=8)
    )
    trained = DQN.load(checkpoint).record["task"]
    assert AcquisitionTask.from_dict(trained) == TASK.with_changes(
        budget=8, kspace_shape=(32, WIDTH), reconstructor_fingerprint="zero_filled"
    )
    setup = make_setup(singlecoil_root, seeds=(0,), task=TASK.with_changes(budget=16))
    with pytest.raises(
        ValueError,
        match=r"dqn.pt was trained on another task than this evaluation's "
        r"\(budget: 8 vs 16; trained vs evaluated\).*--allow-task-mismatch",
    ):
        evaluate_policies(setup, [f"dqn={checkpoint}"], tmp_path / "refused", progress=False)
    assert not (tmp_path / "refused").exists()
    setup.allow_task_mismatch = True
    evaluate_policies(setup, [f"dqn={checkpoint}"], tmp_path / "allowed", progress=False)
    record = json.loads((tmp_path / "allowed" / "summary.json").read_text())["record"]
    assert record["settings"]["task_mismatch"] == {"dqn": ["budget: 8 vs 16"]}
    assert "summary" not in record and record["task"]["budget"] == 16


def test_a_policy_trained_on_the_evaluated_files_is_refused(singlecoil_root, tmp_path, test_volume):
    checkpoint = train_tiny_dqn(singlecoil_root / "singlecoil_test", tmp_path / "dqn.pt", steps=12)
    with pytest.raises(ValueError, match=f"1 file.*also in the training set of policy dqn.*{test_volume}"):
        evaluate_policies(
            make_setup(singlecoil_root, seeds=(0,)), [f"dqn={checkpoint}"], tmp_path / "out", progress=False
        )


def test_a_folder_named_for_another_split_is_refused_unless_asked_for(singlecoil_root, tmp_path):
    train = singlecoil_root / "singlecoil_train"
    with pytest.raises(ValueError, match="named as the train split, but the test split was asked for.*--any-folder"):
        evaluate_policies(make_setup(train, seeds=(0,)), ["lowtohigh"], tmp_path / "out", progress=False)
    summary = evaluate_policies(
        make_setup(train, seeds=(0,), any_folder=True), ["lowtohigh"], tmp_path / "out", progress=False
    )
    assert summary["lowtohigh"]["ssim_auc"]["n"] == 6  # the 2 x 3 training slices, on purpose


def test_a_rollout_stored_before_columns_were_recorded_is_computed_again(singlecoil_root, tmp_path):
    out = tmp_path / "out"
    setup = make_setup(singlecoil_root, seeds=(0,))
    evaluate_policies(setup, ["lowtohigh"], out, progress=False)
    reference = (out / "metrics.csv").read_bytes()
    partial = out / "partial" / "lowtohigh_seed0.csv"
    lines = partial.read_text().splitlines()
    old = [",".join(v for i, v in enumerate(line.split(",")) if i != 5) for line in lines]  # without "column"
    assert old[0] == HEADER.replace("column,", "")
    partial.write_text("\n".join(old) + "\n")
    evaluate_policies(setup, ["lowtohigh"], out, progress=False)
    assert partial.read_text().splitlines() == lines
    assert (out / "metrics.csv").read_bytes() == reference


def test_a_rollout_whose_record_was_not_written_is_computed_again(singlecoil_root, tmp_path):
    out = tmp_path / "out"
    setup = make_setup(singlecoil_root, seeds=(0,))
    evaluate_policies(setup, ["lowtohigh"], out, progress=False)
    reference = (out / "metrics.csv").read_bytes()
    (out / "partial" / "lowtohigh_seed0.csv").write_text("policy,seed\nnot what a finished rollout holds\n")
    (out / "partial" / "lowtohigh_seed0.csv.record.json").unlink()  # a crash between the two writes
    evaluate_policies(setup, ["lowtohigh"], out, progress=False)
    assert (out / "metrics.csv").read_bytes() == reference


def test_volumes_cut_from_one_template_are_resampled_by_template_slice(singlecoil_root, tmp_path, test_volume):
    # the test volume's three slices read template slices 30, 31 and 40: two units (30 and 31 are
    # neighbours), though one volume
    root = tmp_path / "data"
    shutil.copytree(singlecoil_root, root)
    with h5py.File(root / "singlecoil_test" / test_volume, "r+") as hf:
        hf.attrs["orientation"] = "axial"
        hf.attrs["template_slices"] = np.array([30, 31, 40])
    evaluate_policies(make_setup(root, seeds=(0,)), ["lowtohigh", "lbcs", "oracle"], tmp_path / "out", progress=False)
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert (
        "The interval resamples whole runs of neighbouring template slices (2 here: the volumes are slices of one "
        "template" in markdown
    )
    assert "| policy | share of the room | 95% interval, runs of neighbouring template slices resampled |" in markdown
    plain = make_setup(singlecoil_root, seeds=(0,))
    evaluate_policies(plain, ["lowtohigh", "lbcs", "oracle"], tmp_path / "plain", progress=False)
    plain_markdown = (tmp_path / "plain" / "summary.md").read_text()
    assert "resamples whole volumes (1 here: the slices of one volume" in plain_markdown
