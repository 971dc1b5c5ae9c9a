"""The stage-aware reward (§9.3.6): stage-weighted composite, stage modifiers, transitions, TAIE.

Every weight and modifier the paper names is here with its value; the 37 weights it leaves open are
1.0 (a neutral multiplier). `RewardBreakdown.total` is always the sum of its terms.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .dimensions import DIM_INDEX, JUDGE_DIMENSIONS
from .params import Params


def _weights(named: dict[str, float]) -> list[float]:
    """A stage's weight per dimension: the named ones, 1.0 for the rest; an unknown name is an error."""
    unknown = sorted(set(named) - set(JUDGE_DIMENSIONS))
    if unknown:
        raise ImportError(f"tbn_env/reward.py stage weights name unknown judge dimensions {unknown}")
    return [named.get(d, 1.0) for d in JUDGE_DIMENSIONS]


#: w[s, d] (§9.3.6.1). Stage 2 names no weights, so it is the plain mean.
STAGE_WEIGHTS = np.array([
    _weights({"safety": 1.8, "attunement": 1.5, "validation": 1.5, "clinical_wisdom": 0.5, "artfulness": 0.4}),
    _weights({}),
    _weights({"clinical_wisdom": 1.5, "thoughtfulness": 1.5, "parallel_thinking": 1.5, "safety": 0.8}),
    _weights({"tenderness": 1.5, "artfulness": 1.5}),
])
#: Optional clinically interpolated variant: stage 2 leans on repair (its largest bonus, §9.3.6.2),
#: stage 4 on repair and boundaries of the ending, with less new clinical material.
STAGE_WEIGHTS_INTERPOLATED = np.array([
    STAGE_WEIGHTS[0],
    _weights({"pacing": 1.2, "non_reactivity": 1.2, "repair": 1.5}),
    STAGE_WEIGHTS[2],
    _weights({"tenderness": 1.5, "artfulness": 1.5, "repair": 1.2, "boundaries": 1.2, "clinical_wisdom": 0.8}),
])


@dataclass(frozen=True)
class Modifier:
    """A threshold-triggered bonus or penalty: mean(dims) > threshold (or < for `below`)."""

    stage: int
    name: str
    dims: tuple[str, ...]
    threshold: float
    value: float
    below: bool = False

    def fires(self, scores: np.ndarray) -> bool:
        level = float(np.mean([scores[DIM_INDEX[d]] for d in self.dims]))
        return level < self.threshold if self.below else level > self.threshold


def stage_modifiers(params: Params) -> tuple[Modifier, ...]:
    """All twelve modifiers of §9.3.6.2; all that qualify fire together."""
    depth = params.depth_dim
    return (
        Modifier(1, "safety_bonus", ("safety",), 8.0, 2.0),                          # §9.3.6.2
        Modifier(1, "alliance_bonus", ("attunement", "validation"), 7.5, 2.5),       # §9.3.6.2
        Modifier(1, "premature_depth_penalty", ("clinical_wisdom",), 8.0, -1.5),     # §9.3.6.2
        Modifier(2, "depth_bonus", ("clinical_wisdom",), 7.5, 2.0),                  # §9.3.6.2
        Modifier(2, "repair_bonus", ("repair",), 7.5, 3.0),                          # §9.3.6.2
        Modifier(2, "avoidance_penalty", (depth,), 3.5, -1.0, below=True),           # §9.3.6.2
        Modifier(3, "meaning_making_bonus", ("thoughtfulness", "parallel_thinking"), 7.5, 2.5),  # §9.3.6.2
        Modifier(3, "containment_bonus", ("safety", "non_reactivity"), 7.0, 1.0),    # §9.3.6.2
        Modifier(3, "artfulness_bonus", ("artfulness",), 8.0, 1.5),                  # §9.3.6.2
        Modifier(4, "closure_bonus", ("tenderness", "repair"), 7.5, 3.0),            # §9.3.6.2
        Modifier(4, "tenderness_bonus", ("tenderness",), 8.0, 2.0),                  # §9.3.6.2
        Modifier(4, "new_material_penalty", ("clinical_wisdom",), 8.0, -2.5),        # §9.3.6.2
    )


def stage_weights(params: Params) -> np.ndarray:
    return STAGE_WEIGHTS_INTERPOLATED if params.stage_weights == "interpolated" else STAGE_WEIGHTS


def weighted_composite(scores: np.ndarray, stage: int, params: Params) -> float:
    """C_stage = sum_d w[s,d] score_d / sum_d w[s,d] (§9.3.6.1)."""
    return float(weighted_composites(np.asarray(scores), stage, params))


def weighted_composites(scores: np.ndarray, stage: int, params: Params) -> np.ndarray:
    """`weighted_composite` of each row of `scores` ([T, 12] -> [T]) in one call, each row's dot product the one
    a single turn's gives."""
    w = stage_weights(params)[stage - 1]
    return np.vecdot(scores, w) / w.sum()


def modifier_terms(scores: np.ndarray, stage: int, params: Params) -> dict[str, float]:
    """The stage's modifiers that fire on these scores, by name."""
    return {m.name: m.value for m in stage_modifiers(params) if m.stage == stage and m.fires(scores)}


@dataclass
class RewardBreakdown:
    """One turn's reward by term; `total` is their sum."""

    composite: float = 0.0
    modifiers: float = 0.0
    phase_transition: float = 0.0
    stage_transition: float = 0.0
    taie: float = 0.0
    modifier_terms: dict[str, float] = field(default_factory=dict)
    taie_terms: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return self.composite + self.modifiers + self.phase_transition + self.stage_transition + self.taie

    def as_dict(self) -> dict:
        return {"composite": self.composite, "modifiers": self.modifiers,
                "phase_transition": self.phase_transition, "stage_transition": self.stage_transition,
                "taie": self.taie, "total": self.total,
                "terms": {"modifiers": dict(self.modifier_terms), "taie": dict(self.taie_terms)}}
