"""Therapist profiles on the five dimensions of App. 27, with the stage's quality gate (App. 22).

Orientation is one school, an integrative blend of two, or an eclectic mix of three of Table 2's 23
schools (§7.1.1); experience has App. 27's bands (0-2, 3-7, 8+ years); warmth and ambition lie in
[0, 1] with App. 27's low/moderate/high cut points at 0.3 and 0.7. Stages 3-4 force the GREAT tier
(empathy, warmth and attunement all 7-10 of 10, App. 22 §22.1.1.6), so unskilled late-stage work is
never generated; novices therefore appear only in stages 1-2. App. 27's therapist x client
interaction rules become guidance lines for the session prompt.
"""
from __future__ import annotations

import numpy as np

from .catalogues import load
from .schema import ClientProfile, TherapistProfile

LOW, HIGH = 0.3, 0.7          # App. 27: low < 0.3 <= moderate < 0.7 <= high (warmth and ambition)
LATE_STAGES = (3, 4)          # App. 22 §22.1.1.6: these stages force therapist quality to GREAT
FRAGILE_DYSREGULATION = 0.7   # ours: a client this dysregulated counts as having fragile defences
BODY_AWARE = 0.6              # ours: body awareness at or above this counts as high
COMPLEX_CONCERNS = 2          # ours: this many presenting concerns make a presentation complex


def schools() -> list[dict[str, str]]:
    """Table 2's 23 schools, each with its group."""
    return list(load("therapists")["schools"])


def level(x: float) -> str:
    """App. 27's band for a warmth or ambition value: "low", "moderate" or "high"."""
    return "low" if x < LOW else ("moderate" if x < HIGH else "high")


def sample_therapist(rng: np.random.Generator, therapist_id: str, stage: int) -> TherapistProfile:
    """A therapist for a session at `stage`: GREAT and experienced in stages 3-4."""
    data = load("therapists")
    orientation = str(rng.choice(data["orientations"], p=data["orientation_weights"]))
    names = [s["name"] for s in data["schools"]]
    chosen = rng.choice(names, size=data["schools_per_orientation"][orientation], replace=False)
    if stage in LATE_STAGES:
        tier, levels = "GREAT", ("intermediate", "expert")
    else:
        weights = data["early_quality_weights"]
        tier, levels = str(rng.choice(list(weights), p=list(weights.values()))), ("novice", "intermediate", "expert")
    experience = str(rng.choice(levels))
    lo_years, hi_years = data["experience"][experience]["years"]
    lo, hi = (x / 10 for x in data["quality"][tier]["range"])   # the paper's 0-10 scale on [0, 1]
    empathy, warmth, attunement = (float(rng.uniform(lo, hi)) for _ in range(3))
    return TherapistProfile(
        therapist_id=therapist_id, orientation=orientation, schools=tuple(str(s) for s in chosen),
        experience=experience, years_experience=int(rng.integers(lo_years, hi_years + 1)),
        warmth=warmth, ambition=float(rng.uniform(0.0, 1.0)), quality=tier, empathy=empathy, attunement=attunement,
        specialties=tuple(str(s) for s in rng.choice(data["specialties"], size=2, replace=False)))


def interaction_guidance(therapist: TherapistProfile, client: ClientProfile) -> list[str]:
    """The App. 27 therapist x client interaction rules that apply to this pair, as prompt lines."""
    text = load("therapists")["interactions"]
    somatic = {s["name"] for s in schools() if s["group"] == "Somatic & Embodied"}
    rules = {
        "warm_with_avoidant": level(therapist.warmth) == "high" and client.attachment[0] == "A",
        "cool_with_preoccupied": level(therapist.warmth) == "low" and client.attachment[0] == "C",
        "ambitious_with_fragile": level(therapist.ambition) == "high"
        and client.personality.get("dysregulation", 0.0) >= FRAGILE_DYSREGULATION,
        "somatic_with_body_aware": bool(somatic & set(therapist.schools))
        and client.personality.get("body_awareness", 0.0) >= BODY_AWARE,
        "novice_with_complex": therapist.experience == "novice" and len(client.presenting_concerns) >= COMPLEX_CONCERNS,
    }
    return [text[name] for name, applies in rules.items() if applies]
