"""Every number of the TBN dynamics in one place: the paper's (cited) and ours (with a reason).

`Params` is a frozen dataclass so an experiment can vary a number (`Params(b_ref=0.4)`) while the
defaults stay the documented ones. The README's modelling-choices table lists each chosen field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

# ---- numbers the paper gives ---------------------------------------------------------------
HIGH_THRESHOLD = 6.5          # judge_high applies above 6.5 (§9.3.1)
LOW_THRESHOLD = 3.5           # judge_low applies below 3.5 (§9.3.1)
DAMPEN_SOURCE = 0.3           # edge propagation dampening at the source (§9.3.1.1)
DAMPEN_TARGET = 0.5           # ... and at the target (§9.3.1.1)
PROTECTIVE_ALLIANCE = 0.5     # protective edges relax above this alliance (§9.3.1.1)
PHASE_BUCKET_WEIGHT = 0.4     # phase composite: 40 % bucket shift (§9.3.5.1)
PHASE_COILING_WEIGHT = 0.6    # ... 60 % coiling shift (§9.3.5.1)
ALLIANCE_SCALE_BASE = 0.7     # composite x (0.7 + 0.6 alliance) (§9.3.5.1)
ALLIANCE_SCALE_SLOPE = 0.6
PHASE_FORWARD_REWARD = 20.0   # (§9.3.6.3)
PHASE_REGRESSION_REWARD = -30.0
STAGE_FORWARD_REWARD = 100.0  # (§9.3.6.3)
STAGE_REGRESSION_REWARD = -150.0
STANCE_LOCKED_TURNS = 3       # first 3 turns locked to rapport_building (§9.3.8)
STANCE_WINDOW = 4             # running averages over 4 turns (§9.3.8)
STANCE_ATTUNEMENT_MIN = 5.5   # forward needs attunement avg >= 5.5 (§9.3.8)
STANCE_RESISTANCE_MAX = 5.5   # ... and resistance avg <= 5.5 (§9.3.8)
STANCE_DEFENSIVENESS_DROP = 5.0  # defensiveness >= 5 de-escalates (§9.3.8)
STANCE_OVERWHELM_DROP = 3.0      # overwhelm >= 3 de-escalates (§9.3.8)
STAGE_SESSIONS_FOR_TERMINATION = 10  # 3 -> 4 needs >= 10 sessions (§9.3.5.3)


@dataclass(frozen=True)
class Params:
    """Numbers the paper leaves open. Each default carries its reason; see the README table."""

    # -- ClientGraph (§9.3.1) --
    sensitivity_mode: str = "intensity"     # low-score harm grows as the score falls; "literal" = score x sens, as §9.3.1.2 reads
    high_relevance_sens: float = 0.02       # judge_high magnitude at r = 1: trust_capacity's +0.02 (§9.3.1)
    low_relevance_sens: float = 0.05        # judge_low magnitude at r = 1: trust_capacity's -0.05 (§9.3.1)
    graph_intensity_scale: float = 5.0     # the graph reads a score's intensity x5: an excellent therapist takes a stage-1 client to stage 4 in ~13 sessions (course table)
    engagement_floor: float = 0.1           # a withdrawn client still registers a little of each turn
    bucket_coupling_scale: float = 10.0     # bucket units [0, 1] -> level units [0, 10]
    coupling_primary: float = 0.5           # a full bucket swing moves its own constructs 5 levels: buckets steer the graph at ~1/3 of the judge-driven change
    coupling_marginal: float = 0.15         # "marginally" (§9.3.2): 0.3 of the primary effect
    # -- BucketTracker (§9.3.2) --
    bucket_harm_multiplier: float = 2.5     # low-score harm x 2.5, the -0.05 / +0.02 ratio of §9.3.1
    # -- LOA (§9.3.3) --
    loa_rate: float = 0.05                  # at most ~1 LOA point per 20-turn session: "across sessions rather than turns"
    loa_thresholds: tuple[float, ...] = (2.5, 5.0, 7.5)  # growth at +t, regression at -t: quarter points of the scale
    loa_hysteresis: float = 0.5             # a threshold re-arms only after falling back 0.5, so noise cannot re-fire it
    loa_growth_reward: float = 5.0          # per growth event
    loa_regression_reward: float = -7.5     # per regression event: the paper's 1.5x harm ratio (§9.3.6.3)
    # -- TAIE assessor (§9.3.4) --
    taie_rate: float = 0.15                 # axis units per turn: ~3 per session, structural change stays slow
    taie_target: str = "healthy_pole"       # distance to (0, +10, +10), the axes' healthy poles (§9.3.4); "literal_zero" = the formula as printed
    taie_bar_window: int = 3                # current/initial bars average 3 assessments, like the direction window
    taie_stable_eps: float = 0.01           # |change in normalised distance| below this is "stable"
    taie_stable_eps_literal: float = 0.25   # same tolerance in literal axis units
    taie_transform_reward: float = 10.0     # reward per unit of transformation gained this turn
    taie_toward_reward: float = 0.5         # trajectory toward health
    taie_away_reward: float = -0.75         # trajectory away from health, x 1.5 as for transitions (§9.3.6.3)
    # -- TMoG (§9.3.14.1) --
    tmog_sigma_by_stage: tuple[float, ...] = (2.5, 2.0, 1.5, 1.0)  # less treatment history, more prior uncertainty
    tmog_eta_base: float = 0.05             # convergence rate at a neutral attunement score of 5
    tmog_eta_slope: float = 0.15            # +0.15 at attunement 10, 0 at attunement <= 3.33
    tmog_eta_max: float = 0.20              # a single turn closes at most a fifth of the gap
    tmog_noise_sigma: float = 0.3           # misattunement (< 3.5) misreads each node a further |N(0, 0.3)| away from the truth
    tmog_worst_k: int = 5                   # worst-misread nodes reported in the summary
    # -- PhaseShift (§9.3.5) --
    b_ref: float = 0.65                     # share of the balance's room to +1 that counts as a full shift (calibrated on the course table)
    c_ref: float = 0.065                    # share of the coiling's room to 0 that counts as a full shift (calibrated on the course table)
    shift_room_floor: float = 0.05          # room never counts as less than 5 %, so a near-healthy client cannot blow up the ratio
    c_dwell_turns: int = 2                  # core material is held at least 2 turns before integration
    stage_regression_sessions: int = 2      # a stage is lost only after 2 consecutive failing sessions
    stage_evidence_sessions: int = 2        # a stage is won only after 2 consecutive qualifying sessions: "sustained multi-session evidence" (§9.3.5.3)
    # -- Stance (§9.3.8) --
    stance_disclosure_min: float = 5.0      # "observable disclosure": self_disclosure level >= 5
    stance_engagement_min: float = 6.0      # ... or engagement level >= 6
    stance_defensiveness_max: float = 4.0   # "low defensiveness" for escalation
    stance_min_dwell: int = 2               # "sustained": at least 2 turns in a stance before moving up
    stance_arc_steps: int = 5               # orient, deepen, intervene, integrate, anchor (App. 28 pipeline 13)
    stance_arc_resistance_max: float = 7.0  # "moderate resistance" that an active arc tolerates
    stance_arc_overwhelm_max: float = 4.0   # "low overwhelm" that an active arc tolerates
    stance_overwhelm_surge: float = 0.09    # a 0.09 one-turn surge in fear+shame+helplessness = overwhelm 10
    rupture_alliance_drop: float = 0.10     # an alliance fall of 0.1 in one turn is a rupture
    # -- initial state by starting stage (index 0 = stage 1) --
    init_pathology: tuple[tuple[float, float], ...] = ((0.35, 0.85), (0.25, 0.65), (0.15, 0.45), (0.05, 0.30))  # wide: no client is ill on all 142 nodes; means sit on each stage's coiling criterion (§9.3.5.3)
    init_maladaptive: tuple[float, ...] = (0.75, 0.50, 0.28, 0.15)  # consistent with the stage entry criteria (§9.3.5.3)
    init_adaptive: tuple[float, ...] = (0.10, 0.55, 0.72, 0.85)  # "near zero" at stage 1 (§9.3.2), past each later stage's entry bar
    init_bucket_jitter: float = 0.1         # +-0.1 per bucket so clients differ within a stage
    init_sessions_completed: tuple[int, ...] = (0, 2, 8, 12)  # a client entering at stage s has the sessions an excellent course takes to reach s (course table)
    init_loa: tuple[tuple[float, float], ...] = ((-7.0, -3.0), (-4.0, 0.0), (-1.0, 3.0), (2.0, 6.0))  # maladaptive at stage 1, robust by stage 4 (§9.3.3)
    # -- reward --
    stage_weights: str = "paper"            # 37 unnamed weights at 1.0 (a neutral multiplier); "interpolated" variant
    depth_dim: str = "clinical_wisdom"     # stage 2's "depth" is no judge dimension; its depth bonus uses clinical_wisdom (§9.3.6.2)

    def __post_init__(self) -> None:
        if self.sensitivity_mode not in ("intensity", "literal"):
            raise ValueError(f"sensitivity_mode must be 'intensity' or 'literal', got {self.sensitivity_mode!r}")
        if self.taie_target not in ("healthy_pole", "literal_zero"):
            raise ValueError(f"taie_target must be 'healthy_pole' or 'literal_zero', got {self.taie_target!r}")
        if self.stage_weights not in ("paper", "interpolated"):
            raise ValueError(f"stage_weights must be 'paper' or 'interpolated', got {self.stage_weights!r}")
        check_numbers(self)


# Ranges a Params number must respect, by field name (a name no longer a field is simply never met).
SHARES = frozenset({"engagement_floor", "loa_rate", "loa_hysteresis", "taie_rate", "tmog_eta_base", "tmog_eta_slope",
                    "tmog_eta_max", "b_ref", "c_ref", "shift_room_floor", "rupture_alliance_drop",
                    "init_bucket_jitter", "init_maladaptive", "init_adaptive", "init_pathology",
                    "stance_overwhelm_surge"})   # fractions of a unit scale: in [0, 1]
COUNTS = frozenset({"taie_bar_window", "c_dwell_turns", "stage_regression_sessions", "stance_min_dwell",
                    "stance_arc_steps", "tmog_worst_k"})   # turns, sessions, nodes: integers >= 1
SIGNED = frozenset({"loa_regression_reward", "taie_away_reward", "init_loa"})   # may be negative by design


def check_numbers(params: Params) -> None:
    """Refuse a Params whose numbers are not finite or out of range, naming the field and the fix."""
    for f in fields(params):
        value = getattr(params, f.name)
        if isinstance(f.default, str):   # a named setting, checked in __post_init__
            continue
        flat = _flatten(value)
        if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in flat):
            raise ValueError(f"Params.{f.name} must be numeric, got {value!r}")
        if not all(math.isfinite(x) for x in flat):
            raise ValueError(f"Params.{f.name} must be finite, got {value!r}")
        if f.name in COUNTS and not all(isinstance(x, int) and x >= 1 for x in flat):
            raise ValueError(f"Params.{f.name} must be an integer >= 1, got {value!r}")
        if f.name in SHARES and not all(0.0 <= x <= 1.0 for x in flat):
            raise ValueError(f"Params.{f.name} must lie in [0, 1], got {value!r}")
        if f.name not in SIGNED | SHARES and any(x < 0 for x in flat):
            raise ValueError(f"Params.{f.name} must be >= 0, got {value!r}")


def _flatten(value) -> list:
    """The numbers of a Params value, tuples of tuples included."""
    return [x for v in value for x in _flatten(v)] if isinstance(value, tuple) else [value]
