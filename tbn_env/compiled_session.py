"""The session layer's turn and close, compiled: `session_turn` is the whole of `SessionBatch.step` but a session's
close, `session_close` the close but its summary's copies.

It reads each client's TMoG misreading draws, runs the kernel's turn, then the bookkeeping (`account`: the
rupture rule, the stance signals and update (§9.3.8), the open-rupture flag and the per-session accumulators
behind the session summary, §9.3.14.2), the reward and the signals a therapist sees. The formulas are the ones
`tbn_env.stance` and `tbn_env.signals` define.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .compiled_pack import leaf
from .compiled_state import end_sessions, enter_drawn, start_clients, start_sessions
from .compiled_turn import OUT_COLUMNS, turn, turn_work
from .signals import express
from .stance import _update, defensiveness, overwhelm, rupture_open

# columns of SessionBatch.event_counts (the order of session_batch.EVENT_TYPES)
PHASE_FORWARD, PHASE_REGRESSION, TAIE_GROWTH, TAIE_REGRESSION, RUPTURE, STANCE, STAGE_FORWARD, STAGE_REGRESSION = \
    range(8)
# the turn's outputs the bookkeeping reads (columns of its `out` table)
_ALLIANCE, _COMPOSITE, _MODIFIERS, _PHASE_TRANSITION, _TAIE, _PHASE_MOVE, _DIRECTION = map(OUT_COLUMNS.index, (
    "alliance", "composite", "modifiers", "phase_transition", "taie", "phase_move", "taie_direction"))


@njit(cache=True, inline="always")
def _total(out, i, stage_transition):
    """Row i's reward: its parts summed in the order of `session_batch.REWARD_PARTS` (as RewardBreakdown.total)."""
    return out[i, _COMPOSITE] + out[i, _MODIFIERS] + out[i, _PHASE_TRANSITION] + stage_transition + out[i, _TAIE]


@njit(cache=True)
def session_close(rows, boundary, closed_totals, closed_counts, stage_after):
    """The close of the sessions of `rows` (after their summaries' copies were taken), its arguments bound in the
    pack `boundary`: the kernel's stage assessment, decay and next session's opening (`compiled_state.end_sessions`,
    its packs first), the session layer's books (`close_books`, with the `books` pack), the stage each session's
    row is in after it (`stage_after`), the session layer's start of the next session (`start_sessions`, the
    `starting` pack) and the signals the rows show in it (`signals.express`, the `shown` pack, each row's rupture
    first). Returns whether the signals found a spent block (then none were drawn)."""
    closing, opening, books, starting, shown = boundary.rows
    n = rows.shape[0]
    move, reward, complete = np.empty(n, np.int64), np.empty(n), np.empty(n, np.bool_)
    end_sessions(rows, closing, opening, move, reward, complete)
    close_books(rows, move, reward, complete, closed_totals, closed_counts, *books.rows, *books.tables)
    stage = closing.rows[0]
    for r in range(n):
        stage_after[r] = stage[rows[r]]
    start_sessions(rows, *starting.rows)
    return express(rows, *shown.rows, *shown.tables)


@njit(cache=True)
def admit_drawn(rows, u, log, cos, sin, shift, bq, strategy, concerns, admission):
    """Drawn clients entering `rows` in one call: the kernel's side (`compiled_state.enter_drawn`, its pack
    first), the session layer's (`start_clients`, the `starting` pack) and the signals they show on arrival
    (`signals.express`, the `shown` pack, no rupture in any row). Returns whether the signals found a spent block
    (then none were drawn)."""
    entry, starting, shown = admission.rows
    enter_drawn(rows, u, log, cos, sin, shift, bq, strategy, concerns, entry)
    start_clients(rows, *starting.rows, *starting.tables)
    return express(rows, *shown.rows, *shown.tables)


