"""SessionCore: one client's therapy, turn by turn, in the order of §9.3.14.2. No gymnasium here.

A batch of one of `SessionBatch`, the turn every environment shares: it validates a turn's 12 judge
scores, runs the compiled kernel, the rupture rule and the adaptive stance, and at a session boundary
assesses the stage, decays the buckets and writes the session summary of §9.3.14.2. The Gymnasium
environment wraps it; the trainer can drive it directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .buckets import BUCKETS
from .dimensions import as_score_vector, score_dict
from .graph import PHASES, ClientGraph
from .guidance import guidance
from .kernel import DIRECTION_NAMES, CompiledGraph
from .loa import LOA_DIMENSIONS
from .params import Params
from .reward import RewardBreakdown
from .profiles import DrawnClients
from .session_batch import BatchStep, SessionBatch
from .state import InitialBatch, InitialState, sample_initial_state
from .taie import AXES
from .tmog import accuracy

TAIE_FULL_MODE_WEIGHT = 0.5  # an LLM assessment and the running estimate count equally
_FLAG = (np.array([False]), np.array([True]))   # a client's voiced rupture as the batch reads it (never written)
_ROW = np.zeros(1, dtype=np.int64)   # the batch's one row, where a new client goes (never written)


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
    step: BatchStep | None = field(default=None, repr=False)   # the batch-of-one step behind this result


class SessionCore:
    """A client in treatment: the full TBN state plus the turn and session bookkeeping (a batch of one).

    `episode`, `max_turns` and `max_sessions` bound an episode as `SessionBatch` does; without
    `max_turns` the caller closes each session (`turn(..., session_end=True)`).
    """

    def __init__(self, init: InitialState | InitialBatch | DrawnClients, params: Params | None = None, *,
                 seed: int | None = None, signal_seed: int | None = None,
                 graph: ClientGraph | None = None, compiled: CompiledGraph | None = None, episode: str = "treatment",
                 max_turns: int | None = None, max_sessions: int | None = None) -> None:
        self.params = params or Params()
        self.batch = SessionBatch(1, self.params, graph, compiled, episode=episode, max_turns=max_turns,
                                  max_sessions=max_sessions)
        self.kernel, self.cg, self.stance = self.batch.kernel, self.batch.cg, self.batch.stances
        self._profile = np.array([""], dtype=object)   # the profile's name as the batch's info reads it
        self.restart(init, seed, signal_seed)

    def restart(self, init: InitialState | InitialBatch | DrawnClients, seed: int | None = None,
                signal_seed: int | None = None) -> None:
        """Begin treatment with a new client, reusing the compiled tables (an env reset).

        `seed` seeds the TMoG misreadings, `signal_seed` the signals the client shows (default: from `seed`).
        """
        if signal_seed is None and seed is not None:
            signal_seed = int(np.random.default_rng([seed, 1]).integers(2**63))
        self.batch.load_rows(_ROW, init if isinstance(init, (InitialBatch, DrawnClients)) else [init], [seed],
                             [signal_seed])

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
    def state_dict(self) -> dict[str, Any]:
        """Everything that changes turn to turn, as picklable values (for a trainer's checkpoint)."""
        return self.batch.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()` output exactly, so a resumed run continues the same trajectory."""
        self.batch.load_state_dict(state)

    # ---------------------------------------------------------------- readings
    @property
    def rng(self) -> np.random.Generator:
        """The generator of the TMoG misreading draws."""
        return self.batch.noise_rng(0)

    @property
    def session(self) -> int:
        return int(self.batch.session[0])

    @property
    def turn_in_session(self) -> int:
        return int(self.batch.turn[0])

    @property
    def rupture_open(self) -> bool:
        return bool(self.batch.rupture[0])

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
        return float(accuracy(self.tmog, self.levels))

    def taie(self) -> dict[str, Any]:
        x, y, z = self.kernel.taie[0].tolist()
        return {"x": x, "y": y, "z": z, "transformation": float(self.kernel.transformation[0]),
                "direction": DIRECTION_NAMES[int(self.batch.taie_direction[0])]}

    def info(self, privileged: bool, step: BatchStep | None = None, profile: str = "",
             numeric: bool = False) -> dict[str, Any]:
        """The env's `info` for this client: row 0 of the batch's vector-form info."""
        profiles = self._profile
        profiles[0] = profile
        return self.batch.info(profiles, privileged, step, row=0, numeric=numeric)

    # ---------------------------------------------------------------- the turn
    def turn(self, scores, *, session_end: bool | None = None, rupture: bool = False) -> TurnResult:
        """Run one judged turn (§9.3.14.2 steps 2-9); `session_end` closes the session after it.

        Raises ValueError for bad scores before anything changes. `rupture` lets a client backend
        report a rupture it voiced (the stance detector also infers ruptures from the scores).
        `session_end=None` closes the session after `max_turns` turns.
        """
        return self.result(self.step(scores, session_end=session_end, rupture=rupture))

    def step(self, scores, *, session_end: bool | None = None, rupture: bool = False, reuse: bool = False) -> BatchStep:
        """`turn` as the batch records it, without the TurnResult (the environment's lean path); `reuse` as
        `SessionBatch.step`'s."""
        vec = as_score_vector(scores)
        if session_end is None and self.batch.max_turns is None:
            session_end = False
        return self.batch.step(vec[None, :], client_rupture=_FLAG[bool(rupture)],
                               session_end=None if session_end is None else np.array([bool(session_end)]), reuse=reuse)

    def result(self, step: BatchStep) -> TurnResult:
        """The TurnResult of the step just taken: its terms and events, and the client's readings now."""
        out = step.turn
        fired = out.modifier_fired[0]
        breakdown = RewardBreakdown(
            composite=float(out.composite[0]), modifiers=float(out.modifiers[0]),
            phase_transition=float(out.phase_transition[0]), stage_transition=float(step.stage_reward[0]),
            taie=float(out.taie[0]),
            modifier_terms={name: value for (name, value), f in zip(self.batch.modifiers, fired) if f},
            taie_terms={"transformation": float(out.taie_transformation_reward[0]),
                        "direction": float(out.taie_direction_reward[0]),
                        "loa_events": float(out.loa_event_reward[0])})
        taie = self.taie()
        taie["direction"] = DIRECTION_NAMES[int(out.taie_direction[0])]
        result = TurnResult(breakdown, step.events(0), self.phase, self.stage, self.stance.name,
                            float(out.coiling[0]), float(out.alliance[0]), float(out.tmog_accuracy[0]),
                            float(out.tmog_accuracy_delta[0]), float(out.phase_composite[0]), taie,
                            scores=score_dict(step.scores[0]), step=step)
        if step.session_end[0]:
            result.session_end = True
            result.treatment_complete = bool(step.complete[0])
            result.session_summary = step.summary_of(0)
        return result

    def blend_taie(self, estimate) -> None:
        """Hook for the full LLM TAIE mode (§9.3.4): average an external (x, y, z) estimate into the axes."""
        est = np.asarray(estimate, dtype=np.float64)
        if est.shape != (3,) or not np.isfinite(est).all():
            raise ValueError(f"a TAIE estimate needs 3 finite axes {AXES}, got {estimate!r}")
        self.kernel.blend_taie(0, est, TAIE_FULL_MODE_WEIGHT)
