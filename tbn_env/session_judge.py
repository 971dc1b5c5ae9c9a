"""judge_full_session (§9.3.7.2): a whole session's per-turn ratings aggregated into one assessment.

Per-dimension means, minima, maxima, first-to-last trends and least-squares slopes, the composite
trajectory (unweighted, and stage-weighted as the reward uses it), and a holistic evaluation of the
arc. A model judge (one with an ``evaluate_session(messages) -> str`` method, like the MLX and Claude
judges) writes the evaluation from the transcript and these numbers; otherwise it is an offline
template assembled from the numbers and marked as such. The text never changes the numbers.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel

from .dimensions import JUDGE_DIMENSIONS
from .llm_prompts import session_messages
from .params import Params
from .protocols import DialogueTurn, JudgeResult
from .reward import weighted_composites

STEADY_SLOPE = 0.05   # per-turn change below which a dimension counts as steady
ERRATIC_SD = 1.5      # composite spread above which quality counts as erratic


class DimensionSummary(BaseModel):
    mean: float
    min: float
    max: float
    trend: float   # last - first
    slope: float   # least-squares slope per turn


class SessionAssessment(BaseModel):
    """The session-level judgement of §9.3.7.2."""

    turns: int
    stage: int
    dimensions: dict[str, DimensionSummary]
    composite: list[float]         # unweighted per-turn composite (§9.3.7.1)
    composite_trend: float         # last turn's composite minus the first's
    stage_composite: list[float]
    evaluation: str
    evaluation_source: Literal["model", "offline template"]


OFFLINE_MARK = "[offline template] "  # starts every evaluation no model wrote


def judge_full_session(results: Sequence[JudgeResult], stage: int, params: Params | None = None, *,
                       judge: object | None = None, history: Sequence[DialogueTurn] = ()) -> SessionAssessment:
    """Aggregate a session's per-turn JudgeResults; raises ValueError on an empty session.

    With a ``judge`` that has ``evaluate_session``, the holistic evaluation is the model's reading of
    ``history`` and the numbers; an empty reply falls back to the marked offline template.
    """
    if not results:
        raise ValueError("judge_full_session needs at least one judged turn")
    if stage not in (1, 2, 3, 4):
        raise ValueError(f"stage must be 1-4, got {stage!r}")
    params = params or Params()
    scores = np.array([r.vector() for r in results])
    turns = np.arange(len(results), dtype=float)
    slopes = np.polyfit(turns, scores, 1)[0] if len(results) > 1 else np.zeros(len(JUDGE_DIMENSIONS))
    by_dim = np.ascontiguousarray(scores.T)   # one row per dimension: each mean sums the same numbers in the same order
    dims = {d: DimensionSummary(mean=mean, min=low, max=high, trend=trend, slope=slope)
            for d, mean, low, high, trend, slope in zip(JUDGE_DIMENSIONS, by_dim.mean(axis=1).tolist(),
                                                       by_dim.min(axis=1).tolist(), by_dim.max(axis=1).tolist(),
                                                       (scores[-1] - scores[0]).tolist(), np.asarray(slopes).tolist())}
    composite = scores.mean(axis=1).tolist()
    staged = weighted_composites(scores, stage, params)
    numbers = _evaluate(dims, staged)
    text, source = "", "offline template"
    narrate = getattr(judge, "evaluate_session", None)
    if callable(narrate):
        text = str(narrate(session_messages(history, numbers, stage)) or "").strip()
        source = "model" if text else source
    return SessionAssessment(turns=len(results), stage=stage, dimensions=dims, composite=composite,
                             composite_trend=composite[-1] - composite[0], stage_composite=staged.tolist(),
                             evaluation=text or OFFLINE_MARK + numbers, evaluation_source=source)


def _evaluate(dims: dict[str, DimensionSummary], staged: np.ndarray) -> str:
    """A short holistic reading of the arc: level, direction, consistency, best and weakest dimension."""
    rising = [d for d, s in dims.items() if s.slope > STEADY_SLOPE]
    falling = [d for d, s in dims.items() if s.slope < -STEADY_SLOPE]
    best = max(dims, key=lambda d: dims[d].mean)
    worst = min(dims, key=lambda d: dims[d].mean)
    arc = "erratic" if staged.std() > ERRATIC_SD else "consistent"
    return (f"Stage-weighted quality averaged {staged.mean():.1f}/10 and was {arc} across the session. "
            f"Strongest: {best} ({dims[best].mean:.1f}); weakest: {worst} ({dims[worst].mean:.1f}). "
            f"Improving: {', '.join(rising) or 'none'}. Declining: {', '.join(falling) or 'none'}.")
