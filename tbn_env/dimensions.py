"""The 12 judge dimensions (§9.3.7.1) and validation of a turn's scores."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

#: The 12 dimensions in the paper's order: 8 relational-clinical, then 4 cognitive-aesthetic (§9.3.7.1).
JUDGE_DIMENSIONS: tuple[str, ...] = (
    "attunement",
    "pacing",
    "safety",
    "non_reactivity",
    "validation",
    "boundaries",
    "repair",
    "clinical_wisdom",
    "thoughtfulness",
    "parallel_thinking",
    "tenderness",
    "artfulness",
)
DIM_INDEX: dict[str, int] = {d: i for i, d in enumerate(JUDGE_DIMENSIONS)}
SCORE_MIN, SCORE_MAX = 0.0, 10.0  # each dimension is scored 0-10 (§9.3.7.1)
#: How a scores-mode action is read: "score" as the 0-10 scores, "unit" as [-1, 1] mapped linearly to
#: 0-10 (the symmetric, normalised Box that stable-baselines3's Gaussian policies expect).
ACTION_SCALES: tuple[str, ...] = ("score", "unit")


def as_score_vector(scores: Sequence[float] | Mapping[str, float] | np.ndarray) -> np.ndarray:
    """Return the 12 scores as a float64 vector, or raise ValueError naming what is wrong.

    Accepts a sequence in JUDGE_DIMENSIONS order or a mapping with exactly the 12 names.
    """
    if isinstance(scores, Mapping):
        missing = [d for d in JUDGE_DIMENSIONS if d not in scores]
        extra = [k for k in scores if k not in DIM_INDEX]
        if missing or extra:
            raise ValueError(f"scores mapping must have exactly the 12 judge dimensions; "
                             f"missing {missing}, unknown {extra}")
        values = [scores[d] for d in JUDGE_DIMENSIONS]
    elif isinstance(scores, (str, bytes)):
        raise TypeError("scores must be 12 numbers or a mapping of dimension -> number, not a string")
    else:
        values = scores
    try:
        vec = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"scores must be numbers: {exc}") from None
    if vec.shape != (len(JUDGE_DIMENSIONS),):
        raise ValueError(f"scores must have shape (12,), got {vec.shape}")
    if SCORE_MIN <= vec.min() and vec.max() <= SCORE_MAX:  # the common case: NaN fails both comparisons
        return vec
    bad = [JUDGE_DIMENSIONS[i] for i in np.flatnonzero(~np.isfinite(vec))]
    if bad:
        raise ValueError(f"scores must be finite; NaN or inf in {bad}")
    out = [f"{JUDGE_DIMENSIONS[i]}={vec[i]:g}" for i in np.flatnonzero((vec < SCORE_MIN) | (vec > SCORE_MAX))]
    if out:
        raise ValueError(f"scores must lie in [0, 10]; out of range: {', '.join(out)}")
    return vec


def as_score_batch(scores: np.ndarray, batch: int) -> np.ndarray:
    """Validate a [batch, 12] score array (the batched kernel's input)."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.shape != (batch, len(JUDGE_DIMENSIONS)):
        raise ValueError(f"scores must have shape ({batch}, 12), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("scores must be finite; found NaN or inf")
    if (arr < SCORE_MIN).any() or (arr > SCORE_MAX).any():
        raise ValueError("scores must lie in [0, 10]")
    return arr


def unit_to_scores(actions) -> np.ndarray:
    """Map unit actions in [-1, 1] to scores in [0, 10], or raise ValueError naming what is wrong."""
    try:
        a = np.asarray(actions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"unit actions must be numbers: {exc}") from None
    if not np.isfinite(a).all():
        raise ValueError("unit actions must be finite; found NaN or inf")
    if a.size and np.abs(a).max() > 1.0:
        raise ValueError(f"unit actions must lie in [-1, 1] (action_scale='unit'); got values in "
                         f"[{a.min():g}, {a.max():g}]")
    return SCORE_MIN + (a + 1.0) * (SCORE_MAX - SCORE_MIN) / 2.0


def score_dict(vec: np.ndarray) -> dict[str, float]:
    """Name a score vector by dimension."""
    return {d: float(v) for d, v in zip(JUDGE_DIMENSIONS, vec)}


def is_number(x: object) -> bool:
    """True for a real, finite number (bools excluded)."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)
