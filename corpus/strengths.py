"""The 24 VIA strengths and their 480 manifestations (App. 18, 21, 28), with stage-gated states.

Each manifestation is a strength in one of 20 therapeutic domains, in five roles: accessible,
blocked, shadow, lever and repair move. Few strengths are accessible early in treatment (0-1 at
stage 1 up to 3-4 at stage 4), shadow states outweigh accessible ones early, and extreme narcissism
multiplies shadow weights by 1.6 and accessible ones by 0.5 for the six narcissism-prone strengths.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .catalogues import load

ACCESSIBLE_BY_STAGE = {1: (0, 1), 2: (1, 2), 3: (2, 3), 4: (3, 4)}   # App. 21: strengths accessible per stage
NARCISSISM_PRONE = ("honesty", "perspective", "leadership", "kindness", "judgment", "humility")  # App. 20, 28
EXTREME_SHADOW, EXTREME_ACCESSIBLE = 1.6, 0.5   # App. 20 / App. 28 pipeline 12: weights under extreme narcissism
MAX_SHADOW = 0.95          # ours: a blocked state stays possible however strong the shadow pull
EARLY_SHADOW_WEIGHT = {1: 0.6, 2: 0.5, 3: 0.35, 4: 0.25}  # shadow outweighs blocked early, fades later (ours)
STRENGTHS_PER_CLIENT = 4   # enough to show variety, few enough to track across a session


@dataclass(frozen=True)
class Manifestation:
    """One strength in one therapeutic domain, in its five roles."""

    strength: str
    domain: str
    accessible: str
    blocked: str
    shadow: str
    lever: str
    repair_move: str


@lru_cache(maxsize=1)
def catalogue() -> tuple[Manifestation, ...]:
    """All 24 x 20 = 480 manifestations, composed from the per-strength parts and the domains."""
    data = load("strengths")
    return tuple(Manifestation(s["name"], d, f"{s['accessible']} {d}", f"{s['blocked']} {d}", f"{s['shadow']} {d}",
                               f"{s['lever'].capitalize()} {d}.", f"{s['repair']} {d}")
                 for s in data["strengths"] for d in data["domains"])


def _multiplier(extreme: float, narcissism: float) -> float:
    """A weight multiplier at `narcissism` in [0, 1]: 1 at none, `extreme` at extreme (linear between)."""
    return 1 + (extreme - 1) * narcissism


def sample_states(rng: np.random.Generator, stage: int, narcissism: float = 0.0) -> list[tuple[Manifestation, str]]:
    """STRENGTHS_PER_CLIENT manifestations with their states for a client at `stage`.

    The stage fixes how many are accessible (App. 21); which ones are drawn by weight, the
    narcissism-prone strengths weighing x0.5 under extreme narcissism, and the others' shadow chance
    grows x1.6 for those strengths (App. 20); `narcissism` in [0, 1] interpolates linearly from x1.
    """
    cat = catalogue()
    strengths = sorted({m.strength for m in cat})
    chosen = [str(x) for x in rng.choice(strengths, size=STRENGTHS_PER_CLIENT, replace=False)]
    lo, hi = ACCESSIBLE_BY_STAGE[stage]
    n_access = int(rng.integers(lo, hi + 1))
    weights = np.array([_multiplier(EXTREME_ACCESSIBLE, narcissism) if n in NARCISSISM_PRONE else 1.0
                        for n in chosen])
    accessible = set(rng.choice(chosen, size=n_access, replace=False, p=weights / weights.sum())) if n_access else set()
    out = []
    for name in chosen:
        options = [m for m in cat if m.strength == name]
        manifestation = options[int(rng.integers(len(options)))]
        if name in accessible:
            state = "accessible"
        else:
            shadow = EARLY_SHADOW_WEIGHT[stage]
            if name in NARCISSISM_PRONE:
                shadow = min(MAX_SHADOW, shadow * _multiplier(EXTREME_SHADOW, narcissism))
            state = "shadow" if rng.random() < shadow else "blocked"
        out.append((manifestation, state))
    return out
