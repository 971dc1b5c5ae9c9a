"""Checks for the failure modes of App. 31 that need no model.

Hard checks (`hard_violations`, `validate_utterance`) catch output that is not therapeutic speech at
all or crosses a boundary: a GRPO candidate that fails one scores 0 and an RLAIF correction that
fails one is skipped. Soft checks (`soft_flags`) give the judge evidence of subtler
harms: negation-based reassurance, ungrounded scene details, premature depth, new material at the end.
"""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache

from .prefilter import Prefiltered, Screen

MAX_UTTERANCE_WORDS = 250   # a spoken turn longer than this is a lecture, not a reply
REPEAT_RUN = 6              # a codepoint repeated this often in a row is degeneration (App. 31 Failure 8)
SYMBOL_SHARE = 0.3          # above this share of non-text characters the output is garbled
TEXTS_REMEMBERED = 1024     # distinct texts whose readings are kept (checks, parses): every scripted line, bounded memory


@dataclass(frozen=True)
class Violation:
    """One detected failure: its name, the App. 31 failure number, and the text that showed it."""

    name: str
    failure: int | None
    evidence: str


def _rx(pattern: str) -> Prefiltered:
    return Prefiltered(pattern, re.I | re.M)


# (name, App. 31 failure number, pattern) for the hard checks
_HARD: tuple[tuple[str, int, Prefiltered], ...] = (
    ("boundary_violation", 11, _rx(
        r"\b(come|move|scoot|sit|lean)\b[^.?!\n]{0,25}\b(closer|next to me|beside me|over here|near me|on my lap)\b"
        r"|\bmove your chair\b|\b(let me|can i|i want to|i'?d like to|i'?ll)\s+(hold|hug|touch|kiss|stroke)\b"
        r"|\bmeet (me |up )?(outside|after (the )?session|for (a )?(drink|coffee|dinner|date))\b"
        r"|\b(come|visit) (to )?my (place|home|apartment|house)\b|\bour (little )?secret\b|\bgo on a date\b")),
    ("meta_commentary", 12, _rx(
        r"\bwhy this works\b|\bhere'?s (a|an|my|the) (better |revised |improved )?(response|version|reply)\b"
        r"|^\s*(response|therapist|assistant|answer|revised response)\s*:|\bas an ai\b"
        r"|^\s{0,3}#{1,6}\s+\S|^\s*(?:[-*\u2022]|\d+[.)])\s+\S[^\n]*\n\s*(?:[-*\u2022]|\d+[.)])\s+\S")),
    ("leaked_reasoning", 13, _rx(
        r"</?(think|thinking|say|reasoning|analysis)>|\b(overthinking|dissociating|inner critic|defen[cs]e)\s*:\s*\w+\.")),
    ("leaked_reasoning", 13, Prefiltered(r"(?:\b[A-Z][a-z]+:\s+[A-Z][a-z]+\.\s*){2,}")),  # "Label: Phrase." pairs
    ("category_score", 6, _rx(r"\b[ABC]\d\s*=\s*\d+(\.\d+)?\s*/\s*10")),
    # a symbol repeated, or a pair of symbols repeated: both from their first symbol, so a search skips to symbols
    ("unicode_degeneration", 8, Prefiltered(rf"([^\w\s])(?:\1{{{REPEAT_RUN - 1},}}|([^\w\s])(?:\1\2){{3,}})")),
    ("mixed_script", 13, Prefiltered(
        "[\u0400-\u04ff\u0590-\u06ff\u0900-\u0dff\u0e00-\u0e7f\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")),
)
_HARD_SCREEN = Screen(p for *_, p in _HARD)   # all of them screened in one search of an utterance
_WORD = re.compile(r"[A-Za-z']+")
_NON_TEXT_CHAR = re.compile(r"[^\w\s.,;:!?'\"()\-\u2019\u2018\u201c\u201d\u2014\u2013\u2026]")   # usually none: found fast


def hard_violations(utterance: str, thought: str = "") -> list[Violation]:
    """Every hard failure in a spoken utterance (the thought is hidden, so only the utterance counts)."""
    return list(_hard_violations(utterance))


