"""The compiled session boundaries keep numpy's bits: a client's starting state, a session's close and the next
session's opening equal the array expressions that define them (written out here), value for value."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tbn_env import BatchKernel, ClientGraph, CompiledGraph, Params
from tbn_env.buckets import ADAPTIVE, BUCKET_HEALTH_SIGN, MALADAPTIVE
from tbn_env.compiled_state import numpy_sum
from tbn_env.graph import LEVEL_MAX, LEVEL_MIN
from tbn_env.loa import LOA_DIMENSIONS
from tbn_env.params import STAGE_FORWARD_REWARD, STAGE_REGRESSION_REWARD, STAGE_SESSIONS_FOR_TERMINATION
from tbn_env.phase_shift import (REGRESS_2_ADAPTIVE_BELOW, REGRESS_3_ADAPTIVE_BELOW, REGRESS_3_COILING_ABOVE,
                                 REGRESS_3_MALADAPTIVE_ABOVE, REGRESS_4_COILING_ABOVE, STAGE1_ADAPTIVE_MIN,
                                 STAGE2_ADAPTIVE_MIN, STAGE2_COILING_MAX, STAGE2_MALADAPTIVE_MAX, STAGE3_COILING_MAX)
from tbn_env.state import InitialBatch, state_draws, states_from_uniforms
from tbn_env.taie import AXIS_MAX, AXIS_MIN

GRAPH = ClientGraph.default()
COMPILED = CompiledGraph(GRAPH)
N = len(GRAPH.nodes)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 1100), start=st.integers(0, 9), scale=st.sampled_from([1e-3, 1.0, 1e6]),
       seed=st.integers(0, 2**32 - 1))
def test_numpy_sum_adds_in_numpys_order(n, start, scale, seed):
    """numpy sums pairwise (blocks of eight running sums, halves above 128 terms): not the order of a loop."""
    a = np.random.default_rng(seed).standard_normal(start + n) * scale
    assert numpy_sum(a, start, n) == a[start:].sum()


def test_a_loop_in_order_would_not_keep_numpys_bits():
    """The reason numpy_sum exists: a plain running sum over 142 terms differs from numpy's in the last bits."""
    rows = np.random.default_rng(0).standard_normal((200, N))
    running = [sum(row.tolist()) for row in rows]
    assert sum(r != s for r, s in zip(running, rows.sum(axis=-1))) > 50


def _states_as_arrays(u, stage, params, shift):
    """A starting state as numpy array expressions (the definition `states_from_uniforms` compiles)."""
    b = len(u)
    cut = np.cumsum([N, len(MALADAPTIVE), len(ADAPTIVE), len(LOA_DIMENSIONS), 2 * ((N + 1) // 2)])
    u_path, u_mal, u_ada, u_loa, u_noise = np.split(u[:, :-1], cut[:-1], axis=1)
    lo, hi = params.init_pathology[stage - 1]
    p = lo + (hi - lo) * u_path
    if shift is not None:
        p = np.clip(p + shift, 0.0, 1.0)
    levels = GRAPH.levels_from_pathology(p)
    jitter = params.init_bucket_jitter
    buckets = np.concatenate([params.init_maladaptive[stage - 1] + jitter * (2.0 * u_mal - 1.0),
                              params.init_adaptive[stage - 1] + jitter * (2.0 * u_ada - 1.0)], axis=1).clip(0.0, 1.0)
    loa_lo, loa_hi = params.init_loa[stage - 1]
    loa = loa_lo + (loa_hi - loa_lo) * u_loa
    path, load = GRAPH.pathologies(levels), GRAPH.node_table["taie"]
    health = 1.0 - 2.0 * path
    taie = np.clip(np.stack([10.0 * (path * load[:, 0]).sum(axis=-1) / np.abs(load[:, 0]).sum(),
                             10.0 * (health * np.abs(load[:, 1])).sum(axis=-1) / np.abs(load[:, 1]).sum(),
                             10.0 * (health * np.abs(load[:, 2])).sum(axis=-1) / np.abs(load[:, 2]).sum()], axis=-1),
                   AXIS_MIN, AXIS_MAX)
    radius = np.sqrt(-2.0 * np.log1p(-u_noise[:, 0::2]))
    angle = 2.0 * np.pi * u_noise[:, 1::2]
    normal = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)], axis=1)[:, :N]
    tmog = np.clip(levels + params.tmog_sigma_by_stage[stage - 1] * normal, LEVEL_MIN, LEVEL_MAX)
    assert len(levels) == b
    return {"levels": levels, "buckets": buckets, "loa": loa, "taie": taie, "tmog": tmog,
            "x_pole": np.where(taie[:, 0] >= 0, 1.0, -1.0), "stage": np.full(b, stage),
            "sessions_completed": np.full(b, params.init_sessions_completed[stage - 1]), "bq_scale": np.ones((b, N))}


