"""Where clients and sessions start, compiled: a sampled profile, a new client's starting state (a profile's tilts
and the stage's draws, one pass per client, written straight into the rows it goes to), its entry (the kernel's,
`enter_rows`, with its first TAIE assessment, and the session layer's, `start_clients`), a re-assessment after a
blend, a session's close (stage assessment and decay) and the next session's opening (the kernel's,
`open_sessions`, and the session layer's, `start_sessions`).

Each is the arithmetic of array expressions, element by element in the same order, with sums in numpy's own
pairwise order (`numpy_sum`), so what is computed here has the bits the array expressions give
(`tests/env/test_compiled_state.py` writes them out and holds the two together). The `log1p`, `cos` and `sin` of
a starting state's Box-Muller normals and the power of a sampled profile's keys are numpy's (they round differently
from the compiled ones) and come in as arguments.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .compiled_turn import assess_taie, record_taie, slope_pathology
from .graph import level_of, pathology_of
from .params import STAGE_FORWARD_REWARD, STAGE_REGRESSION_REWARD, STAGE_SESSIONS_FOR_TERMINATION
from .phase_shift import (REGRESS_2_ADAPTIVE_BELOW, REGRESS_3_ADAPTIVE_BELOW, REGRESS_3_COILING_ABOVE,
                          REGRESS_3_MALADAPTIVE_ABOVE, REGRESS_4_COILING_ABOVE, STAGE1_ADAPTIVE_MIN, STAGE2_ADAPTIVE_MIN,
                          STAGE2_COILING_MAX, STAGE2_MALADAPTIVE_MAX, STAGE3_COILING_MAX)

#: Terms numpy adds with eight running sums before it splits a sum in two (its pairwise summation block).
_BLOCK = 128
_STACK = 192   # work ranges of the halving tree: 3 per level, ample for any array that fits in memory


@njit(cache=True)
def numpy_sum(a, lo, n):
    """a[lo:lo + n].sum() with numpy's bits: pairwise summation, halving (at a multiple of 8) down to blocks of at
    most 128 terms, each summed with eight running sums. Iterative: numba's on-disk cache mislinks recursion."""
    if n <= _BLOCK:
        return _block_sum(a, lo, n)
    # post-order over the halving tree: a work stack of (start, length) ranges, length -1 meaning "add the last two
    # partial sums", and a stack of partial sums
    work_lo, work_n, partial = np.empty(_STACK, np.int64), np.empty(_STACK, np.int64), np.empty(_STACK)
    work_lo[0], work_n[0] = lo, n
    w, p = 1, 0
    while w:
        w -= 1
        start, length = work_lo[w], work_n[w]
        if length < 0:
            partial[p - 2] = partial[p - 2] + partial[p - 1]
            p -= 1
        elif length <= _BLOCK:
            partial[p] = _block_sum(a, start, length)
            p += 1
        else:
            half = length // 2
            half -= half % 8
            work_lo[w], work_n[w] = 0, -1
            work_lo[w + 1], work_n[w + 1] = start + half, length - half
            work_lo[w + 2], work_n[w + 2] = start, half
            w += 3
    return partial[0]


@njit(cache=True)
def _block_sum(a, lo, n):
    """numpy's sum of at most 128 terms: in order below 8, else eight running sums, combined pairwise, then the
    remainder in order."""
    if n < 8:
        total = -0.0
        for i in range(lo, lo + n):
            total += a[i]
        return total
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - n % 8:
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += a[lo + i]
        i += 1
    return total


@njit(cache=True)
def pathologies(levels, slope, offset, out):
    """Each node's pathology |level x slope + offset| ([B, N] into `out`), as numpy's multiply, add and abs give it."""
    for b in range(levels.shape[0]):
        for j in range(levels.shape[1]):
            out[b, j] = slope_pathology(levels[b, j], slope[j], offset[j])


@njit(cache=True, inline="always")
def weighted_pathology(levels, b, slope, offset, weight, weight_sum, scratch):
    """Row b's pathology |level x slope + offset| weighted and averaged (coiling with the node weights, one minus
    the alliance with the alliance weights), summed in numpy's order; `scratch` is [N]."""
    n = levels.shape[1]
    for j in range(n):
        scratch[j] = slope_pathology(levels[b, j], slope[j], offset[j]) * weight[j]
    return numpy_sum(scratch, 0, n) / weight_sum