@njit(cache=True)
def close_books(rows, move, stage_transition, complete, closed_totals, closed_counts, out, stage_move, stage_reward,
                step_complete, terminated, truncated, happened, reward, session, rupture, reward_totals, event_counts,
                episode_ends, max_sessions):
    """The session layer's side of closing the sessions of `rows` (the kernel's stage assessment gave each its
    stage `move`, `stage_transition` reward and whether treatment is `complete`): the step's record (the reward
    with its stage-transition term, the events), the session's reward and event totals, copied to `closed_totals`
    and `closed_counts` for its summary, then the episode's end (`episode_ends`: every close ends it; else treatment
    complete, or `max_sessions` held, 0 for no limit) or the next session's number and a closed rupture."""
    for r in range(rows.shape[0]):
        i = rows[r]
        stage_move[i], stage_reward[i], step_complete[i] = move[r], stage_transition[r], complete[r]
        reward[i] = _total(out, i, stage_transition[r])
        reward_totals[i, 3] = stage_transition[r]
        event_counts[i, STAGE_FORWARD] += move[r] > 0
        event_counts[i, STAGE_REGRESSION] += move[r] < 0
        happened[i] = happened[i] or move[r] != 0
        closed_totals[r] = reward_totals[i]
        closed_counts[r] = event_counts[i]
        terminated[i] = episode_ends or complete[r]
        if not episode_ends and max_sessions > 0:
            truncated[i] = not complete[r] and session[i] >= max_sessions
        if not (terminated[i] or truncated[i]):   # a finished episode keeps its last view
            session[i] += 1
            rupture[i] = False


@njit(cache=True, nogil=True)
def session_turn(run, max_turns, scores, client_rupture, session_end):
    """A whole turn of `SessionBatch` in one call, its bound arguments in the pack `run` (a run of rows' packs:
    `state`, `books`, `shown`, `draws` and `written`): the kernel's turn (its state and tables in `state`),
    `account` (the session layer's state and constants in `books`), the reward, whose stage-transition
    term is 0 until a session closes (`close_books`), and the signals of the rows whose session goes on
    (`signals.express`, its arguments in `shown`; a closing session's come after its close). The TMoG
    misreadings come from each client's block of draws (`draws`: the blocks, their use, the rows to
    refill, then the attunement's index, the low-score gate and the block's length). What the turn produced is
    written to the arrays of `written` (the step's record, `session_batch.BatchStep`, then the stage it
    reads): the turn's outputs, its flags, the stance, phase and stage, the reward, and the close's columns zeroed.
    Returns how many sessions end (-n, with nothing changed, when n rows' blocks are spent: refill them and call
    again), and whether the signals found a spent block (then none were drawn)."""
    state, books, shown, draws, written = run.rows
    noise, used, refill = draws.rows
    att_i, low_gate, block = draws.tables
    n = spent_draws(scores, att_i, low_gate, used, block, refill)
    if n:
        return -n, 0
    out, fired, growth, regression, bucket_change, path, ruptured, stance_before, stance_after, phase_after, \
        stage_before, stage_move, stage_reward, complete, terminated, truncated, happened, crossed, reward, \
        stage = written.rows
    noise_turn = np.empty(scores.shape[0], np.int64)
    noise_turns(scores, att_i, low_gate, used, block, noise_turn)
    turn(scores, noise, noise_turn, turn_work(scores, state.rows[0], state.rows[2]), *state.rows, *state.tables, out,
         fired, growth, regression, bucket_change, path)
    ends = account(scores, client_rupture, max_turns, session_end, out[:, _ALLIANCE], path, bucket_change,
                   out[:, _COMPOSITE], out[:, _MODIFIERS], out[:, _PHASE_TRANSITION], out[:, _TAIE],
                   out[:, _PHASE_MOVE], out[:, _DIRECTION], growth, regression, ruptured, stance_before, happened,
                   crossed, *books.rows, *books.tables)
    going_on = np.empty(out.shape[0], np.int64)
    n = 0
    phase, stance = books.rows[4], books.rows[5]
    for i in range(out.shape[0]):
        reward[i] = _total(out, i, 0.0)
        stance_after[i], phase_after[i], stage_before[i] = stance[i], phase[i], stage[i]
        stage_move[i], stage_reward[i] = 0, 0.0   # until a close writes them
        complete[i] = terminated[i] = truncated[i] = False
        if not session_end[i]:
            going_on[n] = i
            n += 1
    return ends, express(going_on[:n], ruptured, *shown.rows, *shown.tables)


