"""The client split: held-out simulated clients that self-play never meets, for `tbn-train eval`.

The split is by DMM attachment strategy (App. 24): one strategy of each family is kept out of
training, so an evaluation asks whether a therapist generalises to kinds of clients it never
practised on. Self-play samples its clients from the other 19 strategies; the held-out clients are
drawn from a fixed seed, so every adapter evaluated meets the same people in the same order.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tbn_env.profiles import DMM_CODES, ClientProfile, sample_profile

HELD_OUT_STRATEGIES: tuple[str, ...] = ("A6", "B4", "C7")  # one strategy per DMM family, never trained on
TRAINING_STRATEGIES: tuple[str, ...] = tuple(c for c in DMM_CODES if c not in HELD_OUT_STRATEGIES)
HELD_OUT_SEED = 20_260_915  # fixes who the held-out clients are, independent of any run's seed


def training_profile(seed: int, session: int) -> ClientProfile:
    """The client of one self-play treatment, drawn from the training strategies only."""
    return sample_profile(np.random.default_rng([seed, session]), TRAINING_STRATEGIES)


def held_out_profiles(n: int) -> list[ClientProfile]:
    """``n`` held-out clients, cycling through the held-out strategies; the same list on every call."""
    rng = np.random.default_rng(HELD_OUT_SEED)
    return [sample_profile(rng, (HELD_OUT_STRATEGIES[i % len(HELD_OUT_STRATEGIES)],)).model_copy(
        update={"name": f"held_out_{i:03d}"}) for i in range(n)]


def load_clients(spec: str, n: int) -> list[ClientProfile]:
    """``"held-out"``, or a TOML file of ``[[client]]`` profiles, each of a held-out strategy.

    Raises ValueError naming the first client that self-play could meet (a split overlapping training).
    """
    if spec == "held-out":
        return held_out_profiles(n)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"--clients {spec!r}: use 'held-out' or a TOML file of [[client]] profiles")
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    rows = tomllib.loads(path.read_text(encoding="utf-8")).get("client", [])
    if not rows:
        raise ValueError(f"{path}: no [[client]] tables")
    profiles = [ClientProfile(**row) for row in rows]
    for p in profiles:
        if p.attachment not in HELD_OUT_STRATEGIES:
            raise ValueError(f"{path}: client {p.name!r} has strategy {p.attachment}, which self-play trains on; "
                             f"held-out clients use {', '.join(HELD_OUT_STRATEGIES)}")
    return [profiles[i % len(profiles)] for i in range(n)]
