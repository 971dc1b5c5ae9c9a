"""The 14 micro-variable dimensions (App. 26) and the diminishing pool that samples them (§7.4.1).

Values are drawn without replacement from a shuffled sequence per dimension, which refills and
reshuffles only when exhausted, so successive clients take genuinely different configurations
instead of the most likely ones again and again. The pool's state is saved to disk atomically and
carried across generation runs.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tbn_train.atomic import write_json

from .catalogues import load

OPTION_COUNTS = (36, 34, 24, 32, 24, 10, 8, 12, 6, 10, 8, 8, 8, 6)  # App. 26


def load_catalogue() -> dict[str, list[str]]:
    """The packaged dimensions and their options, checked against the App. 26 option counts."""
    dims = load("micro_variables")["dimensions"]
    catalogue = {d["name"]: list(d["options"]) for d in dims}
    counts = tuple(len(v) for v in catalogue.values())
    if counts != OPTION_COUNTS:
        raise ValueError(f"micro-variable option counts {counts} differ from App. 26's {OPTION_COUNTS}")
    for name, options in catalogue.items():
        if len(set(options)) != len(options):
            raise ValueError(f"micro-variable {name!r} repeats an option")
    return catalogue


def configuration_space() -> int:
    """The actual number of micro-variable configurations (App. 26 states 5.026e17; the product is 3.99e15)."""
    return int(np.prod([int(c) for c in OPTION_COUNTS], dtype=object))


class DiminishingPool:
    """Per-dimension shuffled draws without replacement, refilled on exhaustion, persisted on disk."""

    def __init__(self, path: str | Path | None, seed: int = 0) -> None:
        """Load the saved pool at `path` if it exists, else start one seeded `seed`."""
        self.catalogue = load_catalogue()
        self.path = Path(path) if path is not None else None
        self.rng = np.random.default_rng(seed)
        self.remaining: dict[str, list[int]] = {}
        if self.path is not None and self.path.exists():
            try:
                self.restore(json.loads(self.path.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"micro-variable pool {self.path} is unreadable ({exc}); fix or remove it") from exc

    def restore(self, state: dict) -> None:
        """Continue from a `snapshot()`."""
        self.remaining = {k: list(v) for k, v in state["remaining"].items()}
        self.rng.bit_generator.state = state["rng"]

    def draw(self) -> dict[str, str]:
        """One value per dimension (call `save` when the samples using it are committed)."""
        out = {}
        for name, options in self.catalogue.items():
            queue = self.remaining.get(name) or [int(i) for i in self.rng.permutation(len(options))]
            out[name] = options[queue.pop()]
            self.remaining[name] = queue
        return out

    def snapshot(self) -> dict:
        """A copy of the pool's state now (what `save` would write)."""
        return json.loads(json.dumps({"remaining": self.remaining, "rng": self.rng.bit_generator.state}))

    def save(self, state: dict | None = None) -> None:
        """Write `state` (default: the current state) atomically; a no-op for an in-memory pool."""
        if self.path is not None:
            write_json(self.path, state if state is not None else self.snapshot())
