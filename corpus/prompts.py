"""What a language-model backend is asked, and how its reply becomes a sample (§7.3-7.4, App. 28).

Model-agnostic: the Anthropic and MLX backends send the same prompts and validate replies with the
same functions. A session prompt carries the participants, the stage's picture and gates, the DMM
strategy's coherence markers and App. 27's therapist x client guidance; a counterfactual prompt is
the pipeline's template filled for its moment.
"""
from __future__ import annotations

import json

from .context import dmm
from .counterfactuals import Moment
from .generate import Participants
from .schema import Branch, CounterfactualSample, GenerationInfo, Session, SessionFactors, Turn
from .therapist import interaction_guidance

TURNS_PER_SESSION = 12   # ours: long enough for the A-D phase arc, short enough for one reply
MIN_BRANCHES, MAX_BRANCHES = 3, 5   # App. 20 §20.3.2: 3-5 trajectories per candidate intervention
SYSTEM = (
    "You write realistic synthetic psychotherapy sessions for research on therapeutic AI. Each turn is a "
    "5-tuple: the client's private thought, the client's words, the therapist's model of the client, the "
    "therapist's private reasoning split into GCO (session-level formulation and strategy) and OMO "
    "(theory-grounded intervention ideas from the therapist's schools), and the therapist's words. "
    "Answer with one JSON object only.")
TURN_SCHEMA = (
    '{"turns": [{"client_thought": str, "client_utterance": str, "therapist_model": {"active_defenses": [str], '
    '"working_focus_areas": [str], "probable_issues": [{"label": str, "tally": int, "evidence": str}], '
    '"attachment_hypothesis": str, "stage_assessment": str}, "therapist_thought": {"gco": str, "omo": str}, '
    '"therapist_utterance": str, "phase": "A"|"B"|"C"|"D"}, ...]}')
CF_SYSTEM = (
    "You write counterfactual teaching moments for training therapeutic AI: from one moment of a session, "
    "several ways the therapist could continue, each with the therapist's reasoning, words, the client's "
    "response, the outcome and its probability. Answer with one JSON object only.")
BRANCH_SCHEMA = (
    '{"rationale": str, "branches": [{"label": str, "therapist_thought": str, "therapist_utterance": str, '
    '"client_response": str, "outcome": str, "probability": float}, ...3 to 5 branches, probabilities summing '
    'to at most 1]}')


PROMPT_DECIMALS = 2   # ours: profile numbers to two decimals; more precision only costs tokens


def _compact(record) -> str:
    """A record as compact JSON with its numbers rounded to PROMPT_DECIMALS."""
    def rounded(x):
        if isinstance(x, float):
            return round(x, PROMPT_DECIMALS)
        if isinstance(x, dict):
            return {k: rounded(v) for k, v in x.items()}
        if isinstance(x, list):
            return [rounded(v) for v in x]
        return x
    return json.dumps(rounded(record.model_dump(mode="json")), separators=(",", ":"))


def session_prompt(p: Participants, n_turns: int = TURNS_PER_SESSION) -> str:
    """The user message that asks for the turns of `p`'s session."""
    c = p.context
    guidance = " ".join(interaction_guidance(p.therapist, p.client))
    return (f"Client profile: {_compact(p.client)}\nTherapist profile: {_compact(p.therapist)}\n"
            f"{c.stage_description}\nSession {c.session_number}. Core traumatic material is {c.trauma_access}; "
            f"a single breakthrough turn may occur with probability {c.crescendo_probability}.\n"
            f"DMM strategy: {json.dumps(dmm(p.client.attachment))}.\n{guidance}\n"
            f"Write {n_turns} turns that move through the in-session phases A (defended), B (opening), "
            f"C (core access), D (integration) as the relationship allows.\nJSON shape: {TURN_SCHEMA}")


def assemble(p: Participants, reply: object) -> Session:
    """A validated Session from the participants and the model's turns (ValueError when unusable).

    Its generation record is a placeholder that the backend fills in with model, tokens and cost."""
    if not isinstance(reply, dict) or not isinstance(reply.get("turns"), list):
        raise ValueError("the reply has no 'turns' list")
    if not reply["turns"]:
        raise ValueError("the reply has no turns")
    turns = tuple(Turn.model_validate({**t, "index": i} if isinstance(t, dict) else t)
                  for i, t in enumerate(reply["turns"]))
    models = [t.therapist_model for t in turns]
    factors = SessionFactors(
        stage=p.context.stage, attachment=p.client.attachment,
        phases=tuple(sorted({t.phase for t in turns if t.phase})),
        defenses=p.client.defenses,
        issues=tuple(dict.fromkeys(i.label for m in models for i in m.probable_issues)),
        focus_areas=tuple(dict.fromkeys(a for m in models for a in m.working_focus_areas)),
        strengths=tuple(s.strength for s in p.client.strengths), modalities=p.therapist.schools)
    return Session(session_id=p.session_id, client=p.client, therapist=p.therapist, context=p.context, turns=turns,
                   factors=factors, generation=GenerationInfo(backend="model", seed=p.seed))


def assemble_counterfactual(m: Moment, reply: object) -> CounterfactualSample:
    """A validated counterfactual sample from the moment and the model's branches."""
    if not isinstance(reply, dict) or not isinstance(reply.get("branches"), list):
        raise ValueError("the reply has no 'branches' list")
    if not MIN_BRANCHES <= len(reply["branches"]) <= MAX_BRANCHES:
        raise ValueError(f"the reply has {len(reply['branches'])} branches; give {MIN_BRANCHES} to {MAX_BRANCHES}")
    branches = tuple(Branch.model_validate(b) for b in reply["branches"])
    return m.sample(branches, str(reply.get("rationale", "")), GenerationInfo(backend="model"))


def counterfactual_prompt(m: Moment) -> str:
    """The user message that asks for the branches of moment `m`."""
    return f"{m.prompt()}\nJSON shape: {BRANCH_SCHEMA}"
