"""The adaptive stance detector (§9.3.8): rapport_building -> personhood_assemblage -> intervention.

Escalation is conservative (sustained readiness over a 4-turn window); de-escalation is immediate
on rupture, defensiveness >= 5 or overwhelm >= 3, and a rupture always returns to rapport building.
The first 3 turns of every session are locked. An intervention arc in progress holds the
intervention stance through momentary wobble when there is no rupture, resistance is moderate and
overwhelm low. The detector runs over a batch of clients (batch 1 for a single session).
`rupture_open` keeps a rupture open until a turn repairs it, for the env and the vector env alike.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import (
    HIGH_THRESHOLD,
    STANCE_ATTUNEMENT_MIN,
    STANCE_DEFENSIVENESS_DROP,
    STANCE_LOCKED_TURNS,
    STANCE_OVERWHELM_DROP,
    STANCE_RESISTANCE_MAX,
    STANCE_WINDOW,
    Params,
)

STANCES: tuple[str, ...] = ("rapport_building", "personhood_assemblage", "intervention")  # §9.3.8
ARC_STEPS: tuple[str, ...] = ("orient", "deepen", "intervene", "integrate", "anchor")  # App. 28, pipeline 13
DEFENSE_DOMAIN = "defense_organization"
OVERWHELM_BUCKETS = ("fear", "shame", "helplessness")


@dataclass(frozen=True)
class StanceSignals:
    """One turn's client signals on 0-10 scales, the judge's attunement and the rupture flag.

    Fields are floats for one client or equal-length arrays for a batch.
    """

    attunement: float | np.ndarray
    self_disclosure: float | np.ndarray
    engagement: float | np.ndarray
    defensiveness: float | np.ndarray
    overwhelm: float | np.ndarray
    rupture: bool | np.ndarray

    @property
    def resistance(self):
        """Half defensiveness, half disengagement."""
        return 0.5 * np.asarray(self.defensiveness) + 0.5 * (10.0 - np.asarray(self.engagement))


def stance_signals(disclosure, engagement, defense_pathology, distrust, bucket_surge, attunement, rupture,
                   params: Params) -> StanceSignals:
    """Read the openness signals of §9.3.8 off the client's state (graph mode); scalars or arrays.

    Defensiveness blends the defence domain's pathology (slow, structural) with the distrust bucket
    (moves within a session); overwhelm scales this turn's rise in fear + shame + helplessness.
    """
    return StanceSignals(
        attunement=attunement, self_disclosure=disclosure, engagement=engagement,
        defensiveness=10.0 * (0.5 * np.asarray(defense_pathology) + 0.5 * np.asarray(distrust)),
        overwhelm=np.clip(10.0 * np.asarray(bucket_surge) / params.stance_overwhelm_surge, 0.0, 10.0),
        rupture=rupture)


def rupture_open(was_open, ruptured, repair) -> np.ndarray:
    """Whether a rupture is open after a turn: one stays open until a turn scores repair above 6.5.

    `ruptured` is this turn's rupture (the scores', an alliance drop, or the client's voiced one that
    the turn answers); a turn scoring repair above the high gate (§9.3.1) closes it. Scalars or arrays.
    """
    opened = np.asarray(was_open, dtype=bool) | np.asarray(ruptured, dtype=bool)
    return opened & (np.asarray(repair) <= HIGH_THRESHOLD)


class StanceDetector:
    """Tracks the therapeutic stance of `batch` clients through their sessions."""

    def __init__(self, params: Params | None = None, batch: int = 1) -> None:
        self.params = params or Params()
        self.batch = batch
        self.stance = np.zeros(batch, dtype=int)
        self.turn = np.zeros(batch, dtype=int)
        self.turns_in_stance = np.zeros(batch, dtype=int)
        self.arc_step = np.zeros(batch, dtype=int)  # steps of the current intervention arc already taken
        self.attunement = np.zeros((batch, STANCE_WINDOW))  # the last 4 turns, newest last
        self.resistance = np.zeros((batch, STANCE_WINDOW))

    def start_session(self, rows: np.ndarray | slice = slice(None)) -> None:
        """Every session starts in rapport building with an empty window."""
        for arr in (self.stance, self.turn, self.turns_in_stance, self.arc_step):
            arr[rows] = 0

    @property
    def name(self) -> str:
        """The stance of a single client (batch 1)."""
        return STANCES[int(self.stance[0])]

    @property
    def arc_active(self) -> np.ndarray:
        return (self.stance == 2) & (self.arc_step < self.params.stance_arc_steps)

    def arc_step_name(self) -> str | None:
        """The arc step a single client's next therapist turn is on, while an arc is active."""
        return ARC_STEPS[int(self.arc_step[0])] if self.arc_active[0] else None

    def update(self, s: StanceSignals) -> str:
        """Advance a single client one turn; return its stance for the next therapist turn."""
        self.update_batch(s)
        return self.name

    def update_batch(self, s: StanceSignals) -> np.ndarray:
        """Advance every client one turn; return the stances (0-2) for the next therapist turn."""
        p = self.params
        self.turn += 1
        self.turns_in_stance += 1
        for window, value in ((self.attunement, s.attunement), (self.resistance, s.resistance)):
            window[:, :-1] = window[:, 1:]
            window[:, -1] = value
        filled = np.minimum(self.turn, STANCE_WINDOW)  # the window holds this session's turns only
        mask = np.arange(STANCE_WINDOW) >= STANCE_WINDOW - filled[:, None]
        att_avg = (self.attunement * mask).sum(axis=1) / filled
        res_avg = (self.resistance * mask).sum(axis=1) / filled
        rupture = np.asarray(s.rupture, dtype=bool)
        overwhelm = np.asarray(s.overwhelm)
        defensiveness = np.asarray(s.defensiveness)
        before = self.stance.copy()
        reset = rupture | (self.turn <= STANCE_LOCKED_TURNS)
        drop = ~reset & ((defensiveness >= STANCE_DEFENSIVENESS_DROP) | (overwhelm >= STANCE_OVERWHELM_DROP))
        held = self.arc_active & (res_avg <= p.stance_arc_resistance_max) & (overwhelm <= p.stance_arc_overwhelm_max)
        ready = (~reset & ~drop & (self.stance < 2) & (filled == STANCE_WINDOW)
                 & (att_avg >= STANCE_ATTUNEMENT_MIN) & (res_avg <= STANCE_RESISTANCE_MAX)
                 & ((np.asarray(s.self_disclosure) >= p.stance_disclosure_min)
                    | (np.asarray(s.engagement) >= p.stance_engagement_min))
                 & (defensiveness < p.stance_defensiveness_max) & (self.turns_in_stance >= p.stance_min_dwell))
        self.stance = np.where(reset, 0, np.where(drop & ~held, np.maximum(0, self.stance - 1),
                                                  self.stance + ready))
        moved = self.stance != before
        self.turns_in_stance[moved] = 0
        self.arc_step = np.where(moved, 0, self.arc_step + (self.stance == 2))
        return self.stance
