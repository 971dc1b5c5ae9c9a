"""The 8+8 BucketTracker (§9.3.2): affective reservoirs in [0, 1] driven by the judge's scores.

Maladaptive buckets start high and drain; adaptive ones start near zero and fill. DIM_TO_BUCKET
holds the four mappings the paper gives (marked) and the rest of the table we chose; each bucket has
a volatility (per-turn reach) and a session decay (share of a session's progress lost before the
next). `apply_bucket_coiling_interactions` feeds bucket movement back into the ClientGraph.
"""
from __future__ import annotations

import numpy as np

from .dimensions import DIM_INDEX, JUDGE_DIMENSIONS
from .params import Params

MALADAPTIVE: tuple[str, ...] = ("shame", "fear", "rage", "grief", "abandonment", "worthlessness",
                                "helplessness", "distrust")  # §9.3.2
# The paper lists "dissociation (decreasing)" among the adaptive buckets; we keep it adaptive as
# `dissociation_reduction` (groundedness), which fills like the others.
ADAPTIVE: tuple[str, ...] = ("self_compassion", "safety", "agency", "connection", "trust", "hope", "worth",
                             "dissociation_reduction")  # §9.3.2
BUCKETS: tuple[str, ...] = MALADAPTIVE + ADAPTIVE
BUCKET_INDEX = {b: i for i, b in enumerate(BUCKETS)}
#: +1 where filling is improvement (adaptive), -1 where draining is (maladaptive).
BUCKET_HEALTH_SIGN = np.array([-1.0] * len(MALADAPTIVE) + [1.0] * len(ADAPTIVE))

# volatility: fast arousal states move most per turn, identity-level ones least (the BQ principle, §9.3.1)
VOLATILITY: dict[str, float] = {
    "fear": 0.06, "rage": 0.06, "abandonment": 0.04, "helplessness": 0.04, "distrust": 0.04,
    "shame": 0.03, "grief": 0.03, "worthlessness": 0.03,
    "safety": 0.05, "dissociation_reduction": 0.05, "connection": 0.04, "hope": 0.04,
    "trust": 0.03, "self_compassion": 0.03, "agency": 0.03, "worth": 0.03,
}
SESSION_DECAY_PER_VOLATILITY = 10.0  # volatile gains are the least consolidated: 30-60 % of a session's progress erodes (calibrated, §23)
SESSION_DECAY = {b: SESSION_DECAY_PER_VOLATILITY * v for b, v in VOLATILITY.items()}

