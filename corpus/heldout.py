"""A deterministic held-out split by group: every record of one group lands on the same side.

Groups are session ids (SFT samples) or counterfactual moments (preference pairs), so no context
seen in training reappears in the held-out set. Groups are ranked by a hash of their key and the
first HELDOUT_SHARE of them are held out: the same corpus always gives the same split, whatever the
order its records come in.
"""
from __future__ import annotations

import hashlib
import math

HELDOUT_SHARE = 0.2   # ours: a fifth of the groups held out, the usual 80/20 split


def _rank(key: str) -> str:
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()


def heldout_groups(keys, share: float = HELDOUT_SHARE) -> set[str]:
    """The held-out keys: ceil(share · n) groups, but at least one and at most n - 1 (none when n < 2)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"held-out share must lie in (0, 1), got {share}")
    unique = sorted(set(keys), key=_rank)
    if len(unique) < 2:
        return set()
    return set(unique[:min(max(math.ceil(share * len(unique)), 1), len(unique) - 1)])
