"""Which examples an SFT or DPO step trains on: epochs of batches in a seeded order.

Step s of a run over n examples is batch s mod ceil(n / batch) of epoch s div ceil(n / batch); each epoch
has its own order, drawn from (seed, epoch), so a resumed run picks the same batches as an uninterrupted one.
"""
from __future__ import annotations

import numpy as np


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimizer steps in one pass over n examples (the last batch may be short)."""
    return -(-n // batch_size)


def batch_at(step: int, n: int, batch_size: int, seed: int) -> tuple[int, list[int]]:
    """The epoch of step `step` (0-based) and the indices of the examples its batch trains on."""
    epoch, index = divmod(step, steps_per_epoch(n, batch_size))
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return epoch, [int(i) for i in order[index * batch_size:(index + 1) * batch_size]]
