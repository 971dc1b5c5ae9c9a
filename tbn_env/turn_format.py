"""The therapist-turn text format: an optional hidden thought, then the words said aloud.

`<think>thought</think>words` is the documented format; `<thinking>thought</thinking><say>words</say>`
is accepted too (then only the `<say>` content is spoken); plain text is all utterance. A malformed
turn keeps its text in the utterance and reports the problem, so the judge and the validators can
see and penalise it (App. 31 Failure 14, instruction non-compliance).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .validators import TEXTS_REMEMBERED

_THINK = re.compile(r"\A\s*<(think|thinking)>(.*?)</\1>(.*)\Z", re.S)
_SAY = re.compile(r"<say>(.*?)</say>", re.S)
_TAG = re.compile(r"</?(think|thinking|say)>")


@dataclass(frozen=True)
class TherapistTurn:
    """A parsed turn: hidden thought, spoken utterance, and what (if anything) was malformed."""

    thought: str
    utterance: str
    well_formed: bool
    problems: tuple[str, ...] = ()


def parse_therapist_turn(text: str) -> TherapistTurn:
    """Split a generated turn into (thought, utterance), reporting format problems."""
    if not isinstance(text, str):
        raise TypeError(f"a therapist turn is text, got {type(text).__name__}")
    return _parse(text)


@lru_cache(maxsize=TEXTS_REMEMBERED)
def _parse(text: str) -> TherapistTurn:
    """`parse_therapist_turn`, once per distinct text (a scripted therapist repeats its lines)."""
    problems: list[str] = []
    thought, rest = "", text
    m = _THINK.match(text)
    if m:
        thought, rest = m.group(2).strip(), m.group(3)
    elif _TAG.search(text) and re.search(r"<think(ing)?>", text):
        problems.append("unclosed or misplaced <think> tag")
    say = _SAY.search(rest)
    if say:
        outside = (rest[:say.start()] + rest[say.end():]).strip()
        if outside:
            problems.append("text outside <say>")
        utterance = say.group(1).strip()
    else:
        utterance = rest.strip()
    if _TAG.search(utterance):
        problems.append("tags inside the utterance")
    return TherapistTurn(thought, utterance, not problems, tuple(problems))