@njit(cache=True)
def weighted_pathologies(levels, slope, offset, weight, weight_sum, out):
    """`weighted_pathology` of every row of `levels` ([B, N]) into `out` ([B])."""
    scratch = np.empty(levels.shape[1])
    for b in range(levels.shape[0]):
        out[b] = weighted_pathology(levels, b, slope, offset, weight, weight_sum, scratch)


@njit(cache=True)
def tilt_rows(strategy, defenses, concerns, shift_table, bq_table, defense_node, concern_nodes, defense_shift,
              defense_bq, concern_shift, shift, bq):
    """Each profile's per-node pathology shift and BQ multiplier (`shift`, `bq` [B, N], written): its strategy's
    row, then each defence's and each concern's in the order the profile lists them. `concern_nodes` [C, K] holds
    each concern's node indices, -1 past its last."""
    for i in range(strategy.shape[0]):
        for j in range(shift.shape[1]):   # element by element: a row assignment compiles numba's error messages
            shift[i, j] = shift_table[strategy[i], j]
            bq[i, j] = bq_table[strategy[i], j]
        for d in defenses[i]:
            if d >= 0:
                shift[i, defense_node[d]] += defense_shift
                bq[i, defense_node[d]] *= defense_bq
        for c in concerns[i]:
            if c >= 0:
                for node in concern_nodes[c]:
                    if node >= 0:
                        shift[i, node] += concern_shift


@njit(cache=True)
def profile_rows(u, concern_keys, codes, n_defenses, defense_counts, concern_counts, strategy, defenses, concerns):
    """One sampled profile per row of `u` (`tbn_env.profiles.profiles_from_uniforms`'s uniforms), written to
    `strategy` [B] (an entry of `codes`), `defenses` and `concerns` [B, K] (-1 past the drawn count). The defences
    are the largest of their keys, the concerns the largest of `concern_keys`, ordered as a stable sort of the
    negated keys orders them (the larger key first, the earlier index on a tie)."""
    for i in range(u.shape[0]):
        strategy[i] = codes[int(u[i, 0] * codes.shape[0])]
        _largest(u[i, 2:2 + n_defenses], int(u[i, 1] * defense_counts), defenses[i])
        _largest(concern_keys[i], 1 + int(u[i, 2 + n_defenses] * concern_counts), concerns[i])


@njit(cache=True, inline="always")
def _largest(keys, count, out):
    """out[k] = the index of the k-th largest of `keys` for k < count (a tie to the earlier index), -1 after."""
    for k in range(out.shape[0]):
        best = -1
        if k < count:
            for j in range(keys.shape[0]):
                taken = False
                for m in range(k):
                    taken = taken or out[m] == j
                if not taken and (best < 0 or keys[j] > keys[best]):
                    best = j
        out[k] = best


@njit(cache=True)
def box_muller_pairs(u, start, neg, angle):
    """The arguments of numpy's log1p, cos and sin in Box-Muller (`tbn_env.state.states_from_uniforms`): from the
    uniform pairs of each row of `u` from column `start`, the negated first and 2 pi times the second (exact, as the
    array expressions give them: a negation and one product)."""
    for i in range(u.shape[0]):
        for m in range(neg.shape[1]):
            neg[i, m] = -u[i, start + 2 * m]
            angle[i, m] = 2.0 * np.pi * u[i, start + 2 * m + 1]


