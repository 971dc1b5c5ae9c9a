"""Per-turn wall-clock accounting by part, with exclusive nesting, and timed adapter switches.

A turn's time is split into named parts (generation, client, judging, rlaif, grpo, switching,
env, …). Parts nest — a judge call switches adapters inside "judging" — and a nested part's time
is *not* also counted in its parent, so the parts plus "overhead" add up to the turn.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from tbn_train.lora import AdapterRouter


class Timings:
    """Accumulates exclusive seconds per part until :meth:`take` hands them out and resets."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._stack: list[list] = []  # [name, start of the current uninterrupted stretch]

    def _charge(self, now: float) -> None:
        if self._stack:
            name, start = self._stack[-1]
            self.totals[name] = self.totals.get(name, 0.0) + now - start

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        now = time.perf_counter()
        self._charge(now)
        self._stack.append([name, now])
        try:
            yield
        finally:
            now = time.perf_counter()
            self._charge(now)
            self._stack.pop()
            if self._stack:
                self._stack[-1][1] = now

    def take(self) -> dict[str, float]:
        """The totals so far (seconds by part), then start afresh."""
        out, self.totals = self.totals, {}
        return out


@contextmanager
def switched(router: AdapterRouter, name: str | None, timings: Timings | None) -> Iterator[None]:
    """``router.use(name)`` with both switches charged to the "switching" part."""
    if timings is None:
        with router.use(name):
            yield
        return
    previous = router.active
    with timings.part("switching"):
        router.active = name
    try:
        yield
    finally:
        with timings.part("switching"):
            router.active = previous
