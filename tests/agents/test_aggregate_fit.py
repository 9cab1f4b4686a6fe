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
