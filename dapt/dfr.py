"""DFR, Decomposition-Factorization-Recomposition (App. 29.1), over corpus sessions.

Decomposition splits a session into turn-level 5-tuples, sub-turn components and segments (the
sections of Mᵀ and the GCO / OMO blocks of Θᵀ); factorization labels it with multiclass (stage,
attachment, phase), multilabel (defences, focus areas, issues, strengths) and text-span factors
(assessment insights, framework references, intervention markers: `dapt.text_spans`), the last also
as segments and as `<FAC:…>` anchors around their spans in every rendered turn;
recomposition rebuilds full sessions (exactly: decompose then recompose is the identity), windows of
varying length, or a short-to-long curriculum. Counterfactual samples go through the same steps
(§7): their context turns decompose like a session's, and they recompose into one sample each.
A mask spec chooses which components the loss trains.
"""
from __future__ import annotations

from dataclasses import dataclass

from corpus.schema import CounterfactualSample, Session

from .markers import COMPONENTS, Piece, branch_pieces, counterfactual_header, session_header, turn_pieces
from .text_spans import SPAN_FACTORS, mark_frameworks, turn_spans

WINDOW_LENGTHS = (2, 4, 8)   # choice: turns per window: short, medium and long contexts from one session


@dataclass(frozen=True)
class Units:
    """A decomposed session: everything needed to rebuild it, at three levels of granularity."""

    meta: dict                                  # the session without its turns
    turns: tuple[dict, ...]                     # TURN level: each 5-tuple with its index and phase
    components: tuple[tuple[int, str, str], ...]  # SUB_TURN level: (turn, component, text)
    segments: tuple[tuple[int, str, str], ...]    # SEGMENT level: (turn, section, text)


def decompose(session: Session) -> Units:
    data = session.model_dump(mode="json")
    turns = tuple(data.pop("turns"))
    return Units(data, turns, *_turn_units(session.turns))


def decompose_counterfactual(sample: CounterfactualSample) -> Units:
    """A counterfactual's units: its context turns as a session's, the rest (branches, rationale) as meta."""
    data = sample.model_dump(mode="json")
    turns = tuple(data.pop("context_turns"))
    return Units(data, turns, *_turn_units(sample.context_turns))


def recompose_counterfactual(units: Units) -> CounterfactualSample:
    """The counterfactual the units came from."""
    return CounterfactualSample.model_validate({**units.meta, "context_turns": list(units.turns)})


def _turn_units(turns) -> tuple[tuple, tuple]:
    """The SUB_TURN components and SEGMENT pieces of some turns."""
    components, segments = [], []
    for t in turns:
        for name in COMPONENTS:
            value = getattr(t, name)
            components.append((t.index, name, value if isinstance(value, str) else value.model_dump_json()))
        segments += [(t.index, "gco", t.therapist_thought.gco), (t.index, "omo", t.therapist_thought.omo)]
        m = t.therapist_model
        segments += [(t.index, f"defense:{d}", d) for d in m.active_defenses]
        segments += [(t.index, f"issue:{i.label}", i.evidence) for i in m.probable_issues]
        segments += [(t.index, f"focus:{f}", f) for f in m.working_focus_areas]
        segments += [(t.index, kind.lower(), text) for kind, texts in turn_spans(t).items() for text in texts]
    return tuple(components), tuple(segments)


def recompose(units: Units) -> Session:
    """The session the units came from."""
    return Session.model_validate({**units.meta, "turns": list(units.turns)})


def factors(session: Session) -> dict[str, object]:
    """The DFR factor labels of a session (App. 29.1)."""
    f = session.factors
    return {"multiclass": {"stage": f.stage, "attachment": f.attachment, "phases": list(f.phases)},
            "multilabel": {"defenses": list(f.defenses), "focus_areas": list(f.focus_areas), "issues": list(f.issues),
                           "strengths": list(f.strengths), "modalities": list(f.modalities)},
            "text_spans": {kind: [s for t in session.turns for s in turn_spans(t)[kind]] for kind in SPAN_FACTORS}}


def check_targets(targets: frozenset[str] | None) -> frozenset[str] | None:
    if targets is not None and not targets <= set(COMPONENTS):
        raise ValueError(f"unknown loss targets {sorted(targets - set(COMPONENTS))}; components are {COMPONENTS}")
    return targets


def full_session(session: Session, targets: frozenset[str] | None = None) -> list[Piece]:
    """FULL_SESSION recomposition: header, then every turn."""
    check_targets(targets)
    pieces = [Piece(session_header(session), False)]
    for t in session.turns:
        pieces += turn_pieces(t, f"[TURN {t.index}]", targets)
    return pieces


def windowed(session: Session, targets: frozenset[str] | None = None,
             lengths: tuple[int, ...] = WINDOW_LENGTHS) -> list[tuple[int, int, list[Piece]]]:
    """WINDOWED recomposition: overlapping windows of each length (half-window stride); (k, start, pieces)."""
    check_targets(targets)
    out = []
    n = len(session.turns)
    for k in lengths:
        if k > n:
            continue
        for start in range(0, n - k + 1, max(1, k // 2)):
            pieces = [Piece(session_header(session), False)]
            for t in session.turns[start:start + k]:
                pieces += turn_pieces(t, f"[TURN {t.index}]", targets)
            out.append((k, start, pieces))
    return out


def counterfactual(sample: CounterfactualSample, targets: frozenset[str] | None = None) -> list[Piece]:
    """A counterfactual recomposed like a session (§7): header, context turns, every branch, the rationale."""
    check_targets(targets)
    pieces = [Piece(counterfactual_header(sample), False)]
    for t in sample.context_turns:
        pieces += turn_pieces(t, f"[TURN {t.index}]", targets)
    for b in sample.branches:
        pieces += branch_pieces(b, targets)
    return pieces + [Piece(f"<RATIONALE>{mark_frameworks(sample.rationale)}</RATIONALE>\n", False)]
