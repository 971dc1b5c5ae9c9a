"""Session generation: participants fixed by (seed, index), one driver for every backend.

A sample's id, stage, client, therapist and context depend only on the run's seed and the sample's
index (its own RNG stream), so any backend writes the same participants for the same sample and a
resumed run rebuilds exactly what the interrupted one would have. A backend only writes the turns
(`Backend`); `corpus.driver` runs them concurrently and writes them in index order.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .context import stage_context
from .counterfactuals import Moment, offline_counterfactual, run_counterfactuals
from .driver import Item, RunReport, drive, require_positive
from .micro_variables import DiminishingPool
from .offline import generate_session
from .sampler import sample_client, sample_stage
from .schema import ClientProfile, CounterfactualSample, Session, SessionContext, TherapistProfile
from .therapist import sample_therapist
from .writer import CorpusWriter

SESSIONS_PER_CLIENT_MAX = 12   # ours: a session number 1-12, the span of a typical course of therapy


def sample_id(seed: int, index: int) -> str:
    """The id of sample `index` of a run seeded `seed`: stable across restarts."""
    return f"s{seed}-{index:06d}"


@dataclass(frozen=True)
class Participants:
    """Who meets where in treatment for one sample: everything except the turns."""

    session_id: str
    client: ClientProfile
    therapist: TherapistProfile
    context: SessionContext
    seed: int
    index: int


def participants(seed: int, index: int, stage: int | None = None, micro: dict[str, str] | None = None) -> Participants:
    """The participants of sample `index` of a run seeded `seed` (optionally at a forced stage)."""
    rng = np.random.default_rng([seed, index])
    sid = sample_id(seed, index)
    st = sample_stage(rng, stage)
    context = stage_context(st, int(rng.integers(1, SESSIONS_PER_CLIENT_MAX + 1)))
    client = sample_client(rng, f"c-{sid}", st, micro)
    return Participants(sid, client, sample_therapist(rng, f"t-{sid}", st), context, seed, index)


class Backend(Protocol):
    """Writes samples for the driver: the turns of a session, the branches of a counterfactual."""

    name: str

    async def session(self, p: Participants) -> Session:
        """A schema-valid session for `p`, or `corpus.driver.InvalidSample`."""
        ...

    async def counterfactual(self, m: Moment) -> CounterfactualSample:
        """A schema-valid counterfactual sample for moment `m`, or `corpus.driver.InvalidSample`."""
        ...

    def stats(self) -> dict:
        """Accounting so far: calls, tokens, cost, repairs (empty for a backend with none)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class OfflineBackend:
    """The template backend: schema-valid sessions with no model (see `corpus.offline`)."""

    name = "offline"

    async def session(self, p: Participants) -> Session:
        """The offline session of `p`, drawn from its own RNG stream (index-determined)."""
        rng = np.random.default_rng([p.seed, p.index, 1])
        return generate_session(p.session_id, p.client, p.therapist, p.context, rng)

    async def counterfactual(self, m: Moment) -> CounterfactualSample:
        """The offline counterfactual of `m` (see `corpus.counterfactuals`)."""
        return offline_counterfactual(m)

    def stats(self) -> dict:
        """No model, no cost."""
        return {}

    async def aclose(self) -> None:
        """Nothing to release."""


def offline_session(seed: int, index: int, stage: int | None = None, micro: dict[str, str] | None = None) -> Session:
    """Sample `index` of an offline corpus, made alone (the driver makes the same one)."""
    return asyncio.run(OfflineBackend().session(participants(seed, index, stage, micro)))


async def run_generation(out: str | Path, n: int, backend: Backend, seed: int = 0, *, concurrency: int = 1,
                         resume: bool = False, stage: int | None = None, pool_path: str | Path | None = None,
                         progress: bool = False, on_written: Callable[[str], None] | None = None,
                         config: dict | None = None) -> RunReport:
    """Generate samples 0..n-1 into `out` with `backend`, skipping those already committed.

    With `pool_path`, micro-variables come from that diminishing pool (drawn in index order). The
    pool's state after the last committed sample is part of each manifest commit (and copied to
    `pool_path` for later runs), so a resumed run draws exactly what the interrupted one would have.
    """
    require_positive(n=n, concurrency=concurrency)
    pool = DiminishingPool(pool_path, seed) if pool_path is not None else None
    writer = CorpusWriter(out, resume=resume,
                          config={"backend": backend.name, "n": n, "seed": seed, "stage": stage, **(config or {})},
                          on_commit=pool.save if pool else None)
    if pool is not None and writer.state is not None:
        pool.restore(writer.state)   # as it stood after the last committed sample
    todo = [i for i in range(n) if sample_id(seed, i) not in writer.done]

    def items():
        """Work items for the driver, drawn lazily in index order, each with the pool state after its draw."""
        for index in todo:
            p = participants(seed, index, stage, pool.draw() if pool else None)
            yield Item(p.session_id, p, pool.snapshot() if pool else None)

    report = await drive(writer, items(), backend.session, concurrency, total=len(todo), progress=progress,
                         on_written=(lambda item: on_written(item.sample_id)) if on_written else None)
    if pool is not None and writer.state is not None:
        pool.save(writer.state)   # also when the last commit came just before a kill
    report.stats = backend.stats()
    return report


def generate(out: str | Path, n: int, seed: int = 0, resume: bool = False, stage: int | None = None,
             progress: bool = False, pool_path: str | Path | None = None, concurrency: int = 1) -> RunReport:
    """Write `n` offline sessions to `out` (the synchronous entry point for the template backend)."""
    return asyncio.run(run_generation(out, n, OfflineBackend(), seed, concurrency=concurrency, resume=resume,
                                      stage=stage, pool_path=pool_path, progress=progress))


def generate_counterfactuals(sessions_dir: str | Path, out: str | Path, per_session: int = 2, seed: int = 0,
                             resume: bool = False, progress: bool = False, concurrency: int = 1) -> RunReport:
    """The offline counterfactuals of a session corpus (synchronous entry point)."""
    return asyncio.run(run_counterfactuals(sessions_dir, out, OfflineBackend(), per_session, seed,
                                           concurrency=concurrency, resume=resume, progress=progress))
