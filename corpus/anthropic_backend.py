"""Session generation with Claude through the Anthropic Messages API (§7.3), concurrent and resumable.

Participants and context come from the seeded samplers, so a sample's id and its client are fixed
by (seed, index) whichever backend writes it; the model writes the turns. Each reply is parsed and
validated against `corpus.schema`; an invalid one is generated again, up to `attempts` times, and
then written to the rejects file with its reason. Requests run `concurrency` at a time.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from .anthropic_api import AnthropicSettings, Usage, async_client, extract_json, sampling, text_of
from .context import dmm, stage_context, stage_description
from .generate import sample_id
from .sampler import sample_client, sample_stage, sample_therapist
from .schema import GenerationInfo, Session, SessionFactors, Turn
from .writer import CorpusWriter

TURNS_PER_SESSION = 12   # long enough for a phase arc, short enough for one reply
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


@dataclass
class RunReport:
    """What a generation run did and cost."""

    written: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    retries: int = 0
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0

    def summary(self) -> str:
        u = self.usage
        return (f"{len(self.written)} written, {len(self.rejected)} rejected, {self.retries} regenerations; "
                f"{u.calls} calls, {u.input_tokens} in / {u.output_tokens} out tokens, ${u.cost_usd:.4f}, "
                f"{self.seconds:.1f} s")


def _prompt(session: dict, n_turns: int) -> str:
    return (f"Client profile: {json.dumps(session['client'])}\nTherapist profile: {json.dumps(session['therapist'])}\n"
            f"{stage_description(session['stage'])} DMM strategy: {dmm(session['client']['attachment'])}. Session "
            f"{session['number']}.\nWrite {n_turns} turns that move through the in-session phases A (defended), "
            f"B (opening), C (core access), D (integration) as the relationship allows.\nJSON shape: {TURN_SCHEMA}")


def _participants(seed: int, index: int) -> dict:
    """The sampled client, therapist and context of sample `index` (the same for every backend)."""
    rng = np.random.default_rng([seed, index])
    sid = sample_id(seed, index)
    stage = sample_stage(rng)
    return {"id": sid, "stage": stage, "number": int(rng.integers(1, 13)),
            "client": sample_client(rng, f"c-{sid}", stage).model_dump(),
            "therapist": sample_therapist(rng, f"t-{sid}", stage).model_dump()}


def assemble(p: dict, reply: object, settings: AnthropicSettings, usage: tuple[int, int, float]) -> Session:
    """Build and validate a Session from the sampled participants and the model's turns."""
    if not isinstance(reply, dict) or not isinstance(reply.get("turns"), list):
        raise ValueError("the reply has no 'turns' list")
    turns = tuple(Turn.model_validate({**t, "index": i}) for i, t in enumerate(reply["turns"]))
    if not turns:
        raise ValueError("the reply has no turns")
    client = p["client"]
    issues = tuple(dict.fromkeys(i.label for t in turns for i in t.therapist_model.probable_issues))
    factors = SessionFactors(stage=p["stage"], attachment=client["attachment"],
                             phases=tuple(sorted({t.phase for t in turns if t.phase})),
                             defenses=tuple(client["defenses"]), issues=issues,
                             focus_areas=tuple(dict.fromkeys(a for t in turns for a in t.therapist_model.working_focus_areas)),
                             strengths=tuple(s["strength"] for s in client["strengths"]),
                             modalities=tuple(p["therapist"]["schools"]))
    return Session(session_id=p["id"], client=client, therapist=p["therapist"],
                   context=stage_context(p["stage"], p["number"]),
                   turns=turns, factors=factors,
                   generation=GenerationInfo(backend="anthropic", model=settings.model, input_tokens=usage[0],
                                             output_tokens=usage[1], cost_usd=usage[2]))


async def _one(client, p: dict, settings: AnthropicSettings, gate: asyncio.Semaphore, report: RunReport):
    """Generate one sample, regenerating invalid replies; returns (session or None, last error)."""
    error = ""
    for attempt in range(settings.attempts):
        async with gate:
            message = await client.messages.create(
                model=settings.model, max_tokens=settings.max_tokens, system=SYSTEM,
                messages=[{"role": "user", "content": _prompt(p, TURNS_PER_SESSION)}], **sampling(settings))
        cost = report.usage.add(message.usage.input_tokens, message.usage.output_tokens, settings)
        try:
            return assemble(p, extract_json(text_of(message)), settings,
                            (message.usage.input_tokens, message.usage.output_tokens, cost)), ""
        except (ValueError, ValidationError) as exc:
            error = str(exc)[:500]
            if attempt + 1 < settings.attempts:
                report.retries += 1
    return None, error


async def generate_anthropic(out: str | Path, n: int, seed: int, settings: AnthropicSettings,
                             resume: bool = False, progress: bool = False) -> RunReport:
    """Generate `n` sessions with Claude into `out`; a rerun with resume=True finishes a killed run."""
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    writer = CorpusWriter(out, resume=resume, config={"backend": "anthropic", "n": n, "seed": seed,
                                                      "model": settings.model})
    report, start = RunReport(), time.perf_counter()
    client = async_client(settings)
    gate = asyncio.Semaphore(settings.concurrency)
    todo = [_participants(seed, i) for i in range(n) if sample_id(seed, i) not in writer.done]
    tasks = [asyncio.ensure_future(_one(client, p, settings, gate, report)) for p in todo]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(tasks), desc="sessions", unit="session")
    try:
        for p, task in zip(todo, tasks):  # write in index order as results arrive
            session, error = await task
            if session is None:
                writer.reject(p["id"], error, p)
                report.rejected.append(p["id"])
            else:
                writer.write(session, p["id"])
                report.written.append(p["id"])
            if bar is not None:
                bar.update()
    finally:
        writer.close()
        for task in tasks:
            task.cancel()
        await client.close()
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - start
    return report
