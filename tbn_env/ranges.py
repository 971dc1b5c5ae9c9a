"""The range check every input shares (scores, starting states), compiled: one pass over the values, where
numpy's `min()` and `max()` would make two and cost more in call overhead than in work on a dozen numbers."""
from __future__ import annotations

from numba import literal_unroll, njit


@njit(cache=True)
def within(a, lo, hi):
    """Every value of `a` lies in [lo, hi] (NaN does not)."""
    for x in a.ravel():
        if not lo <= x <= hi:
            return False
    return True


@njit(cache=True)
def first_outside(lows, highs, *arrays):
    """The index of the first of `arrays` with a value outside [lows[i], highs[i]] (or NaN), else -1: `within` of
    each, in one call."""
    i = 0
    for a in literal_unroll(arrays):
        if not within(a, lows[i], highs[i]):
            return i
        i += 1
    return -1
