"""Sessions and counterfactuals written by Claude through the Anthropic Messages API (§7.4, §6.2, App. 28).

The participants come from the seeded samplers (`corpus.generate.participants`), so a sample's id
and its client are fixed by (seed, index) whichever backend writes it; the model writes the turns.
Each reply is parsed and validated against `corpus.schema`; an invalid one is sent back with the
error for repair (`anthropic_api.ask_json`) and, when every attempt fails, the driver writes it to
the rejects file with its reason; so it does with a request still failing after the SDK's retries
(a later `--resume` tries rejected samples again). Other API errors (a bad key, a bad request) stop
the run with the API's message. The prompt carries the stage's picture and gates, the DMM
strategy's coherence markers and App. 27's therapist x client guidance.
"""
from __future__ import annotations

import json

import anthropic

from .anthropic_api import AnthropicSettings, ReplyError, Usage, ask_json, async_client
from .context import dmm
from .counterfactuals import Moment, run_counterfactuals
from .driver import InvalidSample, RunReport
from .generate import Participants, run_generation
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


def session_prompt(p: Participants, n_turns: int = TURNS_PER_SESSION) -> str:
    """The user message that asks for the turns of `p`'s session."""
    c = p.context
    guidance = " ".join(interaction_guidance(p.therapist, p.client))
    return (f"Client profile: {p.client.model_dump_json()}\nTherapist profile: {p.therapist.model_dump_json()}\n"
            f"{c.stage_description}\nSession {c.session_number}. Core traumatic material is {c.trauma_access}; "
            f"a single breakthrough turn may occur with probability {c.crescendo_probability}.\n"
            f"DMM strategy: {json.dumps(dmm(p.client.attachment))}.\n{guidance}\n"
            f"Write {n_turns} turns that move through the in-session phases A (defended), B (opening), "
            f"C (core access), D (integration) as the relationship allows.\nJSON shape: {TURN_SCHEMA}")


def assemble(p: Participants, reply: object, model: str) -> Session:
    """A validated Session from the participants and the model's turns (ValueError when unusable)."""
    if not isinstance(reply, dict) or not isinstance(reply.get("turns"), list):
        raise ValueError("the reply has no 'turns' list")
    if not reply["turns"]:
        raise ValueError("the reply has no turns")
    turns = tuple(Turn.model_validate({**t, "index": i} if isinstance(t, dict) else t)
                  for i, t in enumerate(reply["turns"]))
    models = [t.therapist_model for t in turns]
    factors = SessionFactors(
        stage=p.context.stage, attachment=p.client.attachment, phases=tuple(sorted({t.phase for t in turns if t.phase})),
        defenses=p.client.defenses,
        issues=tuple(dict.fromkeys(i.label for m in models for i in m.probable_issues)),
        focus_areas=tuple(dict.fromkeys(a for m in models for a in m.working_focus_areas)),
        strengths=tuple(s.strength for s in p.client.strengths), modalities=p.therapist.schools)
    return Session(session_id=p.session_id, client=p.client, therapist=p.therapist, context=p.context, turns=turns,
                   factors=factors, generation=GenerationInfo(backend="anthropic", model=model, seed=p.seed))


def assemble_counterfactual(m: Moment, reply: object) -> CounterfactualSample:
    """A validated counterfactual sample from the moment and the model's branches."""
    if not isinstance(reply, dict) or not isinstance(reply.get("branches"), list):
        raise ValueError("the reply has no 'branches' list")
    if not MIN_BRANCHES <= len(reply["branches"]) <= MAX_BRANCHES:
        raise ValueError(f"the reply has {len(reply['branches'])} branches; give {MIN_BRANCHES} to {MAX_BRANCHES}")
    branches = tuple(Branch.model_validate(b) for b in reply["branches"])
    return m.sample(branches, str(reply.get("rationale", "")), GenerationInfo(backend="anthropic"))


class AnthropicBackend:
    """`corpus.generate.Backend` on Claude: one request per sample, repaired on invalid replies."""

    name = "anthropic"

    def __init__(self, settings: AnthropicSettings) -> None:
        """An async client for `settings`; usage and repairs start at zero."""
        self.settings = settings
        self.client = async_client(settings)
        self.usage = Usage()
        self.repairs = 0

    async def _ask(self, system: str, prompt: str, parse):
        """One validated sample from the model, its generation record filled with tokens and cost."""
        try:
            sample, repairs, tokens = await ask_json(self.client, self.settings, system, prompt, parse, self.usage)
        except ReplyError as exc:
            raise InvalidSample(exc.error, {"reply": exc.reply}) from exc
        except (anthropic.APITimeoutError, anthropic.APIConnectionError, anthropic.RateLimitError,
                anthropic.InternalServerError) as exc:   # still failing after the SDK's retries
            raise InvalidSample(f"{type(exc).__name__} after {self.settings.max_retries} retries: {exc}") from exc
        self.repairs += repairs
        info = GenerationInfo(backend="anthropic", model=self.settings.model, seed=sample.generation.seed,
                              input_tokens=tokens[0], output_tokens=tokens[1], cost_usd=tokens[2])
        return sample.model_copy(update={"generation": info})

    async def session(self, p: Participants) -> Session:
        """The session of `p` written by the model, or InvalidSample with the last error and reply."""
        return await self._ask(SYSTEM, session_prompt(p), lambda obj: assemble(p, obj, self.settings.model))

    async def counterfactual(self, m: Moment) -> CounterfactualSample:
        """The branches of moment `m` written by the model with its pipeline's prompt template."""
        return await self._ask(CF_SYSTEM, f"{m.prompt()}\nJSON shape: {BRANCH_SCHEMA}",
                               lambda obj: assemble_counterfactual(m, obj))

    def stats(self) -> dict:
        """Calls, tokens, cost and repaired replies so far."""
        u = self.usage
        return {"calls": u.calls, "input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                "cost_usd": u.cost_usd, "repairs": self.repairs}

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.close()


async def generate_anthropic(out, n: int, seed: int, settings: AnthropicSettings, resume: bool = False,
                             progress: bool = False, stage: int | None = None, pool_path=None,
                             on_written=None) -> RunReport:
    """Generate `n` sessions with Claude into `out`, `settings.concurrency` requests at a time."""
    backend = AnthropicBackend(settings)
    try:
        return await run_generation(out, n, backend, seed, concurrency=settings.concurrency, resume=resume,
                                    stage=stage, pool_path=pool_path, progress=progress, on_written=on_written,
                                    config={"model": settings.model})
    finally:
        await backend.aclose()


async def counterfactuals_anthropic(sessions_dir, out, settings: AnthropicSettings, per_session: int = 2, seed: int = 0,
                                    resume: bool = False, progress: bool = False) -> RunReport:
    """The counterfactuals of a session corpus written by Claude, `settings.concurrency` at a time."""
    backend = AnthropicBackend(settings)
    try:
        return await run_counterfactuals(sessions_dir, out, backend, per_session, seed, concurrency=settings.concurrency,
                                         resume=resume, progress=progress, config={"model": settings.model})
    finally:
        await backend.aclose()
