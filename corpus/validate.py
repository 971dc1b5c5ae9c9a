"""Corpus-level checks of §30.2 that need no training: schema validity, C1 diversity, C2 structure.

C1 (diversity): mean pairwise Jaccard similarity of therapist-utterance n-grams between sessions
below 0.15, with the type-token ratio reported. C2 (structure): GCO and OMO present in at least 95 %
of raw sessions, and the DFR factors detectable (filled) in at least 85 % of them.
"""
from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from .schema import CounterfactualSample, Session
from .writer import read_samples

C1_MAX_JACCARD = 0.15       # §30.2 C1
C2_MIN_GCO_OMO = 0.95       # §30.2 C2
C2_MIN_FACTORS = 0.85       # §30.2 C2
NGRAM = 3                   # word trigrams: long enough to catch templated phrasing
MAX_PAIRS = 5000            # pairwise Jaccard on at most this many session pairs (seeded sample)
_WORD = re.compile(r"[a-z']+")


@dataclass
class Claim:
    name: str
    value: float
    threshold: str
    passed: bool


def _ngrams(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


def validate_corpus(directory: str | Path) -> tuple[int, list[str], list[Claim]]:
    """(valid count, schema errors, claims) for a corpus directory; streams one line at a time."""
    errors, grams, words = [], [], []
    gco_omo = factors = valid = 0
    for shard, line_no, line in read_samples(directory):
        model = CounterfactualSample if shard.startswith("counterfactuals") else Session
        try:
            session = model.model_validate_json(line)
        except ValidationError as exc:
            errors.append(f"{shard}:{line_no}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
            continue
        valid += 1
        if model is CounterfactualSample:
            continue  # the corpus claims below are about raw sessions
        said = " ".join(t.therapist_utterance for t in session.turns)
        grams.append(_ngrams(said))
        words.extend(_WORD.findall(said.lower()))
        gco_omo += all(t.therapist_thought.gco.strip() and t.therapist_thought.omo.strip() for t in session.turns)
        f = session.factors
        factors += bool(f.phases and (f.defenses or f.focus_areas) and f.issues)
    claims = []
    if grams:
        pairs = list(itertools.combinations(range(len(grams)), 2))
        if len(pairs) > MAX_PAIRS:
            rng = np.random.default_rng(0)
            pairs = [pairs[i] for i in rng.choice(len(pairs), MAX_PAIRS, replace=False)]
        jac = [len(grams[a] & grams[b]) / max(1, len(grams[a] | grams[b])) for a, b in pairs]
        mean_jaccard = float(np.mean(jac)) if jac else 0.0
        claims = [Claim("C1 mean pairwise Jaccard (therapist trigrams)", mean_jaccard, f"< {C1_MAX_JACCARD}",
                        mean_jaccard < C1_MAX_JACCARD),
                  Claim("C1 type-token ratio", len(set(words)) / max(1, len(words)), "reported", True),
                  Claim("C2 GCO/OMO present", gco_omo / len(grams), f">= {C2_MIN_GCO_OMO}",
                        gco_omo / len(grams) >= C2_MIN_GCO_OMO),
                  Claim("C2 factor detection", factors / len(grams), f">= {C2_MIN_FACTORS}",
                        factors / len(grams) >= C2_MIN_FACTORS)]
    return valid, errors, claims


def report(directory: str | Path) -> str:
    """A human-readable validation report (also used by the CLI)."""
    valid, errors, claims = validate_corpus(directory)
    lines = [f"{valid} schema-valid samples, {len(errors)} invalid"] + [f"  invalid: {e}" for e in errors[:20]]
    lines += [f"  {'PASS' if c.passed else 'FAIL'} {c.name}: {c.value:.3f} (target {c.threshold})" for c in claims]
    return "\n".join(lines)


def stats(directory: str | Path) -> dict:
    """Counts by stage and attachment family, turns per session."""
    by_stage: dict[int, int] = {}
    by_family: dict[str, int] = {}
    turns = []
    for _, _, line in read_samples(directory):
        s = json.loads(line)
        by_stage[s["context"]["stage"]] = by_stage.get(s["context"]["stage"], 0) + 1
        fam = s["client"]["attachment"][0]
        by_family[fam] = by_family.get(fam, 0) + 1
        turns.append(len(s["turns"]))
    return {"sessions": len(turns), "by_stage": by_stage, "by_attachment_family": by_family,
            "turns_mean": float(np.mean(turns)) if turns else 0.0}
