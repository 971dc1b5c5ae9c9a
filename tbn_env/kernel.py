"""The compiled TBN turn: the reference dynamics lowered to numpy over a batch of clients.

`CompiledGraph` turns the networkx ClientGraph into arrays once (sensitivities as [12, N] matrices,
one dense operator for the linear edge types, short edge lists for the conditional ones).
`BatchKernel` holds `[batch, ...]` state and runs §9.3.14.2 steps 2-7 and 9 for every client in a
handful of array operations. Its results match `tbn_env.reference.ReferenceCore` to 1e-9.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .buckets import BUCKET_HEALTH_SIGN, BUCKETS, MALADAPTIVE, SESSION_DECAY, bucket_effect_matrices, coupling_matrix
from .dimensions import DIM_INDEX, JUDGE_DIMENSIONS
from .graph import (ALLIANCE_DOMAIN, BIPOLAR_CENTRE, DAMPENING, ENGAGEMENT_NODE, LEVEL_MAX, LEVEL_MIN, PHASES,
                    ClientGraph)
from .intensity import graph_engagement, intensities
from .loa import LOA_DIMENSIONS, LOA_MAX, LOA_MIN, SCORE_CENTRE, loa_matrix
from .params import (LOW_THRESHOLD, PHASE_FORWARD_REWARD, PHASE_REGRESSION_REWARD, PROTECTIVE_ALLIANCE,
                     STAGE_FORWARD_REWARD, STAGE_REGRESSION_REWARD, STAGE_SESSIONS_FOR_TERMINATION, Params)
from .phase_shift import (FORWARD_THRESHOLDS, REGRESS_2_ADAPTIVE_BELOW, REGRESS_3_ADAPTIVE_BELOW,
                          REGRESS_3_COILING_ABOVE, REGRESS_3_MALADAPTIVE_ABOVE, REGRESS_4_COILING_ABOVE,
                          REGRESSION_THRESHOLDS, STAGE1_ADAPTIVE_MIN, STAGE2_ADAPTIVE_MIN, STAGE2_COILING_MAX,
                          STAGE2_MALADAPTIVE_MAX, STAGE3_COILING_MAX, phase_composite)
from .reward import stage_modifiers, stage_weights
from .state import InitialState
from .taie import AXIS_DIMENSION, AXIS_MAX, AXIS_MIN, DEGENERATE_DISTANCE, distance
from .tmog import convergence_rate, misreading

DIRECTION_NAMES = {-1: "toward_zero", 0: "stable", 1: "away_from_zero"}


def _clip(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """In-place clip with two ufunc calls (np.clip's dispatch costs more than the work at batch 1)."""
    np.maximum(x, lo, out=x)
    return np.minimum(x, hi, out=x)


class CompiledGraph:
    """The ClientGraph as arrays: node properties, sensitivities and edge operators."""

    def __init__(self, graph: ClientGraph) -> None:
        g, nodes = graph.graph, graph.nodes
        self.nodes = nodes
        self.n = n = len(nodes)
        idx = {name: i for i, name in enumerate(nodes)}
        attr = [g.nodes[name] for name in nodes]
        direction = [a["direction"] for a in attr]
        self.is_inc = np.array([d == "increase" for d in direction])
        self.is_dec = np.array([d == "decrease" for d in direction])
        self.is_bip = np.array([d == "bipolar" for d in direction])
        self.imp_sign = np.where(self.is_dec, -1.0, 1.0)
        self.bip = np.flatnonzero(self.is_bip)
        self.path_slope = np.where(self.is_inc, -1.0 / LEVEL_MAX, np.where(self.is_dec, 1.0 / LEVEL_MAX,
                                                                          1.0 / BIPOLAR_CENTRE))
        self.path_offset = np.where(self.is_inc, 1.0, np.where(self.is_dec, 0.0, -1.0))
        self.pole_side = np.array([1.0 if a["pole"] == "high" else -1.0 for a in attr])
        self.bip_pole = self.pole_side[self.bip]
        self.weight = np.array([a["weight"] for a in attr])
        alliance = np.array([a["domain"] == ALLIANCE_DOMAIN for a in attr])
        self.alliance_weight = np.where(alliance, self.weight, 0.0)
        self.bq = np.array([a["bq_by_stage"] for a in attr]).T                       # [4, N]
        self.phase_w = np.array([[a["phase_weights"][ph] for ph in PHASES] for a in attr]).T  # [4, N]
        self.high = np.array([[a["judge_high"][d] for d in JUDGE_DIMENSIONS] for a in attr]).T * self.imp_sign
        self.low = np.array([[a["judge_low"][d] for d in JUDGE_DIMENSIONS] for a in attr]).T * self.imp_sign
        self.engagement = idx[ENGAGEMENT_NODE]
        self.coupling = coupling_matrix(nodes, graph.params)                         # [16, N]

        # reinforcing and paired edges form one dense operator; the rest are short edge lists
        self.linear = np.zeros((n, n))
        protective, paradoxical, gated, prereq, comp, supp = [], [], [], [], [], []
        for src, dst, e in g.edges(data=True):
            s, t, c = idx[src], idx[dst], DAMPENING * e["k"]
            typ = e["type"]
            if typ in ("reinforcing", "paired"):
                self.linear[s, t] += c
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
        self.supp = [(s, t, k) for s, t, k in supp]
        self.mean_weights = np.full(n, 1.0 / n)

    def modulation(self, bq_scale: np.ndarray) -> np.ndarray:
        """[16, N] table, row 4 (stage - 1) + phase: phase weight x BQ resistance 1/(1 + BQ) (§9.3.1.2 step 2)."""
        return (self.phase_w[None, :, :] / (1.0 + self.bq[:, None, :] * bq_scale)).reshape(16, self.n)

    @staticmethod
    def _edge_list(edges: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sources, targets, coefficients) of a short list of edges."""
        return (np.array([e[0] for e in edges], dtype=int), np.array([e[1] for e in edges], dtype=int),
                np.array([e[2] for e in edges]))

    # -- level semantics, vectorised; bipolar columns are few, so they are handled on their own --
    def pathology(self, levels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """|a l + b|: (10 - l)/10 for increase, l/10 for decrease, |l - 5|/5 for bipolar nodes."""
        path = np.multiply(levels, self.path_slope, out=out)
        path += self.path_offset
        return np.abs(path, out=path)

    def apply_improvement(self, levels: np.ndarray, u: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        old_b, u_b = levels[:, self.bip], u[:, self.bip]
        new = np.multiply(u, self.imp_sign, out=out)
        new += levels
        dev = old_b - BIPOLAR_CENTRE
        side = np.where(dev != 0, np.sign(dev), self.bip_pole)
        new[:, self.bip] = BIPOLAR_CENTRE + side * np.maximum(0.0, np.abs(dev) - u_b)
        return _clip(new, LEVEL_MIN, LEVEL_MAX)

    def improvement(self, old: np.ndarray, new: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        u = np.subtract(new, old, out=out)
        u *= self.imp_sign
        u[:, self.bip] = np.abs(old[:, self.bip] - BIPOLAR_CENTRE) - np.abs(new[:, self.bip] - BIPOLAR_CENTRE)
        return u

    def coiling(self, levels: np.ndarray, path: np.ndarray | None = None) -> np.ndarray:
        path = self.pathology(levels) if path is None else path
        return path @ self.weight / self.weight.sum()

    def alliance(self, levels: np.ndarray, path: np.ndarray | None = None) -> np.ndarray:
        path = self.pathology(levels) if path is None else path
        return 1.0 - path @ self.alliance_weight / self.alliance_weight.sum()


@dataclass
class BatchTurn:
    """One batched turn's outputs, each an array over the batch."""

    composite: np.ndarray
    modifiers: np.ndarray
    modifier_fired: np.ndarray   # [B, 12] bool, in stage_modifiers() order
    phase_transition: np.ndarray
    taie: np.ndarray
    taie_transformation_reward: np.ndarray
    taie_direction_reward: np.ndarray
    loa_event_reward: np.ndarray
    loa_growth: np.ndarray       # [B, 7] threshold crossed upward this turn, 0 if none
    loa_regression: np.ndarray   # [B, 7] threshold crossed downward this turn (negative), 0 if none
    phase_move: np.ndarray
    phase_composite: np.ndarray
    coiling: np.ndarray
    alliance: np.ndarray
    balance: np.ndarray
    tmog_accuracy: np.ndarray
    tmog_accuracy_delta: np.ndarray
    taie_direction: np.ndarray   # -1 toward_zero, 0 stable, +1 away_from_zero
    bucket_change: np.ndarray    # [B, 16]

    @property
    def total(self) -> np.ndarray:
        return self.composite + self.modifiers + self.phase_transition + self.taie


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
        # (in "intensity" mode the graph reads the buckets' intensities, scaled: the scale is folded in here)
        self.shared_intensity = p.sensitivity_mode == "intensity"
        units = p.graph_intensity_scale if self.shared_intensity else 1.0
        self.first_order = np.vstack([units * cg.high, units * cg.low, cg.coupling])    # [40, N]
        # LOA: scores @ loa_op + loa_bias = the turn's LOA change (§9.3.3)
        m = loa_matrix()
        self.loa_op = m.T * (p.loa_rate / SCORE_CENTRE)
        self.loa_bias = -p.loa_rate * m.sum(axis=1)
        self.loa_th = np.array(p.loa_thresholds)
        self.axis_dims = [DIM_INDEX[d] for d in AXIS_DIMENSION]
        self.attunement = DIM_INDEX["attunement"]
        # reward: stage weights normalised per stage; modifiers as matrices over the 12 scores
        sw = stage_weights(p)
        self.stage_w = sw / sw.sum(axis=1, keepdims=True)
        self.modifiers = stage_modifiers(p)
        self.mod_avg = np.array([[1.0 / len(mod.dims) if d in mod.dims else 0.0 for d in JUDGE_DIMENSIONS]
                                 for mod in self.modifiers]).T                                 # [12, M]
        self.mod_threshold = np.array([mod.threshold for mod in self.modifiers])
        self.mod_below = np.array([mod.below for mod in self.modifiers])
        self.mod_stage = np.array([mod.stage for mod in self.modifiers])
        self.mod_value = np.array([mod.value for mod in self.modifiers])
        self.fwd = np.array([FORWARD_THRESHOLDS[s] + (np.inf,) for s in (1, 2, 3, 4)])  # [4, 4]: D cannot advance
        self.reg = np.array([REGRESSION_THRESHOLDS[s] for s in (1, 2, 3, 4)])
        # TAIE bars average the first / last k <= w assessments; masks by k, oldest-in-window one-hots
        slots = np.arange(w)
        self.recent_mask = (slots[None, :] >= w - np.arange(w + 1)[:, None]).astype(float)[..., None]
        self.oldest = np.eye(w)[np.clip(w - np.arange(w + 1), 0, w - 1)]                      # [w+1, w]
        self.modulation = np.zeros((batch, 16, n))  # per client: its BQ may be scaled by its profile
        self._work = tuple(np.empty((batch, n)) for _ in range(4))  # reused [B, N] scratch arrays
        self._rows = np.arange(batch)
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
        self.taie_count = np.zeros(batch, dtype=int)
        self._d_init: np.ndarray | None = None         # cached distance of the initial bar, per client
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

    # ------------------------------------------------------------------ state in and out
    def load(self, i: int, init: InitialState) -> None:
        """Put a freshly drawn client into row i, at the start of its first session."""
        self.load_rows(np.array([i]), [init])

    def load_rows(self, rows: np.ndarray, inits: list[InitialState]) -> None:
        """Put freshly drawn clients into `rows` (distinct), writing all of them before the batched bookkeeping."""
        if len(rows) != len(inits) or len(set(rows.tolist())) != len(rows):
            raise ValueError(f"need one initial state per distinct row, got {len(inits)} states for rows {rows.tolist()}")
        for init in inits:
            init.validate(self.cg.n)
        th = self.loa_th
        for i, init in zip(rows.tolist(), inits):
            self.levels[i] = init.levels
            self.modulation[i] = self.cg.modulation(init.bq_scale)
            self.tmog[i] = init.tmog
            self.buckets[i] = init.buckets
            self.bucket_session_start[i] = init.buckets
            self.loa[i] = init.loa
            self.taie[i] = init.taie
            self.x_pole[i] = init.x_pole
            self.stage[i] = init.stage
            self.sessions_completed[i] = init.sessions_completed
        self.armed_up[rows] = self.loa[rows][:, :, None] < th
        self.armed_down[rows] = self.loa[rows][:, :, None] > -th
        self.taie_first_sum[rows] = 0.0
        self.taie_recent[rows] = 0.0
        self.taie_count[rows] = 0
        self._record_taie(rows)
        self.slipping_sessions[rows] = 0
        self.qualifying_sessions[rows] = 0
        self.reached_core_in_stage[rows] = False
        self._start_session(rows)

    STATE = ("modulation", "levels", "tmog", "buckets", "bucket_session_start", "loa", "armed_up", "armed_down",
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
            setattr(self, name, value.astype(current.dtype, copy=True))
        self._d_init = None

    def snapshot(self, i: int) -> dict[str, np.ndarray]:
        """Row i's numeric state, in the same keys as ReferenceCore.snapshot()."""
        return {"levels": self.levels[i].copy(), "buckets": self.buckets[i].copy(), "loa": self.loa[i].copy(),
                "taie": self.taie[i].copy(), "transformation": np.array(self.transformation[i]),
                "tmog": self.tmog[i].copy(), "phase": np.array(self.phase[i]), "stage": np.array(self.stage[i])}

    def balance(self) -> np.ndarray:
        """adaptive mean - maladaptive mean per client."""
        return self.buckets @ self.balance_vec

    def _start_session(self, rows: np.ndarray) -> None:
        self.phase[rows] = 0
        self.turns_in_phase[rows] = 0
        self.reached_core[rows] = False
        self.reached_integration[rows] = False
        self.balance_entry[rows] = self.balance()[rows]
        self.coiling_entry[rows] = self.cg.coiling(self.levels[rows])

    def _record_taie(self, rows: np.ndarray | slice) -> np.ndarray:
        """Append the axes to the assessment history of `rows`, recompute T; return the TAIE direction."""
        w = self.params.taie_bar_window
        count, new = self.taie_count[rows], self.taie[rows]
        warm = (count >= w).all()  # every row past its first w assessments: no masks needed
        if not warm:
            self.taie_first_sum[rows] += np.where((count < w)[:, None], new, 0.0)
        recent = self.taie_recent[rows]
        recent[:, :-1] = recent[:, 1:]
        recent[:, -1] = new
        self.taie_recent[rows] = recent
        self.taie_count[rows] = count + 1
        return self._transformation_and_direction(rows, recent, warm)

    def blend_taie(self, row: int, estimate: np.ndarray, weight: float) -> None:
        """Replace row's latest assessment by a mix with an external estimate (the full LLM mode, §9.3.4)."""
        rows = np.array([row])
        blended = weight * np.clip(estimate, AXIS_MIN, AXIS_MAX) + (1.0 - weight) * self.taie[row]
        if self.taie_count[row] <= self.params.taie_bar_window:
            self.taie_first_sum[row] += blended - self.taie[row]
        self.taie[row] = blended
        self.taie_recent[row, -1] = blended
        self._transformation_and_direction(rows, self.taie_recent[rows], warm=False)

    def _transformation_and_direction(self, rows, recent: np.ndarray, warm: bool) -> np.ndarray:
        """Recompute T for `rows` from their history; return the direction across the window."""
        p, w = self.params, self.params.taie_bar_window
        k = np.minimum(self.taie_count[rows], w)
        if not warm or self._d_init is None:  # the initial bar is fixed once w assessments exist
            bars = self.taie_first_sum / np.clip(self.taie_count, 1, w)[:, None]
            self._d_init = distance(bars, p.taie_target)
        d_init = self._d_init[rows]
        bar = recent.sum(axis=1) if warm else (recent * self.recent_mask[k]).sum(axis=1)
        d_cur = distance(bar / k[:, None], p.taie_target)
        degenerate = d_init < DEGENERATE_DISTANCE
        ratio = d_cur / np.where(degenerate, 1.0, d_init)
        self.transformation[rows] = np.where(degenerate, 1.0, _clip(1.0 - ratio, 0.0, 1.0))
        # direction across the window: newest vs oldest assessment in it (§9.3.4)
        d_window = distance(recent, p.taie_target)
        oldest = d_window[:, 0] if warm else (d_window * self.oldest[k]).sum(axis=1)
        change = d_window[:, -1] - oldest
        eps = p.taie_stable_eps_literal if p.taie_target == "literal_zero" else p.taie_stable_eps
        return np.where((k < 2) | (np.abs(change) < eps), 0, np.sign(change)).astype(int)

    # ------------------------------------------------------------------ one turn
    def step(self, scores: np.ndarray, noise: np.ndarray) -> BatchTurn:
        """Advance every client by one turn of validated scores [B, 12]; `noise` is the TMoG draw [B, N]."""
        p, cg = self.params, self.cg
        stage_i, phase_i = self.stage - 1, self.phase

        # 2. buckets
        high, low = intensities(scores)
        intensity = np.concatenate([high, low], axis=1)
        before_b = self.buckets
        change = intensity @ self.bucket_op
        self.buckets = _clip(before_b + change, 0.0, 1.0)
        bucket_change = self.buckets - before_b
        bucket_improvement = bucket_change * BUCKET_HEALTH_SIGN

        # 3. LOA and its TAIE events
        self.loa = _clip(self.loa + scores @ self.loa_op + self.loa_bias, LOA_MIN, LOA_MAX)
        value, th = self.loa[..., None], self.loa_th
        up = self.armed_up & (value >= th)
        down = self.armed_down & (value <= -th)
        self.armed_up = (self.armed_up | (value < th - p.loa_hysteresis)) & ~up
        self.armed_down = (self.armed_down | (value > -th + p.loa_hysteresis)) & ~down
        growth, regression = np.zeros(self.loa.shape), np.zeros(self.loa.shape)
        for j, t in enumerate(th):  # ascending, so the furthest threshold crossed wins
            growth[up[..., j]] = t
            regression[down[..., j]] = -t
        event_reward = (growth > 0).sum(axis=1) * p.loa_growth_reward + \
            (regression < 0).sum(axis=1) * p.loa_regression_reward

        # 4. TAIE axes
        t_before = self.transformation.copy()
        b, v, a = ((scores[:, self.axis_dims] - 5.0) / 5.0).T
        x = self.taie[:, 0]
        toward = x - np.sign(x) * np.minimum(np.abs(x), p.taie_rate * b)
        away = x - np.where(x != 0, np.sign(x), self.x_pole) * p.taie_rate * b
        self.taie = _clip(np.stack([np.where(b >= 0, toward, away), self.taie[:, 1] + p.taie_rate * v,
                                    self.taie[:, 2] + p.taie_rate * a], axis=1), AXIS_MIN, AXIS_MAX)
        direction = self._record_taie(slice(None))

        # 5. ClientGraph: raw deltas, suppressive gates, modulation, application, propagation
        levels, (w_path, w_delta, w_first, w_u) = self.levels, self._work
        path = cg.pathology(levels, out=w_path)
        strong = (cg.alliance(levels, path) > PROTECTIVE_ALLIANCE).astype(int)
        graph_intensity = intensity if self.shared_intensity else \
            np.concatenate(graph_engagement(scores, p.sensitivity_mode), axis=1)
        delta = np.matmul(np.concatenate([graph_intensity, bucket_improvement], axis=1), self.first_order,
                          out=w_delta)
        for s, t, k in cg.supp:
            delta[:, t] *= 1.0 - k * path[:, s]
        cell = stage_i * 4 + phase_i
        if (cell == cell[0]).all():  # one stage and phase for the whole batch: a strided view
            delta *= self.modulation[:, cell[0]]
        else:
            delta *= self.modulation[self._rows, cell]
        delta *= np.maximum(p.engagement_floor, levels[:, cg.engagement] / LEVEL_MAX)[:, None]
        first = cg.apply_improvement(levels, delta, out=w_first)
        u = cg.improvement(levels, first, out=w_u)
        rise = np.maximum(first[:, cg.comp_src] - levels[:, cg.comp_src], 0.0) * cg.comp_coef
        cond = u[:, cg.cond_src]
        cond[:, :cg.n_factored] *= cg.cond_factor[stage_i, strong]
        cond[:, cg.n_factored:] *= first[:, cg.cond_src[cg.n_factored:]] >= cg.prereq_theta
        cond *= cg.cond_coef
        prop = np.matmul(u, cg.linear, out=w_delta)
        np.add.at(prop, (slice(None), cg.cond_dst), cond)  # a few columns: no full [B, N] pass
        final = cg.apply_improvement(first, prop, out=levels)  # the old levels are no longer needed
        np.add.at(final, (slice(None), cg.comp_dst), rise)
        self.levels = _clip(final, LEVEL_MIN, LEVEL_MAX)

        # 6. TMoG
        att = scores[:, self.attunement]
        gap = np.subtract(self.levels, self.tmog, out=w_delta)
        acc_before = 1.0 - np.abs(gap, out=w_path) @ cg.mean_weights / LEVEL_MAX
        gap *= convergence_rate(att, p)[:, None]
        self.tmog += gap
        misattuned = att < LOW_THRESHOLD
        if misattuned.any():
            self.tmog[misattuned] += misreading(self.tmog[misattuned], self.levels[misattuned], noise[misattuned],
                                                p.tmog_noise_sigma)
        _clip(self.tmog, LEVEL_MIN, LEVEL_MAX)
        acc = 1.0 - np.abs(np.subtract(self.tmog, self.levels, out=w_delta), out=w_delta) @ cg.mean_weights / LEVEL_MAX

        # 7. phase
        path = self.pathology_now = cg.pathology(self.levels, out=w_path)  # valid until the next step
        balance, coiling, alliance = self.balance(), cg.coiling(self.levels, path), cg.alliance(self.levels, path)
        self.turns_in_phase += 1
        composite = phase_composite(balance, self.balance_entry, coiling, self.coiling_entry, alliance, p)
        dwell_ok = (self.phase != 2) | (self.turns_in_phase >= p.c_dwell_turns)
        forward = (composite >= self.fwd[stage_i, phase_i]) & dwell_ok
        regress = ~forward & (self.phase > 0) & (composite <= self.reg[stage_i])
        move = forward.astype(int) - regress
        moved = move != 0
        self.phase = self.phase + move
        self.turns_in_phase[moved] = 0
        self.balance_entry = np.where(moved, balance, self.balance_entry)
        self.coiling_entry = np.where(moved, coiling, self.coiling_entry)
        self.reached_core |= self.phase >= 2
        self.reached_integration |= self.phase == 3

        # 9. reward
        weighted = (self.stage_w[stage_i] * scores).sum(axis=1)
        level = scores @ self.mod_avg
        fired = np.where(self.mod_below, level < self.mod_threshold, level > self.mod_threshold) & \
            (self.stage[:, None] == self.mod_stage)
        modifiers = fired @ self.mod_value
        phase_reward = np.where(move > 0, PHASE_FORWARD_REWARD, np.where(move < 0, PHASE_REGRESSION_REWARD, 0.0))
        t_reward = p.taie_transform_reward * (self.transformation - t_before)
        d_reward = np.where(direction < 0, p.taie_toward_reward, np.where(direction > 0, p.taie_away_reward, 0.0))
        return BatchTurn(weighted, modifiers, fired, phase_reward, t_reward + d_reward + event_reward, t_reward,
                         d_reward, event_reward, growth, regression, move, composite, coiling, alliance, balance,
                         acc, acc - acc_before, direction, bucket_change)

    # ------------------------------------------------------------------ session boundary
    def end_session(self, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stage assessment (§9.3.5.3) and bucket decay for `rows`; returns (stage move, reward, complete)."""
        rows = np.arange(self.batch) if rows is None else np.asarray(rows)
        p = self.params
        self.sessions_completed[rows] += 1
        self.reached_core_in_stage[rows] |= self.reached_core[rows]
        stage = self.stage[rows]
        complete = (stage == 4) & self.reached_integration[rows]
        adaptive = self.buckets[rows, self.n_mal:].mean(axis=1)
        maladaptive = self.buckets[rows, :self.n_mal].mean(axis=1)
        coiling = self.cg.coiling(self.levels[rows])
        qualifies = np.select(
            [stage == 1, stage == 2, stage == 3],
            [(adaptive > STAGE1_ADAPTIVE_MIN) & self.reached_core_in_stage[rows],
             (coiling < STAGE2_COILING_MAX) & (maladaptive < STAGE2_MALADAPTIVE_MAX) & (adaptive > STAGE2_ADAPTIVE_MIN),
             (coiling < STAGE3_COILING_MAX) & (self.sessions_completed[rows] >= STAGE_SESSIONS_FOR_TERMINATION)],
            False)
        slips = np.select(
            [stage == 2, stage == 3, stage == 4],
            [adaptive < REGRESS_2_ADAPTIVE_BELOW,
             (coiling > REGRESS_3_COILING_ABOVE) | (maladaptive > REGRESS_3_MALADAPTIVE_ABOVE)
             | (adaptive < REGRESS_3_ADAPTIVE_BELOW),
             coiling > REGRESS_4_COILING_ABOVE],
            False) & ~qualifies
        qualifying = np.where(qualifies, self.qualifying_sessions[rows] + 1, 0)
        slipping = np.where(slips, self.slipping_sessions[rows] + 1, 0)
        advance = qualifying >= p.stage_evidence_sessions
        regress = slipping >= p.stage_regression_sessions
        move = advance.astype(int) - regress.astype(int)
        self.stage[rows] = stage + move
        self.slipping_sessions[rows] = np.where(move != 0, 0, slipping)
        self.qualifying_sessions[rows] = np.where(move != 0, 0, qualifying)
        self.reached_core_in_stage[rows] &= move == 0
        # session decay of healthy progress only
        start = self.bucket_session_start[rows]
        now = self.buckets[rows]
        gained = (now - start) * BUCKET_HEALTH_SIGN > 0
        self.buckets[rows] = np.where(gained, now - self.decay * (now - start), now)
        self.bucket_session_start[rows] = self.buckets[rows]
        self._start_session(rows)
        reward = np.where(move > 0, STAGE_FORWARD_REWARD, np.where(move < 0, STAGE_REGRESSION_REWARD, 0.0))
        return move, reward, complete
