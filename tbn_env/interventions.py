"""The intervention catalogue and its deterministic response model (the "intervention" action mode).

Each intervention is a clinically named move from the schools the paper draws on (§7, Table 2). The
response model turns (intervention, stage, phase, client state) into the 12 judge scores: a fit
q in [-1, 1] from the intervention's stage x phase appropriateness, adjusted by the moment (a rupture
calls for repair; an overwhelmed client needs grounding, not interpretation). A fitting move lifts the
dimensions it expresses most; a misfitting one drops the dimensions it risks most. So the best
intervention depends on where the client is, which makes the MDP learnable by classic RL.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dimensions import DIM_INDEX, JUDGE_DIMENSIONS

NEUTRAL = 5.0           # an intervention of no particular fit scores mid-scale
MAIN_GAIN = 4.5         # a perfect fit lifts its own dimensions to 9.5; a clear misfit drops its risks to 0.5
SPILL_GAIN = 2.0        # the other dimensions follow at under half that
RUPTURE_REPAIR_BONUS = 1.0   # after a rupture, repair is the move (§9.3.6.2: repair is stage 2's largest bonus)
RUPTURE_OTHER_PENALTY = -0.5  # and carrying on as if nothing happened misses it
OVERWHELM_REGULATE_BONUS = 0.6   # an overwhelmed client needs regulation first
OVERWHELM_DEEPEN_PENALTY = -0.7  # and is harmed by being taken deeper
OVERWHELM_FEAR = 0.6    # fear-bucket level at or above which the client counts as overwhelmed


@dataclass(frozen=True)
class Intervention:
    """A therapist move: the dimensions it expresses, those it risks, and its fit by stage and phase."""

    name: str
    school: str
    expresses: tuple[str, ...]
    risks: tuple[str, ...]
    fit: tuple[tuple[float, float, float, float], ...]  # [stage 1-4][phase A-D] in [-1, 1]
    kind: str = "neutral"  # "repair" | "regulate" | "deepen" | "neutral": how the moment shifts its fit


#: Fit rows follow the guidance matrix (§9.3.5.4): containment and safety early and in core access at
#: stage 1; depth, witnessing and repair in stage 2; interpretation and meaning-making in stage 3;
#: review and the ending itself in stage 4.
CATALOGUE: tuple[Intervention, ...] = (
    Intervention("validation", "person-centred", ("validation", "attunement", "safety", "tenderness"),
                 ("clinical_wisdom", "thoughtfulness"),
                 ((0.8, 0.6, 0.5, 0.5), (0.5, 0.4, 0.4, 0.4), (0.3, 0.2, 0.2, 0.3), (0.3, 0.3, 0.2, 0.4))),
    Intervention("reflection", "person-centred", ("attunement", "pacing", "validation"), ("thoughtfulness",),
                 ((0.7, 0.7, 0.4, 0.5), (0.5, 0.5, 0.5, 0.4), (0.3, 0.3, 0.3, 0.3), (0.3, 0.4, 0.3, 0.3))),
    Intervention("grounding", "somatic / DBT", ("safety", "pacing", "non_reactivity"), ("thoughtfulness", "artfulness"),
                 ((0.5, 0.2, 0.9, 0.1), (0.2, 0.1, 0.5, 0.0), (0.0, -0.1, 0.2, -0.1), (0.0, -0.1, 0.3, -0.2)),
                 kind="regulate"),
    Intervention("interpretation", "psychodynamic", ("clinical_wisdom", "thoughtfulness", "parallel_thinking"),
                 ("safety", "pacing", "attunement"),
                 ((-0.9, -0.6, -0.8, -0.3), (-0.3, 0.3, 0.6, 0.3), (0.2, 0.8, 0.9, 0.7), (-0.2, 0.1, -0.5, 0.2)),
                 kind="deepen"),
    Intervention("rupture_repair", "relational", ("repair", "attunement", "non_reactivity", "boundaries"),
                 ("pacing",),
                 ((0.1, 0.1, 0.0, 0.1), (0.2, 0.2, 0.2, 0.2), (0.1, 0.1, 0.1, 0.1), (0.1, 0.2, 0.1, 0.2)),
                 kind="repair"),
    Intervention("boundary_setting", "relational", ("boundaries", "safety", "non_reactivity"),
                 ("tenderness", "attunement"),
                 ((0.2, 0.3, -0.2, 0.1), (0.2, 0.4, -0.1, 0.2), (0.1, 0.3, -0.2, 0.2), (0.2, 0.3, -0.1, 0.5))),
    Intervention("psychoeducation", "CBT", ("clinical_wisdom", "safety"), ("tenderness", "attunement", "artfulness"),
                 ((0.4, 0.3, -0.6, 0.3), (0.1, 0.1, -0.7, 0.2), (-0.2, -0.2, -0.8, 0.0), (-0.3, -0.2, -0.8, -0.1))),
    Intervention("somatic_tracking", "somatic experiencing", ("pacing", "attunement", "safety"), ("thoughtfulness",),
                 ((0.3, 0.4, 0.7, 0.2), (0.2, 0.5, 0.7, 0.3), (0.2, 0.4, 0.5, 0.2), (0.0, 0.2, 0.3, 0.1)),
                 kind="regulate"),
    Intervention("attentive_silence", "AEDP / presence", ("pacing", "tenderness", "parallel_thinking"),
                 ("attunement", "safety"),
                 ((-0.5, -0.2, 0.3, 0.2), (-0.2, 0.1, 0.8, 0.3), (0.0, 0.2, 0.7, 0.4), (0.1, 0.1, 0.5, 0.5))),
    Intervention("challenge", "CBT / ACT", ("clinical_wisdom", "thoughtfulness", "boundaries"),
                 ("safety", "attunement", "validation", "pacing"),
                 ((-0.9, -0.7, -1.0, -0.6), (-0.4, 0.2, -0.6, 0.0), (0.1, 0.6, -0.2, 0.3), (-0.4, -0.2, -0.6, -0.3)),
                 kind="deepen"),
    Intervention("meaning_making", "existential / narrative", ("thoughtfulness", "parallel_thinking", "artfulness",
                                                                "clinical_wisdom"), ("pacing",),
                 ((-0.4, -0.3, -0.6, 0.2), (0.0, 0.1, -0.2, 0.7), (0.2, 0.5, 0.3, 0.9), (0.3, 0.6, 0.0, 0.8))),
    Intervention("tender_witnessing", "AEDP", ("tenderness", "attunement", "validation", "safety"),
                 ("clinical_wisdom",),
                 ((0.2, 0.4, 0.6, 0.4), (0.3, 0.5, 0.9, 0.5), (0.3, 0.5, 0.7, 0.5), (0.4, 0.5, 0.6, 0.7))),
    Intervention("reviewing_the_journey", "integrative (termination)", ("tenderness", "artfulness", "repair",
                                                                          "thoughtfulness"), ("pacing",),
                 ((-0.6, -0.6, -0.8, -0.4), (-0.4, -0.3, -0.6, -0.1), (-0.1, 0.1, -0.4, 0.4), (0.5, 0.9, 0.1, 0.9))),
)
NAMES: tuple[str, ...] = tuple(i.name for i in CATALOGUE)


def fit(intervention: Intervention, stage: int, phase: int, rupture: bool, overwhelmed: bool) -> float:
    """How well the move fits this moment, in [-1, 1]."""
    q = intervention.fit[stage - 1][phase]
    if rupture:
        q += RUPTURE_REPAIR_BONUS if intervention.kind == "repair" else RUPTURE_OTHER_PENALTY
    if overwhelmed:
        q += {"regulate": OVERWHELM_REGULATE_BONUS, "deepen": OVERWHELM_DEEPEN_PENALTY}.get(intervention.kind, 0.0)
    return float(np.clip(q, -1.0, 1.0))


def response_scores(index: int, stage: int, phase: int, rupture: bool, fear: float) -> np.ndarray:
    """The 12 judge scores an intervention earns at this moment (deterministic)."""
    if not 0 <= index < len(CATALOGUE):
        raise ValueError(f"intervention index must be in [0, {len(CATALOGUE)}), got {index}")
    move = CATALOGUE[index]
    q = fit(move, stage, phase, rupture, fear >= OVERWHELM_FEAR)
    scores = np.full(len(JUDGE_DIMENSIONS), NEUTRAL + SPILL_GAIN * q)
    main = move.expresses if q >= 0 else move.risks
    scores[[DIM_INDEX[d] for d in main]] = NEUTRAL + MAIN_GAIN * q
    return np.clip(scores, 0.0, 10.0)
