"""How well a DAgger policy network can fit the teacher's labels it was trained on: refit a fresh
network on a run's kept aggregate and score it on held-out labelled states.

DAgger's student falls short of its teacher either because it cannot learn the teacher's choices
from its observations (model, features), or because it was trained too little, or because it does
not carry them to new slices. :func:`~mri_rl.evaluation.teacher_agreement.teacher_agreement` measures
the agreement on the policy's own rollouts; this module tells the first two apart. It splits the
labelled states of a resumable ``checkpoint.pt`` at random into train and held-out states, trains a
fresh policy network of the run's settings (or others) on the train states alone with DAgger's loss
(:meth:`~mri_rl.agents.dagger.DAgger.fit`), and reports the agreement with the teacher on both
after every share of the gradient steps. Held-out states come from the same training slices (often
the same episode), so a rising held-out agreement means the run was trained too little, not that
the policy generalises to new slices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mri_rl.agents.base import Agent, read_agent_checkpoint
from mri_rl.agents.dagger import DAgger, LabelledStates
from mri_rl.checks import check_int
from mri_rl.evaluation.teacher_agreement import Agreement

SCORED_BATCH = 256  # labelled states per forward pass when scoring

Checkpoints = str | Path | Sequence[str | Path]
"""One DAgger run's resumable ``checkpoint.pt``, or several runs' of one task and teacher, whose kept
labels are joined."""


@dataclass(frozen=True)
class FitPoint:
    """The refitted network after ``gradient_steps``: its :class:`Agreement` with the teacher on the
    held-out states and on (at most as many of) the train states."""

    gradient_steps: int
    held_out: Agreement
    train: Agreement


def agreement_on(agent: DAgger, labelled: LabelledStates) -> Agreement:
    """The agent's greedy choices on every state of ``labelled`` against the teacher's scores there."""
    actions = []
    for start in range(0, labelled.size, SCORED_BATCH):
        kept = slice(start, min(start + SCORED_BATCH, labelled.size))
        obs = {key: values[kept] for key, values in labelled.observations.items()}
        legal = np.isfinite(labelled.scores[kept])
        log_probs = agent.log_probabilities(obs[""] if "" in obs else obs, legal)
        actions.append(log_probs.argmax(axis=1))
    return Agreement.of(labelled.scores[: labelled.size], np.concatenate(actions))


def refit_aggregate(
    checkpoint: Checkpoints,
    gradient_steps: int,
    reports: int = 4,
    held_out: float = 0.2,
    seed: int = 0,
    **overrides: Any,
) -> list[FitPoint]:
    """Refit a fresh DAgger policy network on the labelled states kept in ``checkpoint`` (a DAgger
    run's resumable ``checkpoint.pt``, or several runs' joined) and score it ``reports`` times over
    ``gradient_steps``.

    Args:
        held_out: the share of the labelled states kept apart (at random, by ``seed``).
        seed: of the split, the network's initial weights and the minibatches.
        overrides: DAgger settings other than the run's, e.g. ``net_arch=(256, 256)``.

    Raises:
        CheckpointError: naming the file, when it is not a DAgger checkpoint that keeps labelled states.
        ValueError: a count or share out of range, too few states to split, or runs whose labels
            differ in kind (task, data, teacher or spaces).
        TypeError: an unknown setting.
    """
    gradient_steps = check_int("gradient_steps", gradient_steps, 1)
    reports = check_int("reports", reports, 1)
    if not 0.0 < held_out < 1.0:
        raise ValueError(f"held_out: expected a share in (0, 1), got {held_out!r}")
    agent, labelled = _fresh_network_and_labels(checkpoint, seed, overrides)
    apart = int(round(held_out * labelled.size))
    if not 0 < apart < labelled.size:
        runs = " + ".join(str(path) for path in _checkpoint_paths(checkpoint))
        raise ValueError(f"{runs} keeps {labelled.size} labelled states: too few to hold {held_out:.0%} apart")
    order = np.random.default_rng(seed).permutation(labelled.size)
    train, test = labelled.subset(order[apart:]), labelled.subset(order[:apart])
    train_scored = train.subset(np.arange(min(apart, train.size)))
    points: list[FitPoint] = []
    done = 0
    for report in range(1, reports + 1):
        target = gradient_steps * report // reports
        agent.fit(train, target - done)
        done = target
        points.append(FitPoint(done, agreement_on(agent, test), agreement_on(agent, train_scored)))
    return points


def refit_policy(checkpoint: Checkpoints, gradient_steps: int, seed: int = 0, **overrides: Any) -> DAgger:
    """A fresh DAgger policy network (the run's settings, or ``overrides`` such as ``temperature=2.0``)
    fitted on every labelled state kept in ``checkpoint`` for ``gradient_steps``, carrying the run's
    record (task and data), so that ``mri-rl evaluate`` takes it as the run's policy. A cheap screen of
    a training setting: no look-ahead is paid again, but the states are the run's own, not those the
    new setting's policy would visit (DAgger's later iterations are not redone). Given several runs of
    one task and teacher (e.g. other training seeds), it fits on all their labels: a screen of more
    labelled states (the first run's settings and record are kept).

    Raises:
        as :func:`refit_aggregate`.
    """
    gradient_steps = check_int("gradient_steps", gradient_steps, 1)
    agent, labelled = _fresh_network_and_labels(checkpoint, seed, overrides)
    agent.fit(labelled, gradient_steps)
    return agent


def _fresh_network_and_labels(
    checkpoints: Checkpoints, seed: int, overrides: dict[str, Any]
) -> tuple[DAgger, LabelledStates]:
    """A fresh DAgger network of the first run's settings with ``overrides`` (weights seeded by
    ``seed``, that run's record) and the labelled states the runs' ``checkpoints`` kept, joined.

    Raises:
        ValueError: when a run's task, data, teacher or spaces differ from the first run's, naming both files.
    """
    paths = _checkpoint_paths(checkpoints)
    saved = [read_agent_checkpoint(path) for path in paths]
    trained = [DAgger.from_checkpoint(state, path) for state, path in zip(saved, paths)]  # checks each
    first = trained[0]
    for path, other in zip(paths[1:], trained[1:]):
        differs = _label_difference(first, other)
        if differs:
            raise ValueError(f"{path}: its labels are not of the same kind as {paths[0]}'s: {differs} differ")
    settings = DAgger.make_settings(first.settings, overrides)
    labelled = LabelledStates.joined(
        [
            LabelledStates.of_checkpoint(state, path, first.observation_space, settings.compact_images)
            for state, path in zip(saved, paths)
        ]
    )
    agent = DAgger(
        None, settings, seed=seed, observation_space=first.observation_space, action_space=first.action_space
    )
    agent.record = first.record
    return agent, labelled


def _checkpoint_paths(checkpoints: Checkpoints) -> list[str | Path]:
    """``checkpoints`` as a list of one or more paths.

    Raises:
        ValueError: when none is given.
    """
    paths = [checkpoints] if isinstance(checkpoints, (str, Path)) else list(checkpoints)
    if not paths:
        raise ValueError("expected at least one DAgger checkpoint, got none")
    return paths


def _label_difference(first: Agent, other: Agent) -> str:
    """What makes ``other``'s kept labels unlike ``first``'s (e.g. ``"task"``), or "" when alike: the
    spaces, the teacher (metrics and weights) and the recorded task and data."""
    differs = []
    if (first.observation_space, first.action_space) != (other.observation_space, other.action_space):
        differs.append("observation or action spaces")
    teacher = ("teacher_metrics", "teacher_weights")
    if any(getattr(first.settings, name) != getattr(other.settings, name) for name in teacher):
        differs.append("teacher_metrics or teacher_weights")
    for part in ("task", "data"):
        if (first.record or {}).get(part) != (other.record or {}).get(part):
            differs.append(f"recorded {part}")
    return ", ".join(differs)
