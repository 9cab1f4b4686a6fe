"""The seam between whatever chooses columns (agents, baselines) and whatever rolls them out."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    """Anything that picks actions for a batch of observations, SB3-style.

    ``predict(obs, deterministic=True, action_mask=legal)`` returns ``(actions, None)``:
    int64 (B,) for a batch, where ``legal`` is bool (B, A), True where an action is legal.
    Policies whose choice depends on the start of an episode (a planned mask) may also
    have ``reset(legal, slice_ids)``, called when the episodes of a batch start on the data's
    slices ``slice_ids`` (N,).
    """

    def predict(
        self, obs: Any, deterministic: bool = True, action_mask: np.ndarray | None = None
    ) -> tuple[Any, None]: ...
