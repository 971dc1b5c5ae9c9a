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

Each client's generator hands out SIGNAL_BLOCK turns of uniforms at a time, so a batch of clients
draws in a few calls per step and a client's signals do not depend on the batch it is stepped in.
"""
from __future__ import annotations

import numpy as np

from .compiled_pack import leaf
from .buckets import BUCKET_INDEX
from .streams import Streams

AFFECTS: tuple[str, ...] = ("guarded", "emerging", "intense", "settled")  # phases A-D (§9.3.5.1)
#: How often a turn shows the phase's own affect category: one turn tells the phase 3 times in 5,
#: so a policy gains by remembering the last few turns (the rest go to a neighbouring category).
AFFECT_READ_ACCURACY = 0.6
AROUSAL_LEVELS = 5      # coarse as a therapist's impression: calm, settled, stirred, flooded, overwhelmed
AROUSAL_NOISE = 0.05    # std of the misreading on the fear reservoir's 0-1 scale: a twentieth of the range
SIGNAL_BLOCK = 32       # turns of uniforms a client's generator hands out at once (one call per 32 turns)
_DRAWS = 3              # uniforms per turn: the affect's, and a Box-Muller pair for the arousal noise


class Signals:
    """The signals of a batch of clients after their last turn (or reset), and where each one draws from."""

    def __init__(self, batch: int) -> None:
        self.affect = np.zeros(batch, dtype=np.int64)       # index into AFFECTS
        self.arousal = np.zeros(batch, dtype=np.int64)      # 0 .. AROUSAL_LEVELS - 1
        self.rupture_cue = np.zeros(batch, dtype=np.int64)  # 0 or 1
        self.streams = Streams(batch)   # each client's generator, seeded for a new client (`Streams.seed`)
        self._block = np.zeros((batch, SIGNAL_BLOCK, _DRAWS))
        self._used = np.full(batch, SIGNAL_BLOCK, dtype=np.int64)   # turns of the block already spent

    def draw_blocks(self, rows: list[int]) -> None:
        """A new block of uniforms for each of `rows` (new clients, their streams just seeded, or spent blocks)."""
        for i in rows:
            self.streams[i].random(out=self._block[i])
            self._used[i] = 0

    def express(self, rows: np.ndarray, phase: np.ndarray, buckets: np.ndarray, ruptured: np.ndarray) -> None:
        """Draw the signals of `rows` for their phase and fear now; `ruptured` flags each row's rupture this turn."""
        args = self.arguments(phase, buckets)
        if express(rows, ruptured, *args):   # nothing was drawn: refill the spent blocks first
            self._refill(rows)
            express(rows, ruptured, *args)

    def _refill(self, rows: np.ndarray) -> None:
        """New blocks of uniforms for the `rows` whose block is spent."""
        self.draw_blocks(rows[self._used[rows] >= SIGNAL_BLOCK].tolist())

    def arguments(self, phase: np.ndarray, buckets: np.ndarray, rows: slice = slice(None)) -> tuple:
        """`express`'s arguments after the rows and their ruptures, for a run of `rows` (the compiled turn binds
        them once): the blocks, their use, the phase and reservoirs read, the signals written, the fear's index."""
        return (self._block[rows], self._used[rows], phase[rows], buckets[rows], self.affect[rows],
                self.arousal[rows], self.rupture_cue[rows], BUCKET_INDEX["fear"])

    _STATE = ("affect", "arousal", "rupture_cue", "_block", "_used")

    def state_dict(self) -> dict:
        return {**{k: getattr(self, k).copy() for k in self._STATE},
                "rngs": self.streams.states()}

    def load_state_dict(self, state: dict) -> None:
        for k in self._STATE:
            getattr(self, k)[...] = state[k]
        for i, saved in enumerate(state["rngs"]):
            if saved is not None:
                self.streams.set_state(i, saved)


@leaf()
def express(rows, ruptured, block, used, phase, buckets, affect, arousal, rupture_cue, fear):
    """The signals of `rows` from the next turn of their blocks (in place); if a row's block is spent, nothing is
    drawn and the number of spent blocks is returned."""
    spent = 0
    for i in rows:
        spent += used[i] >= len(block[i])
    if spent:
        return spent
    miss = (1.0 - AFFECT_READ_ACCURACY) / 2.0
    for i in rows:
        u = block[i, used[i]]
        used[i] += 1
        offset = -1 if u[0] < miss else 1 if u[0] < 2.0 * miss else 0
        affect[i] = min(max(phase[i] + offset, 0), len(AFFECTS) - 1)
        normal = np.sqrt(-2.0 * np.log1p(-u[1])) * np.cos(2.0 * np.pi * u[2])   # Box-Muller
        noisy = buckets[i, fear] + AROUSAL_NOISE * normal
        arousal[i] = min(max(int(np.floor(noisy * AROUSAL_LEVELS)), 0), AROUSAL_LEVELS - 1)
        rupture_cue[i] = ruptured[i]
    return 0
