"""The write loop every generation command shares: concurrent, in index order, resumable.

Work items are scheduled a few per concurrency slot ahead of the writer; each finished sample is
validated once more from the JSON form it is stored in and appended through the crash-safe writer,
strictly in item order, so a seeded run writes the same bytes whatever its concurrency. A sample a
backend cannot make (InvalidSample) or that fails validation goes to the rejects file with its
reason, never silently dropped.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from .writer import CorpusWriter

LOOKAHEAD = 2   # ours: items scheduled per concurrency slot ahead of the writer, so no slot idles


class InvalidSample(Exception):
    """A backend could not produce a schema-valid sample; carries the reason and the raw output."""

    def __init__(self, reason: str, raw: object = None) -> None:
        """Keep the reason and the raw output for the rejects file."""
        super().__init__(reason)
        self.reason, self.raw = reason, raw


def require_positive(**options: int) -> None:
    """Raise a clear error for a count option below 1, before anything is written."""
    for name, value in options.items():
        if value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


@dataclass
class RunReport:
    """What a run did: ids written and rejected, time taken, the backend's accounting."""

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


@dataclass(frozen=True)
class Item:
    """One sample to make: its id, what the backend needs, and the caller's state once it is written."""

    sample_id: str
    payload: object
    keep: object = None


async def drive(writer: CorpusWriter, items: Iterable[Item], make: Callable[[object], Awaitable[BaseModel]],
                concurrency: int, *, total: int | None = None, progress: bool = False,
                on_written: Callable[[Item], None] | None = None) -> RunReport:
    """Make every item with `make`, `concurrency` at a time, and write the results in item order."""
    report, start = RunReport(), time.perf_counter()
    gate = asyncio.Semaphore(concurrency)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, desc="samples", unit="sample")

    async def limited(payload: object) -> BaseModel:
        """Make one sample inside the concurrency gate."""
        async with gate:
            return await make(payload)

    window: list[tuple[Item, asyncio.Task]] = []
    queue = iter(items)
    try:
        with writer:
            while True:
                while len(window) < concurrency * LOOKAHEAD:
                    item = next(queue, None)
                    if item is None:
                        break
                    window.append((item, asyncio.ensure_future(limited(item.payload))))
                if not window:
                    break
                item, task = window.pop(0)
                try:
                    sample = await task
                    type(sample).model_validate_json(sample.model_dump_json())   # the form it is stored in
                except InvalidSample as exc:
                    writer.reject(item.sample_id, exc.reason, exc.raw)
                    report.rejected.append(item.sample_id)
                except ValidationError as exc:
                    writer.reject(item.sample_id, str(exc), None)
                    report.rejected.append(item.sample_id)
                else:
                    writer.write(sample, item.sample_id, item.keep)
                    report.written.append(item.sample_id)
                    if on_written is not None:
                        on_written(item)
                if bar is not None:
                    bar.update()
    finally:
        for _, task in window:
            task.cancel()
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - start
    return report
