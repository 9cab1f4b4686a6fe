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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mri_rl.agents.base import read_agent_checkpoint
from mri_rl.agents.dagger import DAgger, LabelledStates
from mri_rl.checks import check_int
from mri_rl.evaluation.teacher_agreement import Agreement

SCORED_BATCH = 256  # labelled states per forward pass when scoring


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
    checkpoint: str | Path,
    gradient_steps: int,
    reports: int = 4,
    held_out: float = 0.2,
    seed: int = 0,
    **overrides: Any,
) -> list[FitPoint]:
    """Refit a fresh DAgger policy network on the labelled states kept in ``checkpoint`` (a DAgger
    run's resumable ``checkpoint.pt``) and score it ``reports`` times over ``gradient_steps``.

    Args:
        held_out: the share of the labelled states kept apart (at random, by ``seed``).
        seed: of the split, the network's initial weights and the minibatches.
        overrides: DAgger settings other than the run's, e.g. ``net_arch=(256, 256)``.

    Raises:
        CheckpointError: naming the file, when it is not a DAgger checkpoint that keeps labelled states.
        ValueError: a count or share out of range, or too few states to split.
        TypeError: an unknown setting.
    """
    gradient_steps = check_int("gradient_steps", gradient_steps, 1)
    reports = check_int("reports", reports, 1)
    if not 0.0 < held_out < 1.0:
        raise ValueError(f"held_out: expected a share in (0, 1), got {held_out!r}")
    agent, labelled = _fresh_network_and_labels(checkpoint, seed, overrides)
    apart = int(round(held_out * labelled.size))
    if not 0 < apart < labelled.size:
        raise ValueError(f"{checkpoint} keeps {labelled.size} labelled states: too few to hold {held_out:.0%} apart")
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


def refit_policy(checkpoint: str | Path, gradient_steps: int, seed: int = 0, **overrides: Any) -> DAgger:
    """A fresh DAgger policy network (the run's settings, or ``overrides`` such as ``temperature=2.0``)
    fitted on every labelled state kept in ``checkpoint`` for ``gradient_steps``, carrying the run's
    record (task and data), so that ``mri-rl evaluate`` takes it as the run's policy. A cheap screen of
    a training setting: no look-ahead is paid again, but the states are the run's own, not those the
    new setting's policy would visit (DAgger's later iterations are not redone).

    Raises:
        as :func:`refit_aggregate`.
    """
    gradient_steps = check_int("gradient_steps", gradient_steps, 1)
    agent, labelled = _fresh_network_and_labels(checkpoint, seed, overrides)
    agent.fit(labelled, gradient_steps)
    return agent


def _fresh_network_and_labels(
    checkpoint: str | Path, seed: int, overrides: dict[str, Any]
) -> tuple[DAgger, LabelledStates]:
    """A fresh DAgger network of the run's settings with ``overrides`` (weights seeded by ``seed``, the
    run's record) and the labelled states the run's ``checkpoint`` kept."""
    saved = read_agent_checkpoint(checkpoint)
    trained = DAgger.from_checkpoint(saved, checkpoint)  # checks the algorithm, spaces and settings
    settings = DAgger.make_settings(trained.settings, overrides)
    labelled = LabelledStates.of_checkpoint(saved, checkpoint, trained.observation_space, settings.compact_images)
    agent = DAgger(
        None, settings, seed=seed, observation_space=trained.observation_space, action_space=trained.action_space
    )
    agent.record = trained.record
    return agent, labelled
