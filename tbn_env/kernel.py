"""The compiled TBN turn: the reference dynamics lowered to numpy over a batch of clients.

`CompiledGraph` turns the networkx ClientGraph into arrays once (sensitivities as [12, N] matrices,
one dense operator for the linear edge types, small scatter matrices for the conditional ones).
`BatchKernel` holds `[batch, ...]` state and runs §9.3.14.2 steps 2-7 and 9 for every client in a
handful of array operations. Its results match `tbn_env.reference.ReferenceCore` to 1e-9.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .buckets import (BUCKET_HEALTH_SIGN, BUCKETS, MALADAPTIVE, SESSION_DECAY, VOLATILITY,
                      bucket_effect_matrices, coupling_matrix)
from .dimensions import DIM_INDEX, JUDGE_DIMENSIONS
from .graph import (ALLIANCE_DOMAIN, BIPOLAR_CENTRE, DAMPENING, ENGAGEMENT_NODE, LEVEL_MAX, LEVEL_MIN, PHASES,
                    ClientGraph)
from .intensity import intensities
from .loa import LOA_MAX, LOA_MIN, SCORE_CENTRE, loa_matrix
from .params import (LOW_THRESHOLD, PHASE_FORWARD_REWARD, PHASE_REGRESSION_REWARD, PROTECTIVE_ALLIANCE,
                     STAGE_FORWARD_REWARD, STAGE_REGRESSION_REWARD, STAGE_SESSIONS_FOR_TERMINATION, Params)
from .phase_shift import (FORWARD_THRESHOLDS, REGRESS_2_ADAPTIVE_BELOW, REGRESS_3_ADAPTIVE_BELOW,
                          REGRESS_3_COILING_ABOVE, REGRESS_3_MALADAPTIVE_ABOVE, REGRESS_4_COILING_ABOVE,
                          REGRESSION_THRESHOLDS, STAGE1_ADAPTIVE_MIN, STAGE2_ADAPTIVE_MIN, STAGE2_COILING_MAX,
                          STAGE2_MALADAPTIVE_MAX, STAGE3_COILING_MAX, phase_composite)
from .reward import stage_modifiers, stage_weights
from .state import InitialState
from .taie import AXIS_DIMENSION, AXIS_MAX, AXIS_MIN, DEGENERATE_DISTANCE, distance
from .tmog import convergence_rate

DIRECTION_NAMES = {-1: "toward_zero", 0: "stable", 1: "away_from_zero"}


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
        self.weight = np.array([a["weight"] for a in attr])
        alliance = np.array([a["domain"] == ALLIANCE_DOMAIN for a in attr])
        self.alliance_weight = np.where(alliance, self.weight, 0.0)
        self.bq = np.array([a["bq_by_stage"] for a in attr]).T                       # [4, N]
        self.phase_w = np.array([[a["phase_weights"][ph] for ph in PHASES] for a in attr]).T  # [4, N]
        self.high = np.array([[a["judge_high"][d] for d in JUDGE_DIMENSIONS] for a in attr]).T * self.imp_sign
        self.low = np.array([[a["judge_low"][d] for d in JUDGE_DIMENSIONS] for a in attr]).T * self.imp_sign
        self.engagement = idx[ENGAGEMENT_NODE]
        self.coupling = coupling_matrix(nodes)                                       # [16, N]

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
        self.prot_src, self.prot_coef, self.prot_scatter = self._edge_list(protective)
        self.para_src, self.para_coef, self.para_scatter = self._edge_list(paradoxical)
        self.gated_src, self.gated_coef, self.gated_scatter = self._edge_list(gated)
        self.gated_gates = np.array([e[3] for e in gated]).T                          # [4, E]
        self.prereq_src, self.prereq_coef, self.prereq_scatter = self._edge_list(prereq)
        self.prereq_theta = np.array([e[3] for e in prereq])
        self.comp_src, self.comp_coef, self.comp_scatter = self._edge_list(comp)
        self.supp = [(s, t, k) for s, t, k in supp]

    def _edge_list(self, edges: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scatter = np.zeros((len(edges), self.n))
        for i, e in enumerate(edges):
            scatter[i, e[1]] = 1.0
        return np.array([e[0] for e in edges], dtype=int), np.array([e[2] for e in edges]), scatter

    # -- level semantics, vectorised; bipolar columns are few, so they are handled on their own --
    def pathology(self, levels: np.ndarray) -> np.ndarray:
        """|a l + b|: (10 - l)/10 for increase, l/10 for decrease, |l - 5|/5 for bipolar nodes."""
        return np.abs(levels * self.path_slope + self.path_offset)

    def apply_improvement(self, levels: np.ndarray, u: np.ndarray) -> np.ndarray:
        new = levels + self.imp_sign * u
        old_b, u_b = levels[:, self.bip], u[:, self.bip]
        dev = old_b - BIPOLAR_CENTRE
        side = np.where(dev > 0, 1.0, np.where(dev < 0, -1.0, self.pole_side[self.bip]))
        new[:, self.bip] = BIPOLAR_CENTRE + side * np.maximum(0.0, np.abs(dev) - u_b)
        return np.clip(new, LEVEL_MIN, LEVEL_MAX, out=new)

    def improvement(self, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        u = self.imp_sign * (new - old)
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
        self.params = p = params or Params()
        self.graph = graph or ClientGraph.default(p)
        self.cg = compiled or CompiledGraph(self.graph)
        self.batch = batch
        n = self.cg.n
        self.bucket_high, self.bucket_low = bucket_effect_matrices()
        self.volatility = np.array([VOLATILITY[b] for b in BUCKETS])
        self.decay = np.array([SESSION_DECAY[b] for b in BUCKETS])
        self.loa_m = loa_matrix()
        self.loa_th = np.array(p.loa_thresholds)
        self.axis_dims = [DIM_INDEX[d] for d in AXIS_DIMENSION]
        self.stage_w = stage_weights(p)
        self.modifiers = stage_modifiers(p)
        self.mod_dims = [[DIM_INDEX[d] for d in m.dims] for m in self.modifiers]
        self.fwd = np.array([FORWARD_THRESHOLDS[s] + (np.inf,) for s in (1, 2, 3, 4)])  # [4, 4]: D cannot advance
        self.reg = np.array([REGRESSION_THRESHOLDS[s] for s in (1, 2, 3, 4)])
        self.n_mal = len(MALADAPTIVE)
        # state
        self.levels = np.zeros((batch, n))
        self.tmog = np.zeros((batch, n))
        self.buckets = np.zeros((batch, len(BUCKETS)))
        self.bucket_session_start = np.zeros_like(self.buckets)
        self.loa = np.zeros((batch, len(self.loa_m)))
        self.armed_up = np.zeros((batch, len(self.loa_m), len(self.loa_th)), dtype=bool)
        self.armed_down = np.zeros_like(self.armed_up)
        self.taie = np.zeros((batch, 3))
        self.x_pole = np.ones(batch)
        self.taie_first = np.zeros((batch, p.taie_bar_window, 3))   # the first assessments
        self.taie_recent = np.zeros((batch, p.taie_bar_window, 3))  # the latest assessments, newest last
        self.taie_count = np.zeros(batch, dtype=int)
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

    # ------------------------------------------------------------------ state in and out
    def load(self, i: int, init: InitialState) -> None:
        """Put a freshly drawn client into row i, at the start of its first session."""
        init.validate(self.cg.n)
        th = self.loa_th
        self.levels[i] = init.levels
        self.tmog[i] = init.tmog
        self.buckets[i] = init.buckets
        self.bucket_session_start[i] = init.buckets
        self.loa[i] = init.loa
        self.armed_up[i] = init.loa[:, None] < th
        self.armed_down[i] = init.loa[:, None] > -th
        self.taie[i] = init.taie
        self.x_pole[i] = init.x_pole
        self.taie_first[i] = 0.0
        self.taie_recent[i] = 0.0
        self.taie_count[i] = 0
        self._record_taie(np.array([i]))
        self.stage[i] = init.stage
        self.sessions_completed[i] = 0
        self.slipping_sessions[i] = 0
        self.reached_core_in_stage[i] = False
        self._start_session(np.array([i]))

    def snapshot(self, i: int) -> dict[str, np.ndarray]:
        """Row i's numeric state, in the same keys as ReferenceCore.snapshot()."""
        return {"levels": self.levels[i].copy(), "buckets": self.buckets[i].copy(), "loa": self.loa[i].copy(),
                "taie": self.taie[i].copy(), "transformation": np.array(self.transformation[i]),
                "tmog": self.tmog[i].copy(), "phase": np.array(self.phase[i]), "stage": np.array(self.stage[i])}

    def balance(self) -> np.ndarray:
        return self.buckets[:, self.n_mal:].mean(axis=1) - self.buckets[:, :self.n_mal].mean(axis=1)

    def _start_session(self, rows: np.ndarray) -> None:
        self.phase[rows] = 0
        self.turns_in_phase[rows] = 0
        self.reached_core[rows] = False
        self.reached_integration[rows] = False
        self.balance_entry[rows] = self.balance()[rows]
        self.coiling_entry[rows] = self.cg.coiling(self.levels[rows])

    def _record_taie(self, rows: np.ndarray) -> None:
        """Append the current axes to the assessment history of `rows` and recompute T."""
        w, count = self.params.taie_bar_window, self.taie_count[rows]
        first_slot = np.minimum(count, w - 1)
        keep_first = count < w
        self.taie_first[rows[keep_first], first_slot[keep_first]] = self.taie[rows[keep_first]]
        self.taie_recent[rows] = np.roll(self.taie_recent[rows], -1, axis=1)
        self.taie_recent[rows, -1] = self.taie[rows]
        self.taie_count[rows] = count + 1
        self.transformation[rows] = self._transformation(rows)

    def _transformation(self, rows: np.ndarray) -> np.ndarray:
        w, target = self.params.taie_bar_window, self.params.taie_target
        k = np.minimum(self.taie_count[rows], w)
        slots = np.arange(w)
        first_mask = (slots[None, :] < k[:, None])[..., None]
        recent_mask = (slots[None, :] >= (w - k)[:, None])[..., None]
        first = np.where(first_mask, self.taie_first[rows], 0.0).sum(axis=1) / k[:, None]
        recent = np.where(recent_mask, self.taie_recent[rows], 0.0).sum(axis=1) / k[:, None]
        d_init, d_cur = distance(first, target), distance(recent, target)
        safe = np.where(d_init < DEGENERATE_DISTANCE, 1.0, d_init)
        return np.where(d_init < DEGENERATE_DISTANCE, 1.0, np.clip(1.0 - d_cur / safe, 0.0, 1.0))

    def _taie_direction(self) -> np.ndarray:
        w, p = self.params.taie_bar_window, self.params
        k = np.minimum(self.taie_count, w)
        oldest = self.taie_recent[np.arange(self.batch), w - k]
        change = distance(self.taie_recent[:, -1], p.taie_target) - distance(oldest, p.taie_target)
        eps = p.taie_stable_eps_literal if p.taie_target == "literal_zero" else p.taie_stable_eps
        return np.where((k < 2) | (np.abs(change) < eps), 0, np.sign(change)).astype(int)

    # ------------------------------------------------------------------ one turn
    def step(self, scores: np.ndarray, noise: np.ndarray) -> BatchTurn:
        """Advance every client by one turn of validated scores [B, 12]; `noise` is the TMoG draw [B, N]."""
        p, cg = self.params, self.cg
        rows = np.arange(self.batch)
        stage_i, phase_i = self.stage - 1, self.phase

        # 2. buckets
        high, low = intensities(scores)
        before_b = self.buckets
        change = (high @ self.bucket_high.T + p.bucket_harm_multiplier * (low @ self.bucket_low.T)) * self.volatility
        self.buckets = np.clip(before_b + change, 0.0, 1.0)
        bucket_improvement = (self.buckets - before_b) * BUCKET_HEALTH_SIGN

        # 3. LOA and its TAIE events
        signal = ((scores - SCORE_CENTRE) / SCORE_CENTRE) @ self.loa_m.T
        self.loa = np.clip(self.loa + p.loa_rate * signal, LOA_MIN, LOA_MAX)
        value, th = self.loa[..., None], self.loa_th
        up = self.armed_up & (value >= th)
        down = self.armed_down & (value <= -th)
        self.armed_up = np.where(up, False, self.armed_up | (value < th - p.loa_hysteresis))
        self.armed_down = np.where(down, False, self.armed_down | (value > -th + p.loa_hysteresis))
        growth = np.where(up, th, 0.0).max(axis=-1)
        regression = np.where(down, -th, 0.0).min(axis=-1)
        event_reward = (growth > 0).sum(axis=1) * p.loa_growth_reward + \
            (regression < 0).sum(axis=1) * p.loa_regression_reward

        # 4. TAIE axes
        t_before = self.transformation.copy()
        b, v, a = ((scores[:, self.axis_dims] - 5.0) / 5.0).T
        x = self.taie[:, 0]
        toward = x - np.sign(x) * np.minimum(np.abs(x), p.taie_rate * b)
        away = x + np.where(x != 0, np.sign(x), self.x_pole) * p.taie_rate * -b
        self.taie = np.clip(np.stack([np.where(b >= 0, toward, away), self.taie[:, 1] + p.taie_rate * v,
                                      self.taie[:, 2] + p.taie_rate * a], axis=1), AXIS_MIN, AXIS_MAX)
        self._record_taie(rows)
        direction = self._taie_direction()

        # 5. ClientGraph: raw deltas, suppressive gates, modulation, application, propagation
        levels = self.levels
        path = cg.pathology(levels)
        alliance_before = cg.alliance(levels, path)
        g_high, g_low = intensities(scores, p.sensitivity_mode)
        raw = g_high @ cg.high + g_low @ cg.low + (bucket_improvement @ cg.coupling) * p.bucket_coupling_scale
        for s, t, k in cg.supp:
            raw[:, t] *= 1.0 - k * path[:, s]
        engagement = np.maximum(p.engagement_floor, levels[:, cg.engagement] / LEVEL_MAX)
        delta = raw * cg.phase_w[phase_i] * engagement[:, None] / (1.0 + cg.bq[stage_i])
        first_levels = cg.apply_improvement(levels, delta)
        u = cg.improvement(levels, first_levels)
        level_change = first_levels - levels
        protective = np.where(alliance_before > PROTECTIVE_ALLIANCE, 1.0, -1.0)[:, None]
        paradox = np.where(self.stage <= 2, -1.0, 1.0)[:, None]
        prop = u @ cg.linear
        prop += (u[:, cg.prot_src] * cg.prot_coef * protective) @ cg.prot_scatter
        prop += (u[:, cg.para_src] * cg.para_coef * paradox) @ cg.para_scatter
        prop += (u[:, cg.gated_src] * cg.gated_coef * cg.gated_gates[stage_i]) @ cg.gated_scatter
        open_ = first_levels[:, cg.prereq_src] >= cg.prereq_theta
        prop += np.where(open_, u[:, cg.prereq_src] * cg.prereq_coef, 0.0) @ cg.prereq_scatter
        comp = np.maximum(level_change[:, cg.comp_src], 0.0) * cg.comp_coef @ cg.comp_scatter
        self.levels = np.clip(cg.apply_improvement(first_levels, prop) + comp, LEVEL_MIN, LEVEL_MAX)

        # 6. TMoG
        att = scores[:, DIM_INDEX["attunement"]]
        acc_before = 1.0 - np.abs(self.tmog - self.levels).mean(axis=1) / LEVEL_MAX
        eta = convergence_rate(att, p)
        tmog = self.tmog + eta[:, None] * (self.levels - self.tmog)
        tmog = np.where((att < LOW_THRESHOLD)[:, None], tmog + p.tmog_noise_sigma * noise, tmog)
        self.tmog = np.clip(tmog, LEVEL_MIN, LEVEL_MAX)
        acc = 1.0 - np.abs(self.tmog - self.levels).mean(axis=1) / LEVEL_MAX

        # 7. phase
        path = cg.pathology(self.levels)
        balance, coiling, alliance = self.balance(), cg.coiling(self.levels, path), cg.alliance(self.levels, path)
        self.turns_in_phase += 1
        composite = phase_composite(balance - self.balance_entry, self.coiling_entry - coiling, alliance, p)
        dwell_ok = (self.phase != 2) | (self.turns_in_phase >= p.c_dwell_turns)
        forward = (composite >= self.fwd[stage_i, phase_i]) & dwell_ok
        regress = ~forward & (self.phase > 0) & (composite <= self.reg[stage_i])
        move = forward.astype(int) - regress.astype(int)
        moved = move != 0
        self.phase = self.phase + move
        self.turns_in_phase[moved] = 0
        self.balance_entry = np.where(moved, balance, self.balance_entry)
        self.coiling_entry = np.where(moved, coiling, self.coiling_entry)
        self.reached_core |= self.phase >= 2
        self.reached_integration |= self.phase == 3

        # 9. reward
        w = self.stage_w[stage_i]
        weighted = (w * scores).sum(axis=1) / w.sum(axis=1)
        fired = np.zeros((self.batch, len(self.modifiers)), dtype=bool)
        modifiers = np.zeros(self.batch)
        for j, (m, dims) in enumerate(zip(self.modifiers, self.mod_dims)):
            level = scores[:, dims].mean(axis=1)
            cond = level < m.threshold if m.below else level > m.threshold
            fired[:, j] = (self.stage == m.stage) & cond
            modifiers += np.where(fired[:, j], m.value, 0.0)
        phase_reward = np.where(move > 0, PHASE_FORWARD_REWARD, np.where(move < 0, PHASE_REGRESSION_REWARD, 0.0))
        t_reward = p.taie_transform_reward * (self.transformation - t_before)
        d_reward = np.where(direction < 0, p.taie_toward_reward, np.where(direction > 0, p.taie_away_reward, 0.0))
        return BatchTurn(weighted, modifiers, fired, phase_reward, t_reward + d_reward + event_reward, t_reward,
                         d_reward, event_reward, growth, regression, move, composite, coiling, alliance, balance,
                         acc, acc - acc_before, direction, self.buckets - before_b)

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
        advance = np.select(
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
            False) & ~advance
        slipping = np.where(slips, self.slipping_sessions[rows] + 1, 0)
        regress = slipping >= p.stage_regression_sessions
        move = advance.astype(int) - regress.astype(int)
        self.stage[rows] = stage + move
        self.slipping_sessions[rows] = np.where(move != 0, 0, slipping)
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
