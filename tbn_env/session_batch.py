"""SessionBatch: the one definition of a therapy turn for any number of clients (§9.3.14.2).

The compiled kernel moves the client's state; around it this layer runs what both environments
share: the TMoG misreading draw, the rupture rule, the adaptive stance (§9.3.8), the open-rupture
flag, session and episode ends, the per-session accumulators behind the session summary, the
observation and the `info` of a step. `TherapyEnv` is a batch of one (it reads row 0 of the same
arrays); `TherapyVectorEnv` is a batch of N. Info is built in gymnasium's vector form (a dict of
arrays, each key with a `_key` mask) and `unbatch` reads one row of it, so the single env's `info`
is by construction a row of the vector env's.
"""
from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .compiled_pack import Pack, pack
from .compiled_state import start_clients
from .compiled_session import admit_drawn, session_close, session_turn
from .compiled_turn import OUT_COLUMNS
from .buckets import BUCKET_INDEX, BUCKETS, MALADAPTIVE
from .dimensions import DIM_INDEX, JUDGE_DIMENSIONS
from .graph import PHASES, ClientGraph
from .guidance import guidance
from .kernel import DIRECTION_NAMES, BatchKernel, BatchTurn, CompiledGraph, as_run, run_rows
from .loa import LOA_DIMENSIONS
from .params import LOW_THRESHOLD, Params
from .reward import stage_modifiers
from .stance import DEFENSE_DOMAIN, OVERWHELM_BUCKETS, STANCES, StanceDetector
from .signals import Signals
from .spaces import item_of, observe_batch
from .profiles import DrawnClients
from .state import InitialBatch, InitialState
from .streams import Streams, seed_rows
from .tmog import accuracy, worst_misreads

EPISODES = ("session", "treatment")
EVENT_TYPES = ("phase_forward", "phase_regression", "taie_growth", "taie_regression", "rupture", "stance",
               "stage_forward", "stage_regression")
REWARD_PARTS = ("composite", "modifiers", "phase_transition", "stage_transition", "taie")
#: Turns of TMoG misreading draws a client's generator hands out at once: one call per eight misattuned turns
#: instead of one per turn, for 9 KB per client (a block is the same numbers the turns would draw one by one).
NOISE_BLOCK = 8
_PHASE_NAMES = np.array(PHASES, dtype=object)
_STANCE_NAMES = np.array(STANCES, dtype=object)
_DIRECTIONS = np.array([DIRECTION_NAMES[d] for d in (-1, 0, 1)], dtype=object)   # indexed by direction + 1
_AT = {name: j for j, name in enumerate(OUT_COLUMNS)}   # the turn's outputs by column
#: the turn's outputs an info reads (by their columns): the hidden readings, then the reward parts and terms
_READINGS = operator.itemgetter(*(_AT[c] for c in ("coiling", "alliance", "tmog_accuracy")))
_REWARDS = operator.itemgetter(*(_AT[c] for c in ("composite", "modifiers", "phase_transition", "taie",
                                                  "taie_transformation_reward", "taie_direction_reward",
                                                  "loa_event_reward")))
_GUIDANCE = np.array([[guidance(s, p) if s else None for p in PHASES] for s in range(5)], dtype=object)  # [stage, phase]


