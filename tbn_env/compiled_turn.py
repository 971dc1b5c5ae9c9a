"""One TBN turn for a batch of clients, compiled with numba (§9.3.14.2 steps 2-7 and 9).

`turn` loops over the clients and, for each, over its buckets, LOA dimensions, TAIE axes, nodes and
edges: batch 1 and batch 4096 run the same machine code, with no per-call numpy overhead and no BLAS.
It is the same arithmetic as `tbn_env.reference.ReferenceCore`, which stays the readable definition;
the property tests hold the two to 1e-9. `tbn_env.kernel.BatchKernel` owns the state and the tables
and calls `turn` through `turn_packed`, its state and tables bound once in a `tbn_env.compiled_pack.Pack`;
any run of rows can be stepped on its own, so threads may share a batch. The compiled code is cached on
disk, so its compile time is paid once per machine.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .compiled_pack import leaf

#: Columns of the per-client scalar outputs of `turn`.
OUT_COLUMNS = ("composite", "modifiers", "phase_transition", "taie", "taie_transformation_reward",
               "taie_direction_reward", "loa_event_reward", "phase_move", "phase_composite", "coiling",
               "alliance", "balance", "tmog_accuracy", "tmog_accuracy_delta", "taie_direction")
N_OUT = len(OUT_COLUMNS)
#: Rows of the turn's working memory (`turn_work`): the 12 scores' high and low intensities and their graph units,
#: the bucket improvements, the raw delta's inputs, then five per-node vectors.
_WORK_ROWS = 11


@njit(cache=True, inline="always")
def _apply_improvement(level, u, sign, bipolar, pole):
    """Move a level by u improvement units, direction-aware, clipped to [0, 10] (graph.apply_improvement)."""
    if bipolar:
        dev = level - 5.0
        side = pole if dev == 0.0 else (1.0 if dev > 0.0 else -1.0)
        new = 5.0 + side * max(0.0, abs(dev) - u)
    else:
        new = level + u * sign
    return min(10.0, max(0.0, new))


@njit(cache=True, inline="always")
def _improvement(old, new, sign, bipolar):
    if bipolar:
        return abs(old - 5.0) - abs(new - 5.0)
    return (new - old) * sign


@njit(cache=True, inline="always")
def slope_pathology(level, slope, offset):
    """A node's pathology as |level x slope + offset| (CompiledGraph's form of graph.pathology)."""
    return abs(level * slope + offset)


@njit(cache=True, inline="always")
def _distance(x, y, z, literal_zero):
    """TAIE distance from health (taie.distance)."""
    if literal_zero:
        return abs(x) + abs(y) + abs(z)
    return abs(x) / 10.0 + abs(y - 10.0) / 20.0 + abs(z - 10.0) / 20.0


@njit(cache=True, inline="always")
def record_taie(b, taie, first_sum, recent, count, transformation, window, literal_zero, degenerate):
    """Append client b's axes to its assessment history and set its transformation score T (§9.3.4); returns how
    many assessments T averaged (at most `window`)."""
    n = count[b]
    for a in range(3):
        if n < window:
            first_sum[b, a] += taie[b, a]
        for i in range(window - 1):
            recent[b, i, a] = recent[b, i + 1, a]
        recent[b, window - 1, a] = taie[b, a]
    count[b] = n + 1
    return assess_taie(b, first_sum, recent, count, transformation, window, literal_zero, degenerate)


@njit(cache=True, inline="always")
def assess_taie(b, first_sum, recent, count, transformation, window, literal_zero, degenerate):
    """Client b's transformation score T (§9.3.4) from the mean of its first and of its latest `window`
    assessments (fewer while it has fewer); returns how many it averaged."""
    k_bar = min(count[b], window)
    d_init = _distance(first_sum[b, 0] / k_bar, first_sum[b, 1] / k_bar, first_sum[b, 2] / k_bar, literal_zero)
    bx = 0.0
    by = 0.0
    bz = 0.0
    for i in range(window - k_bar, window):
        bx += recent[b, i, 0]
        by += recent[b, i, 1]
        bz += recent[b, i, 2]
    d_cur = _distance(bx / k_bar, by / k_bar, bz / k_bar, literal_zero)
    if d_init < degenerate:
        transformation[b] = 1.0
    else:
        transformation[b] = min(1.0, max(0.0, 1.0 - d_cur / d_init))
    return k_bar


@njit(cache=True, inline="always")
def turn_work(scores, levels, buckets):
    """Working memory for `turn` on these arrays (one per call: threads stepping runs of rows each have theirs)."""
    return np.empty((_WORK_ROWS, max(levels.shape[1], 2 * scores.shape[1] + buckets.shape[1])))


@leaf(nogil=True)
def turn(scores, noise, noise_turn, work,
         levels, tmog, buckets, loa, armed_up, armed_down, taie, x_pole, taie_first_sum, taie_recent, taie_count,
         transformation, stage, phase, turns_in_phase, balance_entry, coiling_entry, reached_core,
         reached_integration, bq_scale, bq, phase_w,
         bucket_op, fo_ptr, fo_idx, fo_val, literal, graph_units,
         supp_src, supp_dst, supp_k,
         path_slope, path_offset, imp_sign, is_bip, pole_side, weight, alliance_weight, engagement_idx,
         engagement_floor,
         lin_src, lin_dst, lin_coef, cond_src, cond_dst, cond_coef, n_factored, cond_factor, prereq_theta,
         comp_src, comp_dst, comp_coef,
         health_sign, balance_vec,
         loa_op, loa_bias, loa_th, hysteresis, growth_reward, regression_reward,
         axis_dims, taie_rate, literal_zero, stable_eps, window, transform_reward, toward_reward, away_reward,
         degenerate,
         attunement_idx, low_threshold, eta_base, eta_slope, eta_max, noise_sigma,
         fwd, reg, c_dwell, b_ref, c_ref, room_floor, bucket_weight, coiling_weight, alliance_base,
         alliance_slope, protective_alliance,
         stage_w, mod_avg, mod_threshold, mod_below, mod_stage, mod_value, phase_forward_reward,
         phase_regression_reward,
         out, out_fired, out_growth, out_regression, out_bucket_change, out_path):
    """Advance every client one turn in place; write the turn's readings and rewards to the `out*` arrays.

    `noise` holds each client's TMoG misreading draws for K turns ([B, K, N]); it reads turn `noise_turn[b]`.
    `work` is its working memory (`turn_work`): it allocates nothing."""
    n_clients, n_nodes = levels.shape
    n_dims, n_buckets, n_loa, n_th = scores.shape[1], buckets.shape[1], loa.shape[1], loa_th.shape[0]
    hi, lo, g_hi, g_lo = work[0, :n_dims], work[1, :n_dims], work[2, :n_dims], work[3, :n_dims]
    bucket_imp, x_in = work[4, :n_buckets], work[5, :2 * n_dims + n_buckets]
    path, raw, first, u, prop = work[6, :n_nodes], work[7, :n_nodes], work[8, :n_nodes], work[9, :n_nodes], \
        work[10, :n_nodes]
    weight_sum = weight.sum()
    alliance_sum = alliance_weight.sum()
    for b in range(n_clients):
        s = scores[b]
        st = stage[b] - 1
        ph = phase[b]
        # -- intensities (intensity.py)
        for d in range(n_dims):
            hi[d] = max(s[d] - 6.5, 0.0) / 3.5
            lo[d] = max(3.5 - s[d], 0.0) / 3.5
            if literal:
                g_hi[d] = s[d] if s[d] > 6.5 else 0.0
                g_lo[d] = s[d] if s[d] < 3.5 else 0.0
            else:
                g_hi[d] = graph_units * hi[d]
                g_lo[d] = graph_units * lo[d]
        # -- 2. buckets (§9.3.2)
        for k in range(n_buckets):
            change = 0.0
            for d in range(n_dims):
                change += hi[d] * bucket_op[d, k] + lo[d] * bucket_op[n_dims + d, k]
            old = buckets[b, k]
            new = min(1.0, max(0.0, old + change))
            buckets[b, k] = new
            out_bucket_change[b, k] = new - old
            bucket_imp[k] = (new - old) * health_sign[k]
        # -- 3. LOA and its TAIE events (§9.3.3)
        events = 0.0
        for j in range(n_loa):
            v = loa_bias[j] + loa[b, j]
            for d in range(n_dims):
                v += s[d] * loa_op[d, j]
            v = min(10.0, max(-10.0, v))
            loa[b, j] = v
            out_growth[b, j] = 0.0
            out_regression[b, j] = 0.0
            for t in range(n_th):
                th = loa_th[t]
                up = armed_up[b, j, t] and v >= th
                down = armed_down[b, j, t] and v <= -th
                armed_up[b, j, t] = (armed_up[b, j, t] or v < th - hysteresis) and not up
                armed_down[b, j, t] = (armed_down[b, j, t] or v > -th + hysteresis) and not down
                if up:
                    out_growth[b, j] = th
                if down:
                    out_regression[b, j] = -th
            if out_growth[b, j] > 0.0:
                events += growth_reward
            if out_regression[b, j] < 0.0:
                events += regression_reward
        # -- 4. TAIE axes and transformation (§9.3.4)
        t_before = transformation[b]
        bs = (s[axis_dims[0]] - 5.0) / 5.0
        x = taie[b, 0]
        if bs >= 0.0:
            sx = 0.0 if x == 0.0 else (1.0 if x > 0.0 else -1.0)
            x = x - sx * min(abs(x), taie_rate * bs)
        else:
            sx = x_pole[b] if x == 0.0 else (1.0 if x > 0.0 else -1.0)
            x = x - sx * taie_rate * bs
        taie[b, 0] = min(10.0, max(-10.0, x))
        taie[b, 1] = min(10.0, max(-10.0, taie[b, 1] + taie_rate * (s[axis_dims[1]] - 5.0) / 5.0))
        taie[b, 2] = min(10.0, max(-10.0, taie[b, 2] + taie_rate * (s[axis_dims[2]] - 5.0) / 5.0))
        k_bar = record_taie(b, taie, taie_first_sum, taie_recent, taie_count, transformation, window, literal_zero,
                            degenerate)
        direction = 0
        if k_bar >= 2:
            o = window - k_bar
            change = _distance(taie_recent[b, window - 1, 0], taie_recent[b, window - 1, 1],
                               taie_recent[b, window - 1, 2], literal_zero) - \
                _distance(taie_recent[b, o, 0], taie_recent[b, o, 1], taie_recent[b, o, 2], literal_zero)
            if abs(change) >= stable_eps:
                direction = 1 if change > 0.0 else -1
        # -- 5. ClientGraph (§9.3.1.2)
        lv = levels[b]
        allied = 0.0
        for n in range(n_nodes):
            path[n] = slope_pathology(lv[n], path_slope[n], path_offset[n])
            allied += path[n] * alliance_weight[n]
        strong = 1 if 1.0 - allied / alliance_sum > protective_alliance else 0
        for d in range(n_dims):  # the raw delta's inputs: [judge high | judge low | bucket improvement]
            x_in[d] = g_hi[d]
            x_in[n_dims + d] = g_lo[d]
        for k in range(n_buckets):
            x_in[2 * n_dims + k] = bucket_imp[k]
        for n in range(n_nodes):  # sparse: each node hears 2-4 dimensions and a few buckets
            r = 0.0
            for i in range(fo_ptr[n], fo_ptr[n + 1]):
                r += fo_val[i] * x_in[fo_idx[i]]
            raw[n] = r
        for e in range(supp_src.shape[0]):
            raw[supp_dst[e]] *= 1.0 - supp_k[e] * path[supp_src[e]]
        engagement = max(engagement_floor, lv[engagement_idx] / 10.0)
        for n in range(n_nodes):  # phase weight x BQ resistance 1 / (1 + BQ x the profile's scale) (§9.3.1.2)
            delta = raw[n] * (phase_w[ph, n] / (1.0 + bq[st, n] * bq_scale[b, n])) * engagement
            first[n] = _apply_improvement(lv[n], delta, imp_sign[n], is_bip[n], pole_side[n])
            u[n] = _improvement(lv[n], first[n], imp_sign[n], is_bip[n])
            prop[n] = 0.0
        for e in range(lin_src.shape[0]):
            prop[lin_dst[e]] += u[lin_src[e]] * lin_coef[e]
        for e in range(cond_src.shape[0]):
            src = cond_src[e]
            if e < n_factored:
                prop[cond_dst[e]] += u[src] * cond_factor[st, strong, e] * cond_coef[e]
            elif first[src] >= prereq_theta[e - n_factored]:
                prop[cond_dst[e]] += u[src] * cond_coef[e]
        for n in range(n_nodes):
            raw[n] = 0.0  # reused: level added by compensatory edges
        for e in range(comp_src.shape[0]):  # they fire on the source's first-order rise only
            src = comp_src[e]
            raw[comp_dst[e]] += max(first[src] - lv[src], 0.0) * comp_coef[e]
        for n in range(n_nodes):
            moved = _apply_improvement(first[n], prop[n], imp_sign[n], is_bip[n], pole_side[n])
            lv[n] = min(10.0, max(0.0, moved + raw[n]))
        # -- 6. TMoG (§9.3.14.1)
        att = s[attunement_idx]
        draws = noise[b, noise_turn[b]]
        eta = min(max(eta_base + eta_slope * (att - 5.0) / 5.0, 0.0), eta_max)
        err_before = 0.0
        err_after = 0.0
        for n in range(n_nodes):
            err_before += abs(lv[n] - tmog[b, n])
            est = tmog[b, n] + eta * (lv[n] - tmog[b, n])
            if att < low_threshold:
                away = est - lv[n]
                side = (1.0 if away > 0.0 else -1.0) if away != 0.0 else (
                    1.0 if draws[n] > 0.0 else (-1.0 if draws[n] < 0.0 else 0.0))
                est += noise_sigma * abs(draws[n]) * side
            est = min(10.0, max(0.0, est))
            tmog[b, n] = est
            err_after += abs(est - lv[n])
        acc_before = 1.0 - err_before / n_nodes / 10.0
        acc = 1.0 - err_after / n_nodes / 10.0
        # -- 7. phase (§9.3.5)
        coiled = 0.0
        allied = 0.0
        for n in range(n_nodes):
            p = slope_pathology(lv[n], path_slope[n], path_offset[n])
            out_path[b, n] = p
            coiled += p * weight[n]
            allied += p * alliance_weight[n]
        coiling = coiled / weight_sum
        alliance = 1.0 - allied / alliance_sum
        balance = 0.0
        for k in range(n_buckets):
            balance += buckets[b, k] * balance_vec[k]
        turns_in_phase[b] += 1
        bucket_shift = balance - balance_entry[b]
        coiling_gain = coiling_entry[b] - coiling
        room_b = (1.0 - balance_entry[b]) / 2.0 if bucket_shift >= 0.0 else (1.0 + balance_entry[b]) / 2.0
        room_c = coiling_entry[b] if coiling_gain >= 0.0 else 1.0 - coiling_entry[b]
        composite = (bucket_weight * bucket_shift / (b_ref * max(room_floor, room_b))
                     + coiling_weight * coiling_gain / (c_ref * max(room_floor, room_c))) * \
            (alliance_base + alliance_slope * alliance)
        move = 0
        if composite >= fwd[st, ph] and (ph != 2 or turns_in_phase[b] >= c_dwell):
            move = 1
        elif ph > 0 and composite <= reg[st]:
            move = -1
        if move != 0:
            phase[b] = ph + move
            turns_in_phase[b] = 0
            balance_entry[b] = balance
            coiling_entry[b] = coiling
        if phase[b] >= 2:
            reached_core[b] = True
        if phase[b] == 3:
            reached_integration[b] = True
        # -- 9. reward (§9.3.6)
        weighted = 0.0
        for d in range(n_dims):
            weighted += stage_w[st, d] * s[d]
        modifiers = 0.0
        for m in range(mod_value.shape[0]):
            level = 0.0
            for d in range(n_dims):
                level += s[d] * mod_avg[d, m]
            hit = (level < mod_threshold[m]) if mod_below[m] else (level > mod_threshold[m])
            hit = hit and stage[b] == mod_stage[m]
            out_fired[b, m] = hit
            if hit:
                modifiers += mod_value[m]
        t_reward = transform_reward * (transformation[b] - t_before)
        d_reward = toward_reward if direction < 0 else (away_reward if direction > 0 else 0.0)
        phase_reward = phase_forward_reward if move > 0 else (phase_regression_reward if move < 0 else 0.0)
        out[b, 0] = weighted
        out[b, 1] = modifiers
        out[b, 2] = phase_reward
        out[b, 3] = t_reward + d_reward + events
        out[b, 4] = t_reward
        out[b, 5] = d_reward
        out[b, 6] = events
        out[b, 7] = move
        out[b, 8] = composite
        out[b, 9] = coiling
        out[b, 10] = alliance
        out[b, 11] = balance
        out[b, 12] = acc
        out[b, 13] = acc - acc_before
        out[b, 14] = direction


@njit(cache=True, nogil=True)
def turn_packed(state, scores, noise, noise_turn, out, fired, growth, regression, bucket_change, path):
    """`turn` with the kernel's state and tables from one pack (`BatchKernel`'s, or one of its runs of rows)."""
    levels, buckets = state.rows[0], state.rows[2]
    turn(scores, noise, noise_turn, turn_work(scores, levels, buckets), *state.rows, *state.tables, out, fired, growth,
         regression, bucket_change, path)