# DIM_TO_BUCKET: what good work on a dimension does to the reservoirs, as (bucket, +1 fill / -1 drain, coef).
# A score above 6.5 applies these effects; a score below 3.5 applies their mirror image (fills become
# drains and drains fills), x BUCKET_HARM_MULTIPLIER: harm undoes exactly what the same dimension
# builds, only faster, so the buckets carry the harm asymmetry of §9.3.1 at every stage.
# Paper (§9.3.2): high attunement fills trust; high safety drains fear, so low safety fills it; high
# validation fills worth; high boundaries drain distrust, so low boundaries fill it. The rest is ours.
DIM_TO_BUCKET: dict[str, tuple[tuple[str, int, float], ...]] = {
    "attunement": (("trust", 1, 1.0), ("connection", 1, 1.0), ("abandonment", -1, 1.0),    # trust: §9.3.2
                   ("distrust", -1, 1.0)),
    "pacing": (("safety", 1, 1.0), ("dissociation_reduction", 1, 1.0), ("fear", -1, 1.0), ("helplessness", -1, 0.5)),
    "safety": (("safety", 1, 1.0), ("fear", -1, 1.0), ("distrust", -1, 0.5),                 # fear: §9.3.2
               ("dissociation_reduction", 1, 0.5)),
    "non_reactivity": (("safety", 1, 0.5), ("rage", -1, 1.0), ("fear", -1, 0.5)),
    "validation": (("worth", 1, 1.0), ("worthlessness", -1, 1.0), ("shame", -1, 1.0)),      # worth: §9.3.2
    "boundaries": (("trust", 1, 0.5), ("distrust", -1, 1.0), ("safety", 1, 0.5), ("fear", -1, 0.5)),  # distrust: §9.3.2
    "repair": (("trust", 1, 1.0), ("connection", 1, 0.5), ("rage", -1, 0.5), ("distrust", -1, 1.0),
               ("abandonment", -1, 1.0)),
    "clinical_wisdom": (("hope", 1, 1.0), ("agency", 1, 1.0), ("helplessness", -1, 1.0)),
    "thoughtfulness": (("connection", 1, 0.5), ("worth", 1, 0.5), ("grief", -1, 0.5), ("abandonment", -1, 0.5),
                       ("worthlessness", -1, 0.5)),
    "parallel_thinking": (("self_compassion", 1, 0.5), ("safety", 1, 0.5), ("shame", -1, 0.5)),
    "tenderness": (("self_compassion", 1, 1.0), ("shame", -1, 1.0), ("grief", -1, 0.5), ("abandonment", -1, 0.5)),
    "artfulness": (("hope", 1, 0.5), ("connection", 1, 0.5)),
}
# apply_bucket_coiling_interactions: bucket -> (primary nodes, marginal nodes). Paper example (§9.3.2):
# draining the shame bucket lowers shame_core and marginally raises self_compassion.
BUCKET_TO_NODES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "shame": (("shame_core", "somatic_shame", "inner_critic_intensity"), ("self_compassion",)),
    "fear": (("hypervigilance", "anxiety_level", "sympathetic_activation"), ("felt_safety_in_session",)),
    "rage": (("anger_regulation", "hostility", "emotional_reactivity"), ("aggressive_humor",)),
    "grief": (("grief_access", "despair"), ("meaning_coherence",)),
    "abandonment": (("abandonment_fear", "rejection_sensitivity"), ("object_constancy",)),
    "worthlessness": (("self_worth", "self_defeating_humor"), ("inner_critic_intensity",)),
    "helplessness": (("sense_of_agency", "self_efficacy"), ("change_readiness",)),
    "distrust": (("trust_capacity", "trust_in_therapist"), ("epistemic_trust",)),
    "self_compassion": (("self_compassion", "self_soothing"), ("shame_core",)),
    "safety": (("felt_safety_in_session", "body_safety", "ventral_vagal_access"), ("window_of_tolerance",)),
    "agency": (("sense_of_agency", "embodied_agency", "problem_solving"), ("adaptive_coping_range",)),
    "connection": (("bond_with_therapist", "support_seeking"), ("social_withdrawal",)),
    "trust": (("trust_capacity", "epistemic_trust"), ("intimacy_tolerance",)),
    "hope": (("hope", "change_readiness"), ("purpose",)),
    "worth": (("self_worth", "identity_coherence"), ("self_enhancing_humor",)),
    "dissociation_reduction": (("dissociation", "presence_in_session", "grounding_capacity"),
                               ("interoceptive_awareness",)),
}


def bucket_effect_matrices() -> tuple[np.ndarray, np.ndarray]:
    """DIM_TO_BUCKET as two [16, 12] matrices (high branch, low branch), volatility-normalised.

    Each bucket's row is scaled so that a turn scoring 10 on every dimension moves it by exactly its
    volatility: volatility is "how much a single therapeutic turn can shift it" (§9.3.2), however many
    dimensions feed the bucket. The low branch is the mirror image of the high one; the harm
    multiplier is applied by the caller.
    """
    high = np.zeros((len(BUCKETS), len(JUDGE_DIMENSIONS)))
    for dim, effects in DIM_TO_BUCKET.items():
        for bucket, sign, coef in effects:
            high[BUCKET_INDEX[bucket], DIM_INDEX[dim]] += sign * coef
    volatility = np.array([VOLATILITY[b] for b in BUCKETS])[:, None]
    mass = np.abs(high).sum(axis=1, keepdims=True)
    high *= volatility / np.where(mass > 0, mass, 1.0)
    return high, -high


