"""Full-mode TAIE (§9.3.4): a judge's explicit assessment of the three axes, with a clinical
narrative, the stuck realms and intervention recommendations, blended into the running estimate.

A judge offers it through ``assess_taie(context, axes) -> TaieAssessment | None``: the MLX and
Claude judges ask their model (prompt: ``tbn_env.llm_prompts.taie_messages``; reply parsed by
:func:`parse_taie_output`, ``None`` with a logged reason when unusable), and the offline rubric
judge reads lexical cues in the client's words (:func:`offline_taie`, marked as a template).
``Therapy-v0(taie_mode="full")`` calls it on every text turn and blends the axes at
``tbn_env.session.TAIE_FULL_MODE_WEIGHT``.
"""
from __future__ import annotations

import json
import re
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from .protocols import JudgeContext
from .taie import AXIS_MAX, AXIS_MIN, AXIS_SPAN, HEALTHY_POLE

REALMS = {"x": "boundaries (rigid <-> porous)", "y": "self-esteem", "z": "cherishment <-> estrangement"}  # §9.3.4
REALM_RECOMMENDATION = {
    "x": "work at the edge of the client's window: invite openness where walled off, contain where flooded",
    "y": "reflect and validate the client's worth in their own words; notice self-blame without arguing with it",
    "z": "let the relationship itself be evidence of belonging: stay warm and consistent, repair quickly",
}
STUCK_DISTANCE = 0.5  # share of an axis's span from health beyond which its realm counts as stuck
CUE_STEP = 1.0        # axis units one lexical cue moves the offline estimate
# Offline cues in the client's words: (axis, direction, pattern). X: + porous, - rigid; Y, Z: + healthier.
CUES = tuple((axis, sign, re.compile(p)) for axis, sign, p in (
    ("x", +1, r"\b(too much|can'?t stop|always|everyone|i just can'?t stand|overwhelm\w*|flood\w*)\b"),
    ("x", -1, r"\b(it'?s fine|not a big deal|logically|i'?d rather not|nothing (dramatic|happened)|whatever)\b"),
    ("y", -1, r"\b(worthless|ashamed|my fault|something wrong with me|don'?t matter|taking up space|hate myself)\b"),
    ("y", +1, r"\b(wasn'?t all my fault|i matter|proud|i can carry|lighter)\b"),
    ("z", -1, r"\b(alone|nobody|no one|leave[s]?|abandon\w*|disappearing|can'?t trust)\b"),
    ("z", +1, r"\b(i'?ll miss|close to|cared for|loved|belong|trust you)\b"),
))


class TaieAssessment(BaseModel):
    """The full TAIE reading of §9.3.4."""

    x: float = Field(ge=AXIS_MIN, le=AXIS_MAX)
    y: float = Field(ge=AXIS_MIN, le=AXIS_MAX)
    z: float = Field(ge=AXIS_MIN, le=AXIS_MAX)
    narrative: str
    stuck_realms: list[str] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
    source: Literal["model", "offline template"] = "model"

    def axes(self) -> np.ndarray:
        return np.array([self.x, self.y, self.z])


def stuck_realms(axes: np.ndarray) -> list[str]:
    """The axes still far from their healthy pole, farthest first."""
    share = np.abs(np.asarray(axes) - HEALTHY_POLE) / AXIS_SPAN
    return [REALMS[a] for a, s in sorted(zip("xyz", share), key=lambda t: -t[1]) if s > STUCK_DISTANCE]


def offline_taie(context: JudgeContext, axes) -> TaieAssessment:
    """A templated full assessment: the running axes moved by cues in the client's words this session."""
    words = " ".join([t.client for t in context.history] + [context.client_utterance]).lower()
    est = np.array(axes, dtype=np.float64)
    for axis, sign, pattern in CUES:
        est["xyz".index(axis)] += sign * CUE_STEP * len(pattern.findall(words))
    est = np.clip(est, AXIS_MIN, AXIS_MAX)
    realms = stuck_realms(est)
    keys = [k for k, v in REALMS.items() if v in realms]
    return TaieAssessment(
        x=est[0], y=est[1], z=est[2], stuck_realms=realms, source="offline template",
        recommendations=[REALM_RECOMMENDATION[k] for k in keys],
        narrative=f"[offline template] stage {context.stage}, phase {context.phase}: boundaries X {est[0]:+.1f}, "
                  f"self-esteem Y {est[1]:+.1f}, cherishment Z {est[2]:+.1f}; "
                  + (f"stuck in {', '.join(realms)}." if realms else "no realm stuck."))


def parse_taie_output(text: str) -> tuple[TaieAssessment | None, str]:
    """The first JSON object with x, y, z (clamped to the axis range) and a narrative; else None and why."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text if isinstance(text, str) else ""):
        try:
            obj, _ = decoder.raw_decode(text[match.start():])
        except (ValueError, RecursionError):
            continue
        if not isinstance(obj, dict) or not {"x", "y", "z"} <= set(obj):
            continue
        try:
            axes = {k: float(np.clip(float(obj[k]), AXIS_MIN, AXIS_MAX)) for k in "xyz"}
            if not all(np.isfinite(v) for v in axes.values()):
                return None, "axes not finite"
            return TaieAssessment(**axes, narrative=str(obj.get("narrative", "")),
                                  stuck_realms=[str(s) for s in obj.get("stuck_realms", []) or []],
                                  recommendations=[str(r) for r in obj.get("recommendations", []) or []]), ""
        except (TypeError, ValueError, ValidationError) as exc:
            return None, f"axes not numbers ({type(exc).__name__})"
    return None, "no JSON object with x, y and z"