@pytest.mark.parametrize("stage", [1, 2, 3, 4])
@pytest.mark.parametrize("tilted", [False, True])
def test_a_starting_state_has_the_bits_of_its_array_expressions(stage, tilted):
    rng = np.random.default_rng(stage)
    u = rng.random((64, state_draws(N)))
    shift = rng.uniform(-0.3, 0.3, (64, N)) if tilted else None
    params = Params()
    drawn = states_from_uniforms(u, stage, GRAPH, params, shift)
    for name, expected in _states_as_arrays(u, stage, params, shift).items():
        np.testing.assert_array_equal(getattr(drawn, name), expected, err_msg=name)


def _close_as_arrays(k: BatchKernel, rows: np.ndarray) -> dict[str, np.ndarray]:
    """A session's close as numpy array expressions (the definition `BatchKernel.end_session` compiles), on copies:
    the stage assessment, the decay and the next session's entry balance and coiling."""
    p, mal = k.params, k.n_mal
    completed = k.sessions_completed[rows] + 1
    in_stage = k.reached_core_in_stage[rows] | k.reached_core[rows]
    stage = k.stage[rows]
    complete = (stage == 4) & k.reached_integration[rows]
    adaptive, maladaptive = k.buckets[rows, mal:].mean(axis=1), k.buckets[rows, :mal].mean(axis=1)
    coiling = _coiling(k.levels[rows])
    qualifies = ((stage == 1) & (adaptive > STAGE1_ADAPTIVE_MIN) & in_stage) | \
        ((stage == 2) & (coiling < STAGE2_COILING_MAX) & (maladaptive < STAGE2_MALADAPTIVE_MAX)
         & (adaptive > STAGE2_ADAPTIVE_MIN)) | \
        ((stage == 3) & (coiling < STAGE3_COILING_MAX) & (completed >= STAGE_SESSIONS_FOR_TERMINATION))
    slips = (((stage == 2) & (adaptive < REGRESS_2_ADAPTIVE_BELOW))
             | ((stage == 3) & ((coiling > REGRESS_3_COILING_ABOVE) | (maladaptive > REGRESS_3_MALADAPTIVE_ABOVE)
                                | (adaptive < REGRESS_3_ADAPTIVE_BELOW)))
             | ((stage == 4) & (coiling > REGRESS_4_COILING_ABOVE))) & ~qualifies
    qualifying = np.where(qualifies, k.qualifying_sessions[rows] + 1, 0)
    slipping = np.where(slips, k.slipping_sessions[rows] + 1, 0)
    move = (qualifying >= p.stage_evidence_sessions).astype(int) - (slipping >= p.stage_regression_sessions).astype(int)
    start, now = k.bucket_session_start[rows], k.buckets[rows]
    buckets = np.where((now - start) * BUCKET_HEALTH_SIGN > 0, now - k.decay * (now - start), now)
    return {"move": move, "complete": complete, "stage": stage + move, "sessions_completed": completed,
            "reward": np.where(move > 0, STAGE_FORWARD_REWARD, np.where(move < 0, STAGE_REGRESSION_REWARD, 0.0)),
            "qualifying_sessions": np.where(move != 0, 0, qualifying),
            "slipping_sessions": np.where(move != 0, 0, slipping),
            "reached_core_in_stage": in_stage & (move == 0), "buckets": buckets, "bucket_session_start": buckets,
            "balance_entry": (buckets * k.balance_vec).sum(axis=-1), "coiling_entry": _coiling(k.levels[rows])}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), stage=st.integers(1, 4))
