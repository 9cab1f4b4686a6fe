"""Refitting a DAgger run's kept labels (:mod:`mri_rl.evaluation.aggregate_fit`): known answers on a
toy teacher, the agreement's arithmetic, the round trip through a checkpoint and the errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from test_dagger import HiddenIndexEnv  # the toy env of DAgger's own tests (tests/agents is on sys.path)

from mri_rl.agents import DAgger
from mri_rl.agents.base import read_agent_checkpoint
from mri_rl.agents.dagger import LabelledStates
from mri_rl.checkpointing import CheckpointError
from mri_rl.evaluation.aggregate_fit import agreement_on, refit_aggregate, refit_policy
from mri_rl.evaluation.teacher_agreement import Agreement
from mri_rl.provenance import make_record
from mri_rl.task import DEFAULT_TASK


def test_the_agreement_of_known_choices():
    scores = np.array([[0.0, 1.0, 2.0], [5.0, -np.inf, 3.0], [1.0, 1.0, 0.0]])
    agreement = Agreement.of(scores, np.array([2, 2, 0]))  # the best; 2 below the best; tied best
    assert agreement == Agreement(
        steps=3, top1=pytest.approx(2 / 3), regret=pytest.approx(2 / 3), rank=pytest.approx(1 / 3)
    )


@pytest.mark.parametrize("actions", [np.array([0]), np.array([[0], [1]]), np.zeros(0, dtype=int)])
def test_agreement_needs_one_action_per_scored_state(actions):
    scores = np.zeros((2, 3)) if len(actions) else np.zeros((0, 3))
    with pytest.raises(ValueError, match="agreement needs scores"):
        Agreement.of(scores, actions)


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory) -> Path:
    """A DAgger run on the hidden-index toy (4 actions), stopped before it learned: 240 labelled
    states in its resumable checkpoint, the teacher's best action the one-hot observation's index."""
    env = SyncVectorEnv([HiddenIndexEnv] * 2, autoreset_mode=AutoresetMode.NEXT_STEP)
    agent = DAgger(env, teacher_metrics=("hit",), temperature=0.1, learning_starts=10_000, net_arch=(16,), seed=0)
    agent.learn(240, progress_bar=False)  # learning_starts above: not a gradient step
    run = tmp_path_factory.mktemp("dagger")
    agent.save(run / "checkpoint.pt", resumable=True)
    agent.save(run / "model.pt")
    return run


def kept_labels(run: Path) -> LabelledStates:
    path = run / "checkpoint.pt"
    return LabelledStates.of_checkpoint(read_agent_checkpoint(path), path, HiddenIndexEnv().observation_space, True)


def test_the_kept_labels_come_back_from_the_checkpoint(labelled_run):
    resumed = DAgger.load(labelled_run / "checkpoint.pt", env=SyncVectorEnv([HiddenIndexEnv]))
    store = kept_labels(labelled_run)
    assert store.size == resumed.labelled.size == 240
    np.testing.assert_array_equal(store.scores, resumed.labelled.scores[:240])
    np.testing.assert_array_equal(store.observations[""], resumed.labelled.observations[""][:240])
    store.stakes[:] = np.arange(240)
    part = store.subset(np.array([5, 0]))
    assert (part.size, part.capacity, part.next) == (2, 2, 0)
    np.testing.assert_array_equal(part.stakes, [5, 0])
    np.testing.assert_array_equal(part.scores, store.scores[[5, 0]])
    np.testing.assert_array_equal(part.observations[""], store.observations[""][[5, 0]])


def test_a_refit_learns_what_the_run_had_not_and_scores_held_out_states(labelled_run):
    points = refit_aggregate(labelled_run / "checkpoint.pt", 300, reports=3, held_out=0.25, seed=0, learning_rate=1e-2)
    assert [p.gradient_steps for p in points] == [100, 200, 300]
    assert {p.held_out.steps for p in points} == {60} and {p.train.steps for p in points} == {60}
    assert points[-1].held_out.top1 == 1.0 and points[-1].held_out.regret == 0.0  # the toy's answer is learnable
    untrained = DAgger.load(labelled_run / "checkpoint.pt")  # the run itself never took a step
    assert agreement_on(untrained, kept_labels(labelled_run)).top1 < 0.6
    again = refit_aggregate(labelled_run / "checkpoint.pt", 300, reports=3, held_out=0.25, seed=0, learning_rate=1e-2)
    assert again == points  # same seed, same figures


def test_a_refitted_policy_learns_every_kept_label_and_carries_the_run_s_record(labelled_run, tmp_path):
    run = DAgger.load(labelled_run / "checkpoint.pt", env=SyncVectorEnv([HiddenIndexEnv]))  # with its labels
    run.record = make_record(settings={"seed": 0, "total_steps": 240})  # as mri-rl train records a run
    recorded = run.save(tmp_path / "checkpoint.pt", resumable=True)
    policy = refit_policy(recorded, 300, seed=0, learning_rate=1e-2, temperature=0.5)
    assert agreement_on(policy, kept_labels(labelled_run)).top1 == 1.0  # what the run itself had not learned
    assert policy.settings.temperature == 0.5 and run.settings.temperature == 0.1
    assert policy.record == run.record
    saved = DAgger.load(policy.save(tmp_path / "refit.pt"))
    labels = kept_labels(labelled_run)
    obs, legal = labels.observations[""][:8], np.isfinite(labels.scores[:8])
    np.testing.assert_array_equal(saved.log_probabilities(obs, legal), policy.log_probabilities(obs, legal))
    again = refit_policy(labelled_run / "checkpoint.pt", 300, seed=0, learning_rate=1e-2, temperature=0.5)
    for mine, theirs in zip(policy.policy.parameters(), again.policy.parameters()):
        assert torch.equal(mine, theirs)  # same seed, same network


def test_a_model_without_labels_is_refused_naming_the_file(labelled_run):
    with pytest.raises(CheckpointError, match=re.escape(f"{labelled_run / 'model.pt'}") + ".*not in its model.pt"):
        refit_aggregate(labelled_run / "model.pt", 10)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"gradient_steps": 0}, "gradient_steps: expected an integer >= 1, got 0"),
        ({"gradient_steps": 1, "reports": 0}, "reports: expected an integer >= 1, got 0"),
        ({"gradient_steps": 1, "held_out": 1.0}, "held_out: expected a share in (0, 1), got 1.0"),
        ({"gradient_steps": 1, "held_out": float("nan")}, "held_out: expected a share in (0, 1), got nan"),
        ({"gradient_steps": 1, "held_out": 0.001}, "keeps 240 labelled states: too few to hold 0% apart"),
    ],
)
def test_bad_refit_settings_are_refused(labelled_run, arguments, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        refit_aggregate(labelled_run / "checkpoint.pt", **arguments)


def test_the_script_prints_the_table_and_refuses_an_unknown_setting(labelled_run):
    script = Path(__file__).parents[2] / "scripts" / "fit_aggregate.py"
    command = [sys.executable, str(script), str(labelled_run), "--gradient-steps", "20", "--reports", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("| 20 | ")
    done = subprocess.run([*command, "--set", "nope=1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "unknown dagger setting(s) ['nope']" in done.stderr


def test_the_script_saves_a_refitted_policy(labelled_run, tmp_path):
    script = Path(__file__).parents[2] / "scripts" / "fit_aggregate.py"
    command = [sys.executable, str(script), str(labelled_run), "--gradient-steps", "20", "--set", "temperature=2.0"]
    done = subprocess.run([*command, "--save", str(tmp_path / "r.pt")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"saved {tmp_path / 'r.pt'}"
    assert DAgger.load(tmp_path / "r.pt").settings.temperature == 2.0


class HalfIndexEnv(HiddenIndexEnv):
    """The hidden-index toy with its index drawn from the lower half of [0, 4) or the upper half only."""

    def __init__(self, upper: bool) -> None:
        super().__init__(num_actions=4)
        self.upper = upper

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.hidden = int(self.np_random.integers(2)) + (2 if self.upper else 0)
        return self._observation(), {}


def half_run(folder: Path, upper: bool, **settings) -> Path:
    """A DAgger run on one half of the toy's indices that keeps 120 labelled states and took no step."""
    env = SyncVectorEnv([lambda: HalfIndexEnv(upper)] * 2, autoreset_mode=AutoresetMode.NEXT_STEP)
    agent = DAgger(
        env, teacher_metrics=("hit",), temperature=0.1, learning_starts=10_000, net_arch=(16,), seed=0, **settings
    )
    agent.learn(120, progress_bar=False)
    folder.mkdir()
    agent.save(folder / "checkpoint.pt", resumable=True)
    return folder


