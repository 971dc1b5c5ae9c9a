"""Per-client random streams: numpy generators re-seeded in place, as `np.random.default_rng(seed)` would start.

A batch keeps one `np.random.Generator` per client for each of its streams (TMoG misreadings, signals).
A new client needs its streams at the state `default_rng(seed)` starts in. Making a generator costs about
10 us and leaves objects behind for the garbage collector, so a batch of 1,024 clients spent more time
making generators at each autoreset than stepping. `Streams` makes each row's generator once and moves it
to a new seed's state: the seed is hashed as numpy's `SeedSequence` hashes it (compiled, every row at
once), and PCG64 is seeded from the hash as numpy seeds it. The stream is bit for bit `default_rng(seed)`'s;
`tests/env/test_streams.py` holds the states equal for many seeds.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_M32 = np.uint64(0xFFFFFFFF)
# numpy's SeedSequence constants (a pool of 4 32-bit words)
_INIT_A, _MULT_A = np.uint64(0x43B0D7E5), np.uint64(0x931E8875)
_INIT_B, _MULT_B = np.uint64(0x8B51F9DD), np.uint64(0x58F38DED)
_MIX_L, _MIX_R = np.uint64(0xCA01F9DD), np.uint64(0x4973F715)
_SHIFT = np.uint64(16)
_POOL = 4
# PCG64: the 128-bit LCG multiplier
_MULT_128 = 0x2360ED051FC65DA44385DF649FCCF645
_MASK_128 = (1 << 128) - 1


@njit(cache=True)
def _seed_words(seeds, out):
    """out[i] = SeedSequence(seeds[i]).generate_state(4, np.uint64) for seeds below 2**64 (uint64 [B, 4])."""
    pool = np.empty(_POOL, dtype=np.uint64)
    for i in range(seeds.shape[0]):
        h = _INIT_A
        for j in range(_POOL):   # the seed's two 32-bit words, then zeros
            v = (seeds[i] & _M32) if j == 0 else ((seeds[i] >> np.uint64(32)) if j == 1 else np.uint64(0))
            v ^= h
            h = (h * _MULT_A) & _M32
            v = (v * h) & _M32
            pool[j] = v ^ (v >> _SHIFT)
        for src in range(_POOL):
            for dst in range(_POOL):
                if src != dst:
                    v = pool[src] ^ h
                    h = (h * _MULT_A) & _M32
                    v = (v * h) & _M32
                    v ^= v >> _SHIFT
                    r = (_MIX_L * pool[dst] - _MIX_R * v) & _M32
                    pool[dst] = r ^ (r >> _SHIFT)
        h = _INIT_B
        for w in range(2 * _POOL):   # 8 32-bit words, paired little-endian into 4 64-bit ones
            v = pool[w % _POOL] ^ h
            h = (h * _MULT_B) & _M32
            v = (v * h) & _M32
            v ^= v >> _SHIFT
            if w % 2 == 0:
                out[i, w // 2] = v
            else:
                out[i, w // 2] |= v << np.uint64(32)


def _pcg64_words(seeds: list[int | None]) -> list[tuple[int, int] | None]:
    """(state, inc) of the PCG64 `np.random.default_rng(seed)` starts in, for each seed below 2**64 (None for
    other seeds: numpy's own path)."""
    fast = [i for i, s in enumerate(seeds) if isinstance(s, int) and 0 <= s < 2**64]
    words = np.empty((len(fast), _POOL), dtype=np.uint64)
    _seed_words(np.array([seeds[i] for i in fast], dtype=np.uint64), words)
    out: list[tuple[int, int] | None] = [None] * len(seeds)
    for i, (s_hi, s_lo, i_hi, i_lo) in zip(fast, words.tolist()):
        inc = ((((i_hi << 64) | i_lo) << 1) | 1) & _MASK_128   # numpy's pcg64_set_seed
        out[i] = ((inc + ((s_hi << 64) | s_lo)) * _MULT_128 + inc) & _MASK_128, inc
    return out


class Streams:
    """One generator per row, each moved to a new seed's starting state by `seed` (made when first needed)."""

    def __init__(self, n: int) -> None:
        self._rngs: list[np.random.Generator | None] = [None] * n

    def seed(self, rows: list[int], seeds: list[int | None]) -> None:
        """Row i's generator now gives what `np.random.default_rng(seeds[j])` gives, for i = rows[j]."""
        seed_rows(rows, ((self, seeds),))

    def set_state(self, i: int, state: dict) -> None:
        """Row i's generator at a saved `bit_generator.state`."""
        rng = self._rngs[i]
        if rng is None:
            rng = self._rngs[i] = np.random.Generator(np.random.PCG64(0))
        rng.bit_generator.state = state

    def __getitem__(self, i: int) -> np.random.Generator:
        return self._rngs[i]

    def states(self) -> list[dict | None]:
        """Every row's `bit_generator.state` (None for a row never seeded)."""
        return [None if r is None else r.bit_generator.state for r in self._rngs]


def seed_rows(rows: list[int], streams: tuple[tuple[Streams, list[int | None]], ...]) -> None:
    """For each `(stream, seeds)`: row rows[j] of the stream now gives what `np.random.default_rng(seeds[j])` gives.
    Every seed is hashed in one pass (a client's streams are seeded together)."""
    words = iter(_pcg64_words([seed for _, seeds in streams for seed in seeds]))
    # one dict, refilled for each row: the setter copies its numbers out
    state = {"bit_generator": "PCG64", "state": {"state": 0, "inc": 0}, "has_uint32": 0, "uinteger": 0}
    pcg = state["state"]
    for stream, seeds in streams:
        if len(seeds) != len(rows):
            raise ValueError(f"need a seed per row, got {len(seeds)} seeds for {len(rows)} rows")
        for i, seed in zip(rows, seeds):
            word = next(words)
            if word is None:   # seeds numpy's own path handles (None, 2**64 and above)
                stream.set_state(i, np.random.default_rng(seed).bit_generator.state)
            else:
                pcg["state"], pcg["inc"] = word
                stream.set_state(i, state)