def test_a_sessions_close_has_the_bits_of_its_array_expressions(seed, stage):
    """Clients mid-treatment with random buckets and counters: every stage's criteria, advances and slips."""
    rng = np.random.default_rng(seed)
    b = 32
    k = BatchKernel(b, graph=GRAPH, compiled=COMPILED)
    inits = states_from_uniforms(rng.random((b, state_draws(N))), stage, GRAPH)
    k.load_rows(np.arange(b), inits)
    k.buckets[:] = rng.random(k.buckets.shape)
    k.bucket_session_start[:] = rng.random(k.buckets.shape)
    k.levels[:] = rng.uniform(0, 10, k.levels.shape)
    for flag in (k.reached_core, k.reached_core_in_stage, k.reached_integration):
        flag[:] = rng.random(b) < 0.5
    k.qualifying_sessions[:] = rng.integers(0, 3, b)
    k.slipping_sessions[:] = rng.integers(0, 3, b)
    k.sessions_completed[:] = rng.integers(0, 14, b)
    rows = np.sort(rng.choice(b, 20, replace=False))
    expected = _close_as_arrays(k, rows)
    move, reward, complete = k.end_session(rows)
    got = {"move": move, "reward": reward, "complete": complete}
    for name, value in expected.items():
        actual = got[name] if name in got else getattr(k, name)[rows]
        np.testing.assert_array_equal(actual, value, err_msg=name)
    assert (k.phase[rows] == 0).all() and not k.reached_integration[rows].any()


def test_a_loaded_client_starts_from_its_own_axes():
    """Entry: one TAIE assessment (its axes), T = 0 (nothing transformed yet), and the session's entry readings."""
    k = BatchKernel(5, graph=GRAPH, compiled=COMPILED)
    inits = states_from_uniforms(np.random.default_rng(3).random((5, state_draws(N))), 2, GRAPH)
    k.load_rows(np.arange(5), inits)
    assert isinstance(inits, InitialBatch)
    np.testing.assert_array_equal(k.taie_recent[:, -1], inits.taie)
    np.testing.assert_array_equal(k.taie_first_sum, inits.taie)
    assert (k.taie_count == 1).all() and (k.transformation == 0.0).all()
    np.testing.assert_array_equal(k.balance_entry, (inits.buckets * k.balance_vec).sum(axis=-1))
    np.testing.assert_array_equal(k.coiling_entry, _coiling(inits.levels))


def _coiling(levels: np.ndarray) -> np.ndarray:
    """Coiling as array expressions: the node weights' mean of |level x slope + offset|."""
    return (np.abs(levels * COMPILED.path_slope + COMPILED.path_offset) * COMPILED.weight).sum(axis=-1) / \
        COMPILED.weight.sum()


def test_the_readings_have_the_bits_of_their_array_expressions():
    levels = np.random.default_rng(4).uniform(0, 10, (300, N))
    path = np.abs(levels * COMPILED.path_slope + COMPILED.path_offset)
    np.testing.assert_array_equal(COMPILED.pathology(levels), path)
    np.testing.assert_array_equal(COMPILED.coiling(levels), _coiling(levels))
    np.testing.assert_array_equal(COMPILED.alliance(levels), 1.0 - (path * COMPILED.alliance_weight).sum(axis=-1)
                                  / COMPILED.alliance_weight.sum())
    assert COMPILED.coiling(levels[7]) == _coiling(levels)[7]


