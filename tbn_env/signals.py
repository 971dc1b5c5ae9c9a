"""What a therapist perceives of a client each turn: expressed affect, visible arousal and a rupture cue.

The true phase and the affective reservoirs are hidden in the default observation (§9.3.14.1: the
therapist works from a model of the client, not from the client's state). What the client shows is a
noisy, coarse reading of them, drawn from a per-client generator so seeded runs repeat exactly:

- `affect`: the affect the client expresses, one of AFFECTS, the category of its in-session phase
  (§9.3.5.1: defended, opening, core access, integration). A turn shows the phase's own category with
  probability AFFECT_READ_ACCURACY, else a neighbouring one (clipped at the ends), so one turn is a
  weak clue and a run of turns a strong one: phases last several turns and move one step at a time.
- `arousal`: the visible arousal, the fear reservoir plus Gaussian noise (AROUSAL_NOISE), cut into
  AROUSAL_LEVELS levels; level 3 and up is the overwhelm the response model reacts to (fear >= 0.6).
- `rupture_cue`: the client showed a rupture this turn (the turn's rupture event).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .buckets import BUCKET_INDEX

AFFECTS: tuple[str, ...] = ("guarded", "emerging", "intense", "settled")  # phases A-D (§9.3.5.1)
#: How often a turn shows the phase's own affect category: one turn tells the phase 3 times in 5,
#: so a policy gains by remembering the last few turns (the rest go to a neighbouring category).
AFFECT_READ_ACCURACY = 0.6
AROUSAL_LEVELS = 5      # coarse as a therapist's impression: calm, settled, stirred, flooded, overwhelmed
AROUSAL_NOISE = 0.05    # std of the misreading on the fear reservoir's 0-1 scale: a twentieth of the range


@dataclass
class Signals:
    """The signals of a batch of clients as they stand after the last turn (or reset)."""

    affect: np.ndarray       # [batch] int64, index into AFFECTS
    arousal: np.ndarray      # [batch] int64, 0 .. AROUSAL_LEVELS - 1
    rupture_cue: np.ndarray  # [batch] int64, 0 or 1

    @classmethod
    def empty(cls, batch: int) -> "Signals":
        return cls(*(np.zeros(batch, dtype=np.int64) for _ in range(3)))


def signal_rng(client_rng: np.random.Generator) -> np.random.Generator:
    """A client's signal generator, seeded from its client generator (the same draw in every env)."""
    return np.random.default_rng(int(client_rng.integers(2**63)))


def express(signals: Signals, rows, kernel, ruptured, rngs: list[np.random.Generator]) -> Signals:
    """`signals` with the rows of a BatchKernel's `rows` drawn anew for their phase and fear now (two draws
    per client from its generator `rngs[row]`); `ruptured` flags each row's rupture this turn."""
    rows = np.atleast_1d(np.asarray(rows, dtype=np.int64))
    signals = Signals(signals.affect.copy(), signals.arousal.copy(), signals.rupture_cue.copy())
    if not rows.size:
        return signals
    draws = np.array([(rngs[i].random(), rngs[i].standard_normal()) for i in rows.tolist()])  # [rows, 2]
    miss = (1.0 - AFFECT_READ_ACCURACY) / 2.0
    offset = np.where(draws[:, 0] < miss, -1, np.where(draws[:, 0] < 2 * miss, 1, 0))
    signals.affect[rows] = np.clip(kernel.phase[rows] + offset, 0, len(AFFECTS) - 1)
    noisy = kernel.buckets[rows, BUCKET_INDEX["fear"]] + AROUSAL_NOISE * draws[:, 1]
    signals.arousal[rows] = np.clip(np.floor(noisy * AROUSAL_LEVELS), 0, AROUSAL_LEVELS - 1).astype(np.int64)
    signals.rupture_cue[rows] = np.broadcast_to(np.asarray(ruptured, dtype=np.int64), kernel.phase.shape)[rows]
    return signals