@njit(cache=True)
def start_rows(u, log, cos, sin, shift, bq, rows, levels, buckets, loa, taie, x_pole, tmog, bq_scale, stages,
               sessions_completed, path_lo, path_hi, maladaptive, adaptive, loa_lo, loa_hi, sigma, stage, sessions,
               bipolar, increase, pole, level_min, level_max, jitter, n_maladaptive, loa_min, loa_max, taie_load,
               taie_norm, axis_min, axis_max, scratch):
    """Clients entering treatment at `stage`, one per row of `u` (`tbn_env.state.state_draws` uniforms each),
    written to row rows[i] of the state arrays: levels from the stage's pathology range tilted by `shift` ([B, N],
    or [0, 0] for none) and kept in [0, 1], the BQ multipliers `bq` ([B, N], or [0, 0] for ones), buckets, LOA,
    TAIE axes from the levels (X's pole the side X falls on), TMoG as the levels misread by `sigma` times
    Box-Muller's normals (numpy's `log` = log1p(-u1), `cos` and `sin` of 2 pi u2 for each pair: sqrt(-2 log) cos
    for the first half of the nodes, sqrt(-2 log) sin for the second), the stage and the sessions behind. Every
    value but the BQ multipliers (a profile's, checked before: `tbn_env.profiles.DrawnClients.check`) is clipped into
    its range, so a drawn state is valid by construction. `scratch` is [N]. The arguments after `rows` are those a
    `drawing` pack binds (`tbn_env.state.bind_draw`): the state arrays, the stage's numbers, the constants."""
    n, half = levels.shape[1], log.shape[1]
    n_buckets, n_loa = buckets.shape[1], loa.shape[1]
    tilted, scaled = shift.shape[0] > 0, bq.shape[0] > 0
    for i in range(u.shape[0]):
        r = rows[i]
        for j in range(n):
            p = path_lo + (path_hi - path_lo) * u[i, j]
            if tilted:
                p += shift[i, j]
            levels[r, j] = level_of(min(max(p, 0.0), 1.0), bipolar[j], increase[j], pole[j])
            bq_scale[r, j] = bq[i, j] if scaled else 1.0
        for k in range(n_buckets):
            base = maladaptive if k < n_maladaptive else adaptive
            buckets[r, k] = min(max(base + jitter * (2.0 * u[i, n + k] - 1.0), 0.0), 1.0)
        for k in range(n_loa):
            loa[r, k] = min(max(loa_lo + (loa_hi - loa_lo) * u[i, n + n_buckets + k], loa_min), loa_max)
        for axis in range(3):   # x: pathology signed by pole; y, z: health (1 - 2 p)
            for j in range(n):
                p = pathology_of(levels[r, j], bipolar[j], increase[j])
                scratch[j] = p * taie_load[j, 0] if axis == 0 else (1.0 - 2.0 * p) * abs(taie_load[j, axis])
            taie[r, axis] = min(max(10.0 * numpy_sum(scratch, 0, n) / taie_norm[axis], axis_min), axis_max)
        x_pole[r] = 1.0 if taie[r, 0] >= 0 else -1.0
        for j in range(n):
            m = j if j < half else j - half
            normal = np.sqrt(-2.0 * log[i, m]) * (cos[i, m] if j < half else sin[i, m])
            tmog[r, j] = min(max(levels[r, j] + sigma * normal, level_min), level_max)
        stages[r] = stage
        sessions_completed[r] = sessions


@njit(cache=True)
def settle_rows(rows, strategy, concerns, u, buckets, taie, x_pole, concern_bucket, concern_fill, prior_low,
                prior_high, family_pole, axis_min, axis_max):
    """What a profile adds to a drawn state, in place in row rows[i]: each concern fills its reservoir (in the order
    the profile lists them), and the DMM strategy's TAIE X prior, drawn by the last uniform of row i of `u`, sets X
    and its pole (`family_pole`: -1 rigid, +1 porous, 0 the side X falls on)."""
    for i in range(strategy.shape[0]):
        r = rows[i]
        for c in concerns[i]:
            if c >= 0:
                k = concern_bucket[c]
                buckets[r, k] = min(1.0, buckets[r, k] + concern_fill)
        s = strategy[i]
        x = prior_low[s] + (prior_high[s] - prior_low[s]) * u[i, u.shape[1] - 1]
        pole = family_pole[s]
        x_pole[r] = pole if pole != 0.0 else (1.0 if x >= 0 else -1.0)
        taie[r, 0] = min(max(x, axis_min), axis_max)


@njit(cache=True)
def start_sessions(rows, stance, stance_turn, turns_in_stance, arc_step, turn, taie_direction, score_sum, score_min,
                   score_max, phase_max, reward_totals, event_counts):
    """The session layer's side of a new session for `rows`: the stance detector back to rapport building at turn 0
    with no arc (§9.3.8; its windows count this session's turns only), and the session's turn count, TAIE
    direction and summary accumulators (§9.3.14.2) empty."""
    for b in rows:
        stance[b] = stance_turn[b] = turns_in_stance[b] = arc_step[b] = 0
        turn[b] = taie_direction[b] = phase_max[b] = 0
        for d in range(score_sum.shape[1]):
            score_sum[b, d] = 0.0
            score_min[b, d] = np.inf
            score_max[b, d] = -np.inf
        for k in range(reward_totals.shape[1]):
            reward_totals[b, k] = 0.0
        for k in range(event_counts.shape[1]):
            event_counts[b, k] = 0


