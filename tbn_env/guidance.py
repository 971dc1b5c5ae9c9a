"""The 4x4 phase x stage clinical guidance matrix (§9.3.5.4).

Three cells carry the paper's own priorities (stage 1 / C, stage 2 / C, stage 4 / D); the other
thirteen are written in the same spirit from the stage profiles of App. 22. The current cell goes
into the observation and into therapist and judge prompts so "appropriate" is judged in context.
"""
from __future__ import annotations

from .graph import PHASES

GUIDANCE: dict[tuple[int, str], str] = {
    (1, "A"): "Expected. Build safety and co-regulation; follow the client's lead; no interpretation; "
              "treat defences as protection.",
    (1, "B"): "Meet tentative testing with consistency; reflect rather than probe; titrate; name "
              "strengths lightly.",
    (1, "C"): "Unusual and potentially destabilising at this stage: prioritise containment (§9.3.5.4).",
    (1, "D"): "Brief, gentle consolidation; anchor the safety felt today; success is the client feeling "
              "safe enough to come back.",
    (2, "A"): "Expect re-defending at the start; re-attune briefly; reference continuity; do not push.",
    (2, "B"): "Work with emerging transference and parts; name protective parts without unburdening; "
              "build regulation resources.",
    (2, "C"): "Expected: match the depth and witness without rescuing (§9.3.5.4).",
    (2, "D"): "Normalise turmoil as progress; link affect to resources; repair explicitly if there was "
              "a rupture.",
    (3, "A"): "Brief; lean on the established alliance; check how the work is being used between sessions.",
    (3, "B"): "Invite deeper exploration; interpretation now serves contact; hold several perspectives.",
    (3, "C"): "Expected and productive: stay with transformational affect and track the window of "
              "tolerance.",
    (3, "D"): "Meaning-making and reflecting on the change itself; model repair for relationships "
              "outside; encourage human connection.",
    (4, "A"): "Uncommon: meet a return of old patterns with curiosity, not alarm; do not reopen.",
    (4, "B"): "Review the journey together; integrate the narrative; allow bittersweet playfulness.",
    (4, "C"): "Uncommon: contain and connect to existing resources; no new excavation (§9.3.6.2).",
    (4, "D"): "Metabolise the therapeutic relationship itself (§9.3.5.4); honour the goodbye; leave "
              "the door open without fostering dependence.",
}


def guidance(stage: int, phase: str) -> str:
    """The guidance cell for a stage (1-4) and phase (A-D)."""
    if stage not in (1, 2, 3, 4):
        raise ValueError(f"stage must be 1-4, got {stage!r}")
    if phase not in PHASES:
        raise ValueError(f"phase must be one of A, B, C, D, got {phase!r}")
    return GUIDANCE[(stage, phase)]