@lru_cache(maxsize=TEXTS_REMEMBERED)
def _hard_violations(utterance: str) -> tuple[Violation, ...]:
    """`hard_violations`, read once per distinct utterance (the judge and the harm check both ask)."""
    found: list[Violation] = []
    cues = _HARD_SCREEN.read(utterance)
    for name, failure, pattern in _HARD:
        m = cues.search(pattern)
        if m and all(v.name != name for v in found):
            found.append(Violation(name, failure, m.group(0)[:80]))
    n_words = len(words(utterance) if utterance.isascii() else _WORD.findall(utterance))   # ASCII: lower-casing keeps every word
    if not utterance.strip():
        found.append(Violation("empty", 14, ""))
    elif n_words > MAX_UTTERANCE_WORDS:
        found.append(Violation("overlong", 14, f"{n_words} words"))
    stripped = utterance.replace(" ", "")
    if stripped and 1.0 - (len(stripped) - len(_NON_TEXT_CHAR.findall(stripped))) / len(stripped) > SYMBOL_SHARE:
        found.append(Violation("garbled", 8, utterance[:40]))
    return tuple(found)


def validate_utterance(utterance: str, thought: str = "") -> list[str]:
    """Names of the hard failures (empty list = the utterance is usable speech)."""
    return [v.name for v in hard_violations(utterance, thought)]


# ---------------------------------------------------------------------- soft flags for the judge
_NEGATION = _rx(r"\b(that|this|it)('s| is| isn'?t)( not)? (a )?(weakness|failure|selfish|crazy|stupid|your fault|"
                r"weak|broken)\b[^.?!]{0,40}\b(it'?s|that'?s|it is|that is|but)\b"
                r"|\bnot (a )?(weakness|failure)\b[^.?!]{0,20}\b(it'?s|that'?s)\b")
_DEPTH = _rx(r"\b(unconscious(ly)?|transference|deep down you|your (attachment|childhood|mother|father) "
             r"(is|was|made|taught)|this (is|goes) back to|repressed|core wound)\b")
_NEW_MATERIAL = _rx(r"\b(let'?s (explore|open|dig into|look at) (something|a new|another)|something new|"
                    r"a new (topic|issue|area)|what else (haven'?t|have you not))\b")
_SAID_SCREEN = Screen((_NEGATION, _DEPTH, _NEW_MATERIAL))
#: Concrete things a reply should not invent about the client's surroundings or people (Failure 10).
CONCRETE = frozenset("""dog cat puppy pet bird horse window chair couch sofa desk car garden yard photo picture plant
kitchen bedroom office room door husband wife partner boyfriend girlfriend son daughter mother mom mum father dad
brother sister grandmother grandfather friend boss coworker colleague baby child kids teacher neighbor neighbour
rain snow sun coffee tea cup glass necklace ring jacket shirt""".split())


@lru_cache(maxsize=8192)
def words(text: str) -> tuple[str, ...]:
    """The lower-cased words of a text (cached: a dialogue's earlier turns are read again every turn)."""
    return tuple(_WORD.findall(text.lower()))


def ungrounded_details(utterance: str, grounding: str | Collection[str]) -> list[str]:
    """Concrete nouns the reply mentions that neither the profile card nor the dialogue contains.

    `grounding` is one text or its pieces (the card, each turn), so unchanged pieces are not read again.
    """
    concrete = _said_checks(utterance)[3]
    if not concrete:   # nothing concrete said: nothing to look up
        return []
    pieces = (grounding,) if isinstance(grounding, str) else grounding
    known = set().union(*map(words, pieces))
    return sorted(w for w in concrete if w not in known and w.rstrip("s") not in known)


@lru_cache(maxsize=TEXTS_REMEMBERED)
def _said_checks(utterance: str) -> tuple[bool, bool, bool, frozenset[str]]:
    """What the soft checks read in the utterance alone: negation reassurance, premature depth and new
    material patterns, and the concrete nouns it names (once per distinct utterance)."""
    cues = _SAID_SCREEN.read(utterance)
    return (bool(cues.search(_NEGATION)), bool(cues.search(_DEPTH)), bool(cues.search(_NEW_MATERIAL)),
            frozenset(words(utterance)) & CONCRETE)


def soft_flags(utterance: str, grounding: str | Collection[str], stage: int) -> dict[str, bool]:
    """Evidence for the judge: negation reassurance, ungrounded detail, premature depth, new material."""
    negation, depth, new_material, _ = _said_checks(utterance)
    return {
        "negation_reassurance": negation,
        "ungrounded_detail": bool(ungrounded_details(utterance, grounding)),
        "premature_depth": stage == 1 and depth,
        "new_material": stage == 4 and new_material,
    }
