"""Corpus generation: deterministic sample ids and RNG streams per index, validation, resumable output."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from .micro_variables import DiminishingPool
from .offline import generate_session
from .sampler import sample_client, sample_stage, sample_therapist
from .context import stage_context
from .schema import Session
from .writer import CorpusWriter


def sample_id(seed: int, index: int) -> str:
    """The id of sample `index` of a run seeded `seed`: stable across restarts."""
    return f"s{seed}-{index:06d}"


def offline_session(seed: int, index: int, stage: int | None = None, micro: dict[str, str] | None = None) -> Session:
    """Sample `index` of an offline corpus: its own RNG stream, so any index can be made alone."""
    rng = np.random.default_rng([seed, index])
    sid = sample_id(seed, index)
    st = sample_stage(rng, stage)
    context = stage_context(st, int(rng.integers(1, 13)))
    client = sample_client(rng, f"c-{sid}", st, micro)
    return generate_session(sid, client, sample_therapist(rng, f"t-{sid}", st), context, rng)


def generate(out: str | Path, n: int, seed: int = 0, resume: bool = False, stage: int | None = None,
             progress: bool = False, pool_path: str | Path | None = None) -> Iterator[str]:
    """Write `n` offline sessions to `out`, skipping those already written; yields each new sample id.

    With `pool_path`, micro-variables come from that diminishing pool, saved with every commit so a
    resumed run draws exactly what the interrupted one would have.
    """
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    pool = DiminishingPool(pool_path, seed) if pool_path is not None else None
    writer = CorpusWriter(out, resume=resume, config={"backend": "offline", "n": n, "seed": seed, "stage": stage},
                          on_commit=pool.save if pool else None)
    indices = range(n)
    if progress:
        from tqdm import tqdm
        indices = tqdm(indices, desc="sessions", unit="session")
    with writer:
        for index in indices:
            sid = sample_id(seed, index)
            if sid in writer.done:
                continue
            session = offline_session(seed, index, stage, pool.draw() if pool else None)
            try:  # every sample is validated once more from its serialised form before it is kept
                Session.model_validate_json(session.model_dump_json())
            except ValidationError as exc:
                writer.reject(sid, str(exc), session.model_dump())
                continue
            writer.write(session, sid)
            yield sid