def coupling_matrix(nodes: tuple[str, ...], params: Params) -> np.ndarray:
    """BUCKET_TO_NODES as a [16, N] matrix: raw node improvement (level units) per unit of bucket improvement."""
    index = {n: i for i, n in enumerate(nodes)}
    out = np.zeros((len(BUCKETS), len(nodes)))
    for bucket, (primary, marginal) in BUCKET_TO_NODES.items():
        for coef, targets in ((params.coupling_primary, primary), (params.coupling_marginal, marginal)):
            for node in targets:
                out[BUCKET_INDEX[bucket], index[node]] += coef * params.bucket_coupling_scale
    return out


def apply_bucket_coiling_interactions(improvement: dict[str, float], params: Params) -> dict[str, float]:
    """Raw node improvement (level units) caused by this turn's bucket improvement (§9.3.2).

    The result joins the judge-driven raw delta of the ClientGraph update, so it is modulated by
    phase weight, engagement and BQ like any other first-order change.
    """
    raw: dict[str, float] = {}
    for bucket, u in improvement.items():
        primary, marginal = BUCKET_TO_NODES[bucket]
        for coef, targets in ((params.coupling_primary, primary), (params.coupling_marginal, marginal)):
            for node in targets:
                raw[node] = raw.get(node, 0.0) + coef * u * params.bucket_coupling_scale
    return raw


class BucketTracker:
    """Reference bucket dynamics for one client, bucket by bucket."""

    def __init__(self, levels: dict[str, float], params: Params | None = None) -> None:
        self.levels = dict(levels)
        self.session_start = dict(levels)
        self.params = params or Params()

    def update(self, high: np.ndarray, low: np.ndarray) -> dict[str, float]:
        """Apply one turn's intensities; return each bucket's improvement (drain or fill).

        A turn moves a reservoir by the same amount wherever it stands (until it is empty or full),
        so harm outweighs the mirrored help by the harm multiplier at every stage of treatment.
        """
        harm = self.params.bucket_harm_multiplier
        improvement = {}
        for b in BUCKETS:
            effects = [(DIM_INDEX[d], sign, coef) for d, rows in DIM_TO_BUCKET.items()
                       for bucket, sign, coef in rows if bucket == b]
            per_unit = VOLATILITY[b] / sum(coef for _, _, coef in effects)
            change = 0.0
            for i, sign, coef in effects:
                change += per_unit * sign * coef * (high[i] - harm * low[i])
            old = self.levels[b]
            new = min(1.0, max(0.0, old + change))
            self.levels[b] = new
            improvement[b] = BUCKET_HEALTH_SIGN[BUCKET_INDEX[b]] * (new - old)
        return improvement

    def end_session(self) -> None:
        """Session decay: erode a share of this session's *healthy* progress; harm is not decayed."""
        for b in BUCKETS:
            gained = BUCKET_HEALTH_SIGN[BUCKET_INDEX[b]] * (self.levels[b] - self.session_start[b])
            if gained > 0:
                self.levels[b] -= SESSION_DECAY[b] * (self.levels[b] - self.session_start[b])
        self.session_start = dict(self.levels)

    def maladaptive_mean(self) -> float:
        return sum(self.levels[b] for b in MALADAPTIVE) / len(MALADAPTIVE)

    def adaptive_mean(self) -> float:
        return sum(self.levels[b] for b in ADAPTIVE) / len(ADAPTIVE)

    def balance(self) -> float:
        """adaptive mean - maladaptive mean, in [-1, 1]: the base of the phase detector's bucket shift."""
        return self.adaptive_mean() - self.maladaptive_mean()
