"""Levels of Adaptation (§9.3.3): 7 bipolar dimensions in [-10, 10] with TAIE event detection.

LOA moves slowly, across sessions rather than turns. DIM_TO_LOA (named but not given by the paper)
maps judge dimensions to each LOA dimension. The Transformative Adaptation and Integration Event
(TAIE) subsystem flags growth when a dimension rises through a positive threshold and regression when
it falls through a negative one; a threshold re-arms only after the value backs off by the hysteresis.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dimensions import DIM_INDEX, JUDGE_DIMENSIONS
from .params import Params

LOA_DIMENSIONS: tuple[str, ...] = ("self_reflection", "relational_capacity", "affect_expression",
                                   "self_compassion", "reality_testing", "impulse_regulation",
                                   "mentalization")  # §9.3.3
LOA_MIN, LOA_MAX = -10.0, 10.0  # §9.3.3

#: Our DIM_TO_LOA: each LOA dimension's judge-dimension weights (each row sums to 1).
DIM_TO_LOA: dict[str, dict[str, float]] = {
    "self_reflection": {"thoughtfulness": 0.5, "parallel_thinking": 0.5},
    "relational_capacity": {"attunement": 0.4, "repair": 0.4, "boundaries": 0.2},
    "affect_expression": {"tenderness": 0.4, "validation": 0.3, "safety": 0.3},
    "self_compassion": {"tenderness": 0.5, "validation": 0.5},
    "reality_testing": {"clinical_wisdom": 0.6, "boundaries": 0.4},
    "impulse_regulation": {"non_reactivity": 0.5, "pacing": 0.5},
    "mentalization": {"attunement": 0.4, "parallel_thinking": 0.3, "clinical_wisdom": 0.3},
}
SCORE_CENTRE = 5.0  # a 5/10 turn neither builds nor erodes adaptation


def loa_matrix() -> np.ndarray:
    """DIM_TO_LOA as a [7, 12] matrix."""
    m = np.zeros((len(LOA_DIMENSIONS), len(JUDGE_DIMENSIONS)))
    for k, row in enumerate(LOA_DIMENSIONS):
        for dim, w in DIM_TO_LOA[row].items():
            m[k, DIM_INDEX[dim]] = w
    return m


@dataclass(frozen=True)
class LoaEvent:
    """A TAIE growth or regression event on one LOA dimension."""

    kind: str        # "growth" | "regression"
    dimension: str
    threshold: float  # signed: +2.5 for growth through 2.5, -2.5 for regression through -2.5

    def as_dict(self) -> dict:
        return {"type": f"taie_{self.kind}", "dimension": self.dimension, "threshold": self.threshold}


class LoaTracker:
    """Reference LOA dynamics for one client."""

    def __init__(self, values: dict[str, float], params: Params | None = None) -> None:
        self.params = params or Params()
        self.values = dict(values)
        t = self.params.loa_thresholds
        # a threshold is armed when the value could still cross it in its direction
        self.armed_up = {d: [self.values[d] < th for th in t] for d in LOA_DIMENSIONS}
        self.armed_down = {d: [self.values[d] > -th for th in t] for d in LOA_DIMENSIONS}

    def update(self, scores: np.ndarray) -> list[LoaEvent]:
        """Move each dimension by loa_rate x its weighted judge signal; return this turn's events."""
        p, events = self.params, []
        for d in LOA_DIMENSIONS:
            signal = sum(w * (scores[DIM_INDEX[dim]] - SCORE_CENTRE) / SCORE_CENTRE
                         for dim, w in DIM_TO_LOA[d].items())
            new = min(LOA_MAX, max(LOA_MIN, self.values[d] + p.loa_rate * signal))
            self.values[d] = new
            fired = None  # at most one event per dimension per turn: the furthest threshold crossed
            for j, th in enumerate(p.loa_thresholds):
                if self.armed_up[d][j] and new >= th:
                    self.armed_up[d][j] = False
                    fired = LoaEvent("growth", d, th)
                elif not self.armed_up[d][j] and new < th - p.loa_hysteresis:
                    self.armed_up[d][j] = True
                if self.armed_down[d][j] and new <= -th:
                    self.armed_down[d][j] = False
                    fired = LoaEvent("regression", d, -th)
                elif not self.armed_down[d][j] and new > -th + p.loa_hysteresis:
                    self.armed_down[d][j] = True
            if fired is not None:
                events.append(fired)
        return events
