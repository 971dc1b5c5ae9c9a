"""Session generation: participants fixed by (seed, index), one driver for every backend.

A sample's id, stage, client, therapist and context depend only on the run's seed and the sample's
index (its own RNG stream), so any backend writes the same participants for the same sample and a
resumed run rebuilds exactly what the interrupted one would have. A backend only writes the turns
(`SessionBackend`). The driver runs `concurrency` samples at once, writes them in index order
through the crash-safe writer, validates each once more from its serialised form, and sends every
unusable one to the rejects file with its reason.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import ValidationError

from .context import stage_context
from .micro_variables import DiminishingPool
from .offline import generate_session
from .sampler import sample_client, sample_stage
from .schema import ClientProfile, Session, SessionContext, TherapistProfile
from .therapist import sample_therapist
from .writer import CorpusWriter

SESSIONS_PER_CLIENT_MAX = 12   # ours: a session number 1-12, the span of a typical course of therapy
LOOKAHEAD = 2                  # ours: samples scheduled per concurrency slot ahead of the writer


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


class InvalidSample(Exception):
    """A backend could not produce a schema-valid sample; carries the reason and the raw output."""

    def __init__(self, reason: str, raw: object = None) -> None:
        super().__init__(reason)
        self.reason, self.raw = reason, raw


class SessionBackend(Protocol):
    """Writes the turns of a session for given participants (offline templates, Claude, ...)."""

    name: str

    async def session(self, p: Participants) -> Session:
        """A schema-valid session for `p`, or InvalidSample."""
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

    def stats(self) -> dict:
        """No model, no cost."""
        return {}

    async def aclose(self) -> None:
        """Nothing to release."""


def offline_session(seed: int, index: int, stage: int | None = None, micro: dict[str, str] | None = None) -> Session:
    """Sample `index` of an offline corpus, made alone (the driver makes the same one)."""
    return asyncio.run(OfflineBackend().session(participants(seed, index, stage, micro)))


@dataclass
class RunReport:
    """What a generation run did: ids written and rejected, time taken, the backend's accounting."""

    written: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stats: dict = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the end of a CLI run: counts, time, and the backend's tokens and cost."""
        rate = len(self.written) / self.seconds if self.seconds else 0.0
        extra = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in self.stats.items())
        return (f"{len(self.written)} written, {len(self.rejected)} rejected in {self.seconds:.1f} s "
                f"({rate:.1f} samples/s){'; ' + extra if extra else ''}")


async def run_generation(out: str | Path, n: int, backend: SessionBackend, seed: int = 0, *, concurrency: int = 1,
                         resume: bool = False, stage: int | None = None, pool_path: str | Path | None = None,
                         progress: bool = False, on_written: Callable[[str], None] | None = None,
                         config: dict | None = None) -> RunReport:
    """Generate samples 0..n-1 into `out` with `backend`, skipping those already committed.

    With `pool_path`, micro-variables come from that diminishing pool (drawn in index order); the
    pool is saved with each manifest commit as it stood after the last committed sample, so a
    resumed run draws exactly what the interrupted one would have.
    """
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    if concurrency < 1:
        raise ValueError(f"--concurrency must be at least 1, got {concurrency}")
    pool = DiminishingPool(pool_path, seed) if pool_path is not None else None
    committed_pool: list[dict | None] = [None]   # pool state after the last written sample
    writer = CorpusWriter(out, resume=resume,
                          config={"backend": backend.name, "n": n, "seed": seed, "stage": stage, **(config or {})},
                          on_commit=(lambda: pool.save(committed_pool[0])) if pool else None)
    report, start = RunReport(), time.perf_counter()
    todo = [i for i in range(n) if sample_id(seed, i) not in writer.done]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc="sessions", unit="session")
    gate = asyncio.Semaphore(concurrency)

    async def make(p: Participants) -> Session:
        async with gate:
            return await backend.session(p)

    window: list[tuple[Participants, dict | None, asyncio.Task]] = []
    queue = iter(todo)
    try:
        with writer:
            while True:
                while len(window) < concurrency * LOOKAHEAD:   # schedule ahead, in index order
                    index = next(queue, None)
                    if index is None:
                        break
                    p = participants(seed, index, stage, pool.draw() if pool else None)
                    window.append((p, pool.snapshot() if pool else None, asyncio.ensure_future(make(p))))
                if not window:
                    break
                p, pool_state, task = window.pop(0)
                try:
                    session = await task
                    Session.model_validate_json(session.model_dump_json())  # the form it is stored in
                except InvalidSample as exc:
                    writer.reject(p.session_id, exc.reason, exc.raw)
                    report.rejected.append(p.session_id)
                except ValidationError as exc:
                    writer.reject(p.session_id, str(exc), None)
                    report.rejected.append(p.session_id)
                else:
                    committed_pool[0] = pool_state
                    writer.write(session, p.session_id)
                    report.written.append(p.session_id)
                    if on_written is not None:
                        on_written(p.session_id)
                if bar is not None:
                    bar.update()
    finally:
        for _, _, task in window:
            task.cancel()
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - start
    report.stats = backend.stats()
    return report


def generate(out: str | Path, n: int, seed: int = 0, resume: bool = False, stage: int | None = None,
             progress: bool = False, pool_path: str | Path | None = None) -> RunReport:
    """Write `n` offline sessions to `out` (the synchronous entry point for the template backend)."""
    return asyncio.run(run_generation(out, n, OfflineBackend(), seed, resume=resume, stage=stage,
                                      pool_path=pool_path, progress=progress))
