"""The adaptive stance detector (§9.3.8): rapport_building -> personhood_assemblage -> intervention.

Escalation is conservative (sustained readiness over a 4-turn window); de-escalation is immediate
on rupture, defensiveness >= 5 or overwhelm >= 3, and a rupture always returns to rapport building.
The first 3 turns of every session are locked. An intervention arc in progress holds the
intervention stance through momentary wobble when there is no rupture, resistance is moderate and
overwhelm low.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .params import (STANCE_ATTUNEMENT_MIN, STANCE_DEFENSIVENESS_DROP, STANCE_LOCKED_TURNS,
                     STANCE_OVERWHELM_DROP, STANCE_RESISTANCE_MAX, STANCE_WINDOW, Params)

STANCES: tuple[str, ...] = ("rapport_building", "personhood_assemblage", "intervention")  # §9.3.8
ARC_STEPS: tuple[str, ...] = ("orient", "deepen", "intervene", "integrate", "anchor")  # App. 28, pipeline 13


@dataclass(frozen=True)
class StanceSignals:
    """One turn's client signals on 0-10 scales, plus the judge's attunement and the rupture flag."""

    attunement: float
    self_disclosure: float
    engagement: float
    defensiveness: float
    overwhelm: float
    rupture: bool

    @property
    def resistance(self) -> float:
        """Half defensiveness, half disengagement."""
        return 0.5 * self.defensiveness + 0.5 * (10.0 - self.engagement)


class StanceDetector:
    """Tracks the therapeutic stance through one session."""

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.start_session()

    def start_session(self) -> None:
        self.stance = 0
        self.turn = 0
        self.turns_in_stance = 0
        self.arc_step = 0  # steps of the current intervention arc already taken
        self.attunement: deque[float] = deque(maxlen=STANCE_WINDOW)
        self.resistance: deque[float] = deque(maxlen=STANCE_WINDOW)

    @property
    def name(self) -> str:
        return STANCES[self.stance]

    @property
    def arc_active(self) -> bool:
        return self.stance == 2 and self.arc_step < self.params.stance_arc_steps

    def arc_step_name(self) -> str | None:
        """The arc step the next therapist turn is on, while an arc is active."""
        return ARC_STEPS[self.arc_step] if self.arc_active else None

    def update(self, s: StanceSignals) -> str:
        """Advance one turn and return the stance for the next therapist turn."""
        p = self.params
        self.turn += 1
        self.turns_in_stance += 1
        self.attunement.append(s.attunement)
        self.resistance.append(s.resistance)
        att_avg = sum(self.attunement) / len(self.attunement)
        res_avg = sum(self.resistance) / len(self.resistance)
        before = self.stance
        if s.rupture or self.turn <= STANCE_LOCKED_TURNS:
            self.stance = 0
        elif s.defensiveness >= STANCE_DEFENSIVENESS_DROP or s.overwhelm >= STANCE_OVERWHELM_DROP:
            held = (self.arc_active and res_avg <= p.stance_arc_resistance_max
                    and s.overwhelm <= p.stance_arc_overwhelm_max)
            if not held:
                self.stance = max(0, self.stance - 1)
        elif (self.stance < 2 and len(self.attunement) == STANCE_WINDOW
              and att_avg >= STANCE_ATTUNEMENT_MIN and res_avg <= STANCE_RESISTANCE_MAX
              and (s.self_disclosure >= p.stance_disclosure_min or s.engagement >= p.stance_engagement_min)
              and s.defensiveness < p.stance_defensiveness_max and self.turns_in_stance >= p.stance_min_dwell):
            self.stance += 1
        if self.stance != before:
            self.turns_in_stance = 0
            self.arc_step = 0
        elif self.stance == 2:
            self.arc_step += 1
        return self.name


DEFENSE_DOMAIN = "defense_organization"
OVERWHELM_BUCKETS = ("fear", "shame", "helplessness")


def stance_signals(levels: dict[str, float], defense_pathology: float, distrust: float,
                   bucket_surge: float, attunement: float, rupture: bool, params: Params) -> StanceSignals:
    """Read the openness signals of §9.3.8 off the client's state (graph mode).

    Defensiveness blends the defence domain's pathology (slow, structural) with the distrust bucket
    (moves within a session); overwhelm scales this turn's rise in fear + shame + helplessness.
    """
    return StanceSignals(
        attunement=attunement,
        self_disclosure=levels["self_disclosure"],
        engagement=levels["session_engagement"],
        defensiveness=10.0 * (0.5 * defense_pathology + 0.5 * distrust),
        overwhelm=min(10.0, max(0.0, 10.0 * bucket_surge / params.stance_overwhelm_surge)),
        rupture=rupture,
    )