@leaf()
def account(scores, client_rupture, max_turns, session_end, alliance_now, path, bucket_change, composite, modifiers,
            phase_transition, taie, phase_move, direction, loa_growth, loa_regression, ruptured, stance_before,
            happened, crossed, alliance, taie_direction, levels, buckets, phase, stance, stance_turn, turns_in_stance,
            arc_step, att_window, res_window, rupture, turn, total_turns, score_sum, score_min, score_max, phase_max,
            reward_totals, event_counts, sig_att, sig_disclosure, sig_engagement, sig_defensiveness, sig_overwhelm,
            att_i, safety_i, repair_i, low_gate, rupture_drop, disclosure_i, engagement_i, defense_idx, distrust_i,
            surge_idx, surge_at_ten, disclosure_min, engagement_min, defensiveness_max, min_dwell, arc_steps,
            arc_resistance_max, arc_overwhelm_max):
    """Everything after the kernel's turn, in place: first the turn's inputs and outputs (`ruptured`,
    `stance_before`, `happened` (whether the row had any event) and `crossed` (an LOA threshold) are written, and
    `session_end` too when `max_turns` > 0: a session ends after that many turns), then the session state, the
    stance signals' scratch and the constants.
    Returns how many sessions end with this turn."""
    b, d = scores.shape
    for i in range(b):
        turn[i] += 1
        total_turns[i] += 1
        low = scores[i, att_i] < low_gate
        ruptured[i] = (low and scores[i, safety_i] < low_gate) or alliance[i] - alliance_now[i] >= rupture_drop \
            or client_rupture[i]
        alliance[i] = alliance_now[i]
        taie_direction[i] = int(direction[i])
        defense = 0.0
        for j in defense_idx:
            defense += path[i, j]
        surge = 0.0
        for j in surge_idx:
            surge += max(bucket_change[i, j], 0.0)
        sig_att[i] = scores[i, att_i]
        sig_disclosure[i] = levels[i, disclosure_i]
        sig_engagement[i] = levels[i, engagement_i]
        sig_defensiveness[i] = defensiveness(defense / len(defense_idx), buckets[i, distrust_i])
        sig_overwhelm[i] = overwhelm(surge, surge_at_ten)
        stance_before[i] = stance[i]
    _update(stance, stance_turn, turns_in_stance, arc_step, att_window, res_window, sig_att, sig_disclosure,
            sig_engagement, sig_defensiveness, sig_overwhelm, ruptured, disclosure_min, engagement_min,
            defensiveness_max, min_dwell, arc_steps, arc_resistance_max, arc_overwhelm_max)
    for i in range(b):
        rupture[i] = rupture_open(rupture[i], ruptured[i], scores[i, repair_i])
        for j in range(d):
            score_sum[i, j] += scores[i, j]
            score_min[i, j] = min(score_min[i, j], scores[i, j])
            score_max[i, j] = max(score_max[i, j], scores[i, j])
        phase_max[i] = max(phase_max[i], phase[i])
        reward_totals[i, 0] += composite[i]
        reward_totals[i, 1] += modifiers[i]
        reward_totals[i, 2] += phase_transition[i]
        reward_totals[i, 4] += taie[i]
        event_counts[i, PHASE_FORWARD] += phase_move[i] > 0
        event_counts[i, PHASE_REGRESSION] += phase_move[i] < 0
        crossings = 0
        for k in range(loa_growth.shape[1]):
            event_counts[i, TAIE_GROWTH] += loa_growth[i, k] > 0
            event_counts[i, TAIE_REGRESSION] += loa_regression[i, k] < 0
            crossings += (loa_growth[i, k] > 0) + (loa_regression[i, k] < 0)
        event_counts[i, RUPTURE] += ruptured[i]
        event_counts[i, STANCE] += stance[i] != stance_before[i]
        crossed[i] = crossings > 0
        happened[i] = phase_move[i] != 0 or crossed[i] or ruptured[i] or stance[i] != stance_before[i]
    ends = 0
    for i in range(b):
        if max_turns > 0:
            session_end[i] = turn[i] >= max_turns
        ends += session_end[i]
    return ends


@leaf()
def spent_draws(scores, att_i, low_gate, used, block, refill):
    """The rows about to read past their spent block of misreading draws (the misattuned ones whose block is used
    up), written to the first entries of `refill`; returns their count. Nothing else changes."""
    n = 0
    for i in range(scores.shape[0]):
        if scores[i, att_i] < low_gate and used[i] >= block:
            refill[n] = i
            n += 1
    return n


@leaf()
def noise_turns(scores, att_i, low_gate, used, block, turn):
    """Which turn of its block of misreading draws each client reads (`turn`, in place; no block is spent): a
    misattuned row reads its next turn; the others read none (their index is any valid one)."""
    for i in range(scores.shape[0]):
        turn[i] = min(used[i], block - 1)
        if scores[i, att_i] < low_gate:
            used[i] += 1
