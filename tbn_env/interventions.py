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

from .dimensions import JUDGE_DIMENSIONS

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


# The catalogue as arrays, for the batched response model.
FIT = np.array([i.fit for i in CATALOGUE])                                                    # [n, 4, 4]
EXPRESSES = np.array([[d in i.expresses for d in JUDGE_DIMENSIONS] for i in CATALOGUE])      # [n, 12]
RISKS = np.array([[d in i.risks for d in JUDGE_DIMENSIONS] for i in CATALOGUE])              # [n, 12]
RUPTURE_SHIFT = np.array([RUPTURE_REPAIR_BONUS if i.kind == "repair" else RUPTURE_OTHER_PENALTY
                          for i in CATALOGUE])
OVERWHELM_SHIFT = np.array([{"regulate": OVERWHELM_REGULATE_BONUS, "deepen": OVERWHELM_DEEPEN_PENALTY}
                            .get(i.kind, 0.0) for i in CATALOGUE])


def fit(index: np.ndarray, stage: np.ndarray, phase: np.ndarray, rupture: np.ndarray,
        overwhelmed: np.ndarray) -> np.ndarray:
    """How well each move fits its client's moment, in [-1, 1] (arrays over a batch)."""
    q = FIT[index, stage - 1, phase] + rupture * RUPTURE_SHIFT[index] + overwhelmed * OVERWHELM_SHIFT[index]
    return np.clip(q, -1.0, 1.0)


def response_scores(index, stage, phase, rupture, fear) -> np.ndarray:
    """The 12 judge scores each intervention earns at its client's moment (deterministic).

    Arguments are scalars or equal-length arrays; the result is [12] or [batch, 12].
    """
    index = np.asarray(index)
    if (index < 0).any() or (index >= len(CATALOGUE)).any():
        raise ValueError(f"intervention index must be in [0, {len(CATALOGUE)}), got {index}")
    q = fit(index, np.asarray(stage), np.asarray(phase), np.asarray(rupture),
            np.asarray(fear) >= OVERWHELM_FEAR)[..., None]
    main = np.where(q >= 0, EXPRESSES[index], RISKS[index])
    return np.clip(NEUTRAL + np.where(main, MAIN_GAIN, SPILL_GAIN) * q, 0.0, 10.0)
