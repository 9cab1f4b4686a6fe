"""Column orders and masks over the phase-encode axis of centred k-space."""

from __future__ import annotations

import numpy as np


def low_frequency_order(width: int) -> np.ndarray:
    """Columns of a centred k-space of ``width`` columns, lowest frequency first.

    The zero frequency sits at ``width // 2`` (fastMRI's ``fftshift`` convention);
    columns at equal distance alternate, the one left of the centre first:
    ``c, c-1, c+1, c-2, c+2, ...``.

    Returns:
        int64 array (width,), a permutation of ``range(width)``.
    """
    centre = width // 2
    columns = np.arange(width)
    distance = np.abs(columns - centre)
    side = (columns > centre).astype(np.int64)  # left of the centre first on ties
    return columns[np.lexsort((side, distance))]


def initial_mask(width: int, padding_left: int, padding_right: int, initial_lines: int) -> np.ndarray:
    """The mask at the start of an episode.

    The zero-filled edges (columns outside ``[padding_left, padding_right)``) count as
    acquired so no action is spent on them, and so do the ``initial_lines`` lowest
    frequencies among the measurable columns.

    Returns:
        bool array (width,), True where acquired.
    """
    mask = np.ones(width, dtype=bool)
    mask[padding_left:padding_right] = False
    measurable = [c for c in low_frequency_order(width) if padding_left <= c < padding_right]
    mask[measurable[:initial_lines]] = True
    return mask
