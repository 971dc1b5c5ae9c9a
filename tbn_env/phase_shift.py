"""The PhaseShift detector (§9.3.5): in-session phases A-D and across-session stages 1-4.

The phase composite is (0.4 x bucket shift + 0.6 x coiling shift) x (0.7 + 0.6 x alliance), with both
shifts measured since the current phase began. It moves the phase forward past a stage-dependent
threshold and back past a (negative) regression threshold, one transition per turn. Stages change
only at session boundaries, on the criteria of §9.3.5.3.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import PHASES
from .params import (ALLIANCE_SCALE_BASE, ALLIANCE_SCALE_SLOPE, PHASE_BUCKET_WEIGHT, PHASE_COILING_WEIGHT,
                     STAGE_SESSIONS_FOR_TERMINATION, Params)

# Forward thresholds (A->B, B->C, C->D) by stage. Stage 1 and 3 A->B / B->C are the paper's (§9.3.5.2);
# stage 2 is their midpoint; stage 4 equals stage 3 (termination does not make core access easier);
# C->D uses the stage's A->B value.
FORWARD_THRESHOLDS: dict[int, tuple[float, float, float]] = {
    1: (0.35, 0.60, 0.35),  # §9.3.5.2 (A->B, B->C)
    2: (0.25, 0.45, 0.25),
    3: (0.15, 0.30, 0.15),  # §9.3.5.2 (A->B, B->C)
    4: (0.15, 0.30, 0.15),
}
# Regression threshold (any backward step) by stage: stage 1 B->A -0.25 and stage 3 -0.45 (§9.3.5.2);
# stage 2 the midpoint, stage 4 as stage 3.
REGRESSION_THRESHOLDS: dict[int, float] = {1: -0.25, 2: -0.35, 3: -0.45, 4: -0.45}

# Stage criteria (§9.3.5.3), checked at the end of a session.
STAGE1_ADAPTIVE_MIN = 0.5    # 1 -> 2: adaptive mean > 0.5 and a session reached phase C
STAGE2_COILING_MAX = 0.4     # 2 -> 3: coiling < 0.4, maladaptive < 0.3, adaptive > 0.7
STAGE2_MALADAPTIVE_MAX = 0.3
STAGE2_ADAPTIVE_MIN = 0.7
STAGE3_COILING_MAX = 0.2     # 3 -> 4: coiling < 0.2 and >= 10 sessions
# Stage regression (the paper gives the -150 reward but no criteria): hysteresis below the entry bars.
REGRESS_2_ADAPTIVE_BELOW = 0.35
REGRESS_3_COILING_ABOVE = 0.5
REGRESS_3_MALADAPTIVE_ABOVE = 0.45
REGRESS_3_ADAPTIVE_BELOW = 0.55
REGRESS_4_COILING_ABOVE = 0.30


def phase_composite(balance, balance_entry, coiling, coiling_entry, alliance, params: Params):
    """(0.4 bucket shift + 0.6 coiling shift) x (0.7 + 0.6 alliance) (§9.3.5.1); scalars or arrays.

    Both shifts are measured since the phase began, relative to the room there was to move *in the
    direction moved*: healing against the room left to health (the balance to +1, the coiling to 0),
    harm against the room left to the pathological pole (the balance to -1, the coiling to 1). A
    client near health still registers the same relative loosening as progress, while the same harm
    weighs less the more ground a client has gained: resilience grows with treatment (§9.3.5.2).
    """
    floor = params.shift_room_floor
    bucket = np.subtract(balance, balance_entry)
    coiling_gain = np.subtract(coiling_entry, coiling)
    balance_room = np.where(bucket >= 0, (1.0 - balance_entry) / 2.0, (1.0 + balance_entry) / 2.0)
    coiling_room = np.where(coiling_gain >= 0, coiling_entry, 1.0 - coiling_entry)
    bucket_shift = bucket / (params.b_ref * np.maximum(floor, balance_room))
    coiling_shift = coiling_gain / (params.c_ref * np.maximum(floor, coiling_room))
    return (PHASE_BUCKET_WEIGHT * bucket_shift + PHASE_COILING_WEIGHT * coiling_shift) * \
        (ALLIANCE_SCALE_BASE + ALLIANCE_SCALE_SLOPE * alliance)


@dataclass
class StageMeasures:
    """The end-of-session readings the stage criteria look at."""

    adaptive_mean: float
    maladaptive_mean: float
    coiling: float
    reached_core_in_stage: bool
    sessions_completed: int


def stage_advances(stage: int, m: StageMeasures) -> bool:
    """True when the forward criterion of §9.3.5.3 holds for this stage."""
    if stage == 1:
        return m.adaptive_mean > STAGE1_ADAPTIVE_MIN and m.reached_core_in_stage
    if stage == 2:
        return (m.coiling < STAGE2_COILING_MAX and m.maladaptive_mean < STAGE2_MALADAPTIVE_MAX
                and m.adaptive_mean > STAGE2_ADAPTIVE_MIN)
    if stage == 3:
        return m.coiling < STAGE3_COILING_MAX and m.sessions_completed >= STAGE_SESSIONS_FOR_TERMINATION
    return False


def stage_slips(stage: int, m: StageMeasures) -> bool:
    """True when this session's readings fall back below the stage's hold criteria."""
    if stage == 2:
        return m.adaptive_mean < REGRESS_2_ADAPTIVE_BELOW
    if stage == 3:
        return (m.coiling > REGRESS_3_COILING_ABOVE or m.maladaptive_mean > REGRESS_3_MALADAPTIVE_ABOVE
                or m.adaptive_mean < REGRESS_3_ADAPTIVE_BELOW)
    if stage == 4:
        return m.coiling > REGRESS_4_COILING_ABOVE
    return False


class PhaseShiftDetector:
    """Reference phase tracking for one client within a session."""

    def __init__(self, balance: float, coiling: float, params: Params | None = None) -> None:
        self.params = params or Params()
        self.start_session(balance, coiling)

    def start_session(self, balance: float, coiling: float) -> None:
        """Every session begins defended, in phase A (§9.3.5.1)."""
        self.phase = 0
        self.turns_in_phase = 0
        self.reached_core = False
        self._enter(balance, coiling)

    def _enter(self, balance: float, coiling: float) -> None:
        self.balance_entry, self.coiling_entry = balance, coiling

    def step(self, balance: float, coiling: float, alliance: float, stage: int) -> tuple[int, float]:
        """Check for a transition after a turn; return (+1 forward / -1 regression / 0, composite)."""
        self.turns_in_phase += 1
        composite = phase_composite(balance, self.balance_entry, coiling, self.coiling_entry, alliance,
                                    self.params)
        move = 0
        forward = FORWARD_THRESHOLDS[stage]
        if self.phase < 3 and composite >= forward[self.phase] and \
                (self.phase != 2 or self.turns_in_phase >= self.params.c_dwell_turns):
            move = 1
        elif self.phase > 0 and composite <= REGRESSION_THRESHOLDS[stage]:
            move = -1
        if move:
            self.phase += move
            self.turns_in_phase = 0
            self._enter(balance, coiling)
            self.reached_core = self.reached_core or self.phase >= 2
        return move, composite

    @property
    def phase_name(self) -> str:
        return PHASES[self.phase]
