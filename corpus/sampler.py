"""The client personhood sampler (§7.4.1): a client as a seeded composition of many variables.

Stages are drawn 35/45/20/0 % (stage 4 only when forced, App. 22). Over 50 personality dimensions
take stage-appropriate values: the four the paper ranges (dysregulation, trust, defensive and
healing humour, mentalization; App. 22 §22.1.1.6) are drawn uniformly in their stage's range,
interpolated between the stated stage 1 and stage 4 ranges; the others shift their mean with
severity. Presenting concerns lean toward relational distress; defences follow the DMM family so the
defensive organisation stays coherent (App. 24); religion is relevant for about 40 % of clients and
then follows world prevalence (§7.4.1); demographics follow world population where data exist.
"""
from __future__ import annotations

import numpy as np

from .catalogues import load
from .context import STAGE_WEIGHTS, interpolate
from .micro_variables import load_catalogue
from .schema import DMM_CODES, ClientProfile, Strength
from .strengths import sample_states

RELIGION_RELEVANT = 0.40                     # §7.4.1: spirituality is clinically relevant for ~40 % of clients
RELIGIONS: dict[str, float] = load("clients")["religions"]   # §7.4.1 footnote for the four largest
CONCERNS: dict[str, float] = load("clients")["concerns"]
PERSONALITY: dict[str, int] = load("clients")["personality"]  # dimension -> sign of its shift with severity
STAGE_RANGES: dict[str, dict] = load("clients")["stage_ranges"]
PERSONALITY_SPREAD = 0.15    # ours: within-stage spread of an unranged trait around its stage mean
SEVERITY_SHIFT = 0.3         # ours: how far an unranged stage-linked trait's mean moves from stage 1 to 4
MAX_CONCERNS = 3             # ours: one to three presenting concerns, a focused but layered picture
MAX_DEFENSES = 3             # ours: up to three characteristic defences


def _weighted(rng: np.random.Generator, weights: dict[str, float], size: int | None = None):
    """One name (or `size` distinct names) drawn by weight."""
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    picks = rng.choice(names, size=size, replace=False, p=p / p.sum())
    return str(picks) if size is None else tuple(str(x) for x in picks)


def sample_stage(rng: np.random.Generator, forced: int | None = None) -> int:
    """A treatment stage, 35/45/20/0 %, or `forced` (1-4)."""
    if forced is not None:
        if forced not in (1, 2, 3, 4):
            raise ValueError(f"stage must be 1-4, got {forced!r}")
        return forced
    return int(rng.choice(4, p=STAGE_WEIGHTS)) + 1


def sample_religion(rng: np.random.Generator) -> str | None:
    """Two-layer gate: relevant for ~40 % of clients, then a tradition by world prevalence."""
    if rng.random() >= RELIGION_RELEVANT:
        return None
    return _weighted(rng, RELIGIONS)


def stage_range(name: str, stage: int) -> tuple[float, float]:
    """The [lo, hi] range of a ranged dimension at `stage` (stage 1 and 4 ends, linear between)."""
    r = STAGE_RANGES[name]
    return (interpolate(stage, r["stage1"][0], r["stage4"][0]), interpolate(stage, r["stage1"][1], r["stage4"][1]))


def _ranged(rng: np.random.Generator, name: str, stage: int) -> float:
    """A draw in the stage's range; a polarised dimension picks a pole early in treatment."""
    r = STAGE_RANGES[name]
    if "polarised_upper" in r and rng.random() < interpolate(stage, 1.0, 0.0):
        # a polarised pole, chosen with a probability fading from 1 at stage 1 to 0 at stage 4 (ours)
        lo, hi = r["stage1"] if rng.random() < 0.5 else r["polarised_upper"]
    elif "polarised_upper" in r:
        lo, hi = r["stage4"]
    else:
        lo, hi = stage_range(name, stage)
    return float(rng.uniform(lo, hi))


def sample_personality(rng: np.random.Generator, stage: int) -> dict[str, float]:
    """Every personality dimension in [0, 1], at stage-appropriate values."""
    severity = (4 - stage) / 3  # 1 at stage 1, 0 at stage 4
    out = {}
    for name, sign in PERSONALITY.items():
        if name in STAGE_RANGES:
            out[name] = _ranged(rng, name, stage)
        else:
            mean = 0.5 + sign * SEVERITY_SHIFT * (severity - 0.5)
            out[name] = float(np.clip(rng.normal(mean, PERSONALITY_SPREAD), 0.0, 1.0))
    return out


def sample_client(rng: np.random.Generator, client_id: str, stage: int,
                  micro_variables: dict[str, str] | None = None) -> ClientProfile:
    """A client at `stage`.

    `micro_variables` come from a DiminishingPool when the run keeps one; otherwise one option per
    App. 26 dimension is drawn from `rng`. Each micro-variable gets an independent salience weight
    U(0, 1) governing how strongly it surfaces turn by turn (§11.5).
    """
    data = load("clients")
    if micro_variables is None:
        micro_variables = {name: str(rng.choice(options)) for name, options in load_catalogue().items()}
    attachment = str(rng.choice(DMM_CODES))
    personality = sample_personality(rng, stage)
    strengths = tuple(Strength(strength=m.strength, state=state, manifestation=getattr(m, state))
                      for m, state in sample_states(rng, stage, personality["narcissism"]))
    region = _weighted(rng, data["regions"])
    lo_age, hi_age = data["ages"]
    return ClientProfile(
        client_id=client_id, name=str(rng.choice(data["names"][region])), age=int(rng.integers(lo_age, hi_age + 1)),
        gender=_weighted(rng, data["genders"]), attachment=attachment,
        defenses=tuple(str(d) for d in rng.choice(data["defenses"][attachment[0]],
                                                  size=int(rng.integers(1, MAX_DEFENSES + 1)), replace=False)),
        presenting_concerns=_weighted(rng, CONCERNS, size=int(rng.integers(1, MAX_CONCERNS + 1))),
        personality=personality, strengths=strengths, religion=sample_religion(rng),
        demographics={"region": region, "relationship_status": str(rng.choice(data["relationship_status"])),
                      "occupation": str(rng.choice(data["occupation"]))},
        scene=f"joins the session {rng.choice(data['scenes'])}", micro_variables=micro_variables,
        salience={name: round(float(rng.random()), 4) for name in micro_variables})
