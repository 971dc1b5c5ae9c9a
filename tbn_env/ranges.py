"""The range check every input shares (scores, starting states), compiled: one pass over the values, where
numpy's `min()` and `max()` would make two and cost more in call overhead than in work on a dozen numbers."""
from __future__ import annotations

from numba import njit


@njit(cache=True)
def within(a, lo, hi):
    """Every value of `a` lies in [lo, hi] (NaN does not)."""
    for x in a.ravel():
        if not lo <= x <= hi:
            return False
    return True
