"""Seeded samplers for synthetic clients and therapists (§7.4, App. 26-27).

Stages are drawn 35/45/20/0 % (stage 4 only when forced, §7.4); presenting concerns lean toward
relational distress; religion is relevant for about 40 % of clients and then follows world
prevalence (§7.4 footnote). The full personhood catalogues of App. 17-19 and 26 are authored as data
in a later step; this sampler draws the variables the session generator and the DFR factors use.
"""
from __future__ import annotations

import numpy as np

from .micro_variables import load_catalogue
from .schema import DMM_CODES, ClientProfile, Strength, TherapistProfile
from .strengths import sample_states

STAGE_WEIGHTS = (0.35, 0.45, 0.20, 0.0)  # §7.4: stage 4 only when forced
RELIGION_RELEVANT = 0.40                 # §7.4 footnote
RELIGIONS = {"Christianity": 0.31, "Islam": 0.24, "Hinduism": 0.15, "Buddhism": 0.07,  # §7.4 footnote
             "Judaism": 0.02, "Sikhism": 0.02, "folk religion": 0.06, "other": 0.13}  # the rest spread (ours)
CONCERNS = {"relational_distress": 3.0, "grief": 1.0, "anxiety": 1.0, "depression": 1.0, "trauma": 1.0,
            "shame": 1.0, "anger": 0.5, "low_self_worth": 1.0, "abandonment": 1.0, "loneliness": 1.0}
DEFENSES = ("intellectualization", "emotional_avoidance", "denial", "projection", "splitting",
            "compulsive_caregiving", "compulsive_self_reliance", "protective_part_activity", "seduction_as_defense")
SCHOOLS = ("psychodynamic", "attachment-based", "IFS", "AEDP", "ACT", "CBT", "DBT", "somatic experiencing",
           "EFT", "mentalization-based", "person-centred", "existential", "narrative", "schema therapy",
           "gestalt", "compassion-focused", "polyvagal-informed", "sensorimotor", "Jungian", "positive psychology",
           "solution-focused", "motivational interviewing", "relational")  # 23 schools (§7, Table 2)
NAMES = ("Maya", "Daniel", "Lena", "Ruth", "Jay", "Amira", "Tomas", "Priya", "Sam", "Noor", "Elena", "Kwame",
         "Hana", "Luis", "Grace", "Omar", "Ines", "Theo", "Yuki", "Ada")
GENDERS = ("woman", "man", "non-binary")
SCENES = ("at the kitchen table", "in a parked car", "in a quiet office after hours", "in a bedroom at a parent's home",
          "on a park bench with headphones in", "in the back room at work")
# Over 50 personality dimensions (§7.4): the 30 NEO facets and 22 clinical traits. The sign says how a
# dimension moves with severity: +1 higher when more unwell, -1 lower, 0 independent of stage.
PERSONALITY: dict[str, int] = {
    "anxiety": 1, "angry_hostility": 1, "depression": 1, "self_consciousness": 1, "impulsiveness": 1, "vulnerability": 1,
    "warmth": -1, "gregariousness": 0, "assertiveness": -1, "activity": 0, "excitement_seeking": 0,
    "positive_emotions": -1, "fantasy": 0, "aesthetics": 0, "feelings": 0, "actions": 0, "ideas": 0, "values": 0,
    "trust": -1, "straightforwardness": 0, "altruism": 0, "compliance": 0, "modesty": 0, "tender_mindedness": 0,
    "competence": -1, "order": 0, "dutifulness": 0, "achievement_striving": 0, "self_discipline": -1, "deliberation": -1,
    "dysregulation": 1, "mentalization": -1, "trust_orientation": -1, "defensive_humor": 1, "healing_humor": -1,
    "narcissism": 0, "shame_proneness": 1, "rejection_sensitivity": 1, "perfectionism": 1, "alexithymia": 1,
    "dissociation_proneness": 1, "self_criticism": 1, "hope": -1, "resilience": -1, "emotional_granularity": -1,
    "need_for_control": 1, "attachment_anxiety": 1, "attachment_avoidance": 1, "psychological_mindedness": -1,
    "distress_tolerance": -1, "self_compassion": -1, "meaning_in_life": -1,
}
PERSONALITY_SPREAD = 0.15   # within-stage variation of a trait around its stage mean
SEVERITY_SHIFT = 0.3        # how far a stage-linked trait's mean moves between stage 1 and stage 4


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
    names = list(RELIGIONS)
    p = np.array([RELIGIONS[n] for n in names])
    return str(rng.choice(names, p=p / p.sum()))


def sample_client(rng: np.random.Generator, client_id: str, stage: int,
                  micro_variables: dict[str, str] | None = None) -> ClientProfile:
    """A client whose personality ranges follow the stage (more dysregulated early, §7.4).

    `micro_variables` come from a DiminishingPool when the run keeps one; otherwise one option per
    App. 26 dimension is drawn from `rng`.
    """
    if micro_variables is None:
        micro_variables = {name: str(rng.choice(options)) for name, options in load_catalogue().items()}
    concerns = list(CONCERNS)
    w = np.array([CONCERNS[c] for c in concerns])
    chosen = rng.choice(concerns, size=int(rng.integers(1, 3)), replace=False, p=w / w.sum())
    severity = (4 - stage) / 3  # 1 at stage 1, 0 at stage 4
    personality = {d: float(np.clip(rng.normal(0.5 + sign * SEVERITY_SHIFT * (severity - 0.5), PERSONALITY_SPREAD),
                                    0.0, 1.0)) for d, sign in PERSONALITY.items()}
    strengths = tuple(Strength(strength=m.strength, state=state, manifestation=getattr(m, state))
                      for m, state in sample_states(rng, stage, personality["narcissism"]))
    return ClientProfile(
        client_id=client_id, name=str(rng.choice(NAMES)), age=int(rng.integers(19, 76)),
        gender=str(rng.choice(GENDERS)), attachment=str(rng.choice(DMM_CODES)),
        defenses=tuple(str(d) for d in rng.choice(DEFENSES, size=int(rng.integers(0, 3)), replace=False)),
        presenting_concerns=tuple(str(c) for c in chosen), personality=personality, strengths=strengths,
        religion=sample_religion(rng), scene=f"joins the session {rng.choice(SCENES)}",
        micro_variables=micro_variables)


def sample_therapist(rng: np.random.Generator, therapist_id: str, stage: int) -> TherapistProfile:
    """A therapist; novices only in stages 1-2, since stages 3-4 are generated at expert quality (§7.4)."""
    orientation = str(rng.choice(("single_modality", "integrative", "eclectic"), p=(0.4, 0.45, 0.15)))
    n_schools = {"single_modality": 1, "integrative": 2, "eclectic": 3}[orientation]
    levels = ("novice", "intermediate", "expert") if stage <= 2 else ("intermediate", "expert")
    return TherapistProfile(
        therapist_id=therapist_id, orientation=orientation,
        schools=tuple(str(s) for s in rng.choice(SCHOOLS, size=n_schools, replace=False)),
        experience=str(rng.choice(levels)), warmth=float(rng.uniform(0.2, 1.0)), ambition=float(rng.uniform(0.0, 0.8)),
        specialties=tuple(str(s) for s in rng.choice(("trauma", "attachment", "couples", "somatic", "dissociation",
                                                      "personality disorders"), size=2, replace=False)))
