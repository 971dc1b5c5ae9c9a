"""The batched TBN state and its tables: the reference dynamics lowered to arrays for the compiled turn.

`CompiledGraph` turns the networkx ClientGraph into arrays once (sensitivities as [12, N] matrices,
edge lists by kind). `BatchKernel` holds `[batch, ...]` state; its `step` runs §9.3.14.2 steps 2-7
and 9 for every client in one call of the numba-compiled `tbn_env.compiled_turn.turn`, and its
session boundary (stage criteria, bucket decay) is a few array operations. Its results match
`tbn_env.reference.ReferenceCore` to 1e-9.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .compiled_pack import Pack, pack
from .compiled_turn import N_OUT, OUT_COLUMNS, turn_packed
from .buckets import BUCKET_HEALTH_SIGN, BUCKETS, MALADAPTIVE, SESSION_DECAY, bucket_effect_matrices, coupling_matrix
from .dimensions import DIM_INDEX, JUDGE_DIMENSIONS
from .graph import (ALLIANCE_DOMAIN, BIPOLAR_CENTRE, DAMPENING, ENGAGEMENT_NODE, LEVEL_MAX, PHASES,
                    ClientGraph)
from .loa import LOA_DIMENSIONS, SCORE_CENTRE, loa_matrix
from .params import (ALLIANCE_SCALE_BASE, ALLIANCE_SCALE_SLOPE, LOW_THRESHOLD, PHASE_BUCKET_WEIGHT,
                     PHASE_COILING_WEIGHT, PHASE_FORWARD_REWARD, PHASE_REGRESSION_REWARD, PROTECTIVE_ALLIANCE,
                     Params)
from .phase_shift import FORWARD_THRESHOLDS, REGRESSION_THRESHOLDS
from .reward import stage_modifiers, stage_weights
from .profiles import DrawnClients, bind_settle
from .state import InitialBatch, InitialState, bind_draw
from .tmog import accuracy
from .taie import AXIS_DIMENSION, AXIS_MAX, AXIS_MIN, DEGENERATE_DISTANCE
from .compiled_state import (end_sessions, enter_drawn, enter_rows, open_sessions, pathologies, reassess_rows,
                             weighted_pathologies)

DIRECTION_NAMES = {-1: "toward_zero", 0: "stable", 1: "away_from_zero"}
#: Clients per thread below which a batch is stepped on the calling thread (a thread hand-off costs tens of
#: microseconds; 128 clients' turns take about half a millisecond).
MIN_CLIENTS_PER_THREAD = 128


@lru_cache(maxsize=1)
def _threads() -> tuple[ThreadPoolExecutor | None, int]:
    """One pool per process with a thread per core beyond the caller's (the compiled turn releases the GIL),
    and the core count."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return (ThreadPoolExecutor(cores - 1, thread_name_prefix="tbn-turn") if cores > 1 else None), cores