@dataclass
class BatchStep:
    """What one batched turn produced, before the environment's autoreset."""

    turn: BatchTurn
    scores: np.ndarray           # [B, 12] the validated scores
    ruptured: np.ndarray         # a rupture this turn (scores, alliance drop or the client's voice)
    stance_before: np.ndarray    # the stance the turn was taken in
    stance_after: np.ndarray     # the stance after the turn's update (before any session restart)
    session_end: np.ndarray
    phase_after: np.ndarray      # the phase the turn reached (before any session restart)
    stage_before: np.ndarray
    stage_move: np.ndarray
    stage_reward: np.ndarray
    complete: np.ndarray         # treatment complete (a stage-4 session reached integration)
    terminated: np.ndarray
    truncated: np.ndarray
    happened: np.ndarray         # the row had an event this turn (any of EVENT_TYPES)
    loa_crossed: np.ndarray      # the row crossed an LOA threshold this turn
    reward: np.ndarray           # the parts summed in REWARD_PARTS order, as RewardBreakdown.total sums them
    closed: ClosedSessions | None = None   # what the sessions that closed are summarised from

    def copy(self) -> BatchStep:
        """The step with arrays of its own (the scores and the closed sessions' record are shared: neither is
        written after the step)."""
        t = self.turn
        turn = BatchTurn(t.table.copy(), t.modifier_fired.copy(), t.loa_growth.copy(), t.loa_regression.copy(),
                         t.bucket_change.copy())
        return BatchStep(turn, self.scores, *(getattr(self, f).copy() for f in _COPIED), closed=self.closed)

    def summary(self, privileged: bool = True) -> dict[str, Any] | None:
        """The closed sessions' summaries in vector form (mask: session_end); None if no session closed."""
        if self.closed is None:
            return None
        rows = self.session_end.nonzero()[0]
        return _scatter(self.closed.summary(_VECTOR, privileged), rows, len(self.session_end))

    def summary_of(self, i: int, privileged: bool = True) -> dict[str, Any]:
        """Row i's summary of the session it closed, as plain Python values."""
        j = int(np.count_nonzero(self.session_end[:i])) if i else 0   # its place among the closed rows
        return self.closed.summary(row_form(j), privileged)

    @property
    def parts(self) -> dict[str, np.ndarray]:
        t = self.turn
        return {"composite": t.composite, "modifiers": t.modifiers, "phase_transition": t.phase_transition,
                "stage_transition": self.stage_reward, "taie": t.taie}

    @property
    def done(self) -> np.ndarray:
        return self.terminated | self.truncated

    def events(self, i: int) -> list[dict[str, Any]]:
        """Row i's events in the order they happened: phase, LOA thresholds, rupture, stance, stage."""
        t, events = self.turn, []
        if not self.happened.item(i):
            return events
        move = t.phase_move.item(i)
        if move:
            to = self.phase_after.item(i)
            events.append({"type": "phase_forward" if move > 0 else "phase_regression",
                           "from": PHASES[to - move], "to": PHASES[to]})
        if self.loa_crossed.item(i):
            for dim, growth, regression in zip(LOA_DIMENSIONS, t.loa_growth[i].tolist(), t.loa_regression[i].tolist()):
                if growth > 0:
                    events.append({"type": "taie_growth", "dimension": dim, "threshold": growth})
                if regression < 0:
                    events.append({"type": "taie_regression", "dimension": dim, "threshold": regression})
        if self.ruptured.item(i):
            events.append({"type": "rupture"})
        before, after = self.stance_before.item(i), self.stance_after.item(i)
        if after != before:
            events.append({"type": "stance", "from": STANCES[before], "to": STANCES[after]})
        stage_move = self.stage_move.item(i)
        if stage_move:
            stage = self.stage_before.item(i)
            events.append({"type": "stage_forward" if stage_move > 0 else "stage_regression",
                           "from": stage, "to": stage + stage_move})
        return events


#: BatchStep's arrays after the scores, in field order: the session's end is the caller's or the batch's
_COPIED = ("ruptured", "stance_before", "stance_after", "session_end", "phase_after", "stage_before", "stage_move",
           "stage_reward", "complete", "terminated", "truncated", "happened", "loa_crossed", "reward")
#: those the compiled turn writes, in the order of its `written` pack (after the kernel's outputs)
_WRITTEN = tuple(f for f in _COPIED if f != "session_end")


