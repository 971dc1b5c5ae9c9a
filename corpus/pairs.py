"""Preference pairs for DPO, Methods A and B of §9.3.11, from counterfactual teaching moments.

How a pair is formed. A counterfactual sample (App. 28) continues one moment of a session in several
branches. Its first *better* branch is the chosen answer; each *harmful* and *partial* branch is a
rejected one, and so is what the therapist said in the session when it differs from the chosen
words (branch classes: `corpus.teaching`). Both sides are whole therapist answers, hidden thought
in `<think>` then the words said. A sample with no better branch, or nothing to reject, forms no pair.

The methods differ in the prompt only, so the same preferences meet different contexts:

* **A** (pairs from the DAPT corpus): the dialogue up to the moment as plain lines, with the stage,
  session number and client profile summary, as the self-play therapist sees it.
* **B** (pairs from the whole curriculum, RRA + ADWC + UHD): three prompts per preference, the
  curriculum's own renderings of the turns before the moment (`dapt.markers`): the UHD prefix, the
  longest forward and reverse ADWC windows ending there, and the tail of the DFR session text an RRA
  window of `RRA_WINDOW_CHARS` holds; each followed by the client's words at the moment.

Every pair is validated as `corpus.schema.PreferencePair`, exact duplicates (same prompt, chosen and
rejected) are dropped, and whole moments go to a held-out file (`corpus.heldout`), so a held-out
prompt's session moment was never trained on.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .heldout import HELDOUT_SHARE, heldout_groups
from .schema import CounterfactualSample, PreferencePair, Session
from .teaching import (
    branch_answer,
    branch_class,
    divergence,
    load_counterfactuals,
    load_sessions,
    source_session,
    therapist_prompt,
    turn_answer,
)

METHODS = ("A", "B")
# ours: ~1.5K tokens at ~4 characters a token, inside the paper's 1.6-2.5K-token RRA windows (§8.2)
RRA_WINDOW_CHARS = 6000


@dataclass(frozen=True)
class PairsReport:
    """What `write_pairs` produced."""

    train: int
    heldout: int
    duplicates: int
    moments: int
    without_pair: int

    def summary(self) -> str:
        return (f"{self.train} training and {self.heldout} held-out pairs from {self.moments} counterfactual moments "
                f"({self.without_pair} formed no pair, {self.duplicates} duplicates dropped)")


def preferences(sample: CounterfactualSample, session: Session) -> list[tuple[str, str, str]]:
    """(chosen, rejected, kind) of one moment; kind names what was rejected."""
    classes = [(branch_class(b), b) for b in sample.branches]
    better = next((b for c, b in classes if c == "better"), None)
    if better is None:
        return []
    chosen = branch_answer(better)
    out = [(chosen, branch_answer(b), c) for c, b in classes if c in ("harmful", "partial")]
    said = session.turns[divergence(sample)]
    if said.therapist_utterance.strip() != better.therapist_utterance.strip():
        out.append((chosen, turn_answer(said), "original"))
    return out


def curriculum_prompts(session: Session, position: int) -> list[tuple[str, str]]:
    """(strategy, prompt) of Method B: the curriculum's renderings of the turns before `position`."""
    from dapt import adwc, dfr, uhd
    from dapt.markers import session_header, to_text

    now = f"\nClient: {session.turns[position].client_utterance}\n\nYour turn."
    if position == 0:
        return [("uhd", session_header(session) + now)]
    out = [("uhd", to_text(uhd.expand(session)[position - 1]) + now)]
    ending = [w for w in adwc.windows(session) if max(w.turns) == position - 1]
    for forward in (True, False):
        found = [w for w in ending if w.forward == forward]
        if found:
            w = max(found, key=lambda w: w.k)
            out.append((f"adwc{w.k}", to_text(list(w.pieces)) + now))
    before = session.model_copy(update={"turns": session.turns[:position]})
    out.append(("rra", to_text(dfr.full_session(before))[-RRA_WINDOW_CHARS:] + now))
    return out


def pairs_of(sample: CounterfactualSample, session: Session, method: str) -> Iterator[PreferencePair]:
    """Every validated pair one moment yields under `method`."""
    position = divergence(sample)
    prompts = [("dialogue", therapist_prompt(session, position))] if method == "A" else \
        curriculum_prompts(session, position)
    for chosen, rejected, kind in preferences(sample, session):
        for strategy, prompt in prompts:
            key = hashlib.sha256(json.dumps([prompt, chosen, rejected]).encode("utf-8")).hexdigest()[:16]
            yield PreferencePair(pair_id=f"{method}-{key}", prompt=prompt, chosen=chosen, rejected=rejected,
                                 source=f"{method}:{strategy}:{sample.pipeline}:{kind}:{sample.sample_id}")


def build_pairs(corpus: str | Path, counterfactuals: str | Path, method: str
                ) -> tuple[list[tuple[str, PreferencePair]], int, int, int]:
    """((moment id, pair) deduplicated, duplicates, moments, moments without a pair)."""
    if method not in METHODS:
        raise ValueError(f"unknown pair method {method!r}; choose A (DAPT corpus) or B (whole curriculum)")
    sessions = load_sessions(corpus)
    samples = load_counterfactuals(counterfactuals)
    if not samples:
        raise ValueError(f"{counterfactuals} holds no counterfactual samples; run `tbn-corpus counterfactuals` first")
    seen, out, duplicates, without = set(), [], 0, 0
    for sample in samples:
        formed = list(pairs_of(sample, source_session(sample, sessions), method))
        without += not formed
        for pair in formed:
            if pair.pair_id in seen:
                duplicates += 1
                continue
            seen.add(pair.pair_id)
            out.append((sample.sample_id, pair))
    if not out:
        raise ValueError(f"no counterfactual in {counterfactuals} has a better branch and one to reject "
                         "(branch labels: see corpus.teaching); nothing written")
    return out, duplicates, len(samples), without


def _write(path: Path, pairs: list[PreferencePair]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(p.model_dump_json() + "\n" for p in pairs), encoding="utf-8")
    tmp.replace(path)


def heldout_path(out: str | Path) -> Path:
    """Where the held-out pairs of `out` go: beside it, `NAME.heldout.jsonl`."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".jsonl") + ".heldout.jsonl")


def write_pairs(corpus: str | Path, counterfactuals: str | Path, method: str, out: str | Path,
                share: float = HELDOUT_SHARE) -> PairsReport:
    """Form, validate, dedupe and split the pairs; write `out` and its held-out file (all or nothing)."""
    pairs, duplicates, moments, without = build_pairs(corpus, counterfactuals, method)
    held = heldout_groups((m for m, _ in pairs), share)
    train = [p for m, p in pairs if m not in held]
    test = [p for m, p in pairs if m in held]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(heldout_path(out), test)
    _write(out, train)
    return PairsReport(len(train), len(test), duplicates, moments, without)
