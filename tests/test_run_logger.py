"""``progress.csv`` of a training run: rows kept on resume, even when the resume is stopped."""

from __future__ import annotations

import csv

import pytest

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
