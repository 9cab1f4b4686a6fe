"""``progress.csv`` and TensorBoard scalars of a training run."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from torch.utils.tensorboard import SummaryWriter

from mri_rl.files import atomic_write_text

PROGRESS_COLUMNS = ("steps", "episodes", "return", "loss", "epsilon", "steps_per_s", "eval_return")


class RunLogger:
    """Appends rows to ``out/progress.csv`` and writes the same scalars to TensorBoard (``out/tensorboard``).

    Args:
        out_dir: the run folder.
        resume_from_step: on resume, rows written after this step (by the interrupted
            run, past its last checkpoint) are dropped so the file stays consistent, and
            TensorBoard hides that run's scalars after it (``SummaryWriter(purge_step=...)``).
    """

    def __init__(self, out_dir: str | Path, resume_from_step: int | None = None) -> None:
        self.path = Path(out_dir) / "progress.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        if resume_from_step is not None and self.path.exists():
            with self.path.open(newline="") as f:
                rows = [row for row in csv.DictReader(f) if int(row["steps"]) <= resume_from_step]
        kept = io.StringIO(newline="")
        writer = csv.DictWriter(kept, fieldnames=PROGRESS_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path, kept.getvalue())  # a resume stopped here keeps the old rows
        # TensorBoard hides the interrupted run's events after the checkpoint, as the CSV drops its rows
        purge_step = None if resume_from_step is None else resume_from_step + 1
        self.writer = SummaryWriter(str(Path(out_dir) / "tensorboard"), purge_step=purge_step)

    def log(self, row: Mapping[str, float | None]) -> None:
        """Write one row (missing columns are left empty, NaN is written empty)."""
        clean = {
            key: ("" if value is None or (isinstance(value, float) and math.isnan(value)) else value)
            for key, value in row.items()
        }
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=PROGRESS_COLUMNS).writerow(clean)
        for key, value in clean.items():
            if key != "steps" and value != "":
                self.writer.add_scalar(key, value, global_step=int(cast(float, row["steps"])))  # rows always have steps
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
