"""The offline template backend: schema-valid 5-tuple sessions with no model, for tests and demos.

Each turn is composed from the client's profile, the stage and an in-session phase arc (A guarded,
B opening, C core, D integrating), with a GCO/OMO-structured therapist thought and a therapist's
model of the client that tallies the issues it has seen. The client's micro-variables surface turn by
turn with their salience weights (§11.5), and the therapist answers in the affirming-expansion
pattern of App. 20 (the client's own words first, then a widening), so sessions differ as their
clients do. The text is still formulaic; it exists so every downstream stage (validation, DAPT
preprocessing, RRA, self-play warm start) runs offline.
"""
from __future__ import annotations

import numpy as np

from .schema import (ClientProfile, GenerationInfo, ProbableIssue, Session, SessionContext, SessionFactors,
                     TherapistModel, TherapistProfile, TherapistThought, Turn)

TURNS_BY_STAGE = {1: (6, 10), 2: (8, 12), 3: (8, 12), 4: (6, 10)}  # short sessions: offline data is for plumbing
PHASE_ARC = ("A", "A", "B", "B", "C", "C", "D", "D")                # the in-session arc, stretched to the length
CLIENT_LINES = {
    "A": ("I'm not sure where to start. {concern} has been on my mind.", "It's fine, mostly. Just {concern}, I guess.",
          "I almost didn't come today."),
    "B": ("There's something about {concern} I haven't said out loud.", "Can I tell you something about {concern}?",
          "Part of me wants to talk about it and part of me doesn't."),
    "C": ("When I think about {concern}, I feel so small.",
          "I'm scared that {concern} means something is wrong with me.",
          "It hurts more than I let anyone see."),
    "D": ("I think I'm starting to see how {concern} connects to the rest.", "It feels lighter, saying it out loud.",
          "Maybe I can be a little kinder to myself about {concern}."),
}
CLIENT_THOUGHTS = ("I'm watching how they react before I go on.", "If I say this, will they still be here?",
                   "My chest is tight; I want to change the subject.", "This feels safer than I expected.")
THERAPIST_LINES = {
    "A": ("It sounds like {concern} has been sitting with you. We can take this at whatever pace feels right.",
          "I'm glad you came. There's no rush here."),
    "B": ("Thank you for trusting me with that. What feels most important to say about {concern}?",
          "Part of you wants to speak and part of you is protecting you. Both make sense."),
    "C": ("That sounds so painful, and you're not alone with it right now. Take your time.",
          "I'm here with you. Can we stay with that feeling for a moment?"),
    "D": ("What do you notice now, having said it?", "It sounds like something is shifting in how you hold {concern}."),
}
GCO = ("Stage {stage}, phase {phase}: the client's {family} strategy shapes how {concern} is presented; "
       "prioritise {priority}.")
OMO = ("Through a {school} lens: {idea}.")
PRIORITY = {"A": "safety and co-regulation", "B": "welcoming tentative disclosure", "C": "witnessing without rescuing",
            "D": "consolidation and meaning-making"}
IDEAS = ("notice the protective part before inviting the exiled feeling", "track the body's signal of threat",
         "reflect the longing beneath the complaint", "name the strength the client is already using")


ECHO_WORDS = 6   # ours: how many of the client's last words the therapist gives back first


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    """One option, drawn from the session's stream."""
    return options[int(rng.integers(len(options)))]


def _surfaces(client: ClientProfile, name: str, rng: np.random.Generator) -> str | None:
    """The client's option for micro-variable `name` if it surfaces this turn (chance = its salience)."""
    option = client.micro_variables.get(name)
    return option if option is not None and rng.random() < client.salience.get(name, 0.5) else None


def _client_words(client: ClientProfile, phase: str, concern: str, rng: np.random.Generator) -> str:
    """The client's utterance: a phase line, coloured by whichever micro-variables surface now."""
    said = _pick(rng, CLIENT_LINES[phase]).format(concern=concern)
    if (phrase := _surfaces(client, "defensive_phrasing", rng)) and phase in "AB":
        said = f"{phrase.strip(chr(39))}. {said}"
    if metaphor := _surfaces(client, "metaphor_domain", rng):
        said = f"It's like {metaphor}, the way it goes. {said}"
    if (strength := client.strengths[0] if client.strengths else None) and phase == "D" and rng.random() < 0.5:
        said += f" Someone told me once that I {strength.manifestation}."
    return said


def _therapist_words(client: ClientProfile, phase: str, concern: str, said: str, rng: np.random.Generator) -> str:
    """The therapist's reply: the client's own last words first, then the phase's widening move."""
    echo = " ".join(said.rstrip(".?!").split()[-ECHO_WORDS:])
    reply = f'"{echo}" ... ' + _pick(rng, THERAPIST_LINES[phase]).format(concern=concern)
    if (habit := _surfaces(client, "nonverbal_habit", rng)) and phase in "BC":
        reply += f" Something in you {habit} right now; we can just notice that together."
    return reply


def generate_session(session_id: str, client: ClientProfile, therapist: TherapistProfile, context: SessionContext,
                     rng: np.random.Generator) -> Session:
    """One offline session for these participants at this point of treatment."""
    n = int(rng.integers(*TURNS_BY_STAGE[context.stage]))
    concern = client.presenting_concerns[0].replace("_", " ")
    family = {"A": "inhibitory (Type A)", "B": "balanced (Type B)", "C": "amplifying (Type C)"}[client.attachment[0]]
    issues: dict[str, int] = {}
    turns = []
    for i in range(n):
        phase = PHASE_ARC[min(len(PHASE_ARC) - 1, i * len(PHASE_ARC) // n)]
        label = client.presenting_concerns[i % len(client.presenting_concerns)]
        issues[label] = issues.get(label, 0) + 1
        said = _client_words(client, phase, concern, rng)
        model = TherapistModel(
            active_defenses=client.defenses, working_focus_areas=(concern,),
            probable_issues=tuple(ProbableIssue(label=k, tally=v, evidence=said) for k, v in issues.items()),
            character_strengths=client.strengths[:1], attachment_hypothesis=client.attachment,
            stage_assessment=f"stage {context.stage}, phase {phase}")
        thought = TherapistThought(
            gco=GCO.format(stage=context.stage, phase=phase, family=family, concern=concern, priority=PRIORITY[phase]),
            omo=OMO.format(school=_pick(rng, therapist.schools), idea=_pick(rng, IDEAS)))
        turns.append(Turn(index=i, client_thought=_pick(rng, CLIENT_THOUGHTS), client_utterance=said,
                          therapist_model=model, therapist_thought=thought,
                          therapist_utterance=_therapist_words(client, phase, concern, said, rng),
                          phase=phase))
    factors = SessionFactors(stage=context.stage, attachment=client.attachment,
                             phases=tuple(sorted({t.phase for t in turns})), defenses=client.defenses,
                             focus_areas=(concern,), issues=tuple(issues),
                             strengths=tuple(s.strength for s in client.strengths),
                             modalities=therapist.schools)
    return Session(session_id=session_id, client=client, therapist=therapist, context=context, turns=tuple(turns),
                   factors=factors, generation=GenerationInfo(backend="offline"))
