"""The Tier-1 corpus claims of §30.2.1 that need no training or reviewers, and schema validity.

C1 (diversity): mean pairwise Jaccard similarity of therapist-utterance trigrams between sessions
below 0.15, type-token ratio reported, and the number of clusters growing with corpus size (greedy
leader clustering on trigram sets stands in for the paper's unspecified embedding clustering).
C2 (structure): GCO and OMO present in at least 95 % of raw sessions and the DFR factors detectable
(filled) in at least 85 %. C4 (no dominant tradition): token-weighted entropy of the 23 schools at
least 0.85 of its maximum and no school above 15 %. C5 (breadth): share of concern x attachment x
age band x region cells with a sample (target 60 %) and full marginal coverage of each dimension.
C3 and C8 need expert or LLM raters and are not computed here.
"""
from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from .catalogues import load
from .schema import DMM_CODES, CounterfactualSample, Session
from .writer import audit, read_samples

C1_MAX_JACCARD = 0.15       # §30.2.1 C1
C2_MIN_GCO_OMO = 0.95       # §30.2.1 C2
C2_MIN_FACTORS = 0.85       # §30.2.1 C2
C4_MIN_ENTROPY = 0.85       # §30.2.1 C4: share of the maximum entropy
C4_MAX_SHARE = 0.15         # §30.2.1 C4
C5_MIN_CELLS = 0.60         # §30.2.1 C5
NGRAM = 3                   # ours: word trigrams, long enough to catch templated phrasing
MAX_PAIRS = 5000            # ours: pairwise Jaccard on at most this many session pairs (seeded sample)
CLUSTER_JOIN = 0.5          # ours: a session joins a cluster whose leader shares >= half its trigrams
CLUSTER_FRACTIONS = (0.25, 0.5, 0.75, 1.0)   # ours: corpus fractions at which clusters are counted
MAX_CLUSTERED = 2000        # ours: sessions clustered at most (seeded sample), bounding the quadratic cost
AGE_BANDS = (30, 45, 65)    # ours: 18-29, 30-44, 45-64, 65+ as C5's developmental-stage axis
_WORD = re.compile(r"[a-z']+")


@dataclass
class Claim:
    """One claim's measured value, its acceptance threshold, and whether it passed."""

    name: str
    value: float
    threshold: str
    passed: bool


def _ngrams(text: str) -> set[tuple[str, ...]]:
    """The set of word n-grams of a text."""
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


def _jaccard(a: set, b: set) -> float:
    """Jaccard similarity of two sets."""
    return len(a & b) / max(1, len(a | b))


def cluster_counts(grams: list[set]) -> list[int]:
    """Greedy leader clusters over trigram sets, counted at each of CLUSTER_FRACTIONS of the corpus."""
    leaders: list[set] = []
    marks = {max(1, round(f * len(grams))) for f in CLUSTER_FRACTIONS}
    counts = []
    for i, g in enumerate(grams, 1):
        if not any(_jaccard(g, leader) >= CLUSTER_JOIN for leader in leaders):
            leaders.append(g)
        if i in marks:
            counts.append(len(leaders))
    return counts


def _entropy_claims(tokens_by_school: dict[str, float]) -> list[Claim]:
    """C4: token-weighted school entropy relative to log 23, and the largest share."""
    total = sum(tokens_by_school.values())
    shares = np.array([v / total for v in tokens_by_school.values()])
    n_schools = len(load("therapists")["schools"])
    ratio = float(-(shares * np.log(shares)).sum() / np.log(n_schools))
    top = float(shares.max())
    return [Claim("C4 modality entropy / max (token-weighted)", ratio, f">= {C4_MIN_ENTROPY}", ratio >= C4_MIN_ENTROPY),
            Claim("C4 largest modality share", top, f"<= {C4_MAX_SHARE}", top <= C4_MAX_SHARE)]


def _coverage_claims(cells: set[tuple], marginals: list[set]) -> list[Claim]:
    """C5: filled cells of the coverage matrix and the worst marginal coverage."""
    data = load("clients")
    axes = [set(data["concerns"]), set(DMM_CODES), set(range(len(AGE_BANDS) + 1)), set(data["regions"])]
    share = len(cells) / int(np.prod([len(a) for a in axes]))
    marginal = min(len(m & a) / len(a) for m, a in zip(marginals, axes))
    return [Claim("C5 cell coverage (concern x DMM x age band x region)", share, f">= {C5_MIN_CELLS}",
                  share >= C5_MIN_CELLS),
            Claim("C5 worst marginal coverage", marginal, "= 1.0", marginal == 1.0)]