def _loaded_as_arrays(batch, rows: np.ndarray, init: InitialBatch, seeds: list[int], signal_seeds: list[int]) -> dict:
    """`SessionBatch.load_rows` as numpy writes on a copy of the batch's state (the definition `start_clients`
    compiles): the kernel's rows, its LOA thresholds armed, no stage evidence, the first TAIE assessment, phase A
    entered at the client's balance and coiling, the session layer's counters and a new session's, the alliance,
    the streams at `default_rng(seed)` with their first blocks drawn, and the first signals."""
    from tbn_env.session_batch import NOISE_BLOCK
    from tbn_env.signals import Signals
    state = batch.state_dict()
    k, st, cg = state["kernel"], state["stance"], batch.cg
    for name in ("levels", "bq_scale", "tmog", "buckets", "loa", "taie", "x_pole", "stage", "sessions_completed"):
        k[name][rows] = getattr(init, name)
    th = batch.kernel.loa_th
    k["bucket_session_start"][rows] = init.buckets
    k["armed_up"][rows], k["armed_down"][rows] = init.loa[:, :, None] < th, init.loa[:, :, None] > -th
    k["taie_first_sum"][rows], k["taie_recent"][rows], k["taie_count"][rows] = init.taie, 0.0, 1
    k["taie_recent"][rows, -1] = init.taie
    k["transformation"][rows] = 0.0
    for name in ("slipping_sessions", "qualifying_sessions", "reached_core_in_stage", "phase", "turns_in_phase",
                 "reached_core", "reached_integration"):
        k[name][rows] = 0
    k["balance_entry"][rows] = (init.buckets * batch.kernel.balance_vec).sum(axis=-1)
    k["coiling_entry"][rows] = _coiling(init.levels)
    path = np.abs(init.levels * cg.path_slope + cg.path_offset)
    state["alliance"][rows] = 1.0 - (path * cg.alliance_weight).sum(axis=-1) / cg.alliance_weight.sum()
    for name in ("stance", "turn", "turns_in_stance", "arc_step"):
        st[name][rows] = 0
    state["session"][rows] = 1
    for name in ("rupture", "turn", "total_turns", "taie_direction", "phase_max", "score_sum", "reward_totals",
                 "event_counts"):
        state[name][rows] = 0
    state["score_min"][rows], state["score_max"][rows] = np.inf, -np.inf
    for i, seed in zip(rows.tolist(), seeds):
        noise = np.random.default_rng(seed)
        state["_noise_block"][i] = noise.standard_normal((NOISE_BLOCK, N))
        state["rngs"][i] = noise.bit_generator.state
    state["_noise_used"][rows] = 0
    signals = Signals(batch.batch)
    signals.load_state_dict(state["signals"])
    signals.streams.seed(rows.tolist(), signal_seeds)
    signals.draw_blocks(rows.tolist())
    signals.express(rows, k["phase"], k["buckets"], np.zeros(batch.batch, dtype=bool))
    state["signals"] = signals.state_dict()
    return state


def test_new_clients_are_loaded_as_their_array_writes():
    """Rows of a batch whose every state array holds other values (noise, never 0 or False) take new clients: what
    the compiled loader writes equals the array writes that define it, and the other rows keep their values."""
    from tbn_env.session_batch import SessionBatch
    rng = np.random.default_rng(11)
    batch = SessionBatch(7, episode="treatment", max_turns=5)
    state = batch.state_dict()
    for array in [*state["kernel"].values(), *state["stance"].values(), *(state[k] for k in batch._STATE),
                  *(state["signals"][k] for k in ("affect", "arousal", "rupture_cue", "_used"))]:
        array[...] = rng.integers(1, 3, array.shape) if array.dtype.kind in "iub" else rng.uniform(1, 5, array.shape)
    batch.load_state_dict(state)
    rows = np.array([5, 1, 2])
    init = states_from_uniforms(rng.random((3, state_draws(N))), 3, GRAPH)
    seeds, signal_seeds = rng.integers(0, 2**63, (2, 3)).tolist()
    expected = _loaded_as_arrays(batch, rows, init, seeds, signal_seeds)
    batch.load_rows(rows, init, seeds, signal_seeds)
    assert _differences(batch.state_dict(), expected) == []


