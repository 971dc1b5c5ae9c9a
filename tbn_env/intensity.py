"""How strongly a judge score engages the high or low sensitivities (§9.3.1)."""
from __future__ import annotations

import numpy as np

from .params import HIGH_THRESHOLD, LOW_THRESHOLD

def intensities(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (high, low) engagement in [0, 1] per dimension; works on [..., 12] arrays.

    Above 6.5 the engagement is (s - 6.5)/3.5, below 3.5 it is (3.5 - s)/3.5, so a 0 hurts more than
    a 3.4, and a score and its mirror about 5 (8.5 and 1.5) engage their branches equally.
    Scores in [3.5, 6.5], the two gates included, engage nothing.
    """
    s = np.asarray(scores, dtype=np.float64)
    return (np.maximum(s - HIGH_THRESHOLD, 0.0) / (10.0 - HIGH_THRESHOLD),
            np.maximum(LOW_THRESHOLD - s, 0.0) / LOW_THRESHOLD)


def graph_engagement(scores: np.ndarray, mode: str = "intensity", scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(high, low) factors multiplying the ClientGraph's judge_high / judge_low sensitivities.

    "intensity" (default): the intensity times `scale` (`Params.graph_intensity_scale`), 0 at the gates.
    "literal": the score itself, as §9.3.1.2 reads word for word (a 0 then does less harm than a 3.4).
    """
    s = np.asarray(scores, dtype=np.float64)
    if mode == "literal":
        return np.where(s > HIGH_THRESHOLD, s, 0.0), np.where(s < LOW_THRESHOLD, s, 0.0)
    high, low = intensities(s)
    return scale * high, scale * low