@pytest.fixture(scope="module")
def half_runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("halves")
    return half_run(root / "lower", upper=False), half_run(root / "upper", upper=True)


def half_labels(run: Path) -> LabelledStates:
    path = run / "checkpoint.pt"
    return LabelledStates.of_checkpoint(read_agent_checkpoint(path), path, HalfIndexEnv(False).observation_space, True)


def test_joined_stores_hold_every_run_s_states_in_order(half_runs):
    lower, upper = (half_labels(run) for run in half_runs)
    union = LabelledStates.joined([lower, upper])
    assert (union.size, union.capacity, union.next) == (240, 240, 0)
    np.testing.assert_array_equal(
        union.observations[""], np.concatenate([lower.observations[""], upper.observations[""]])
    )
    np.testing.assert_array_equal(union.scores, np.concatenate([lower.scores, upper.scores]))
    assert set(union.observations[""].argmax(axis=1)) == {0, 1, 2, 3}  # both halves of the toy


def test_a_refit_on_two_runs_learns_the_states_of_both(half_runs):
    lower, upper = half_runs
    joined = refit_policy([lower / "checkpoint.pt", upper / "checkpoint.pt"], 300, seed=0, learning_rate=1e-2)
    assert agreement_on(joined, half_labels(lower)).top1 == 1.0
    assert agreement_on(joined, half_labels(upper)).top1 == 1.0
    alone = refit_policy(lower / "checkpoint.pt", 300, seed=0, learning_rate=1e-2)
    assert agreement_on(alone, half_labels(lower)).top1 == 1.0
    assert agreement_on(alone, half_labels(upper)).top1 < 0.5  # states it never saw labelled


