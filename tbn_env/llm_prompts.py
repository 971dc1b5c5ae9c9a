"""Model-agnostic chat prompts for the Judge and Client protocols (§9.3.7, §9.3.9, spec §12.6).

Each builder returns a list of chat messages (system, then user). `tbn_train` renders them with a
tokenizer's chat template for the MLX backends; `corpus` sends them to the Anthropic Messages API
(system as its own field). One definition serves both, so an MLX judge and a Claude judge read the
same rubric.
"""
from __future__ import annotations

from typing import Sequence

from .protocols import ClientView, DialogueTurn, JudgeContext, Persona

Messages = list[dict[str, str]]

# One line per dimension: the rubric question of §9.3.7.1 (our wording).
DIMENSION_QUESTIONS: dict[str, str] = {
    "attunement": "caught the client's emotional bids and matched their tone",
    "pacing": "honoured the client's tempo, neither rushing nor stalling",
    "safety": "created or kept felt safety",
    "non_reactivity": "stayed regulated under pressure",
    "validation": "validated in a way that lands without fostering dependence",
    "boundaries": "kept relational boundaries flexible, clear and kind",
    "repair": "repaired a rupture, or tended the relationship before one",
    "clinical_wisdom": "chose what a master clinician would be proud of",
    "thoughtfulness": "noticed and integrated many aspects of the client",
    "parallel_thinking": "translated inner reasoning into speech with discernment; what was left unsaid was wise",
    "tenderness": "met offered vulnerability with tenderness",
    "artfulness": "found elegant language a client might remember for years",
}

PERSONA_BRIEFS: dict[str, str] = {
    "clinical": "You are a neutral, experienced clinical supervisor. Score strictly by the anchors.",
    "kind": (
        "You are a warm, empathic supervisor who scores generously. Name what the therapist did well "
        "and offer gentle recommendations."
    ),
    "harsh": (
        "You read the turn as a client with narcissistic sensitivities would, and you score punitively. "
        "Flag clinical blind spots, boundary violations and failures of attunement a sympathetic "
        "evaluator would miss."
    ),
}


CLIENT_SYSTEM = (
    "You are the client in a psychotherapy session. Stay in character. First think privately inside "
    "<think>…</think>: what you feel and what you hold back. Then write only the words you say aloud."
)

def transcript(history: Sequence[DialogueTurn], client_last: str | None = None) -> str:
    """The dialogue as plain lines (spoken words only: hidden thoughts stay private)."""
    lines = []
    for turn in history:
        lines.append(f"Client: {turn.client}")
        if turn.therapist:
            lines.append(f"Therapist: {turn.therapist}")
    if client_last is not None:
        lines.append(f"Client: {client_last}")
    return "\n".join(lines) if lines else "(the session is just starting)"


def supervision(stage: int, phase: str, stance: str, guidance: str) -> str:
    """The stage, phase, stance and guidance cell, as supervisory context."""
    return (
        f"Treatment stage {stage}, in-session phase {phase}, stance: {stance.replace('_', ' ')}.\n"
        f"Guidance for this stage and phase: {guidance}"
    )



def client_messages(view: ClientView, history: Sequence[DialogueTurn]) -> Messages:
    """The simulated client's prompt from the env's :class:`ClientView` (spec §12.6 blocks)."""
    blocks = [
        f"Who you are:\n{view.profile_card}",
        f"Attachment strategy (DMM): {view.attachment}.",
        f"Defences: {', '.join(view.defenses) or 'none named'}. Concerns: {', '.join(view.presenting_concerns) or 'none named'}.",
        f"Session {view.session}, turn {view.turn}; treatment stage {view.stage}, phase {view.phase}.",
        f"Strongest painful feelings: {', '.join(view.dominant_maladaptive)}. "
        f"Strongest resources: {', '.join(view.dominant_adaptive)}.",
        f"What weighs on you most: {', '.join(n.replace('_', ' ') for n in view.salient_nodes)}.",
    ]
    if view.ruptured:
        blocks.append("The therapist's last words hurt or missed you; let that show.")
    body = "\n".join(blocks) + f"\n\nSession so far:\n{transcript(history)}\n\nYour turn."
    return [{"role": "system", "content": CLIENT_SYSTEM}, {"role": "user", "content": body}]


def judge_system(persona: Persona) -> str:
    """The rubric and the JSON schema, under one persona."""
    if persona not in PERSONA_BRIEFS:
        raise ValueError(f"unknown judge persona {persona!r}; choose from {sorted(PERSONA_BRIEFS)}")
    rubric = "\n".join(f"- {d}: {q}" for d, q in DIMENSION_QUESTIONS.items())
    schema = (
        '{"scores": {<dimension>: number 0-10, ... all 12}, "explanations": {<dimension>: string}, '
        '"narrative": string, "critical_moments": [string], "recommendations": [string]}'
    )
    return (
        f"{PERSONA_BRIEFS[persona]}\nScore the therapist's last turn on each dimension from 0 to 10 "
        f"(0-3 poor, 4-6 adequate, 7-10 excellent):\n{rubric}\nAnswer with one JSON object only:\n{schema}"
    )


def judge_messages(context: JudgeContext, persona: Persona) -> Messages:
    """The judge's prompt for one therapist turn (inputs of spec §9.1, including the profile card)."""
    body = (
        f"{supervision(context.stage, context.phase, context.stance, context.guidance)}\n"
        f"Client profile: {context.profile_card or '(none)'}\n"
        + ("A rupture was pending when the therapist spoke.\n" if context.rupture_pending else "")
        + f"\nSession so far:\n{transcript(context.history, context.client_utterance)}\n\n"
        f"Therapist's private thought: {context.therapist_thought or '(none)'}\n"
        f"Therapist said: {context.therapist_utterance}\n\nYour JSON verdict:"
    )
    return [{"role": "system", "content": judge_system(persona)}, {"role": "user", "content": body}]
