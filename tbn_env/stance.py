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
from numba import njit

from .compiled_pack import leaf
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


@njit(cache=True)
def defensiveness(defense_pathology, distrust):
    """The defence domain's pathology (slow, structural) blended with the distrust bucket (moves within a session)."""
    return 10.0 * (0.5 * defense_pathology + 0.5 * distrust)


@njit(cache=True)
def overwhelm(bucket_surge, surge_at_ten):
    """This turn's rise in fear + shame + helplessness on a 0-10 scale."""
    return np.minimum(np.maximum(10.0 * bucket_surge / surge_at_ten, 0.0), 10.0)


@njit(cache=True)
def rupture_open(was_open, ruptured, repair):
    """Whether a rupture is open after a turn: one stays open until a turn scores repair above 6.5.

    `ruptured` is this turn's rupture (the scores', an alliance drop, or the client's voiced one that
    the turn answers); a turn scoring repair above the high gate (§9.3.1) closes it.
    """
    return (was_open or ruptured) and repair <= HIGH_THRESHOLD


class StanceDetector:
    """Tracks the therapeutic stance of `batch` clients through their sessions."""

    def __init__(self, params: Params | None = None, batch: int = 1) -> None:
        self.params = params or Params()
        self.batch = batch
        self.stance = np.zeros(batch, dtype=np.int64)
        self.turn = np.zeros(batch, dtype=np.int64)
        self.turns_in_stance = np.zeros(batch, dtype=np.int64)
        self.arc_step = np.zeros(batch, dtype=np.int64)  # steps of the current intervention arc already taken
        self.attunement = np.zeros((batch, STANCE_WINDOW))  # the last 4 turns, newest last
        self.resistance = np.zeros((batch, STANCE_WINDOW))

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
        p, b = self.params, self.batch

        def column(value, dtype=np.float64):
            return np.ascontiguousarray(np.broadcast_to(np.asarray(value, dtype=dtype), (b,)))

        _update(self.stance, self.turn, self.turns_in_stance, self.arc_step, self.attunement, self.resistance,
                column(s.attunement), column(s.self_disclosure), column(s.engagement), column(s.defensiveness),
                column(s.overwhelm), column(s.rupture, np.bool_),
                p.stance_disclosure_min, p.stance_engagement_min, p.stance_defensiveness_max, p.stance_min_dwell,
                p.stance_arc_steps, p.stance_arc_resistance_max, p.stance_arc_overwhelm_max)
        return self.stance


@leaf()
def _update(stance, turn, turns_in_stance, arc_step, att_window, res_window, attunement, disclosure, engagement,
            defensiveness, overwhelm, rupture, disclosure_min, engagement_min, defensiveness_max, min_dwell,
            arc_steps, arc_resistance_max, arc_overwhelm_max):
    """§9.3.8 for every client, in place: windows, de-escalation, arc hold, conservative escalation."""
    w = att_window.shape[1]
    for i in range(stance.shape[0]):
        turn[i] += 1
        turns_in_stance[i] += 1
        resistance = 0.5 * defensiveness[i] + 0.5 * (10.0 - engagement[i])
        for j in range(w - 1):
            att_window[i, j] = att_window[i, j + 1]
            res_window[i, j] = res_window[i, j + 1]
        att_window[i, w - 1] = attunement[i]
        res_window[i, w - 1] = resistance
        filled = min(turn[i], w)  # the window holds this session's turns only
        att_avg = 0.0
        res_avg = 0.0
        for j in range(w - filled, w):
            att_avg += att_window[i, j]
            res_avg += res_window[i, j]
        att_avg /= filled
        res_avg /= filled
        before = stance[i]
        arc_active = before == 2 and arc_step[i] < arc_steps
        reset = rupture[i] or turn[i] <= STANCE_LOCKED_TURNS
        drop = not reset and (defensiveness[i] >= STANCE_DEFENSIVENESS_DROP or overwhelm[i] >= STANCE_OVERWHELM_DROP)
        held = arc_active and res_avg <= arc_resistance_max and overwhelm[i] <= arc_overwhelm_max
        ready = (not reset and not drop and before < 2 and filled == w and att_avg >= STANCE_ATTUNEMENT_MIN
                 and res_avg <= STANCE_RESISTANCE_MAX
                 and (disclosure[i] >= disclosure_min or engagement[i] >= engagement_min)
                 and defensiveness[i] < defensiveness_max and turns_in_stance[i] >= min_dwell)
        if reset:
            stance[i] = 0
        elif drop and not held:
            stance[i] = max(0, before - 1)
        elif ready:
            stance[i] = before + 1
        if stance[i] != before:
            turns_in_stance[i] = 0
            arc_step[i] = 0
        elif stance[i] == 2:
            arc_step[i] += 1
