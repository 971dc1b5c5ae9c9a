"""Counterfactual teaching moments cut from raw sessions: the 13 guidance pipelines of App. 28.

Each session yields `per_session` moments; moment j of the k-th session uses pipeline
(k * per_session + j) mod 13, so a corpus covers every pipeline evenly, and diverges at a turn drawn
from the (seed, k) stream. A backend writes the branches from the same context: the offline one
fills them from the session itself (the move that lands, one that half lands, one that misses), the
Anthropic one asks Claude with the pipeline's prompt template. `corpus.driver` writes them;
`corpus.generate.generate_counterfactuals` is the offline entry point.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .context import pipelines
from .driver import Item, RunReport, drive, require_positive
from .schema import Branch, CounterfactualSample, GenerationInfo, Session
from .writer import CorpusWriter, read_samples

CONTEXT_TURNS = 3        # ours: turns of the session shown before the divergence
# lands / partly lands / misses: App. 20's success 35 %, partial 25 %, failure 15 % (§20.3.2); the
# rest of its mass (unexpected 10 %, uncertainty 15 %) is left unassigned, so they sum to 0.75
BRANCH_PROBABILITIES = (0.35, 0.25, 0.15)
OUTCOMES = ("the client softens and says more", "the client agrees but stays guarded", "the client withdraws")


@dataclass(frozen=True)
class Moment:
    """Where a counterfactual diverges: a session, one of the 13 pipelines and a turn position."""

    sample_id: str
    session: Session
    pipeline: str
    position: int

    def excerpt(self) -> str:
        """The turns before the divergence and the turn itself, as a dialogue."""
        turns = self.session.turns[max(0, self.position - CONTEXT_TURNS):self.position + 1]
        return "\n".join(f"Client: {t.client_utterance}\nTherapist: {t.therapist_utterance}" for t in turns)

    def prompt(self) -> str:
        """The pipeline's prompt template filled for this moment."""
        return pipelines()[self.pipeline]["prompt"].format(stage=self.session.context.stage,
                                                           client=self.session.client.summary(),
                                                           context=self.excerpt())

    def sample(self, branches: tuple[Branch, ...], rationale: str, generation: GenerationInfo) -> CounterfactualSample:
        """The counterfactual sample for this moment with these branches."""
        return CounterfactualSample(
            sample_id=self.sample_id, pipeline=self.pipeline,
            teaching_factors=tuple(pipelines()[self.pipeline]["teaching_factors"]),
            stage=self.session.context.stage, session_ref=self.session.session_id,
            context_turns=self.session.turns[max(0, self.position - CONTEXT_TURNS):self.position],
            branches=branches, rationale=rationale, generation=generation)


def moments(sessions_dir: str | Path, per_session: int, seed: int) -> Iterator[Moment]:
    """Every moment of a session corpus, in order (sessions in file order, then j)."""
    require_positive(per_session=per_session)
    names = list(pipelines())
    for k, (_, _, line) in enumerate(read_samples(sessions_dir)):
        session = Session.model_validate_json(line)
        rng = np.random.default_rng([seed, k])
        for j in range(per_session):
            yield Moment(f"{session.session_id}-cf{j}", session, names[(k * per_session + j) % len(names)],
                         int(rng.integers(len(session.turns))))


def offline_counterfactual(m: Moment) -> CounterfactualSample:
    """Branches filled from the session itself: what was said (lands), a hedged variant, a miss."""
    spec = pipelines()[m.pipeline]
    turns = m.session.turns
    said = turns[m.position]
    branches = tuple(
        Branch(label=label,
               therapist_thought=f"{spec['teaching_factors'][0].capitalize()}: {said.therapist_thought.gco}",
               therapist_utterance=utterance, client_response=response, outcome=outcome, probability=p)
        for label, utterance, response, outcome, p in zip(
            ("lands", "partly lands", "misses"),
            (said.therapist_utterance, f"Let's look at that. {said.therapist_utterance}",
             "Have you tried thinking about it differently?"),
            (turns[min(m.position + 1, len(turns) - 1)].client_utterance, "I suppose so.", "I'm fine."),
            OUTCOMES, BRANCH_PROBABILITIES))
    rationale = spec["prompt"].split("\n")[-1].format(stage=m.session.context.stage, client=m.session.client.name,
                                                      context="")
    return m.sample(branches, rationale, GenerationInfo(backend="offline"))


async def run_counterfactuals(sessions_dir: str | Path, out: str | Path, backend, per_session: int = 2, seed: int = 0,
                              *, concurrency: int = 1, resume: bool = False, progress: bool = False,
                              config: dict | None = None) -> RunReport:
    """Write `per_session` counterfactuals per session of `sessions_dir` into `out` with `backend`."""
    require_positive(per_session=per_session, concurrency=concurrency)
    if not Path(sessions_dir).is_dir():
        raise FileNotFoundError(f"no session corpus at {sessions_dir}")
    writer = CorpusWriter(out, prefix="counterfactuals", resume=resume,
                          config={"backend": backend.name, "sessions": str(sessions_dir), "per_session": per_session,
                                  "seed": seed, **(config or {})})
    items = (Item(m.sample_id, m) for m in moments(sessions_dir, per_session, seed) if m.sample_id not in writer.done)
    report = await drive(writer, items, backend.counterfactual, concurrency, progress=progress)
    report.stats = backend.stats()
    return report

