"""Bulk session generation through the Message Batches API: half the price, results within a day.

All outstanding samples of a run go into one batch. Its id is saved (atomically) in the output
directory before polling starts, so a run killed while waiting picks the same batch up again with
`--resume` instead of paying for a second one. When the batch ends, results are matched to samples
by `custom_id` (the sample id) and written in index order; a reply that fails validation or a request
that errored goes to the rejects file with its reason (batch mode has no repair turn; a later
`--resume` submits the rejected samples again in a new batch).
"""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from tbn_train.atomic import write_json

from .anthropic_api import AnthropicSettings, Usage, async_client, sampling, text_of
from .prompts import SYSTEM, assemble, session_prompt
from .repair import extract_json
from .driver import RunReport, require_positive
from .generate import participants, sample_id
from .micro_variables import DiminishingPool
from .schema import GenerationInfo
from .writer import CorpusWriter

BATCH_STATE = "batch.json"
BATCH_PRICE_FACTOR = 0.5   # Anthropic bills Message Batches at half the standard price (their pricing); configurable
POLL_SECONDS = 30.0        # ours: how often to ask whether the batch has ended (batches take minutes to hours)


async def generate_batch(out: str | Path, n: int, seed: int, settings: AnthropicSettings, resume: bool = False,
                         stage: int | None = None, pool_path: str | Path | None = None,
                         poll_seconds: float = POLL_SECONDS, price_factor: float = BATCH_PRICE_FACTOR,
                         on_written=None) -> RunReport:
    """Generate samples 0..n-1 into `out` with one Message Batch (or finish the saved one)."""
    require_positive(n=n)
    out = Path(out)
    pool = DiminishingPool(pool_path, seed) if pool_path is not None else None
    writer = CorpusWriter(out, resume=resume, config={"backend": "anthropic-batch", "n": n, "seed": seed,
                                                      "stage": stage, "model": settings.model},
                          on_commit=pool.save if pool else None)
    if pool is not None and writer.state is not None:
        pool.restore(writer.state)   # as it stood after the last committed sample
    report, start = RunReport(), time.perf_counter()
    todo = []
    for index in range(n):
        if sample_id(seed, index) not in writer.done:
            p = participants(seed, index, stage, pool.draw() if pool else None)
            todo.append((p, pool.snapshot() if pool else None))
    state_path = out / BATCH_STATE
    ids = [p.session_id for p, _ in todo]
    client, usage = async_client(settings), Usage()
    results: dict = {}
    try:
        state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else None
        if state is not None and not set(ids) <= set(state["ids"]):
            raise ValueError(f"{state_path} holds batch {state['batch_id']} for other samples; remove it to start anew")
        if state is None and ids:
            batch = await client.messages.batches.create(requests=[
                {"custom_id": p.session_id, "params": {"model": settings.model, "max_tokens": settings.max_tokens,
                                                       "system": SYSTEM, **sampling(settings).get("extra_body", {}),
                                                       "messages": [{"role": "user", "content": session_prompt(p)}]}}
                for p, _ in todo])
            state = {"batch_id": batch.id, "ids": ids}
            write_json(state_path, state)
        if state is not None:
            while (batch := await client.messages.batches.retrieve(state["batch_id"])).processing_status != "ended":
                await asyncio.sleep(poll_seconds)
            results = {r.custom_id: r.result async for r in await client.messages.batches.results(state["batch_id"])}
        with writer:
            for p, pool_state in todo:
                result = results.get(p.session_id)
                if result is None or result.type != "succeeded":
                    reason = "missing from the batch results" if result is None else \
                        f"batch request {result.type}: {getattr(result, 'error', '')}"
                    writer.reject(p.session_id, reason, None)
                    report.rejected.append(p.session_id)
                    continue
                m = result.message
                cost = usage.add(m.usage.input_tokens, m.usage.output_tokens, settings) * price_factor
                try:
                    session = assemble(p, extract_json(text_of(m)))
                except ValueError as exc:
                    writer.reject(p.session_id, str(exc)[:1000], {"reply": text_of(m)})
                    report.rejected.append(p.session_id)
                    continue
                info = GenerationInfo(backend="anthropic-batch", model=settings.model, seed=seed,
                                      input_tokens=m.usage.input_tokens, output_tokens=m.usage.output_tokens,
                                      cost_usd=cost)
                writer.write(session.model_copy(update={"generation": info}), p.session_id, pool_state)
                report.written.append(p.session_id)
                if on_written is not None:
                    on_written(p.session_id)
        state_path.unlink(missing_ok=True)   # every result is now in the corpus or the rejects file
    finally:
        await client.close()
    usage.cost_usd *= price_factor
    report.seconds = time.perf_counter() - start
    report.stats = {"calls": usage.calls, "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                    "cost_usd": usage.cost_usd, "batch": (state or {}).get("batch_id", "")}
    return report
