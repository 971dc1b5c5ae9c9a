"""SessionCore: one client's therapy, turn by turn, in the order of §9.3.14.2. No gymnasium here.

It validates a turn's 12 judge scores, runs the compiled kernel, updates the adaptive stance,
and at a session boundary assesses the stage, decays the buckets and writes the session summary of
§9.3.14.2. The Gymnasium environment wraps it; the trainer can drive it directly.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .buckets import BUCKET_INDEX, BUCKETS, MALADAPTIVE
from .dimensions import DIM_INDEX, JUDGE_DIMENSIONS, as_score_vector, score_dict
from .graph import PHASES, ClientGraph
from .guidance import guidance
from .kernel import DIRECTION_NAMES, BatchKernel, BatchTurn, CompiledGraph
from .loa import LOA_DIMENSIONS
from .params import LOW_THRESHOLD, Params
from .reward import RewardBreakdown, stage_modifiers
from .stance import DEFENSE_DOMAIN, OVERWHELM_BUCKETS, StanceDetector, stance_signals
from .state import InitialState, sample_initial_state
from .taie import AXES
from .tmog import TMoG

TAIE_FULL_MODE_WEIGHT = 0.5  # an LLM assessment and the running estimate count equally


@dataclass
class TurnResult:
    """What one turn produced: its reward by term, the events, and the readings after it."""

    reward: RewardBreakdown
    events: list[dict[str, Any]]
    phase: str
    stage: int
    stance: str
    coiling: float
    alliance: float
    attunement: float
    attunement_delta: float
    phase_composite: float
    taie: dict[str, Any]
    session_end: bool = False
    treatment_complete: bool = False
    session_summary: dict[str, Any] | None = None
    scores: dict[str, float] = field(default_factory=dict)


class SessionCore:
    """A client in treatment: the full TBN state plus the turn and session bookkeeping."""

    def __init__(self, init: InitialState, params: Params | None = None, *, seed: int | None = None,
                 graph: ClientGraph | None = None, compiled: CompiledGraph | None = None) -> None:
        self.params = params or Params()
        self.kernel = BatchKernel(1, self.params, graph, compiled)
        self.cg = self.kernel.cg
        self._defense = np.array([self.kernel.graph.graph.nodes[n]["domain"] == DEFENSE_DOMAIN
                                  for n in self.cg.nodes])
        self._disclosure = self.cg.nodes.index("self_disclosure")
        self._surge = [BUCKET_INDEX[b] for b in OVERWHELM_BUCKETS]
        self._distrust = BUCKET_INDEX["distrust"]
        self.stance = StanceDetector(self.params)
        self._modifiers = stage_modifiers(self.params)
        self.restart(init, seed)

    def restart(self, init: InitialState, seed: int | None = None) -> None:
        """Begin treatment with a new client, reusing the compiled tables (an env reset)."""
        self.kernel.load(0, init)
        self._alliance = self.alliance()
        self.rng = np.random.default_rng(seed)
        self.session = 1
        self.total_turns = 0
        self._start_of_session()

    @classmethod
    def sample(cls, stage: int = 1, seed: int | None = None, params: Params | None = None,
               graph: ClientGraph | None = None) -> "SessionCore":
        """A client drawn for `stage` from `seed`; one seed gives one client and one trajectory."""
        params = params or Params()
        graph = graph or ClientGraph.default(params)
        rng = np.random.default_rng(seed)
        init = sample_initial_state(rng, stage, graph, params)
        return cls(init, params, seed=int(rng.integers(2**63)), graph=graph)

    # ---------------------------------------------------------------- checkpointing
    _COUNTERS = ("session", "total_turns", "turn_in_session", "_scores", "_events_session", "_phase_max",
                 "_reward_totals", "_taie_direction", "_alliance")

    def state_dict(self) -> dict[str, Any]:
        """Everything that changes turn to turn, as picklable values (for a trainer's checkpoint)."""
        return {"kernel": self.kernel.state_dict(), "rng": copy.deepcopy(self.rng.bit_generator.state),
                "stance": copy.deepcopy(self.stance.__dict__),
                "counters": {k: copy.deepcopy(getattr(self, k)) for k in self._COUNTERS}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()` output exactly, so a resumed run continues the same trajectory."""
        self.kernel.load_state_dict(state["kernel"])
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.stance.__dict__.update(copy.deepcopy(state["stance"]))
        for k, v in state["counters"].items():
            setattr(self, k, copy.deepcopy(v))

    # ---------------------------------------------------------------- readings
    @property
    def stage(self) -> int:
        return int(self.kernel.stage[0])

    @property
    def phase(self) -> str:
        return PHASES[int(self.kernel.phase[0])]

    @property
    def guidance(self) -> str:
        return guidance(self.stage, self.phase)

    @property
    def levels(self) -> np.ndarray:
        return self.kernel.levels[0]

    @property
    def tmog(self) -> np.ndarray:
        return self.kernel.tmog[0]

    @property
    def buckets(self) -> dict[str, float]:
        return dict(zip(BUCKETS, self.kernel.buckets[0].tolist()))

    @property
    def loa(self) -> dict[str, float]:
        return dict(zip(LOA_DIMENSIONS, self.kernel.loa[0].tolist()))

    def coiling(self) -> float:
        return float(self.cg.coiling(self.levels))

    def alliance(self) -> float:
        return float(self.cg.alliance(self.levels))

    def attunement(self) -> float:
        """TMoG accuracy in [0, 1] (§9.3.14.1)."""
        return float(1.0 - np.abs(self.tmog - self.levels).mean() / 10.0)

    def taie(self) -> dict[str, Any]:
        x, y, z = self.kernel.taie[0].tolist()
        return {"x": x, "y": y, "z": z, "transformation": float(self.kernel.transformation[0]),
                "direction": self._taie_direction}

    # ---------------------------------------------------------------- the turn
    def turn(self, scores, *, session_end: bool = False, rupture: bool = False) -> TurnResult:
        """Run one judged turn (§9.3.14.2 steps 2-9); `session_end` closes the session after it.

        Raises ValueError for bad scores before anything changes. `rupture` lets a client backend
        report a rupture it voiced (the stance detector also infers ruptures from the scores).
        """
        vec = as_score_vector(scores)
        noise = self.rng.standard_normal(self.cg.n) if vec[DIM_INDEX["attunement"]] < LOW_THRESHOLD \
            else np.zeros(self.cg.n)
        alliance_before = self._alliance
        out = self.kernel.step(vec[None, :], noise[None, :])
        self.turn_in_session += 1
        self.total_turns += 1
        self._scores.append(vec)
        self._taie_direction = DIRECTION_NAMES[int(out.taie_direction[0])]
        breakdown = self._breakdown(out)
        events = self._events(out)
        alliance = self._alliance = float(out.alliance[0])
        ruptured = rupture or (vec[DIM_INDEX["attunement"]] < LOW_THRESHOLD and vec[DIM_INDEX["safety"]] < LOW_THRESHOLD) \
            or alliance_before - alliance >= self.params.rupture_alliance_drop
        stance_before = self.stance.name
        self.stance.update(self._signals(vec, out, ruptured))
        if ruptured:
            events.append({"type": "rupture"})
        if self.stance.name != stance_before:
            events.append({"type": "stance", "from": stance_before, "to": self.stance.name})
        self._phase_max = max(self._phase_max, int(self.kernel.phase[0]))
        self._reward_totals += np.array([breakdown.composite, breakdown.modifiers, breakdown.phase_transition,
                                         0.0, breakdown.taie])
        self._events_session.extend(events)
        result = TurnResult(breakdown, events, self.phase, self.stage, self.stance.name, float(out.coiling[0]),
                            alliance, float(out.tmog_accuracy[0]), float(out.tmog_accuracy_delta[0]),
                            float(out.phase_composite[0]), self.taie(), scores=score_dict(vec))
        if session_end:
            self._close_session(result)
        return result

    def _breakdown(self, out: BatchTurn) -> RewardBreakdown:
        fired = out.modifier_fired[0]
        terms = {m.name: m.value for m, f in zip(self._modifiers, fired) if f}
        return RewardBreakdown(
            composite=float(out.composite[0]), modifiers=float(out.modifiers[0]),
            phase_transition=float(out.phase_transition[0]), taie=float(out.taie[0]), modifier_terms=terms,
            taie_terms={"transformation": float(out.taie_transformation_reward[0]),
                        "direction": float(out.taie_direction_reward[0]),
                        "loa_events": float(out.loa_event_reward[0])})

    def _events(self, out: BatchTurn) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        move = int(out.phase_move[0])
        if move:
            new = int(self.kernel.phase[0])
            events.append({"type": "phase_forward" if move > 0 else "phase_regression",
                           "from": PHASES[new - move], "to": PHASES[new]})
        for k, dim in enumerate(LOA_DIMENSIONS):
            if out.loa_growth[0, k] > 0:
                events.append({"type": "taie_growth", "dimension": dim, "threshold": float(out.loa_growth[0, k])})
            if out.loa_regression[0, k] < 0:
                events.append({"type": "taie_regression", "dimension": dim,
                               "threshold": float(out.loa_regression[0, k])})
        return events

    def _signals(self, vec: np.ndarray, out: BatchTurn, rupture: bool):
        path = self.kernel.pathology_now[0]
        surge = float(np.maximum(out.bucket_change[0, self._surge], 0.0).sum())
        return stance_signals(float(self.levels[self._disclosure]), float(self.levels[self.cg.engagement]),
                              float(path[self._defense].mean()), float(self.kernel.buckets[0, self._distrust]),
                              surge, float(vec[DIM_INDEX["attunement"]]), rupture, self.params)

    # ---------------------------------------------------------------- session boundaries
    def _start_of_session(self) -> None:
        self.turn_in_session = 0
        self._scores: list[np.ndarray] = []
        self._events_session: list[dict[str, Any]] = []
        self._phase_max = 0
        self._reward_totals = np.zeros(5)
        self._taie_direction = "stable"
        self.stance.start_session()

    def _close_session(self, result: TurnResult) -> None:
        stage_before = self.stage
        summary = self._summary()
        move, reward, complete = self.kernel.end_session()
        move, reward = int(move[0]), float(reward[0])
        result.reward.stage_transition = reward
        if move:
            event = {"type": "stage_forward" if move > 0 else "stage_regression",
                     "from": stage_before, "to": self.stage}
            result.events.append(event)
            self._events_session.append(event)
        summary["stage_after"] = self.stage
        summary["reward_totals"]["stage_transition"] = reward
        summary["reward_totals"]["total"] += reward
        summary["event_counts"] = _count(self._events_session)
        result.session_end = True
        result.treatment_complete = bool(complete[0])
        result.session_summary = summary
        result.stage, result.phase, result.stance = self.stage, self.phase, "rapport_building"
        self.session += 1
        self._start_of_session()

    def _summary(self) -> dict[str, Any]:
        """The session summary of §9.3.14.2, plus per-dimension aggregates and reward totals."""
        scores = np.array(self._scores)
        buckets = self.kernel.buckets[0]
        worst = TMoG(self.tmog, self.params).worst_misread(self.levels, self.cg.nodes)
        totals = dict(zip(("composite", "modifiers", "phase_transition", "stage_transition", "taie"),
                          self._reward_totals.tolist()))
        totals["total"] = float(self._reward_totals.sum())
        return {
            "session": self.session,
            "turns": int(self.turn_in_session),
            "coiling": self.coiling(),
            "tmog_attunement": self.attunement(),
            "worst_misread": [{"node": n, "error": e} for n, e in worst],
            "buckets": self.buckets,
            "maladaptive_mean": float(buckets[: len(MALADAPTIVE)].mean()),
            "adaptive_mean": float(buckets[len(MALADAPTIVE):].mean()),
            "loa": self.loa,
            "taie": {**self.taie(), "transformation_pct": 100.0 * float(self.kernel.transformation[0])},
            "phase_reached": PHASES[self._phase_max],
            "phase_final": self.phase,
            "stage": self.stage,
            "total_turns": int(self.total_turns),
            "dimensions": {d: {"mean": float(scores[:, i].mean()), "min": float(scores[:, i].min()),
                               "max": float(scores[:, i].max())} for i, d in enumerate(JUDGE_DIMENSIONS)},
            "reward_totals": totals,
        }

    def blend_taie(self, estimate) -> None:
        """Hook for the full LLM TAIE mode (§9.3.4): average an external (x, y, z) estimate into the axes."""
        est = np.asarray(estimate, dtype=np.float64)
        if est.shape != (3,) or not np.isfinite(est).all():
            raise ValueError(f"a TAIE estimate needs 3 finite axes {AXES}, got {estimate!r}")
        self.kernel.blend_taie(0, est, TAIE_FULL_MODE_WEIGHT)


def _count(events: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in events:
        counts[e["type"]] = counts.get(e["type"], 0) + 1
    return counts
