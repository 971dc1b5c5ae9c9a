"""The reference TBN turn for one client, component by component in the order of §9.3.14.2.

Slow and obviously right: it composes the per-component classes (BucketTracker, LoaTracker,
TaieAssessor, ClientGraph, TMoG, PhaseShiftDetector) and the reward functions. The compiled
`tbn_env.kernel.BatchKernel` must agree with it to 1e-9; the environment uses the kernel.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .buckets import BUCKETS, BucketTracker, apply_bucket_coiling_interactions
from .graph import ClientGraph
from .intensity import graph_engagement, intensities
from .loa import LOA_DIMENSIONS, LoaEvent, LoaTracker
from .params import (PHASE_FORWARD_REWARD, PHASE_REGRESSION_REWARD, STAGE_FORWARD_REWARD,
                     STAGE_REGRESSION_REWARD, Params)
from .phase_shift import PhaseShiftDetector, StageMeasures, stage_advances, stage_slips
from .reward import RewardBreakdown, modifier_terms, weighted_composite
from .state import InitialState
from .taie import TaieAssessor
from .tmog import TMoG, accuracy


@dataclass
class TurnOutcome:
    """What one turn did, in the terms every caller needs."""

    reward: RewardBreakdown
    phase_move: int
    phase_composite: float
    coiling: float
    alliance: float
    balance: float
    tmog_accuracy: float
    tmog_accuracy_delta: float
    taie_direction: str
    loa_events: list[LoaEvent] = field(default_factory=list)
    bucket_change: np.ndarray | None = None  # [16] raw level change this turn


@dataclass
class SessionOutcome:
    """What a session boundary did: stage move, its reward, whether treatment is complete."""

    stage_move: int
    reward: float
    treatment_complete: bool


def taie_reward(transformation: float, previous: float, direction: str, params: Params) -> dict[str, float]:
    """TAIE signal for the reward (§9.3.14.2): transformation gained plus a trajectory term."""
    trajectory = {"toward_zero": params.taie_toward_reward, "away_from_zero": params.taie_away_reward}
    return {"transformation": params.taie_transform_reward * (transformation - previous),
            "direction": trajectory.get(direction, 0.0)}


def loa_event_reward(events: list[LoaEvent], params: Params) -> float:
    """LOA TAIE events are high-salience reward signals (§9.3.3)."""
    return sum(params.loa_growth_reward if e.kind == "growth" else params.loa_regression_reward for e in events)


class ReferenceCore:
    """One client's full TBN state, updated turn by turn by the reference components."""

    def __init__(self, init: InitialState, params: Params | None = None, graph: ClientGraph | None = None):
        self.params = params or (graph.params if graph is not None else Params())
        self.graph = graph or ClientGraph.default(self.params)
        if self.graph.params != self.params:
            raise ValueError("the graph was built with different Params than the core's")
        init.validate(len(self.graph.nodes))
        self.graph.set_levels(init.levels)
        for node, scale in zip(self.graph.nodes, init.bq_scale):  # this client's own resistance
            a = self.graph.graph.nodes[node]
            a["bq_by_stage"] = tuple(b * scale for b in a["bq_by_stage"])
        self.stage = init.stage
        self.buckets = BucketTracker(dict(zip(BUCKETS, init.buckets)), self.params)
        self.loa = LoaTracker(dict(zip(LOA_DIMENSIONS, init.loa)), self.params)
        self.taie = TaieAssessor(init.taie, init.x_pole, self.params)
        self.tmog = TMoG(init.tmog, self.params)
        self.phase = PhaseShiftDetector(self.buckets.balance(), self.graph.coiling(), self.params)
        self.sessions_completed = init.sessions_completed
        self.reached_core_in_stage = False
        self.reached_integration = False
        self.slipping_sessions = 0
        self.qualifying_sessions = 0

    def turn(self, scores: np.ndarray, noise: np.ndarray) -> TurnOutcome:
        """Run steps 2-7 and 9 of §9.3.14.2 for validated scores; `noise` is the TMoG draw [N]."""
        p = self.params
        bucket_before = np.array([self.buckets.levels[b] for b in BUCKETS])
        high, low = intensities(scores)
        bucket_improvement = self.buckets.update(high, low)                       # 2
        events = self.loa.update(scores)                                          # 3
        t_before = self.taie.transformation
        self.taie.assess(scores)                                                  # 4
        extra = apply_bucket_coiling_interactions(bucket_improvement, p)
        g_high, g_low = graph_engagement(scores, p.sensitivity_mode, p.graph_intensity_scale)
        self.graph.update(g_high, g_low, self.phase.phase_name, self.stage,      # 5
                          self.graph.alliance(), extra)
        levels = self.graph.levels()
        acc_before = float(accuracy(self.tmog.estimate, levels))
        self.tmog.update(levels, scores, noise)                                   # 6
        acc = float(accuracy(self.tmog.estimate, levels))
        balance, coiling, alliance = self.buckets.balance(), self.graph.coiling(), self.graph.alliance()
        move, composite = self.phase.step(balance, coiling, alliance, self.stage)  # 7
        self.reached_integration |= self.phase.phase == 3
        direction = self.taie.direction()
        taie_terms = taie_reward(self.taie.transformation, t_before, direction, p)
        taie_terms["loa_events"] = loa_event_reward(events, p)
        terms = modifier_terms(scores, self.stage, p)
        reward = RewardBreakdown(                                                  # 9
            composite=weighted_composite(scores, self.stage, p),
            modifiers=sum(terms.values()),
            phase_transition={1: PHASE_FORWARD_REWARD, -1: PHASE_REGRESSION_REWARD}.get(move, 0.0),
            taie=sum(taie_terms.values()),
            modifier_terms=terms, taie_terms=taie_terms)
        bucket_after = np.array([self.buckets.levels[b] for b in BUCKETS])
        return TurnOutcome(reward, move, composite, coiling, alliance, balance, acc, acc - acc_before,
                           direction, events, bucket_after - bucket_before)

    def end_session(self) -> SessionOutcome:
        """Stage assessment on the session's end state (§9.3.5.3), then bucket session decay."""
        self.sessions_completed += 1
        self.reached_core_in_stage |= self.phase.reached_core
        complete = self.stage == 4 and self.reached_integration
        m = StageMeasures(self.buckets.adaptive_mean(), self.buckets.maladaptive_mean(), self.graph.coiling(),
                          self.reached_core_in_stage, self.sessions_completed)
        move = 0
        if stage_advances(self.stage, m):
            self.qualifying_sessions += 1
            self.slipping_sessions = 0
            if self.qualifying_sessions >= self.params.stage_evidence_sessions:
                move = 1
        else:
            self.qualifying_sessions = 0
            if stage_slips(self.stage, m):
                self.slipping_sessions += 1
                if self.slipping_sessions >= self.params.stage_regression_sessions:
                    move = -1
            else:
                self.slipping_sessions = 0
        if move:
            self.stage += move
            self.slipping_sessions = self.qualifying_sessions = 0
            self.reached_core_in_stage = False
        self.buckets.end_session()
        self.phase.start_session(self.buckets.balance(), self.graph.coiling())
        self.reached_integration = False
        reward = {1: STAGE_FORWARD_REWARD, -1: STAGE_REGRESSION_REWARD}.get(move, 0.0)
        return SessionOutcome(move, reward, complete)

    def snapshot(self) -> dict[str, np.ndarray]:
        """The numeric state, for comparison with the kernel."""
        return {
            "levels": self.graph.levels(),
            "buckets": np.array([self.buckets.levels[b] for b in BUCKETS]),
            "loa": np.array([self.loa.values[d] for d in LOA_DIMENSIONS]),
            "taie": self.taie.axes.copy(),
            "transformation": np.array(self.taie.transformation),
            "tmog": self.tmog.estimate.copy(),
            "phase": np.array(self.phase.phase),
            "stage": np.array(self.stage),
        }
