"""The seam between whatever chooses columns (agents, baselines) and whatever rolls them out."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    """Anything that picks actions for a batch of observations, SB3-style.

    ``predict(obs, deterministic=True, action_mask=legal)`` returns ``(actions, None)``:
    int64 (B,) for a batch, where ``legal`` is bool (B, A), True where an action is legal. The
    actions are the env's, as Gymnasium and SB3 name them (entry i of ``legal`` is the action
    ``start + i`` of the Discrete space), not indices in [0, A); the baselines' columns are the MRI
    env's actions (its space starts at 0).
    Policies whose choice depends on the start of an episode (a planned mask) may also
    have ``reset(legal, slice_ids)``, called when the episodes of a batch start on the data's
    slices ``slice_ids`` (N,).
    """

    def predict(
        self, obs: Any, deterministic: bool = True, action_mask: np.ndarray | None = None
    ) -> tuple[Any, None]: ...