def test_runs_of_another_teacher_or_action_count_are_not_joined(half_runs, tmp_path):
    weighted = half_run(tmp_path / "weighted", upper=True, teacher_weights=(2.0,))
    with pytest.raises(
        ValueError, match=re.escape(f"{weighted / 'checkpoint.pt'}: its labels are not of the same kind")
    ):
        refit_policy([half_runs[0] / "checkpoint.pt", weighted / "checkpoint.pt"], 10)
    with pytest.raises(ValueError, match="teacher_metrics or teacher_weights differ"):
        refit_aggregate([half_runs[0] / "checkpoint.pt", weighted / "checkpoint.pt"], 10)
    for folder, seed in ((tmp_path / "seed0", 0), (tmp_path / "seed1", 1)):  # two seeds of one task: joined
        run = DAgger.load(half_runs[1] / "checkpoint.pt", env=SyncVectorEnv([lambda: HalfIndexEnv(True)]))
        run.record = make_record(task=DEFAULT_TASK, settings={"seed": seed})
        run.save(folder / "checkpoint.pt", resumable=True)
    assert refit_policy(
        [tmp_path / "seed0/checkpoint.pt", tmp_path / "seed1/checkpoint.pt"], 1
    ).record == run.record | {"settings": {"seed": 0}}
    run.record = make_record(task=DEFAULT_TASK.with_changes(budget=DEFAULT_TASK.budget + 1))
    run.save(tmp_path / "other/checkpoint.pt", resumable=True)
    with pytest.raises(ValueError, match="recorded task differ"):
        refit_policy([tmp_path / "seed0/checkpoint.pt", tmp_path / "other/checkpoint.pt"], 1)
    three = LabelledStates(5, HiddenIndexEnv(num_actions=3).observation_space, 3, True)
    with pytest.raises(
        ValueError, match=r"joined: store 1 holds states of .* scores \(S, 3\); expected those of store 0"
    ):
        LabelledStates.joined([half_labels(half_runs[0]), three])
    with pytest.raises(ValueError, match="at least one store"):
        LabelledStates.joined([])


def test_the_script_fits_on_several_runs(half_runs):
    script = Path(__file__).parents[2] / "scripts" / "fit_aggregate.py"
    command = [sys.executable, str(script), *map(str, half_runs), "--gradient-steps", "20", "--reports", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"{half_runs[0]} + {half_runs[1]}: a fresh network, 20% of the labelled states held out"
    )