def validate_corpus(directory: str | Path) -> tuple[int, list[str], list[Claim]]:
    """(valid count, errors, claims) for a corpus directory; streams one line at a time.

    Errors are schema failures, repeated ids and a manifest its shards contradict.
    """
    errors, grams, words = audit(directory), [], []
    gco_omo = factors = valid = 0
    tokens_by_school: dict[str, float] = {}
    cells: set[tuple] = set()
    marginals: list[set] = [set(), set(), set(), set()]
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
        session_words = _WORD.findall(said.lower())
        words.extend(session_words)
        gco_omo += all(t.therapist_thought.gco.strip() and t.therapist_thought.omo.strip() for t in session.turns)
        f = session.factors
        factors += bool(f.phases and (f.defenses or f.focus_areas) and f.issues)
        for school in session.therapist.schools:
            share = len(session_words) / len(session.therapist.schools)
            tokens_by_school[school] = tokens_by_school.get(school, 0.0) + share
        c = session.client
        band = sum(c.age >= edge for edge in AGE_BANDS)
        region = c.demographics.get("region", "")
        for concern in c.presenting_concerns:
            cells.add((concern, c.attachment, band, region))
        for axis, value in zip(marginals, (None, c.attachment, band, region)):
            axis.add(value)
        marginals[0].update(c.presenting_concerns)
    if not grams:
        return valid, errors, []
    rng = np.random.default_rng(0)
    pairs = list(itertools.combinations(range(len(grams)), 2))
    if len(pairs) > MAX_PAIRS:
        pairs = [pairs[i] for i in rng.choice(len(pairs), MAX_PAIRS, replace=False)]
    mean_jaccard = float(np.mean([_jaccard(grams[a], grams[b]) for a, b in pairs])) if pairs else 0.0
    order = rng.permutation(len(grams))[:MAX_CLUSTERED]
    counts = cluster_counts([grams[i] for i in order])
    growing = all(a <= b for a, b in zip(counts, counts[1:])) and counts[-1] > counts[0]
    n = len(grams)
    claims = [Claim("C1 mean pairwise Jaccard (therapist trigrams)", mean_jaccard, f"< {C1_MAX_JACCARD}",
                    mean_jaccard < C1_MAX_JACCARD),
              Claim("C1 type-token ratio", len(set(words)) / max(1, len(words)), "reported", True),
              Claim(f"C1 cluster count at {'/'.join(f'{x:g}' for x in CLUSTER_FRACTIONS)} of corpus: "
                    f"{'/'.join(map(str, counts))}", float(counts[-1]), "increasing with corpus size", growing),
              Claim("C2 GCO/OMO present", gco_omo / n, f">= {C2_MIN_GCO_OMO}", gco_omo / n >= C2_MIN_GCO_OMO),
              Claim("C2 factor detection", factors / n, f">= {C2_MIN_FACTORS}", factors / n >= C2_MIN_FACTORS)]
    return valid, errors, claims + _entropy_claims(tokens_by_school) + _coverage_claims(cells, marginals)


def format_report(valid: int, errors: list[str], claims: list[Claim]) -> str:
    """A human-readable validation report (also used by the CLI)."""
    lines = [f"{valid} schema-valid samples, {len(errors)} invalid"] + [f"  invalid: {e}" for e in errors[:20]]
    if len(errors) > 20:
        lines.append(f"  ... and {len(errors) - 20} more")
    lines += [f"  {'PASS' if c.passed else 'FAIL'} {c.name}: {c.value:.3f} (target {c.threshold})" for c in claims]
    return "\n".join(lines)


def stats(directory: str | Path) -> dict:
    """Counts by kind, stage, attachment family and pipeline; turns per session; tokens and cost.

    Raises ValueError for a corpus with repeated ids or a manifest its shards contradict.
    """
    problems = audit(directory)
    if problems:
        raise ValueError(f"{directory} is inconsistent: {'; '.join(problems[:3])}")
    out: dict = {"samples": 0, "by_kind": {}, "by_stage": {}, "by_attachment_family": {}, "by_pipeline": {},
                 "turns_mean": 0.0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
    turns = []

    def bump(key: str, value) -> None:
        """Count `value` under `key`."""
        out[key][value] = out[key].get(value, 0) + 1
    for _, _, line in read_samples(directory):
        s = json.loads(line)
        out["samples"] += 1
        kind = s.get("kind", "raw")
        bump("by_kind", kind)
        if kind == "counterfactual":
            bump("by_stage", s["stage"])
            bump("by_pipeline", s["pipeline"])
        else:
            bump("by_stage", s["context"]["stage"])
            bump("by_attachment_family", s["client"]["attachment"][0])
            turns.append(len(s["turns"]))
        g = s.get("generation", {})
        out["input_tokens"] += g.get("input_tokens", 0)
        out["output_tokens"] += g.get("output_tokens", 0)
        out["cost_usd"] += g.get("cost_usd", 0.0)
    out["turns_mean"] = float(np.mean(turns)) if turns else 0.0
    return out
