"""Observation and action spaces of the acquisition environments."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


def observation_space(recon_size: tuple[int, int], width: int) -> spaces.Dict:
    """``Dict(reconstruction=Box(float32, (1, h, w)), mask=MultiBinary(W))``.

    The reconstruction is divided by the maximum of the initial zero-filled image, so
    it is of order one but unbounded (a trained reconstructor may over- or undershoot).
    """
    return spaces.Dict(
        {
            "reconstruction": spaces.Box(low=-np.inf, high=np.inf, shape=(1, *recon_size), dtype=np.float32),
            "mask": spaces.MultiBinary(width),
        }
    )


def action_space(width: int) -> spaces.Discrete:
    """One action per k-space column."""
    return spaces.Discrete(width)
