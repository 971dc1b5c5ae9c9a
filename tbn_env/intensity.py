"""How strongly a judge score engages the high or low sensitivities (§9.3.1, DESIGN §2.2)."""
from __future__ import annotations

import numpy as np

from .params import HIGH_THRESHOLD, LOW_THRESHOLD


def intensities(scores: np.ndarray, mode: str = "intensity") -> tuple[np.ndarray, np.ndarray]:
    """Return (high, low) engagement per dimension; works on [..., 12] arrays.

    "intensity" (default): above 6.5 the engagement is (s - 6.5)/3.5, below 3.5 it is (3.5 - s)/3.5, so
    a 0 hurts more than a 3.4. "literal": the score itself, as §9.3.1.2 reads word for word.
    Scores in [3.5, 6.5] engage nothing.
    """
    s = np.asarray(scores, dtype=np.float64)
    if mode == "literal":
        return np.where(s > HIGH_THRESHOLD, s, 0.0), np.where(s < LOW_THRESHOLD, s, 0.0)
    return (np.maximum(s - HIGH_THRESHOLD, 0.0) / (10.0 - HIGH_THRESHOLD),
            np.maximum(LOW_THRESHOLD - s, 0.0) / LOW_THRESHOLD)