@dataclass
class ClosedSessions:
    """The closing sessions' state as their summaries read it (§9.3.14.2): copies, one row per closed session."""

    session: np.ndarray
    turns: np.ndarray
    levels: np.ndarray
    tmog: np.ndarray
    buckets: np.ndarray
    loa: np.ndarray
    taie: np.ndarray
    transformation: np.ndarray
    taie_direction: np.ndarray
    phase_max: np.ndarray
    phase: np.ndarray
    stage: np.ndarray            # the stage the session was held in
    total_turns: np.ndarray
    score_sum: np.ndarray
    score_min: np.ndarray
    score_max: np.ndarray
    cg: CompiledGraph            # reads the coiling of `levels` (privileged: only a privileged summary asks)
    worst_k: int
    # after the stage assessment
    stage_after: np.ndarray | None = None
    reward_totals: np.ndarray | None = None
    event_counts: np.ndarray | None = None

    def summary(self, form: _Vector | _Row, privileged: bool) -> dict[str, Any]:
        """The summaries: per-row arrays (`_Vector`) or one row's Python values (`_Row`); the keys read from the
        hidden state (coiling, TMoG attunement and worst misreads, LOA, TAIE) only if `privileged`."""
        levels, buckets, mal = self.levels, self.buckets, len(MALADAPTIVE)
        tree: dict[str, Any] = {"session": form.one(self.session), "turns": form.one(self.turns)}
        if privileged:
            tree.update(coiling=form.one(self.cg.coiling(levels)),
                        tmog_attunement=form.one(accuracy(self.tmog, levels)),
                        worst_misread=form.misreads(self.tmog, levels, self.cg.nodes, self.worst_k))
        # both reservoirs' means in one reduction: each row's sum as `mean(axis=1)` takes it, over the same values
        maladaptive, adaptive = form.each(np.add.reduce(buckets.reshape(len(buckets), 2, mal), axis=2) / mal)
        tree.update(buckets=form.columns(BUCKETS, buckets), maladaptive_mean=maladaptive, adaptive_mean=adaptive)
        if privileged:
            tree["loa"] = form.columns(LOA_DIMENSIONS, self.loa)
            tree["taie"] = {**form.columns("xyz", self.taie), "transformation": form.one(self.transformation),
                            "direction": form.pick(_DIRECTIONS, self.taie_direction + 1),
                            "transformation_pct": form.one(100.0 * self.transformation)}
        means = self.score_sum / self.turns[:, None]
        tree.update(phase_reached=form.pick(_PHASE_NAMES, self.phase_max),
                    phase_final=form.pick(_PHASE_NAMES, self.phase), stage=form.one(self.stage),
                    total_turns=form.one(self.total_turns),
                    dimensions={d: {"mean": mean, "min": low, "max": high} for d, mean, low, high in
                                zip(JUDGE_DIMENSIONS, form.each(means), form.each(self.score_min),
                                    form.each(self.score_max))},
                    stage_after=form.one(self.stage_after),
                    reward_totals={**form.columns(REWARD_PARTS, self.reward_totals),
                                   "total": form.one(self.reward_totals.sum(axis=1))},
                    event_counts=form.counts(EVENT_TYPES, self.event_counts))
        return tree