def _differences(a, b, at: str = "") -> list[str]:
    """Where two trees of dicts, lists and arrays differ."""
    if isinstance(a, dict):
        return [f"{at}/keys"] if a.keys() != b.keys() else [d for k in a for d in _differences(a[k], b[k], f"{at}/{k}")]
    if isinstance(a, list):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{at}[{i}]")]
    return [] if np.array_equal(a, b) else [at]


def test_drawn_clients_are_loaded_straight_into_their_rows_as_their_states_would_be():
    """The envs' own draws (`DrawnClients`, written into the batch's rows unchecked) load exactly as the same clients
    drawn into arrays of their own and loaded checked: rows out of order in a batch whose other rows hold noise."""
    from tbn_env.profiles import DrawnClients, initial_states, profile_draws, profiles_from_uniforms
    from tbn_env.session_batch import SessionBatch
    rng = np.random.default_rng(12)
    twins = [SessionBatch(7, episode="treatment", max_turns=5) for _ in range(2)]
    state = twins[0].state_dict()
    for array in [*state["kernel"].values(), *state["stance"].values(), *(state[k] for k in twins[0]._STATE)]:
        array[...] = rng.integers(1, 3, array.shape) if array.dtype.kind in "iub" else rng.uniform(1, 5, array.shape)
    for batch in twins:
        batch.load_state_dict(state)
    rows = np.array([5, 1, 2])
    u = rng.random((3, profile_draws() + state_draws(N)))
    profiles, u_state = profiles_from_uniforms(u[:, :profile_draws()]), u[:, profile_draws():]
    seeds, signal_seeds = rng.integers(0, 2**63, (2, 3)).tolist()
    twins[0].load_rows(rows, DrawnClients.of(profiles, u_state, 4, GRAPH), seeds, signal_seeds)
    twins[1].load_rows(rows, initial_states(profiles, u_state, 4, GRAPH), seeds, signal_seeds)
    assert _differences(twins[0].state_dict(), twins[1].state_dict()) == []


def test_bad_drawn_clients_are_refused_before_a_row_changes():
    from tbn_env.profiles import ClientProfile, DrawnClients, ProfileBatch, profile_draws, profiles_from_uniforms
    from tbn_env.session_batch import SessionBatch
    rng = np.random.default_rng(13)
    batch = SessionBatch(3, episode="treatment", max_turns=5)
    profiles = profiles_from_uniforms(rng.random((2, profile_draws())))
    good = rng.random((2, state_draws(N)))
    batch.load_rows(np.array([0, 1]), DrawnClients.of(profiles, good, 1, GRAPH), [1, 2], [3, 4])
    before = batch.state_dict()
    stubborn = ProfileBatch.of([ClientProfile(name="stubborn", attachment="A8", defenses=("intellectualization",) * 4)])
    for rows, clients, match in [
            (np.array([0, 0]), DrawnClients.of(profiles, good, 1, GRAPH), "one initial state per distinct row"),
            (np.array([0, 3]), DrawnClients.of(profiles, good, 1, GRAPH), r"distinct row in \[0, 3\)"),
            (np.array([0, 1]), DrawnClients.of(profiles, good[:, 1:], 1, GRAPH), "uniforms"),
            (np.array([0, 1]), DrawnClients.of(profiles, good, 5, GRAPH), "stage must be 1-4"),
            (np.array([0]), DrawnClients.of(profiles, good[:1], 1, GRAPH), "a profile per client"),
            (np.array([0]), DrawnClients.of(stubborn, good[:1], 1, GRAPH), r"initial bq_scale .* defence too many")]:
        with pytest.raises(ValueError, match=match):
            batch.load_rows(rows, clients, [5] * len(rows), [6] * len(rows))
    assert _differences(batch.state_dict(), before) == []