@njit(cache=True)
def start_clients(rows, levels, alliance, rupture, session, total_turns, stance, stance_turn, turns_in_stance, arc_step,
                  turn, taie_direction, score_sum, score_min, score_max, phase_max, reward_totals, event_counts, slope,
                  offset, alliance_weight, alliance_sum):
    """The session layer's side of new clients in `rows`, their state in the kernel's `levels`: the alliance they
    start from (one minus the alliance-weighted mean pathology, summed in numpy's order as `CompiledGraph.alliance`
    reads it), no rupture open, session 1 with no turns behind, and a new session's start (`start_sessions`)."""
    scratch = np.empty(levels.shape[1])
    for b in rows:
        alliance[b] = 1.0 - weighted_pathology(levels, b, slope, offset, alliance_weight, alliance_sum, scratch)
        rupture[b] = False
        session[b] = 1
        total_turns[b] = 0
    start_sessions(rows, stance, stance_turn, turns_in_stance, arc_step, turn, taie_direction, score_sum, score_min,
                   score_max, phase_max, reward_totals, event_counts)


@njit(cache=True)
def enter_rows(rows, loa, armed_up, armed_down, buckets, bucket_session_start, slipping_sessions,
               qualifying_sessions, reached_core_in_stage, taie, first_sum, recent, count, transformation, thresholds,
               window, literal_zero, degenerate):
    """Freshly loaded clients, from their state arrays: each LOA threshold armed on the side the LOA lies (below it
    for growth, above its negative for regression), the session's buckets as its start, no stage evidence, and the
    first TAIE assessment: their axes now, and T from them (§9.3.4)."""
    for b in rows:
        for d in range(loa.shape[1]):
            for t in range(thresholds.shape[0]):
                armed_up[b, d, t] = loa[b, d] < thresholds[t]
                armed_down[b, d, t] = loa[b, d] > -thresholds[t]
        for k in range(buckets.shape[1]):
            bucket_session_start[b, k] = buckets[b, k]
        slipping_sessions[b] = qualifying_sessions[b] = 0
        reached_core_in_stage[b] = False
        for a in range(3):
            first_sum[b, a] = 0.0
            for i in range(window):
                recent[b, i, a] = 0.0
        count[b] = 0
        record_taie(b, taie, first_sum, recent, count, transformation, window, literal_zero, degenerate)


@njit(cache=True)
def reassess_rows(rows, first_sum, recent, count, transformation, window, literal_zero, degenerate):
    """T of `rows` again after their latest assessment changed (a full-mode TAIE blend)."""
    for b in rows:
        assess_taie(b, first_sum, recent, count, transformation, window, literal_zero, degenerate)


@njit(cache=True)
def open_sessions(rows, phase, turns_in_phase, reached_core, reached_integration, balance_entry, coiling_entry,
                  buckets, levels, balance_vec, path_slope, path_offset, weight, weight_sum, scratch):
    """A session's start for `rows`: phase A, and the balance and coiling it is measured from (sums in numpy's
    order, as `(buckets * balance_vec).sum(axis=-1)` and `CompiledGraph.coiling` form them). `scratch` is
    [max(N, 16)]."""
    n_buckets = buckets.shape[1]
    for b in rows:
        phase[b] = 0
        turns_in_phase[b] = 0
        reached_core[b] = False
        reached_integration[b] = False
        for k in range(n_buckets):
            scratch[k] = buckets[b, k] * balance_vec[k]
        balance_entry[b] = numpy_sum(scratch, 0, n_buckets)
        coiling_entry[b] = weighted_pathology(levels, b, path_slope, path_offset, weight, weight_sum, scratch)


@njit(cache=True)
def draw_rows(u, log, cos, sin, shift, bq, rows, drawing):
    """`start_rows` with its state arrays, the stage's numbers and its constants bound in the pack `drawing`."""
    start_rows(u, log, cos, sin, shift, bq, rows, *drawing.rows, *drawing.tables)


