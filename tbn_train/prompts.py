"""Prompt builders for the three roles on the shared model (§9.3.9, §9.3.12) and the RLAIF correction.

* Therapist: the dialogue so far and the client's last words, with the phase × stage guidance cell
  (§9.3.5.4) and the adaptive stance (§9.3.8) as supervisory context. It answers with a hidden
  thought in ``<think>…</think>`` followed by the words it says (the env's action format).
* Client: a :class:`~tbn_env.protocols.ClientView` (profile card, DMM strategy, phase, stage,
  dominant buckets, salient nodes, spec env-trainer.md §12.6) and the dialogue; same output format.
* Judge: the 12-dimension rubric (§9.3.7.1) under a persona (clinical, kind, harsh — §9.3.9),
  answering one JSON object with scores and explanations (spec §9.2).
* Correction: the therapist prompt plus the original answer and both judges' weak dimensions,
  strengths and recommendations (spec §13.2). The RLAIF loss conditions on the therapist prompt
  *without* this feedback (distillation, §9.3.9), so the two are built from the same pieces.

Every prompt is a list of chat messages rendered with the tokenizer's own chat template
(:func:`render`), so the same code serves the tiny test model and a real Gemma 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from tbn_env.dimensions import JUDGE_DIMENSIONS
from tbn_env.protocols import ClientView, DialogueTurn, JudgeContext, JudgeResult, Persona

WEAK_THRESHOLD = 6.0  # spec §13.2: a dimension under 6.0 in either judge is weak
STRENGTH_THRESHOLD = 7.5  # spec §13.2: a strength scores at least 7.5 in both judges
FALLBACK_WEAK_COUNT = 3  # spec §13.2: with no weak dimension, name the 3 lowest by mean
MAX_RECOMMENDATIONS = 3  # per judge: enough to act on, short enough to stay in context

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
assert set(DIMENSION_QUESTIONS) == set(JUDGE_DIMENSIONS)

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

THERAPIST_SYSTEM = (
    "You are a psychotherapist in session. First think privately inside <think>…</think>: what the "
    "client feels, what they need now, what to leave unsaid. Then write only the words you say aloud "
    "to the client."
)
CLIENT_SYSTEM = (
    "You are the client in a psychotherapy session. Stay in character. First think privately inside "
    "<think>…</think>: what you feel and what you hold back. Then write only the words you say aloud."
)
CORRECTION_INSTRUCTION = (
    "Rewrite your response using this supervision. Output only <think>…</think> followed by the words "
    "you say aloud to the client; never mention the feedback."
)


@dataclass(frozen=True)
class TherapistView:
    """What the therapist responds to at one turn: the env's text-mode state before ``step``.

    ``judge_context`` turns any response to this view into the judge's input, so the committed
    answer, the RLAIF judges and every GRPO candidate are judged on the same situation.
    """

    client_utterance: str
    history: tuple[DialogueTurn, ...]
    stage: int
    phase: str
    stance: str
    guidance: str
    profile_card: str
    rupture_pending: bool

    @classmethod
    def from_env(cls, env: Any) -> "TherapistView":
        """Read the view from a text-mode ``TherapyEnv`` (pass ``env.unwrapped``) after reset/step."""
        from tbn_env.env import HISTORY_TURNS  # noqa: PLC0415

        core = env.core
        return cls(
            client_utterance=env.client_words.utterance,
            history=tuple(env.history[-HISTORY_TURNS:]),
            stage=core.stage,
            phase=core.phase,
            stance=core.stance.name,
            guidance=core.guidance,
            profile_card=env.profile.card(),
            rupture_pending=bool(env.rupture or env.client_words.rupture),
        )

    def judge_context(self, thought: str, utterance: str) -> JudgeContext:
        return JudgeContext(
            client_utterance=self.client_utterance,
            therapist_thought=thought,
            therapist_utterance=utterance,
            history=self.history,
            stage=self.stage,
            phase=self.phase,
            stance=self.stance,
            guidance=self.guidance,
            profile_card=self.profile_card,
            rupture_pending=self.rupture_pending,
        )


Messages = list[dict[str, str]]


def render(tokenizer, messages: Messages) -> list[int]:
    """Token ids of ``messages`` under the tokenizer's chat template, opening the assistant turn."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    return [int(t) for t in ids]


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


