"""DFR's text-span factors (App. 29.1.2): assessment insights, framework references, intervention markers.

Where each kind lives in a 5-tuple turn (our reading; the paper names the three kinds only):

* ``INSIGHT``: the therapist's own assessment statements in Mᵀ, its ``stage_assessment`` and each
  of its ``modality_insights``;
* ``FRAMEWORK``: every mention of one of the 23 schools (§7.2, Table 2: the full name, the name
  without its parenthesis, or its abbreviation) in the therapist's reasoning: those Mᵀ statements,
  Θᵀ's GCO and OMO, a counterfactual branch's thought and its rationale. The client's words (and
  the client quotes Mᵀ keeps as evidence) are never marked, nor are the therapist's spoken words;
* ``INTERVENTION``: the intervention itself, the therapist's words Uᵀ of a turn or a branch.

An anchor wraps its span as ``<FAC:KIND>…</FAC:KIND>`` and is a pure insertion: removing the anchors
(:func:`strip`) gives back the text exactly (as long as the corpus text itself holds no such anchor,
which no backend is asked to write). Inside Mᵀ, which is rendered as JSON, the anchors sit
inside the JSON strings, so the block stays valid JSON.
"""
from __future__ import annotations

import re
from functools import lru_cache

from corpus.schema import Branch, Turn
from corpus.therapist import schools

SPAN_FACTORS: tuple[str, ...] = ("INSIGHT", "FRAMEWORK", "INTERVENTION")
ANCHOR = re.compile(r"</?FAC:(?:INSIGHT|FRAMEWORK|INTERVENTION)>")
_ROMAN = re.compile(r"[IVX]+")


def wrap(kind: str, text: str) -> str:
    """The anchor format of every DFR factor, session-level or text-span: ``<FAC:KIND>text</FAC:KIND>``."""
    return f"<FAC:{kind}>{text}</FAC:{kind}>"


@lru_cache(maxsize=1)
def framework_pattern() -> re.Pattern[str]:
    """One case-sensitive pattern for every way a school is named; the longest form wins at a position."""
    forms = set()
    for school in schools():
        name = school["name"]
        forms.add(name)
        short, _, paren = name.partition(" (")
        forms.add(short)
        abbreviation = paren.rstrip(")")
        if len(abbreviation) >= 2 and abbreviation.isupper() and not _ROMAN.fullmatch(abbreviation):
            forms.add(abbreviation)   # "IFS", "AEDP"; not the "(I)" / "(II)" that number a school's parts
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def frameworks_in(text: str) -> list[str]:
    """The school mentions in a piece of the therapist's reasoning, in order."""
    return framework_pattern().findall(text)


def mark_frameworks(text: str) -> str:
    """``text`` with every school mention wrapped as a FRAMEWORK span."""
    return framework_pattern().sub(lambda m: wrap("FRAMEWORK", m.group(0)), text)


def insight(text: str) -> str:
    """An assessment statement as an INSIGHT span, its school mentions marked inside (empty stays empty)."""
    return wrap("INSIGHT", mark_frameworks(text)) if text else text


def intervention(text: str) -> str:
    return wrap("INTERVENTION", text)


def strip(text: str) -> str:
    """``text`` without its text-span anchors (the session-level anchors stay)."""
    return ANCHOR.sub("", text)


def turn_spans(turn: Turn) -> dict[str, list[str]]:
    """The text-span factors of one turn, by kind, in the order they are rendered."""
    m, thought = turn.therapist_model, turn.therapist_thought
    statements = [s for s in (m.stage_assessment, *m.modality_insights) if s]
    return {"INSIGHT": statements,
            "FRAMEWORK": [f for text in (*statements, thought.gco, thought.omo) for f in frameworks_in(text)],
            "INTERVENTION": [turn.therapist_utterance]}


def branch_spans(branch: Branch) -> dict[str, list[str]]:
    """The text-span factors of a counterfactual branch: the schools its thought names and its words."""
    return {"INSIGHT": [], "FRAMEWORK": frameworks_in(branch.therapist_thought),
            "INTERVENTION": [branch.therapist_utterance]}
