"""Schedules of a hyper-parameter over training progress."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinearSchedule:
    """``start`` to ``end`` linearly over the first ``fraction`` of training, then ``end``."""

    start: float
    end: float
    fraction: float

    def __call__(self, progress: float) -> float:
        """Value at ``progress`` in [0, 1] (share of total timesteps done)."""
        if self.fraction <= 0:
            return self.end
        return self.start + (self.end - self.start) * min(1.0, progress / self.fraction)
