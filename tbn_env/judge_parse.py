"""Turn a model judge's raw text into a valid 12-score :class:`JudgeResult`, whatever the text is.

A sampled (or tiny, random) model does not always write clean JSON. In order of preference:

1. **ok** — a JSON object whose ``scores`` hold the 12 dimensions as numbers in [0, 10];
2. **repaired** — scores recovered by extracting the first JSON object from surrounding text,
   dropping trailing commas, coercing numbers written as strings ("7/10") or as
   ``{"score": 7, "explanation": …}``, clamping to [0, 10], scanning ``dimension: number`` pairs
   when there is no JSON at all, and filling any dimension still missing with the neutral score;
3. **fallback** — nothing usable: every dimension gets :data:`FALLBACK_SCORE` (5.0, the
   dead zone: a 5 neither helps nor harms, so the env state does not move) and the caller logs and counts it.

:func:`parse_judge_output` never raises; it is fuzzed with arbitrary text in the tests.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from tbn_env.dimensions import JUDGE_DIMENSIONS, SCORE_MAX, SCORE_MIN, as_score_vector, score_dict
from tbn_env.protocols import JudgeResult, Persona

FALLBACK_SCORE = 5.0  # the dead zone — neither helps nor harms the simulated client
MAX_JSON_STARTS = 64  # '{' positions tried by the extractor: bounds the work on pathological text
MAX_TEXT_FIELD = 2000  # characters kept per explanation/narrative: a runaway judge can't bloat logs

Status = Literal["ok", "repaired", "fallback"]
_NUMBER = r"-?\d+(?:\.\d+)?"
_PAIR = re.compile(r"[\"']?(" + "|".join(JUDGE_DIMENSIONS) + r")[\"']?\s*[:=]\s*[\"']?(" + _NUMBER + ")", re.IGNORECASE)
_LEADING_NUMBER = re.compile(r"^\s*(" + _NUMBER + r")\s*(?:/\s*10|out of 10)?")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


class StrictVerdict(BaseModel):
    """The judge JSON exactly as the prompt asks for it."""

    model_config = ConfigDict(extra="ignore")

    scores: dict[str, float]
    explanations: dict[str, str] = {}
    narrative: str = ""
    critical_moments: list[str] = []
    recommendations: list[str] = []

    @field_validator("scores")
    @classmethod
    def _twelve_in_range(cls, v: dict[str, float]) -> dict[str, float]:
        return score_dict(as_score_vector(v))  # the one score check: exactly the 12 names, finite, in [0, 10]


@dataclass(frozen=True)
class ParsedVerdict:
    """A judge result plus how it was obtained (``filled``: dimensions set to the neutral score) and,
    unless it was clean, why it was repaired or refused (for the log)."""

    result: JudgeResult
    status: Status
    filled: int
    reason: str = ""


def parse_judge_output(text: str, persona: Persona = "clinical") -> ParsedVerdict:
    """Parse, repair, or fall back (see the module docstring). Never raises."""
    try:
        return _parse(text, persona)
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. pathologically nested JSON: a run must not die
        return ParsedVerdict(fallback_result(persona), "fallback", len(JUDGE_DIMENSIONS),
                             f"unparseable output ({type(exc).__name__})")


def _parse(text: str, persona: Persona) -> ParsedVerdict:
    text = text if isinstance(text, str) else ""
    obj = _extract_object(text)
    problem = "no JSON object"
    if obj is not None:
        try:
            strict = StrictVerdict.model_validate(obj)
            if all(type(x) in (int, float) for x in obj["scores"].values()):
                return ParsedVerdict(_result(strict.model_dump(), persona), "ok", 0)
            problem = "scores written as text"
        except ValidationError as exc:
            problem = "schema: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        except (TypeError, AttributeError):
            problem = "scores not a mapping"
    scores, explanations = _scores_from_object(obj) if obj is not None else ({}, {})
    how = "coerced from the JSON object"
    if not scores:
        scores, how = _scores_from_pairs(text), "scanned as 'dimension: number' pairs"
    if not scores:
        return ParsedVerdict(fallback_result(persona), "fallback", len(JUDGE_DIMENSIONS),
                             f"{problem}; no dimension scores found")
    filled = [d for d in JUDGE_DIMENSIONS if d not in scores]
    fields = {
        "scores": {d: scores.get(d, FALLBACK_SCORE) for d in JUDGE_DIMENSIONS},
        "explanations": explanations,
        "narrative": _text(obj.get("narrative")) if obj else "",
        "critical_moments": _texts(obj.get("critical_moments")) if obj else [],
        "recommendations": _texts(obj.get("recommendations")) if obj else [],
    }
    reason = f"{problem}; scores {how}" + (f"; {len(filled)} missing filled with {FALLBACK_SCORE:g}" if filled else "")
    return ParsedVerdict(_result(fields, persona), "repaired", len(filled), reason)


def fallback_result(persona: Persona) -> JudgeResult:
    """All 12 dimensions at the dead-zone score."""
    return JudgeResult(scores=dict.fromkeys(JUDGE_DIMENSIONS, FALLBACK_SCORE), persona=persona,
                       narrative="judge output unusable: neutral fallback scores")


def _result(fields: dict[str, Any], persona: Persona) -> JudgeResult:
    return JudgeResult(
        scores={d: float(fields["scores"][d]) for d in JUDGE_DIMENSIONS},
        explanations={d: _text(v) for d, v in (fields.get("explanations") or {}).items() if d in JUDGE_DIMENSIONS},
        narrative=_text(fields.get("narrative")),
        critical_moments=_texts(fields.get("critical_moments")),
        recommendations=_texts(fields.get("recommendations")),
        persona=persona,
    )


def _extract_object(text: str) -> dict | None:
    """The first JSON object in ``text`` that looks like a verdict (or any object), else None."""
    decoder = json.JSONDecoder()
    first: dict | None = None
    for n, match in enumerate(re.finditer(r"\{", text)):
        if n >= MAX_JSON_STARTS:
            break
        for candidate in (text[match.start():], _TRAILING_COMMA.sub(r"\1", text[match.start():])):
            try:
                obj, _ = decoder.raw_decode(candidate)
            except (ValueError, RecursionError):
                continue
            if isinstance(obj, dict):
                if "scores" in obj or any(d in obj for d in JUDGE_DIMENSIONS):
                    return obj
                first = first if first is not None else obj
            break
    return first


def _scores_from_object(obj: dict) -> tuple[dict[str, float], dict[str, str]]:
    """Coerce whatever score layout the object has: {"scores": {...}} or dimensions at top level."""
    raw = obj.get("scores") if isinstance(obj.get("scores"), dict) else obj
    explanations = obj.get("explanations") if isinstance(obj.get("explanations"), dict) else {}
    scores, notes = {}, {}
    for key, value in raw.items():
        dim = str(key).strip().lower()
        if dim not in JUDGE_DIMENSIONS:
            continue
        if isinstance(value, dict):  # {"score": 7, "explanation": "..."}
            notes[dim] = _text(value.get("explanation", ""))
            value = value.get("score")
        number = _number(value)
        if number is not None:
            scores[dim] = number
    notes.update({str(k).lower(): _text(v) for k, v in explanations.items()})
    return scores, notes


def _scores_from_pairs(text: str) -> dict[str, float]:
    """``dimension: number`` pairs anywhere in the text (first occurrence wins)."""
    scores: dict[str, float] = {}
    for match in _PAIR.finditer(text):
        number = _number(match.group(2))
        dim = match.group(1).lower()
        if number is not None and dim not in scores:
            scores[dim] = number
    return scores


def _number(value: Any) -> float | None:
    """A finite score clamped to [0, 10] from a number or a string like "7", "7.5/10"; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        match = _LEADING_NUMBER.match(value)
        value = match.group(1) if match else None
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(x):
        return None
    return min(max(x, SCORE_MIN), SCORE_MAX)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return (value if isinstance(value, str) else json.dumps(value, default=str))[:MAX_TEXT_FIELD]


def _texts(value: Any) -> list[str]:
    if isinstance(value, list):
        return [_text(v) for v in value if v is not None]
    return [_text(value)] if value else []
