"""``progress.csv`` and the TensorBoard scalars of a training run: rows kept on resume, even when
the resume is stopped, and those past the checkpoint dropped."""

from __future__ import annotations

import csv

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mri_rl.runs.run_logger import RunLogger


def test_a_resume_stopped_while_rewriting_progress_keeps_its_rows(tmp_path, monkeypatch):
    logger = RunLogger(tmp_path)
    for steps in (100, 200, 300):
        logger.log({"steps": steps, "return": float(steps)})
    logger.close()
    before = (tmp_path / "progress.csv").read_text()

    def stopped(self, rows):
        raise KeyboardInterrupt  # Ctrl+C (or a kill) while the kept rows are written

    monkeypatch.setattr(csv.DictWriter, "writerows", stopped)
    with pytest.raises(KeyboardInterrupt):
        RunLogger(tmp_path, resume_from_step=200)
    assert (tmp_path / "progress.csv").read_text() == before
    monkeypatch.undo()
    RunLogger(tmp_path, resume_from_step=200).close()
    assert [row["steps"] for row in csv.DictReader((tmp_path / "progress.csv").open(newline=""))] == ["100", "200"]


def test_a_resumed_run_shows_each_step_once_in_tensorboard(tmp_path):
    """The interrupted run logged steps 100 to 300; resumed from its checkpoint at 200, the run logs
    300 again: TensorBoard shows 100, 200 and the new 300, as progress.csv does."""
    logger = RunLogger(tmp_path)
    for steps in (100, 200, 300):
        logger.log({"steps": steps, "return": float(steps)})
    logger.close()
    logger = RunLogger(tmp_path, resume_from_step=200)
    logger.log({"steps": 300, "return": -1.0})
    logger.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(event.step, event.value) for event in events.Scalars("return")] == [
        (100, 100.0),
        (200, 200.0),
        (300, -1.0),
    ]
    assert [row["return"] for row in csv.DictReader((tmp_path / "progress.csv").open(newline=""))] == [
        "100.0",
        "200.0",
        "-1.0",
    ]