class SessionBatch:
    """`batch` clients in treatment: the full TBN state and the turn, session and episode bookkeeping.

    `episode="session"` ends an episode with its session; `"treatment"` runs sessions until a
    stage-4 session reaches integration (terminated) or `max_sessions` have been held (truncated).
    A session closes after `max_turns` turns, or where the caller says (`step(session_end=...)`).
    """

    def __init__(self, batch: int, params: Params | None = None, graph: ClientGraph | None = None,
                 compiled: CompiledGraph | None = None, *, episode: str = "treatment", max_turns: int | None = None,
                 max_sessions: int | None = None) -> None:
        if episode not in EPISODES:
            raise ValueError(f"episode must be one of {EPISODES}, got {episode!r}")
        self.params = params or Params()
        self.kernel = k = BatchKernel(batch, self.params, graph, compiled)
        self.batch, self.cg, self.episode = batch, k.cg, episode
        self.max_turns, self.max_sessions = max_turns, max_sessions
        self._defense = np.flatnonzero([k.graph.graph.nodes[n]["domain"] == DEFENSE_DOMAIN for n in self.cg.nodes])
        self._disclosure = self.cg.nodes.index("self_disclosure")
        self._surge = np.array([BUCKET_INDEX[b] for b in OVERWHELM_BUCKETS])
        self._distrust = BUCKET_INDEX["distrust"]
        self.modifiers = [(m.name, m.value) for m in stage_modifiers(self.params)]
        self.stances = StanceDetector(self.params, batch)
        self.signals = Signals(batch)
        # per client, the TMoG misreading draws: a generator handing out NOISE_BLOCK turns of draws at a time
        self._noise = Streams(batch)
        self._noise_block = np.zeros((batch, NOISE_BLOCK, self.cg.n))
        self._noise_used = np.full(batch, NOISE_BLOCK, dtype=np.int64)   # turns of the block already spent
        # working memory of the compiled bookkeeping (the stance detector's signals) and of the rows whose
        # misreading block is to be refilled
        self._scratch = tuple(np.empty(batch) for _ in range(5))
        self._scratch_rows = np.empty(batch, dtype=np.int64)
        self.rupture = np.zeros(batch, dtype=bool)        # a rupture is open (until a turn repairs it)
        self.turn = np.zeros(batch, dtype=np.int64)       # therapist turns so far this session
        self.session = np.ones(batch, dtype=np.int64)     # the session's number in the episode
        self.total_turns = np.zeros(batch, dtype=np.int64)
        self.alliance = np.zeros(batch)                   # after the last turn: a rupture is a drop from it
        self.taie_direction = np.zeros(batch, dtype=np.int64)
        # per session, for its summary (§9.3.14.2)
        d = len(JUDGE_DIMENSIONS)
        self.score_sum, self.score_min, self.score_max = np.zeros((batch, d)), np.zeros((batch, d)), \
            np.zeros((batch, d))
        self.phase_max = np.zeros(batch, dtype=np.int64)
        self.reward_totals = np.zeros((batch, len(REWARD_PARTS)))
        self.event_counts = np.zeros((batch, len(EVENT_TYPES)), dtype=np.int64)
        p, st = self.params, self.stances
        # the bookkeeping's state (one row per client, written in place) and constants, bound once with the
        # kernel's in a pack per run of rows: a turn is one compiled call (`session_turn`)
        rows = (self.alliance, self.taie_direction, k.levels, k.buckets, k.phase, st.stance, st.turn,
                st.turns_in_stance, st.arc_step, st.attunement, st.resistance, self.rupture, self.turn, self.total_turns,
                self.score_sum, self.score_min, self.score_max, self.phase_max, self.reward_totals, self.event_counts,
                *self._scratch)
        constants = (DIM_INDEX["attunement"], DIM_INDEX["safety"], DIM_INDEX["repair"], LOW_THRESHOLD,
                     p.rupture_alliance_drop, self._disclosure, self.cg.engagement, self._defense, self._distrust,
                     self._surge, p.stance_overwhelm_surge, p.stance_disclosure_min, p.stance_engagement_min,
                     p.stance_defensiveness_max, p.stance_min_dwell, p.stance_arc_steps, p.stance_arc_resistance_max,
                     p.stance_arc_overwhelm_max)
        # the step's record, written in place by every turn: `step` hands out a copy unless its caller reads it
        # before the next turn (`reuse=True`); the turn's last output, the pathology, is read inside the call alone
        outputs = k.outputs()
        self._session_end, self._no_rupture = np.empty(batch, np.bool_), np.zeros(batch, np.bool_)
        self._step = BatchStep(k.turn_result(outputs), None,
                               np.empty(batch, np.bool_), np.empty_like(st.stance), np.empty_like(st.stance),
                               self._session_end, np.empty_like(k.phase), np.empty_like(k.stage),
                               np.empty(batch, np.int64), np.empty(batch), *np.empty((3, batch), np.bool_),
                               np.empty(batch, np.bool_), np.empty(batch, np.bool_), np.empty(batch))
        written = (*outputs, *(getattr(self._step, f) for f in _WRITTEN), k.stage)
        self._packs = []
        for run, state in zip(k.runs, k.packs):
            *shown, fear = self.signals.arguments(k.phase, k.buckets, run)
            parts = (*state, pack(tuple(a[run] for a in rows), constants), pack(tuple(shown), (fear,)),
                     pack((self._noise_block[run], self._noise_used[run], self._scratch_rows[run]),
                          (DIM_INDEX["attunement"], LOW_THRESHOLD, NOISE_BLOCK)),
                     pack(tuple(a[run] for a in written), ()))
            self._packs.append((pack(parts, ()),))   # one argument: a call unboxes each pack (about 0.4 us)
        # what a session's start writes (`compiled_state.start_sessions`)
        self._sessions = (st.stance, st.turn, st.turns_in_stance, st.arc_step, self.turn, self.taie_direction,
                          self.score_sum, self.score_min, self.score_max, self.phase_max, self.reward_totals,
                          self.event_counts)
        # a close's arguments (`compiled_session.session_close`), over the whole batch: the rows closing are any
        step = self._step
        books = (step.turn.table, *(getattr(step, f) for f in ("stage_move", "stage_reward", "complete", "terminated",
                                                               "truncated", "happened", "reward")),
                 self.session, self.rupture, self.reward_totals, self.event_counts)
        *shown, fear = self.signals.arguments(k.phase, k.buckets)
        self._boundary = pack((k.closing, k.opening, pack(books, (episode == "session", max_sessions or 0)),
                               pack(self._sessions, ()), pack((step.ruptured, *shown), (fear,))), ())
        # a new client's arguments (`compiled_state.start_clients`, `signals.express` with no rupture), after the rows
        self._starting = ((k.levels, self.alliance, self.rupture, self.session, self.total_turns, *self._sessions),
                          (self.cg.path_slope, self.cg.path_offset, self.cg.alliance_weight, self.cg.alliance_sum))
        self._arriving = (pack(*self._starting), pack((self._no_rupture, *shown), (fear,)))
        self._admissions: dict[int, Pack] = {}   # `admit_drawn`'s packs by stage

    # ------------------------------------------------------------------ clients in and out
    def load_rows(self, rows: np.ndarray, inits: list[InitialState] | InitialBatch | DrawnClients, seeds: list[int],
                  signal_seeds: list[int]) -> None:
        """Start new clients in `rows` at session 1 (every state checked before anything changes); `seeds` seed each
        row's TMoG misreading draws and `signal_seeds` the signals it shows (`tbn_env.signals`)."""
        rows = np.asarray(rows, dtype=np.int64)
        k = self.kernel
        init = k.checked(rows, inits)
        listed = rows.tolist()
        seed_rows(listed, ((self._noise, seeds), (self.signals.streams, signal_seeds)))
        self._refill(listed)   # the first blocks now: the turns read the numbers they would draw later
        self.signals.draw_blocks(listed)
        if isinstance(init, DrawnClients):   # one compiled call (fresh blocks: never spent, but if so, refill)
            if admit_drawn(rows, *init.draws(self.cg.n), self._admission(init.stage)):
                self.signals.express(rows, k.phase, k.buckets, self._no_rupture)
            return
        k.enter(rows, init)
        state, tables = self._starting
        start_clients(rows, *state, *tables)
        self.signals.express(rows, k.phase, k.buckets, self._no_rupture)   # fresh blocks

    def _admission(self, stage: int) -> Pack:
        """The pack of `compiled_session.admit_drawn` for clients drawn at `stage` (made once per stage)."""
        if stage not in self._admissions:
            self._admissions[stage] = pack((self.kernel.entry(stage), *self._arriving), ())
        return self._admissions[stage]

    def noise_rng(self, i: int) -> np.random.Generator:
        """Client i's generator of TMoG misreadings."""
        return self._noise[i]

    def _refill(self, rows: list[int]) -> None:
        """New blocks of TMoG misreading draws (§9.3.14.1) for `rows`, whose blocks are spent: the next NOISE_BLOCK
        turns' draws from each client's generator."""
        for i in rows:
            self.noise_rng(i).standard_normal(out=self._noise_block[i])
            self._noise_used[i] = 0

    _STATE = ("rupture", "turn", "session", "total_turns", "alliance", "taie_direction", "score_sum", "score_min",
              "score_max", "phase_max", "reward_totals", "event_counts", "_noise_block", "_noise_used")

    def state_dict(self) -> dict[str, Any]:
        """Everything that changes turn to turn, as copies (for checkpoints and rollbacks)."""
        return {"kernel": self.kernel.state_dict(),
                "stance": {k: np.copy(v) for k, v in vars(self.stances).items() if isinstance(v, np.ndarray)},
                "rngs": self._noise.states(),
                "signals": self.signals.state_dict(),
                **{k: getattr(self, k).copy() for k in self._STATE}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()` output exactly, so a resumed run continues the same trajectory."""
        self.kernel.load_state_dict(state["kernel"])
        for k, v in state["stance"].items():
            getattr(self.stances, k)[...] = v   # in place, as every state array (bound to the compiled calls)
        self.signals.load_state_dict(state["signals"])
        for i, saved in enumerate(state["rngs"]):
            if isinstance(saved, dict):   # a generator's state (older checkpoints may hold a seed instead)
                self._noise.set_state(i, saved)
            elif saved is not None:
                self._noise.seed([i], [saved])
        for k in self._STATE:
            getattr(self, k)[...] = state[k]

    # ------------------------------------------------------------------ the turn
    def step(self, scores: np.ndarray, *, client_rupture: np.ndarray | None = None,
             session_end: np.ndarray | None = None, reuse: bool = False) -> BatchStep:
        """One turn of validated scores [B, 12] for every client (§9.3.14.2 steps 2-9).

        `client_rupture` marks ruptures a client backend voiced; `session_end` closes sessions
        early (default: after `max_turns` turns). The step's arrays are its own; with `reuse=True` they are the
        batch's record, which the next turn writes over (for callers done with a step before the next: the envs).
        """
        k = self.kernel
        if session_end is None and self.max_turns is None:
            raise ValueError("this SessionBatch has no max_turns: say where sessions end (session_end=...)")
        max_turns = 0 if session_end is not None else self.max_turns   # 0: the caller's session_end
        session_end = self._session_end if session_end is None else np.asarray(session_end, dtype=np.bool_)
        client_rupture = self._no_rupture if client_rupture is None else np.asarray(client_rupture, np.bool_)
        per_row = (np.ascontiguousarray(scores, dtype=np.float64), client_rupture, session_end)
        results = run_rows(session_turn, k.runs, self._packs, (max_turns,), per_row)
        if min(results)[0] < 0:   # runs with rows to read past their spent misreading draws: refill, then their turn
            refilled = [r for r, (closing, _) in enumerate(results) if closing < 0]
            for r in refilled:
                run = k.runs[r]
                self._refill((self._scratch_rows[run][:-results[r][0]] + run.start).tolist())
            again = run_rows(session_turn, [k.runs[r] for r in refilled], [self._packs[r] for r in refilled],
                             (max_turns,), per_row)
            for r, result in zip(refilled, again):
                results[r] = result
        ends = 0
        for run, (closing, spent) in zip(k.runs, results):
            ends += closing
            if spent:   # no signals were drawn in this run: draw its going-on rows' after refilling
                self.signals.express(np.flatnonzero(~session_end[run]) + run.start, k.phase, k.buckets,
                                     self._step.ruptured)
        step = self._step
        step.scores, step.session_end, step.closed = scores, session_end, None
        if ends:
            self._close_sessions(step)
        return step if reuse else step.copy()

    def _close_sessions(self, step: BatchStep) -> None:
        """Summaries, the stage assessment and decay (§9.3.5.3), then the episode's end or the next session (`step`
        is the batch's record, which `session_close` has bound)."""
        rows = step.session_end.nonzero()[0]
        closed = self._closing(rows, as_run(rows))   # for the summaries: copies, before the rows move on
        n = len(rows)
        closed.reward_totals, closed.event_counts, closed.stage_after = np.empty((n, len(REWARD_PARTS))), \
            np.empty((n, len(EVENT_TYPES)), dtype=np.int64), np.empty(n, dtype=np.int64)
        if session_close(rows, self._boundary, closed.reward_totals, closed.event_counts, closed.stage_after):
            # a spent block: no signals were drawn; refill, then draw them (in the next session)
            self.signals.express(rows, self.kernel.phase, self.kernel.buckets, step.ruptured)
        step.closed = closed

    def _closing(self, rows: np.ndarray, at: np.ndarray | slice) -> ClosedSessions:
        """Copies of what the closing sessions' summaries read before the stage assessment moves the rows on (`at`:
        `rows` as `as_run` gives them, a slice's copy being cheaper than a gather)."""
        k = self.kernel
        copy = (lambda values: values[at].copy()) if isinstance(at, slice) else operator.itemgetter(rows)
        return ClosedSessions(*map(copy, (self.session, self.turn, k.levels, k.tmog, k.buckets, k.loa, k.taie,
                                          k.transformation, self.taie_direction, self.phase_max, k.phase, k.stage,
                                          self.total_turns, self.score_sum, self.score_min, self.score_max)),
                              self.cg, self.params.tmog_worst_k)

    # ------------------------------------------------------------------ readings
    def info(self, profiles: np.ndarray, privileged: bool, step: BatchStep | None = None,
             row: int | None = None, numeric: bool = False) -> dict[str, Any]:
        """The step's `info` in gymnasium's vector form; `step=None` for a reset.

        With `row=i`, row i alone as one environment's info: what `unbatch(info(...), i)` gives, built directly
        from the same key list (`_info_tree` in row form).
        `numeric=True` keeps numbers only (phase and stance as indices; no text, events or session summary),
        for libraries that turn every info key into a tensor (torchrl).
        """
        form = _VECTOR if row is None else row_form(row)
        tree = self._numeric_tree(privileged, step, form) if numeric else \
            self._info_tree(profiles, privileged, step, form)
        summarised = step is not None and step.closed is not None and not numeric
        if row is not None:
            if step is not None and step.session_end.item(row) and not numeric:
                tree["treatment_complete"] = step.complete.item(row)
                if summarised:
                    tree["session_summary"] = step.summary_of(row, privileged)
            return tree
        info = vector_form(tree, np.ones(self.batch, dtype=bool))
        if summarised:
            info.update(session_summary=step.summary(privileged), _session_summary=step.session_end.copy())
        if step is not None and step.closed is not None and not numeric:
            info.update(treatment_complete=step.complete.copy(), _treatment_complete=step.session_end.copy())
        return info

    def _info_tree(self, profiles: np.ndarray, privileged: bool, step: BatchStep | None,
                   form: _Vector | _Row) -> dict[str, Any]:
        """The info's keys, each once; `form` gives the values as per-row arrays (a `(values, mask)` leaf where
        only some rows have the key) or as one row's Python values."""
        k = self.kernel
        tree: dict[str, Any] = {
            "phase": form.pick(_PHASE_NAMES, k.phase), "stage": form.one(k.stage),
            "stance": form.pick(_STANCE_NAMES, self.stances.stance),
            "guidance": form.pick(_GUIDANCE, k.stage, k.phase), "session": form.one(self.session),
            "turn": form.one(self.turn), "profile": form.one(profiles), "events": form.events(step, self.batch),
        }
        # the turn's outputs, read at once (for one row, one list), by their column (`_AT`)
        out = None if step is None else form.each(step.turn.table)
        if privileged:   # the hidden state's readings (the env adds the client's thought in text mode)
            if out is None:
                (coiling, alliance, attunement), direction = map(form.one, k.readings()), self.taie_direction
            else:
                coiling, alliance, attunement = _READINGS(out)
                direction = step.turn.taie_direction
            tree.update(coiling=coiling, alliance=alliance, attunement=attunement,
                        taie={**form.columns("xyz", k.taie), "transformation": form.one(k.transformation),
                              "direction": form.pick(_DIRECTIONS, direction + 1)})
        if out is not None:
            composite, modifiers, phase, taie, transformation, direction, loa_events = _REWARDS(out)
            tree.update(scores=form.columns(JUDGE_DIMENSIONS, step.scores), reward_breakdown={
                "composite": composite, "modifiers": modifiers, "phase_transition": phase,
                "stage_transition": form.one(step.stage_reward), "taie": taie,
                "total": form.one(step.reward),   # the parts in REWARD_PARTS order, then the sum
                "terms": {"modifiers": form.some(self.modifiers, step.turn.modifier_fired),
                          "taie": {"transformation": transformation, "direction": direction,
                                   "loa_events": loa_events}}})
        return tree

    def _numeric_tree(self, privileged: bool, step: BatchStep | None, form: _Vector | _Row) -> dict[str, Any]:
        """What the observation does not hold, as flat numbers with the same keys at a reset and a step (a
        reset's turn values are 0): torchrl writes info keys beside the observation's."""
        b = self.batch
        tree = {"scores": form.row(np.zeros((b, len(JUDGE_DIMENSIONS))) if step is None else step.scores)}
        for key, value in ({} if step is None else step.parts).items():
            tree[f"reward_{key}"] = form.one(value)
        if step is None:
            tree.update({f"reward_{key}": form.one(np.zeros(b)) for key in REWARD_PARTS})
        if privileged:
            tree.update(zip(("coiling", "alliance", "attunement"), map(form.one, self.kernel.readings())))
        return tree

    def observation(self, mode: str, row: int | None = None) -> dict[str, Any]:
        """Every client's observation (with `row=i`, client i's alone); `mode="full"` adds the privileged truth."""
        return observe_batch(self.kernel, self.stances.stance, self.rupture, self.turn, self.session, mode,
                             self.signals, row)


class _Vector:
    """Info values for the whole batch: per-row arrays (copies: the info outlives the step), and
    `(values, mask)` where only some rows have a key."""

    @staticmethod
    def one(values: np.ndarray) -> np.ndarray:
        return values.copy()

    row = one

    @staticmethod
    def pick(names: np.ndarray, index: np.ndarray, column: np.ndarray | None = None) -> np.ndarray:
        """`names` by each row's index (a table of names: by its row and column indices)."""
        return names[index] if column is None else names[index, column]

    @staticmethod
    def columns(names, matrix: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(names, matrix.T.copy()))

    @staticmethod
    def some(constants: list[tuple[str, float]], present: np.ndarray) -> dict[str, tuple]:
        return {name: (np.full(len(present), value), fired) for (name, value), fired in zip(constants, present.T)}

    @staticmethod
    def each(matrix: np.ndarray) -> np.ndarray:   # the columns, copies (the info outlives the step's record)
        return matrix.T.copy()

    @staticmethod
    def misreads(estimate: np.ndarray, actual: np.ndarray, nodes: tuple[str, ...], k: int) -> np.ndarray:
        return np.fromiter((_misread(misread) for misread in worst_misreads(estimate, actual, nodes, k)),
                           dtype=object, count=len(estimate))

    @staticmethod
    def counts(names, matrix: np.ndarray) -> dict[str, tuple]:
        return {name: (count, count > 0) for name, count in zip(names, matrix.T)}

    @staticmethod
    def events(step: BatchStep | None, n: int) -> np.ndarray:
        happened = [False] * n if step is None else step.happened.tolist()
        return np.fromiter((step.events(i) if h else [] for i, h in enumerate(happened)), dtype=object, count=n)


class _Row:
    """Info values for row i alone, as plain Python values (what `unbatch` reads from the vector form)."""

    def __init__(self, i: int) -> None:
        self.i = i
        self.one = item_of(i)   # values[i] as a Python value

    def row(self, values: np.ndarray) -> np.ndarray:
        return values[self.i].copy()

    def pick(self, names: np.ndarray, index: np.ndarray, column: np.ndarray | None = None):
        i = self.i
        return names.item(index.item(i)) if column is None else names.item(index.item(i), column.item(i))

    def columns(self, names, matrix: np.ndarray) -> dict[str, float]:
        return dict(zip(names, matrix[self.i].tolist()))

    def some(self, constants: list[tuple[str, float]], present: np.ndarray) -> dict[str, float]:
        return dict(itertools.compress(constants, present[self.i].tolist()))

    def each(self, matrix: np.ndarray) -> list:
        return matrix[self.i].tolist()

    def misreads(self, estimate: np.ndarray, actual: np.ndarray, nodes: tuple[str, ...], k: int) -> list[dict]:
        i = slice(self.i, self.i + 1)
        return _misread(worst_misreads(estimate[i], actual[i], nodes, k)[0])

    def counts(self, names, matrix: np.ndarray) -> dict[str, int]:
        return {name: count for name, count in zip(names, matrix[self.i].tolist()) if count > 0}

    def events(self, step: BatchStep | None, n: int) -> list[dict[str, Any]]:
        return [] if step is None else step.events(self.i)


_VECTOR = _Vector()


@lru_cache(maxsize=None)
def row_form(i: int) -> _Row:
    """The info form of row i (one per row index, made once)."""
    return _Row(i)


def _misread(misread: list[tuple[str, float]]) -> list[dict[str, Any]]:
    return [{"node": node, "error": error} for node, error in misread]


def _scatter(tree: dict[str, Any], rows: np.ndarray, n: int) -> dict[str, Any]:
    """Per-row values for `rows` spread into arrays over the whole batch, in vector form (mask: rows)."""
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True

    def spread(value):
        if isinstance(value, dict):
            return {k: spread(v) for k, v in value.items()}
        if isinstance(value, tuple):
            return tuple(spread(v) for v in value)
        full = np.full(n, None, dtype=object) if value.dtype == object else np.zeros((n, *value.shape[1:]),
                                                                                     value.dtype)
        full[rows] = value
        return full
    return vector_form(spread(tree), mask)


def vector_form(tree: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
    """A nested dict of per-row arrays with gymnasium's `_key` masks; a `(values, mask)` leaf has its own mask."""
    info: dict[str, Any] = {}
    for key, value in tree.items():
        if key.startswith("_"):
            info[key] = value
            continue
        if isinstance(value, tuple):
            value, own = value
            info[key], info[f"_{key}"] = value, own & mask
            continue
        info[key] = vector_form(value, mask) if isinstance(value, dict) else value
        info[f"_{key}"] = mask.copy()
    return info


def _item(values: np.ndarray, i: int):
    """values[i] as a plain Python value (a row of a 2-D array stays an array)."""
    return values.item(i) if values.ndim == 1 else values[i]


def unbatch(info: dict[str, Any], i: int) -> dict[str, Any]:
    """Row i of a vector-form info, as one environment's info (plain Python numbers)."""
    row: dict[str, Any] = {}
    for key, value in info.items():
        mask = info.get(f"_{key}")
        if key.startswith("_") or mask is not None and not mask[i]:
            continue
        if isinstance(value, dict):
            row[key] = unbatch(value, i)
        else:
            row[key] = _item(value, i)
    return row


def restrict(info: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """The vector-form info with only `rows` (a boolean mask) present, e.g. `final_info` of the rows that ended."""
    return {key: restrict(value, rows) if isinstance(value, dict) else value & rows if key.startswith("_") else value
            for key, value in info.items()}


def overlay(info: dict[str, Any], rows: np.ndarray, other: dict[str, Any]) -> dict[str, Any]:
    """`info` whose `rows` (indices) are replaced by those of `other`, e.g. a reset's info after an autoreset."""
    out = dict(info)
    for key in info.keys() - other.keys():
        if key.startswith("_"):
            out[key] = info[key].copy()
            out[key][rows] = False
    for key, value in other.items():
        if key.startswith("_"):
            continue
        mask = out[f"_{key}"].copy() if f"_{key}" in out else np.zeros(len(other[f"_{key}"]), dtype=bool)
        mask[rows] = other[f"_{key}"][rows]
        if isinstance(value, dict):
            out[key] = overlay(info.get(key, {}), rows, value)
        else:
            array = info[key].copy() if key in info else value.copy()
            array[rows] = value[rows]
            out[key] = array
        out[f"_{key}"] = mask
    return out
