"""The marker grammar shared by every DAPT sample (UHD's hierarchical markers, App. 29.3).

Session headers carry the stage, session number and attachment; turns are `[TURN i]` blocks; each
5-tuple component sits in its own tags; DFR factor anchors are `<FAC:NAME>…</FAC:NAME>`, the session-level
ones in the header and the text-span ones around their spans inside the turns (`dapt.text_spans`); ADWC windows
open with the session header and the paper's direction header and number turns `[T+i]` forward or
`[T-i]` backward; UHD headers add the client profile summary as `[CLIENT …]` (App. 29.3). A
counterfactual (§7, App. 28) opens with `[COUNTERFACTUAL pipeline=… stage=…]`, then its context turns,
each branch as `[BRANCH label]` with the therapist's thought and words, the client's response and the
`<OUTCOME>`, and the `<RATIONALE>`.
A rendered sample is a list of (text, trainable) pieces, so any component can be the loss target.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from corpus.schema import Branch, CounterfactualSample, Session, Turn

from . import text_spans

FORWARD_HEADER = "[ADWC: FORWARD TEMPORAL ORDER]"   # App. 29.2
REVERSE_HEADER = "[ADWC: REVERSE TEMPORAL ORDER]"   # App. 29.2
COMPONENTS: tuple[str, ...] = ("client_thought", "client_utterance", "therapist_model", "therapist_thought",
                               "therapist_utterance")  # the 5-tuple in the paper's order (§7.3)
TAGS = {"client_thought": "CLIENT_COT", "client_utterance": "CLIENT_UTT", "therapist_model": "TMOC",
        "therapist_thought": "THER_COT", "therapist_utterance": "THER_UTT"}
FACTORS: tuple[str, ...] = ("STAGE", "ATTACH", "PHASE", "DEFENSE", "FOCUS", "ISSUE", "STRENGTH", "MODALITY",
                            "PIPELINE")
MARKER = re.compile(r"\[SESSION [^\]]*\]|\[CLIENT [^\]]*\]|\[COUNTERFACTUAL [^\]]*\]|\[BRANCH [^\]]*\]|"
                    r"\[TURN \d+\]|\[T[+-]\d+\]|\[ADWC: (FORWARD|REVERSE) TEMPORAL ORDER\]|"
                    r"</?(CLIENT_COT|CLIENT_UTT|TMOC|THER_COT|GCO|OMO|THER_UTT|OUTCOME|RATIONALE)>|</?FAC:[A-Z]+>")


@dataclass(frozen=True)
class Piece:
    """A span of a rendered sample and whether the loss trains on it."""

    text: str
    trainable: bool


def factor(name: str, value: str) -> str:
    if name not in FACTORS:
        raise ValueError(f"unknown factor {name!r}; factors are {FACTORS}")
    return text_spans.wrap(name, value)


def session_header(session: Session) -> str:
    f = session.factors
    anchors = "".join([factor("STAGE", str(f.stage)), factor("ATTACH", f.attachment),
                       factor("PHASE", ",".join(f.phases)), factor("DEFENSE", ",".join(f.defenses)),
                       factor("FOCUS", ",".join(f.focus_areas)), factor("ISSUE", ",".join(f.issues)),
                       factor("STRENGTH", ",".join(f.strengths)), factor("MODALITY", ",".join(f.modalities))])
    return f"[SESSION stage={session.context.stage} n={session.context.session_number} " \
           f"attach={session.client.attachment}]\n{anchors}\n"


def client_line(session: Session) -> str:
    """The client profile summary line of UHD headers (App. 29.3)."""
    return f"[CLIENT {session.client.summary().replace(']', ')')}]\n"


def counterfactual_header(sample: CounterfactualSample) -> str:
    return (f"[COUNTERFACTUAL pipeline={sample.pipeline} stage={sample.stage}]\n"
            f"{factor('STAGE', str(sample.stage))}{factor('PIPELINE', sample.pipeline)}\n")


def branch_pieces(branch: Branch, targets: frozenset[str] | None) -> list[Piece]:
    """A branch as a therapist turn (thought, words) and the client's answer; trainable like those components."""
    def trains(name: str) -> bool:
        return targets is None or name in targets
    return [Piece(f"[BRANCH {branch.label.replace(']', ')')}]\n", False),
            Piece(f"<THER_COT>{text_spans.mark_frameworks(branch.therapist_thought)}</THER_COT>\n",
                  trains("therapist_thought")),
            Piece(f"<THER_UTT>{text_spans.intervention(branch.therapist_utterance)}</THER_UTT>\n",
                  trains("therapist_utterance")),
            Piece(f"<CLIENT_UTT>{branch.client_response}</CLIENT_UTT>\n", trains("client_utterance")),
            Piece(f"<OUTCOME>{branch.outcome}</OUTCOME>\n", False)]


def component_text(turn: Turn, name: str) -> str:
    """One component of a turn as tagged text with its text-span anchors (Θᵀ keeps its GCO and OMO sub-blocks)."""
    tag = TAGS[name]
    if name == "therapist_thought":
        t = turn.therapist_thought
        body = f"<GCO>{text_spans.mark_frameworks(t.gco)}</GCO><OMO>{text_spans.mark_frameworks(t.omo)}</OMO>"
    elif name == "therapist_model":
        m = turn.therapist_model
        body = m.model_copy(update={
            "stage_assessment": text_spans.insight(m.stage_assessment),
            "modality_insights": tuple(text_spans.insight(s) for s in m.modality_insights)}).model_dump_json()
    elif name == "therapist_utterance":
        body = text_spans.intervention(turn.therapist_utterance)
    else:
        body = getattr(turn, name)
    return f"<{tag}>{body}</{tag}>"


def turn_pieces(turn: Turn, label: str, targets: frozenset[str] | None) -> list[Piece]:
    """A turn under `label` ([TURN i] or [T±i]); components in `targets` are trainable (None = all)."""
    pieces = [Piece(f"{label}\n", False)]
    for name in COMPONENTS:
        pieces.append(Piece(component_text(turn, name) + "\n", targets is None or name in targets))
    return pieces


def to_text(pieces: list[Piece]) -> str:
    return "".join(p.text for p in pieces)
