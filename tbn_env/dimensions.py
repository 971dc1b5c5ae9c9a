"""The 12 judge dimensions (§9.3.7.1) and validation of a turn's scores."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .ranges import within

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


def _checked(values: object, shape: tuple[int, ...]) -> np.ndarray:
    """A fresh float64 copy of `values` with this shape, all finite and in [0, 10], or a clear error.

    The one score check every entry point shares (env actions, judge results, the batch kernel).
    Complex numbers, strings and other non-real values are refused, never converted; the copy means a
    caller reusing its buffer cannot change scores already taken.
    """
    if isinstance(values, (str, bytes)):
        raise TypeError("scores must be 12 numbers or a mapping of dimension -> number, not a string")
    try:
        raw = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"scores must be numbers: {exc}") from None
    if raw.dtype.kind not in "iuf" and not (raw.dtype.kind == "O" and all(
            isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))
            for x in raw.ravel())):
        raise TypeError(f"scores must be real numbers, got {raw.dtype} values")
    vec = raw.astype(np.float64)   # always a copy
    if vec.shape != shape:
        raise ValueError(f"scores must have shape {shape}, got {vec.shape}")
    if within(vec, SCORE_MIN, SCORE_MAX):  # the common case (NaN fails)
        return vec
    flat = vec.reshape(-1, len(JUDGE_DIMENSIONS))
    bad = sorted({JUDGE_DIMENSIONS[i] for i in np.flatnonzero(~np.isfinite(flat).all(axis=0))})
    if bad:
        raise ValueError(f"scores must be finite; NaN or inf in {bad}")
    out = sorted({f"{JUDGE_DIMENSIONS[c]}={flat[r, c]:g}" for r, c in zip(*np.nonzero((flat < SCORE_MIN) | (flat > SCORE_MAX)))})
    if out:
        raise ValueError(f"scores must lie in [0, 10]; out of range: {', '.join(out)}")
    return vec


def as_score_vector(scores: Sequence[float] | Mapping[str, float] | np.ndarray) -> np.ndarray:
    """Return the 12 scores as a new float64 vector, or raise naming what is wrong.

    Accepts a sequence in JUDGE_DIMENSIONS order or a mapping with exactly the 12 names.
    """
    if not isinstance(scores, np.ndarray) and isinstance(scores, Mapping):   # an array, the common case, first
        missing = [d for d in JUDGE_DIMENSIONS if d not in scores]
        extra = [k for k in scores if k not in DIM_INDEX]
        if missing or extra:
            raise ValueError(f"scores mapping must have exactly the 12 judge dimensions; "
                             f"missing {missing}, unknown {extra}")
        scores = [scores[d] for d in JUDGE_DIMENSIONS]
    return _checked(scores, (len(JUDGE_DIMENSIONS),))


def as_score_batch(scores: np.ndarray, batch: int) -> np.ndarray:
    """Validate a [batch, 12] score array (the batched kernel's input); returns a new array."""
    return _checked(scores, (batch, len(JUDGE_DIMENSIONS)))


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
