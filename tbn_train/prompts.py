"""Prompt builders for the three roles on the shared model (§9.3.9, §9.3.12) and the RLAIF correction.

* Therapist: the dialogue so far and the client's last words, with the phase × stage guidance cell
  (§9.3.5.4) and the adaptive stance (§9.3.8) as supervisory context. It answers with a hidden
  thought in ``<think>…</think>`` followed by the words it says (the env's action format).
* Client: a :class:`~tbn_env.protocols.ClientView` (profile card, DMM strategy, phase, stage,
  dominant buckets, salient nodes) and the dialogue; same output format.
* Judge: the 12-dimension rubric (§9.3.7.1) under a persona (clinical, kind, harsh — §9.3.9),
  answering one JSON object with scores and explanations.
* Correction: the therapist prompt plus the original answer and both judges' weak dimensions,
  strengths and recommendations. The RLAIF loss conditions on the therapist prompt
  *without* this feedback (distillation, §9.3.9), so the two are built from the same pieces.

Every prompt is a list of chat messages rendered with the tokenizer's own chat template
(:func:`render`), so the same code serves the tiny test model and a real Gemma 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tbn_env.dimensions import JUDGE_DIMENSIONS
from tbn_env.llm_prompts import Messages, supervision, transcript
from tbn_env.protocols import DialogueTurn, JudgeContext, JudgeResult

WEAK_THRESHOLD = 6.0  # a dimension under 6.0 in either judge is weak
STRENGTH_THRESHOLD = 7.5  # a strength scores at least 7.5 in both judges
FALLBACK_WEAK_COUNT = 3  # with no weak dimension, name the 3 lowest by mean
MAX_RECOMMENDATIONS = 3  # per judge: enough to act on, short enough to stay in context

THERAPIST_SYSTEM = (
    "You are a psychotherapist in session. First think privately inside <think>…</think>: what the "
    "client feels, what they need now, what to leave unsaid. Then write only the words you say aloud "
    "to the client."
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


def render(tokenizer, messages: Messages) -> list[int]:
    """Token ids of ``messages`` under the tokenizer's chat template, opening the assistant turn."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    return [int(t) for t in ids]


def therapist_messages(view: TherapistView) -> Messages:
    """The therapist's prompt x (no feedback in it: the RLAIF loss conditions on exactly this)."""
    body = (
        f"{supervision(view.stage, view.phase, view.stance, view.guidance)}\n"
        + ("The client's last words voiced a rupture in the relationship.\n" if view.rupture_pending else "")
        + f"\nSession so far:\n{transcript(view.history, view.client_utterance)}\n\nYour turn."
    )
    return [{"role": "system", "content": THERAPIST_SYSTEM}, {"role": "user", "content": body}]


def format_therapist_turn(thought: str, utterance: str) -> str:
    """A turn in the env's text action format."""
    return f"<think>{thought}</think>\n{utterance}" if thought else utterance


@dataclass(frozen=True)
class Feedback:
    """What the correction prompt draws from the kind and harsh verdicts."""

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