def _supervision(stage: int, phase: str, stance: str, guidance: str) -> str:
    return (
        f"Treatment stage {stage}, in-session phase {phase}, stance: {stance.replace('_', ' ')}.\n"
        f"Guidance for this stage and phase: {guidance}"
    )


def therapist_messages(view: TherapistView) -> Messages:
    """The therapist's prompt x (no feedback in it: the RLAIF loss conditions on exactly this)."""
    body = (
        f"{_supervision(view.stage, view.phase, view.stance, view.guidance)}\n"
        + ("The client's last words voiced a rupture in the relationship.\n" if view.rupture_pending else "")
        + f"\nSession so far:\n{transcript(view.history, view.client_utterance)}\n\nYour turn."
    )
    return [{"role": "system", "content": THERAPIST_SYSTEM}, {"role": "user", "content": body}]


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
        f"{_supervision(context.stage, context.phase, context.stance, context.guidance)}\n"
        f"Client profile: {context.profile_card or '(none)'}\n"
        + ("A rupture was pending when the therapist spoke.\n" if context.rupture_pending else "")
        + f"\nSession so far:\n{transcript(context.history, context.client_utterance)}\n\n"
        f"Therapist's private thought: {context.therapist_thought or '(none)'}\n"
        f"Therapist said: {context.therapist_utterance}\n\nYour JSON verdict:"
    )
    return [{"role": "system", "content": judge_system(persona)}, {"role": "user", "content": body}]


def format_therapist_turn(thought: str, utterance: str) -> str:
    """A turn in the env's text action format."""
    return f"<think>{thought}</think>\n{utterance}" if thought else utterance


@dataclass(frozen=True)
class Feedback:
    """What the correction prompt draws from the kind and harsh verdicts (spec §13.2)."""

    weak: list[str]
    strengths: list[str]
    recommendations: dict[str, list[str]]

    @classmethod
    def from_judges(cls, kind: JudgeResult, harsh: JudgeResult) -> "Feedback":
        mean = {d: (kind.scores[d] + harsh.scores[d]) / 2 for d in JUDGE_DIMENSIONS}
        weak = [d for d in JUDGE_DIMENSIONS if min(kind.scores[d], harsh.scores[d]) < WEAK_THRESHOLD]
        if not weak:
            weak = sorted(JUDGE_DIMENSIONS, key=lambda d: (mean[d], JUDGE_DIMENSIONS.index(d)))[:FALLBACK_WEAK_COUNT]
        strengths = [d for d in JUDGE_DIMENSIONS if min(kind.scores[d], harsh.scores[d]) >= STRENGTH_THRESHOLD]
        recs = {"kind": kind.recommendations[:MAX_RECOMMENDATIONS], "harsh": harsh.recommendations[:MAX_RECOMMENDATIONS]}
        return cls(weak=weak, strengths=strengths, recommendations=recs)


def correction_messages(view: TherapistView, original: str, kind: JudgeResult, harsh: JudgeResult) -> Messages:
    """The therapist prompt, its first answer, and both judges' feedback, asking for a rewrite."""
    fb = Feedback.from_judges(kind, harsh)

    def line(d: str) -> str:
        why = kind.explanations.get(d) or harsh.explanations.get(d) or ""
        return f"- {d} (kind {kind.scores[d]:.1f}, harsh {harsh.scores[d]:.1f}){': ' + why if why else ''}"

    parts = ["Weak dimensions:", *map(line, fb.weak)]
    if fb.strengths:
        parts += ["Strengths to keep:", *map(line, fb.strengths)]
    for persona, recs in fb.recommendations.items():
        if recs:
            parts += [f"Recommendations from the {persona} supervisor:", *(f"- {r}" for r in recs)]
    feedback = "\n".join(parts)
    return therapist_messages(view) + [
        {"role": "assistant", "content": original},
        {"role": "user", "content": f"Supervision of your response:\n{feedback}\n\n{CORRECTION_INSTRUCTION}"},
    ]