def row_runs(batch: int) -> list[slice]:
    """The runs of rows a batch is stepped in: one per core when the batch is large enough to gain from threads
    (each run on its own thread, the first on the caller's), else the whole batch at once."""
    if batch < 2 * MIN_CLIENTS_PER_THREAD:
        return [slice(0, batch)]
    pool, cores = _threads()
    runs = min(cores, batch // MIN_CLIENTS_PER_THREAD)
    if pool is None or runs < 2:
        return [slice(0, batch)]
    edges = np.linspace(0, batch, runs + 1).astype(int).tolist()
    return [slice(lo, hi) for lo, hi in zip(edges[:-1], edges[1:])]


def run_rows(fn, runs: list[slice], packs: list[tuple], shared: tuple, per_row: tuple) -> list:
    """`fn(*packs[r], *shared, *(a[runs[r]] for a in per_row))` for each run r of rows (the packs hold each run's
    bound arguments): the first run on the calling thread, the others on the pool (the compiled calls release the
    GIL). Returns each run's result."""
    if len(runs) == 1:
        rows = runs[0]
        whole = rows.start == 0 and rows.stop == len(per_row[0])
        return [fn(*packs[0], *shared, *(per_row if whole else (a[rows] for a in per_row)))]
    pool, _ = _threads()
    jobs = [pool.submit(fn, *pack, *shared, *(a[rows] for a in per_row)) for rows, pack in zip(runs[1:], packs[1:])]
    first = fn(*packs[0], *shared, *(a[runs[0]] for a in per_row))
    return [first, *(job.result() for job in jobs)]


def as_run(rows: np.ndarray) -> np.ndarray | slice:
    """Distinct `rows` as a slice when they are one ascending run (a single env's one row, a whole batch):
    basic indexing reads a view and writes in place, several times cheaper than a gather; else `rows`."""
    n = len(rows)
    if n and rows[-1] - rows[0] == n - 1 and (n == 1 or bool((rows[1:] > rows[:-1]).all())):
        return slice(int(rows[0]), int(rows[0]) + n)
    return rows


class CompiledGraph:
    """The ClientGraph as arrays: node properties, sensitivities and edge operators."""

    def __init__(self, graph: ClientGraph) -> None:
        g, nodes = graph.graph, graph.nodes
        self.nodes = nodes
        self.n = len(nodes)
        idx = {name: i for i, name in enumerate(nodes)}
        attr = [g.nodes[name] for name in nodes]
        direction = [a["direction"] for a in attr]
        self.is_inc = np.array([d == "increase" for d in direction])
        self.is_dec = np.array([d == "decrease" for d in direction])
        self.is_bip = np.array([d == "bipolar" for d in direction])
        self.imp_sign = np.where(self.is_dec, -1.0, 1.0)
        self.path_slope = np.where(self.is_inc, -1.0 / LEVEL_MAX, np.where(self.is_dec, 1.0 / LEVEL_MAX,
                                                                          1.0 / BIPOLAR_CENTRE))
        self.path_offset = np.where(self.is_inc, 1.0, np.where(self.is_dec, 0.0, -1.0))
        self.pole_side = np.array([1.0 if a["pole"] == "high" else -1.0 for a in attr])
        self.weight = np.array([a["weight"] for a in attr])
        alliance = np.array([a["domain"] == ALLIANCE_DOMAIN for a in attr])
        self.alliance_weight = np.where(alliance, self.weight, 0.0)
        self.weight_sum, self.alliance_sum = self.weight.sum(), self.alliance_weight.sum()   # numpy's sums
        self.bq = np.array([a["bq_by_stage"] for a in attr]).T                       # [4, N]
        self.phase_w = np.array([[a["phase_weights"][ph] for ph in PHASES] for a in attr]).T  # [4, N]
        self.high = np.array([[a["judge_high"][d] for d in JUDGE_DIMENSIONS] for a in attr]).T * self.imp_sign
        self.low = np.array([[a["judge_low"][d] for d in JUDGE_DIMENSIONS] for a in attr]).T * self.imp_sign
        self.engagement = idx[ENGAGEMENT_NODE]
        self.coupling = coupling_matrix(nodes, graph.params)                         # [16, N]

        # edge lists by kind: linear (reinforcing, paired), conditional, compensatory, suppressive
        linear, protective, paradoxical, gated, prereq, comp, supp = [], [], [], [], [], [], []
        for src, dst, e in g.edges(data=True):
            s, t, c = idx[src], idx[dst], DAMPENING * e["k"]
            typ = e["type"]
            if typ in ("reinforcing", "paired"):
                linear.append((s, t, c))
            elif typ == "protective":
                protective.append((s, t, c))
            elif typ == "paradoxical":
                paradoxical.append((s, t, c))
            elif typ == "gated":
                gated.append((s, t, c, e["gates"]))
            elif typ == "prerequisite":
                prereq.append((s, t, c, e["theta"]))
            elif typ == "compensatory":
                comp.append((s, t, c))
            elif typ == "suppressive":
                supp.append((s, t, e["k"]))
            else:
                raise ValueError(f"edge type {typ!r} has no rule in the compiled kernel (see docs/extending.md)")
        self.lin_src, self.lin_dst, self.lin_coef = self._edge_list(linear)
        # conditional edges share one gather/scatter: protective | paradoxical | gated | prerequisite.
        # Their sign or gain depends only on (stage, alliance > 0.5), except the prerequisite's
        # threshold, so the factors of the first three kinds come from a [4, 2, E] table.
        cond = protective + paradoxical + [e[:3] for e in gated] + [e[:3] for e in prereq]
        self.cond_src, self.cond_dst, self.cond_coef = self._edge_list(cond)
        self.n_factored = len(protective) + len(paradoxical) + len(gated)
        self.cond_factor = np.zeros((4, 2, self.n_factored))
        for stage in range(4):
            for strong in (0, 1):
                self.cond_factor[stage, strong] = (
                    [1.0 if strong else -1.0] * len(protective)          # protective: flips with alliance
                    + [-1.0 if stage < 2 else 1.0] * len(paradoxical)   # paradoxical: inverse in stages 1-2
                    + [e[3][stage] for e in gated])                     # gated: stage multiplier
        self.prereq_theta = np.array([e[3] for e in prereq])
        self.comp_src, self.comp_dst, self.comp_coef = self._edge_list(comp)
        self.supp_src, self.supp_dst, self.supp_k = self._edge_list(supp)

    @staticmethod
    def _edge_list(edges: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sources, targets, coefficients) of a short list of edges."""
        return (np.array([e[0] for e in edges], dtype=np.int64), np.array([e[1] for e in edges], dtype=np.int64),
                np.array([e[2] for e in edges], dtype=np.float64))

    # -- level semantics, vectorised; bipolar columns are few, so they are handled on their own --
    def pathology(self, levels: np.ndarray) -> np.ndarray:
        """|a l + b|: (10 - l)/10 for increase, l/10 for decrease, |l - 5|/5 for bipolar nodes (same shape)."""
        rows = np.ascontiguousarray(levels, dtype=np.float64).reshape(-1, self.n)
        out = np.empty(rows.shape)
        pathologies(rows, self.path_slope, self.path_offset, out)
        return out.reshape(np.shape(levels))

    # weighted sums row by row in numpy's order, not matrix products: a client's reading has the same bits in a
    # batch of any size (BLAS rounds differently by shape), so a vector env and its single envs agree exactly
    def coiling(self, levels: np.ndarray) -> np.ndarray:
        """Weighted mean pathology of each row of `levels` ([B, N] -> [B]; [N] -> a number)."""
        return self._weighted(levels, self.weight, self.weight_sum)

    def alliance(self, levels: np.ndarray) -> np.ndarray:
        """One minus the alliance-weighted mean pathology of each row of `levels`."""
        return 1.0 - self._weighted(levels, self.alliance_weight, self.alliance_sum)

    def _weighted(self, levels: np.ndarray, weight: np.ndarray, weight_sum: float) -> np.ndarray:
        rows = np.ascontiguousarray(levels, dtype=np.float64).reshape(-1, self.n)
        out = np.empty(len(rows))
        weighted_pathologies(rows, self.path_slope, self.path_offset, weight, weight_sum, out)
        return out if np.ndim(levels) > 1 else out[0]


@dataclass
class BatchTurn:
    """One batched turn's outputs, each an array over the batch: the per-client scalars are columns of `table`
    (`OUT_COLUMNS`, read as attributes of the same names), beside the per-client vectors."""

    table: np.ndarray            # [B, len(OUT_COLUMNS)], as the compiled turn wrote it
    modifier_fired: np.ndarray   # [B, 12] bool, in stage_modifiers() order
    loa_growth: np.ndarray       # [B, 7] threshold crossed upward this turn, 0 if none
    loa_regression: np.ndarray   # [B, 7] threshold crossed downward this turn (negative), 0 if none
    bucket_change: np.ndarray    # [B, 16]

    @property
    def total(self) -> np.ndarray:
        """The turn's reward before any stage transition (which comes with a session's close)."""
        return self.composite + self.modifiers + self.phase_transition + self.taie


def _columns() -> None:
    """BatchTurn's per-client scalars: column i of its table as the attribute OUT_COLUMNS[i] (phase_move, -1/0/+1,
    and taie_direction, -1 toward_zero / 0 stable / +1 away_from_zero, as integers)."""
    for i, name in enumerate(OUT_COLUMNS):
        if name in ("phase_move", "taie_direction"):
            setattr(BatchTurn, name, property(lambda turn, i=i: turn.table[:, i].astype(np.int64)))
        else:
            setattr(BatchTurn, name, property(lambda turn, i=i: turn.table[:, i]))


_columns()


class BatchKernel:
    """TBN state for `batch` clients and the vectorised turn and session-boundary updates."""

    def __init__(self, batch: int, params: Params | None = None, graph: ClientGraph | None = None,
                 compiled: CompiledGraph | None = None) -> None:
        self.params = p = params or (graph.params if graph is not None else Params())
        self.graph = graph or ClientGraph.default(p)
        if self.graph.params != p:
            raise ValueError("the graph was built with different Params than the kernel's")
        self.cg = cg = compiled or CompiledGraph(self.graph)
        self.batch = batch
        n, n_buckets, w = cg.n, len(BUCKETS), p.taie_bar_window
        self.n_mal = len(MALADAPTIVE)
        # buckets: [high | low] intensities @ this = the turn's bucket change (§9.3.2)
        high, low = bucket_effect_matrices()
        self.bucket_op = np.vstack([high.T, p.bucket_harm_multiplier * low.T])   # [24, 16]
        self.decay = np.array([SESSION_DECAY[b] for b in BUCKETS])
        self.balance_vec = np.where(BUCKET_HEALTH_SIGN > 0, 1.0 / (n_buckets - self.n_mal), -1.0 / self.n_mal)
        # graph: [judge high | judge low | bucket improvement] @ this = raw first-order change (§9.3.1.2)
        first_order = np.vstack([cg.high, cg.low, cg.coupling]).T    # [N, 40]
        nonzero = first_order != 0.0
        self.fo_ptr = np.concatenate([[0], np.cumsum(nonzero.sum(axis=1))]).astype(np.int64)  # CSR by node
        self.fo_idx = np.nonzero(nonzero)[1].astype(np.int64)
        self.fo_val = first_order[nonzero]
        # LOA: scores @ loa_op + loa_bias = the turn's LOA change (§9.3.3)
        m = loa_matrix()
        self.loa_op = m.T * (p.loa_rate / SCORE_CENTRE)
        self.loa_bias = -p.loa_rate * m.sum(axis=1)
        self.loa_th = np.array(p.loa_thresholds)
        self.axis_dims = np.array([DIM_INDEX[d] for d in AXIS_DIMENSION], dtype=np.int64)
        self.attunement = DIM_INDEX["attunement"]
        # reward: stage weights normalised per stage; modifiers as matrices over the 12 scores
        sw = stage_weights(p)
        self.stage_w = sw / sw.sum(axis=1, keepdims=True)
        self.modifiers = stage_modifiers(p)
        self.mod_avg = np.array([[1.0 / len(mod.dims) if d in mod.dims else 0.0 for d in JUDGE_DIMENSIONS]
                                 for mod in self.modifiers]).T                                 # [12, M]
        self.mod_threshold = np.array([mod.threshold for mod in self.modifiers])
        self.mod_below = np.array([mod.below for mod in self.modifiers], dtype=np.bool_)
        self.mod_stage = np.array([mod.stage for mod in self.modifiers], dtype=np.int64)
        self.mod_value = np.array([mod.value for mod in self.modifiers])
        self.fwd = np.array([FORWARD_THRESHOLDS[s] + (np.inf,) for s in (1, 2, 3, 4)])  # [4, 4]: D cannot advance
        self.reg = np.array([REGRESSION_THRESHOLDS[s] for s in (1, 2, 3, 4)])
        self.bq_scale = np.ones((batch, n))  # per client: its profile may scale its nodes' BQ
        # state
        self.levels = np.zeros((batch, n))
        self.tmog = np.zeros((batch, n))
        self.buckets = np.zeros((batch, n_buckets))
        self.bucket_session_start = np.zeros_like(self.buckets)
        self.loa = np.zeros((batch, len(LOA_DIMENSIONS)))
        self.armed_up = np.zeros((batch, len(LOA_DIMENSIONS), len(self.loa_th)), dtype=bool)
        self.armed_down = np.zeros_like(self.armed_up)
        self.taie = np.zeros((batch, 3))
        self.x_pole = np.ones(batch)
        self.taie_first_sum = np.zeros((batch, 3))     # sum of the first min(count, w) assessments
        self.taie_recent = np.zeros((batch, w, 3))     # the latest assessments, newest last
        self.taie_count = np.zeros(batch, dtype=np.int64)
        self.transformation = np.zeros(batch)
        self.stage = np.ones(batch, dtype=int)
        self.phase = np.zeros(batch, dtype=int)
        self.turns_in_phase = np.zeros(batch, dtype=int)
        self.balance_entry = np.zeros(batch)
        self.coiling_entry = np.zeros(batch)
        self.reached_core = np.zeros(batch, dtype=bool)
        self.reached_core_in_stage = np.zeros(batch, dtype=bool)
        self.reached_integration = np.zeros(batch, dtype=bool)
        self.sessions_completed = np.zeros(batch, dtype=int)
        self.slipping_sessions = np.zeros(batch, dtype=int)
        self.qualifying_sessions = np.zeros(batch, dtype=int)
        self._tables = self._turn_tables()
        self._session_scratch = np.empty(max(n, n_buckets))
        # the turn's per-client state, bound once (the arrays are only ever written in place)
        self._turn_state = (self.levels, self.tmog, self.buckets, self.loa, self.armed_up, self.armed_down, self.taie,
                            self.x_pole, self.taie_first_sum, self.taie_recent, self.taie_count, self.transformation,
                            self.stage, self.phase, self.turns_in_phase, self.balance_entry, self.coiling_entry,
                            self.reached_core, self.reached_integration, self.bq_scale)
        self.runs = row_runs(batch)
        self.packs = [(pack(tuple(a[rows] for a in self._turn_state), self._tables),) for rows in self.runs]
        # a session's close and the next one's opening (`compiled_state`): their arguments after the rows, bound once
        self._opening = ((self.phase, self.turns_in_phase, self.reached_core, self.reached_integration,
                          self.balance_entry, self.coiling_entry, self.buckets, self.levels),
                         (self.balance_vec, cg.path_slope, cg.path_offset, cg.weight, cg.weight_sum,
                          self._session_scratch))
        closing = ((self.stage, self.sessions_completed, self.reached_core, self.reached_core_in_stage,
                    self.reached_integration, self.qualifying_sessions, self.slipping_sessions, self.buckets,
                    self.bucket_session_start, self.levels),
                   (self.n_mal, BUCKET_HEALTH_SIGN, self.decay, cg.path_slope, cg.path_offset, cg.weight,
                    cg.weight_sum, p.stage_evidence_sessions, p.stage_regression_sessions, self._session_scratch))
        #: the packs of `compiled_state.end_sessions`
        self.closing, self.opening = pack(*closing), pack(*self._opening)
        # a client's entry (`compiled_state.enter_rows`): its arguments after the rows
        self._entering = ((self.loa, self.armed_up, self.armed_down, self.buckets, self.bucket_session_start,
                           self.slipping_sessions, self.qualifying_sessions, self.reached_core_in_stage, self.taie,
                           self.taie_first_sum, self.taie_recent, self.taie_count, self.transformation),
                          (self.loa_th, p.taie_bar_window, p.taie_target == "literal_zero", DEGENERATE_DISTANCE))
        self._entries: dict[int, Pack] = {}   # `entry`'s packs by stage

    # ------------------------------------------------------------------ state in and out
    def load(self, i: int, init: InitialState) -> None:
        """Put a freshly drawn client into row i, at the start of its first session."""
        self.load_rows(np.array([i]), [init])

    def load_rows(self, rows: np.ndarray, inits: list[InitialState] | InitialBatch | DrawnClients) -> None:
        """Put freshly drawn clients into `rows` (distinct), all of them checked before any row is written."""
        rows = np.asarray(rows, dtype=np.int64)
        self.enter(rows, self.checked(rows, inits))

    def enter(self, rows: np.ndarray, init: InitialBatch | DrawnClients) -> None:
        """Put clients into `rows` (int64), their starting states checked (`checked`): drawn clients are written
        straight into the rows and entered in one compiled call (`compiled_state.enter_drawn`), given states copied
        in."""
        if isinstance(init, DrawnClients):
            enter_drawn(rows, *init.draws(self.cg.n), self.entry(init.stage))
            return
        at = as_run(rows)
        for name in ("levels", "bq_scale", "tmog", "buckets", "loa", "taie", "x_pole", "stage", "sessions_completed"):
            getattr(self, name)[at] = getattr(init, name)
        state, tables = self._entering
        enter_rows(rows, *state, *tables)
        self._start_session(rows)

    def entry(self, stage: int) -> Pack:
        """The pack of `compiled_state.enter_drawn` for clients drawn at `stage` (made once per stage): the draw's
        (`state.bind_draw`), the profiles' (`profiles.bind_settle`), the entry's and the first session's opening's
        arguments after the rows."""
        if stage not in self._entries:
            self._entries[stage] = pack((bind_draw(stage, self.graph, self.params, self), bind_settle(self),
                                         pack(*self._entering), self.opening), ())
        return self._entries[stage]

    def checked(self, rows: np.ndarray, inits: list[InitialState] | InitialBatch | DrawnClients) \
            -> InitialBatch | DrawnClients:
        """`inits` as one batch, checked for `rows` (an int64 array): one valid starting state for each of distinct
        rows of this batch, else a ValueError naming the problem (the compiled calls index the rows unchecked).
        Drawn clients are valid by construction: only their rows, stage and draws are checked."""
        listed = rows.tolist()
        if len(listed) != len(inits) or len(set(listed)) != len(listed) or listed and not (
                min(listed) >= 0 and max(listed) < self.batch):
            raise ValueError(f"need one initial state per distinct row in [0, {self.batch}), got {len(inits)} states "
                             f"for rows {listed}")
        if isinstance(inits, DrawnClients):
            return inits.check(self.cg.n, self.params)
        if not isinstance(inits, InitialBatch):
            inits = InitialBatch.stack([init.check_shapes(self.cg.n) for init in inits])
        return inits.validate(self.cg.n)

    STATE = ("bq_scale", "levels", "tmog", "buckets", "bucket_session_start", "loa", "armed_up", "armed_down",
             "taie", "x_pole", "taie_first_sum", "taie_recent", "taie_count", "transformation", "stage", "phase",
             "turns_in_phase", "balance_entry", "coiling_entry", "reached_core", "reached_core_in_stage",
             "reached_integration", "sessions_completed", "slipping_sessions", "qualifying_sessions")

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every state array (for checkpoints); the compiled tables are not state."""
        return {name: getattr(self, name).copy() for name in self.STATE}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore `state_dict()` output; shapes must match this kernel's batch."""
        missing = [n for n in self.STATE if n not in state]
        if missing:
            raise ValueError(f"kernel state is missing {missing}")
        for name in self.STATE:
            current = getattr(self, name)
            value = np.asarray(state[name])
            if value.shape != current.shape:
                raise ValueError(f"kernel state {name!r} has shape {value.shape}, expected {current.shape}")
            current[...] = value   # in place: the compiled turn's arguments are bound to these arrays

    def snapshot(self, i: int) -> dict[str, np.ndarray]:
        """Row i's numeric state, in the same keys as ReferenceCore.snapshot()."""
        return {"levels": self.levels[i].copy(), "buckets": self.buckets[i].copy(), "loa": self.loa[i].copy(),
                "taie": self.taie[i].copy(), "transformation": np.array(self.transformation[i]),
                "tmog": self.tmog[i].copy(), "phase": np.array(self.phase[i]), "stage": np.array(self.stage[i])}

    def readings(self, rows: slice = slice(None)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Coiling, alliance and TMoG accuracy of the clients in `rows` now."""
        levels = self.levels[rows]
        return self.cg.coiling(levels), self.cg.alliance(levels), accuracy(self.tmog[rows], levels)

    def _start_session(self, rows: np.ndarray) -> None:
        """Phase A of a new session for `rows` (indices), measured from the balance and coiling it starts at."""
        state, tables = self._opening
        open_sessions(rows, *state, *tables)

    def blend_taie(self, row: int, estimate: np.ndarray, weight: float) -> None:
        """Replace row's latest assessment by a mix with an external estimate (the full LLM mode, §9.3.4)."""
        p = self.params
        blended = weight * np.clip(estimate, AXIS_MIN, AXIS_MAX) + (1.0 - weight) * self.taie[row]
        if self.taie_count[row] <= p.taie_bar_window:
            self.taie_first_sum[row] += blended - self.taie[row]
        self.taie[row] = blended
        self.taie_recent[row, -1] = blended
        reassess_rows(np.array([row]), self.taie_first_sum, self.taie_recent, self.taie_count, self.transformation,
                      p.taie_bar_window, p.taie_target == "literal_zero", DEGENERATE_DISTANCE)

    # ------------------------------------------------------------------ one turn
    def step(self, scores: np.ndarray, noise: np.ndarray, noise_turn: np.ndarray | None = None) -> BatchTurn:
        """Advance every client by one turn of validated scores [B, 12]. `noise` is the TMoG draw: [B, N], or
        [B, K, N] blocks of K turns' draws of which each client reads turn `noise_turn` ([B])."""
        if noise_turn is None:
            noise, noise_turn = np.asarray(noise)[:, None, :], np.zeros(self.batch, dtype=np.int64)
        outputs = self.outputs()
        run_rows(turn_packed, self.runs, self.packs, (), (np.ascontiguousarray(scores, dtype=np.float64),
                                                          np.ascontiguousarray(noise, dtype=np.float64), noise_turn,
                                                          *outputs))
        return self.turn_result(outputs)

    def outputs(self) -> tuple[np.ndarray, ...]:
        """New arrays for a turn's outputs: the table, the modifiers fired, the LOA crossings, the bucket change and
        the pathology, in the compiled turn's order."""
        b = self.batch
        return (np.empty((b, N_OUT)), np.empty((b, len(self.mod_value)), dtype=np.bool_), np.empty(self.loa.shape),
                np.empty(self.loa.shape), np.empty(self.buckets.shape), np.empty(self.levels.shape))

    def turn_result(self, outputs: tuple[np.ndarray, ...]) -> BatchTurn:
        """The BatchTurn of `outputs` once the compiled turn has written them."""
        out, fired, growth, regression, bucket_change, _ = outputs   # the pathology: read inside the compiled call
        return BatchTurn(out, fired, growth, regression, bucket_change)

    def _turn_tables(self) -> tuple:
        """The compiled turn's arguments that do not change from turn to turn: graph tables and parameters."""
        p, cg = self.params, self.cg
        literal_zero = p.taie_target == "literal_zero"
        return (cg.bq, cg.phase_w, self.bucket_op, self.fo_ptr, self.fo_idx, self.fo_val,
                p.sensitivity_mode == "literal", p.graph_intensity_scale, cg.supp_src, cg.supp_dst, cg.supp_k,
                cg.path_slope, cg.path_offset, cg.imp_sign, cg.is_bip, cg.pole_side, cg.weight, cg.alliance_weight,
                cg.engagement, p.engagement_floor,
                cg.lin_src, cg.lin_dst, cg.lin_coef, cg.cond_src, cg.cond_dst, cg.cond_coef, cg.n_factored,
                cg.cond_factor, cg.prereq_theta, cg.comp_src, cg.comp_dst, cg.comp_coef,
                BUCKET_HEALTH_SIGN, self.balance_vec,
                self.loa_op, self.loa_bias, self.loa_th, p.loa_hysteresis, p.loa_growth_reward,
                p.loa_regression_reward, self.axis_dims, p.taie_rate, literal_zero,
                p.taie_stable_eps_literal if literal_zero else p.taie_stable_eps,
                p.taie_bar_window, p.taie_transform_reward, p.taie_toward_reward, p.taie_away_reward,
                DEGENERATE_DISTANCE,
                self.attunement, LOW_THRESHOLD, p.tmog_eta_base, p.tmog_eta_slope, p.tmog_eta_max,
                p.tmog_noise_sigma, self.fwd, self.reg, p.c_dwell_turns, p.b_ref, p.c_ref, p.shift_room_floor,
                PHASE_BUCKET_WEIGHT, PHASE_COILING_WEIGHT, ALLIANCE_SCALE_BASE, ALLIANCE_SCALE_SLOPE,
                PROTECTIVE_ALLIANCE, self.stage_w, self.mod_avg, self.mod_threshold, self.mod_below,
                self.mod_stage, self.mod_value, PHASE_FORWARD_REWARD, PHASE_REGRESSION_REWARD)

    # ------------------------------------------------------------------ session boundary
    def end_session(self, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stage assessment (§9.3.5.3) and bucket decay for `rows`; returns (stage move, reward, complete)."""
        index = np.arange(self.batch) if rows is None else np.asarray(rows, dtype=np.int64)
        n = len(index)
        move, reward, complete = np.empty(n, dtype=np.int64), np.empty(n), np.empty(n, dtype=bool)
        end_sessions(index, self.closing, self.opening, move, reward, complete)
        return move, reward, complete