@njit(cache=True)
def enter_drawn(rows, u, log, cos, sin, shift, bq, strategy, concerns, entry):
    """The kernel's side of drawn clients entering `rows`, in one call: their starting states (`start_rows`), what
    their profiles add (`settle_rows`), their entry (`enter_rows`) and their first session's opening
    (`open_sessions`), each one's arguments after the rows bound in a pack of `entry` (`drawing`, `settling`,
    `entering`, `opening`: `BatchKernel.entry`)."""
    drawing, settling, entering, opening = entry.rows
    start_rows(u, log, cos, sin, shift, bq, rows, *drawing.rows, *drawing.tables)
    settle_rows(rows, strategy, concerns, u, *settling.rows, *settling.tables)
    enter_rows(rows, *entering.rows, *entering.tables)
    open_sessions(rows, *opening.rows, *opening.tables)


@njit(cache=True)
def end_sessions(rows, closing, opening, move, reward, complete):
    """The kernel's side of the end of the sessions of `rows`: `close_sessions` then `open_sessions`, each with its
    arguments after the rows' outputs bound in a pack (`closing`, `opening`)."""
    close_sessions(rows, move, reward, complete, *closing.rows, *closing.tables)
    open_sessions(rows, *opening.rows, *opening.tables)


@njit(cache=True)
def close_sessions(rows, move, reward, complete, stage, sessions_completed, reached_core, reached_core_in_stage,
                   reached_integration, qualifying_sessions, slipping_sessions, buckets, bucket_session_start, levels,
                   n_maladaptive, health_sign, decay, path_slope, path_offset, weight, weight_sum, evidence_sessions,
                   regression_sessions, scratch):
    """The stage assessment at the end of a session (§9.3.5.3) and the decay of the session's healthy bucket gains,
    for `rows`; `move`, `reward` and `complete` ([len(rows)]) are written. Means and coiling are summed in numpy's
    order. The next session is opened by `open_sessions`."""
    n_buckets = buckets.shape[1]
    n_adaptive = n_buckets - n_maladaptive
    for r in range(rows.shape[0]):
        b = rows[r]
        sessions_completed[b] += 1
        reached_core_in_stage[b] = reached_core_in_stage[b] or reached_core[b]
        s = stage[b]
        complete[r] = s == 4 and reached_integration[b]
        adaptive = numpy_sum(buckets[b], n_maladaptive, n_adaptive) / n_adaptive
        maladaptive = numpy_sum(buckets[b], 0, n_maladaptive) / n_maladaptive
        coiling = weighted_pathology(levels, b, path_slope, path_offset, weight, weight_sum, scratch)
        # each stage's criterion (stage 4 has no advance), and its slipping
        qualifies = (s == 1 and adaptive > STAGE1_ADAPTIVE_MIN and reached_core_in_stage[b]) or \
            (s == 2 and coiling < STAGE2_COILING_MAX and maladaptive < STAGE2_MALADAPTIVE_MAX
             and adaptive > STAGE2_ADAPTIVE_MIN) or \
            (s == 3 and coiling < STAGE3_COILING_MAX and sessions_completed[b] >= STAGE_SESSIONS_FOR_TERMINATION)
        slips = not qualifies and (
            (s == 2 and adaptive < REGRESS_2_ADAPTIVE_BELOW)
            or (s == 3 and (coiling > REGRESS_3_COILING_ABOVE or maladaptive > REGRESS_3_MALADAPTIVE_ABOVE
                            or adaptive < REGRESS_3_ADAPTIVE_BELOW))
            or (s == 4 and coiling > REGRESS_4_COILING_ABOVE))
        qualifying = qualifying_sessions[b] + 1 if qualifies else 0
        slipping = slipping_sessions[b] + 1 if slips else 0
        m = (1 if qualifying >= evidence_sessions else 0) - (1 if slipping >= regression_sessions else 0)
        move[r] = m
        stage[b] = s + m
        slipping_sessions[b] = 0 if m != 0 else slipping
        qualifying_sessions[b] = 0 if m != 0 else qualifying
        reached_core_in_stage[b] = reached_core_in_stage[b] and m == 0
        reward[r] = STAGE_FORWARD_REWARD if m > 0 else (STAGE_REGRESSION_REWARD if m < 0 else 0.0)
        for k in range(n_buckets):   # a session's healthy gains decay a little; its losses stay
            start, now = bucket_session_start[b, k], buckets[b, k]
            if (now - start) * health_sign[k] > 0:
                buckets[b, k] = now - decay[k] * (now - start)
            bucket_session_start[b, k] = buckets[b, k]
