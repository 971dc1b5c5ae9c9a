"""Counterfactual teaching moments from raw sessions: the 13 guidance pipelines of App. 28 (offline).

For each session, `per_session` samples are cut around a moment of the session, each from one
pipeline (rotating through all 13), with branches that diverge from the same context: the move that
lands, one that half lands, one that misses. The offline backend fills the pipeline's template from
the session itself; it exists so the whole path (generation, validation, DAPT) runs without a model.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .context import pipelines
from .schema import Branch, CounterfactualSample, GenerationInfo, Session
from .writer import CorpusWriter, read_samples

CONTEXT_TURNS = 3                       # turns of the session shown before the divergence
# lands / partly lands / misses: App. 20's success 35 %, partial 25 %, failure 15 %, renormalised to three branches
BRANCH_PROBABILITIES = tuple(p / 0.75 for p in (0.35, 0.25, 0.15))
OUTCOMES = ("the client softens and says more", "the client agrees but stays guarded", "the client withdraws")


def counterfactual(session: Session, pipeline: str, position: int, sample_id: str) -> CounterfactualSample:
    """One teaching sample from `pipeline` at turn `position` of `session`."""
    spec = pipelines()[pipeline]
    context = session.turns[max(0, position - CONTEXT_TURNS):position]
    said = session.turns[position]
    branches = tuple(
        Branch(label=label, therapist_thought=f"{spec['teaching_factors'][0].capitalize()}: {said.therapist_thought.gco}",
               therapist_utterance=utterance, client_response=response, outcome=outcome, probability=p)
        for label, utterance, response, outcome, p in zip(
            ("lands", "partly lands", "misses"),
            (said.therapist_utterance, f"Let's look at that. {said.therapist_utterance}",
             "Have you tried thinking about it differently?"),
            (session.turns[min(position + 1, len(session.turns) - 1)].client_utterance, "I suppose so.", "I'm fine."),
            OUTCOMES, BRANCH_PROBABILITIES))
    return CounterfactualSample(
        sample_id=sample_id, pipeline=pipeline, teaching_factors=tuple(spec["teaching_factors"]),
        stage=session.context.stage, session_ref=session.session_id, context_turns=context, branches=branches,
        rationale=spec["prompt"].split("\n")[-1].format(stage=session.context.stage, client=session.client.name,
                                                        context=""),
        generation=GenerationInfo(backend="offline"))


def generate_counterfactuals(sessions_dir: str | Path, out: str | Path, per_session: int = 2, seed: int = 0,
                             resume: bool = False) -> Iterator[str]:
    """Write `per_session` counterfactuals per session of `sessions_dir` into `out`; yields new ids."""
    if per_session < 1:
        raise ValueError(f"--per-session must be at least 1, got {per_session}")
    names = list(pipelines())
    writer = CorpusWriter(out, prefix="counterfactuals", resume=resume,
                          config={"backend": "offline", "sessions": str(sessions_dir), "per_session": per_session,
                                  "seed": seed})
    with writer:
        k = 0
        for _, _, line in read_samples(sessions_dir):
            session = Session.model_validate_json(line)
            rng = np.random.default_rng([seed, k])
            for j in range(per_session):
                sid = f"{session.session_id}-cf{j}"
                pipeline = names[(k * per_session + j) % len(names)]
                if sid not in writer.done:
                    writer.write(counterfactual(session, pipeline, int(rng.integers(len(session.turns))), sid), sid)
                    yield sid
            k += 1
