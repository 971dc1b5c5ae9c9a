"""Invariants of the dynamics that must hold for any client and any score sequence."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tbn_env import BatchKernel, ClientGraph, CompiledGraph, ReferenceCore, SessionCore, sample_initial_state
from tbn_env.graph import DAMPENING, PROTECTIVE_ALLIANCE, improvement, pathology
from tbn_env.state import InitialBatch

from .strategies import score_sequences, seeds, stages

GRAPH = ClientGraph.default()


def edgeless(keep: tuple[tuple[str, str], ...] = ()) -> ClientGraph:
    """The default graph with every edge removed except `keep`."""
    g = GRAPH.graph.copy()
    g.remove_edges_from([e for e in list(g.edges) if e not in keep])
    return ClientGraph(g, GRAPH.params)


@given(seed=seeds, stage=stages, seq=score_sequences, session_len=st.integers(2, 10))
def test_every_quantity_stays_in_bounds(seed, stage, seq, session_len):
    rng = np.random.default_rng(seed)
    ker = BatchKernel(1, graph=GRAPH)
    ker.load(0, sample_initial_state(rng, stage, GRAPH))
    for t, scores in enumerate(seq):
        out = ker.step(scores[None], rng.standard_normal((1, 142)))
        for name, arr, lo, hi in (("levels", ker.levels, 0, 10), ("tmog", ker.tmog, 0, 10),
                                  ("buckets", ker.buckets, 0, 1), ("loa", ker.loa, -10, 10),
                                  ("taie", ker.taie, -10, 10), ("T", ker.transformation, 0, 1),
                                  ("coiling", out.coiling, 0, 1), ("alliance", out.alliance, 0, 1),
                                  ("accuracy", out.tmog_accuracy, 0, 1)):
            assert np.isfinite(arr).all(), name
            assert (arr >= lo).all() and (arr <= hi).all(), name
        assert np.isfinite(out.table).all()   # every reward term and reading
        assert 0 <= ker.phase[0] <= 3 and 1 <= ker.stage[0] <= 4
        if (t + 1) % session_len == 0:
            ker.end_session()
            assert ker.phase[0] == 0  # every session begins defended (§9.3.5.1)


@given(seed=seeds, stage=stages, seq=score_sequences)
def test_same_seed_same_trajectory_bit_for_bit(seed, stage, seq):
    runs = []
    for _ in range(2):
        core = SessionCore.sample(stage, seed=seed, graph=GRAPH)
        rewards = [core.turn(s, session_end=(i % 5 == 4)).reward.total for i, s in enumerate(seq)]
        runs.append((rewards, core.levels.copy(), core.tmog.copy(), core.kernel.buckets.copy()))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1:], runs[1][1:]):
        assert np.array_equal(a, b)


@given(seed=seeds, stage=stages, phase=st.integers(0, 3), good=st.booleans(),
       scores=st.lists(st.floats(6.6, 10.0), min_size=12, max_size=12),
       bad=st.lists(st.floats(0.0, 3.4), min_size=12, max_size=12))
def test_without_edges_good_turns_never_worsen_and_bad_never_improve(seed, stage, phase, good, scores, bad):
    graph = edgeless()
    rng = np.random.default_rng(seed)
    ker = BatchKernel(1, graph=graph)
    ker.load(0, sample_initial_state(rng, stage, graph))
    ker.phase[0] = phase
    cg = ker.cg
    before = cg.pathology(ker.levels.copy())
    vec = np.array(scores if good else bad)
    ker.step(vec[None], np.zeros((1, 142)))
    after = cg.pathology(ker.levels)
    if good:
        assert (after <= before + 1e-12).all()
    else:
        assert (after >= before - 1e-12).all()


@given(node=st.sampled_from([n for n in GRAPH.nodes if GRAPH.graph.nodes[n]["direction"] != "bipolar"]),
       stage=stages, phase=st.sampled_from("ABCD"), high_bq=st.floats(0.5, 10.0),
       scores=st.lists(st.floats(6.6, 10.0), min_size=12, max_size=12))
def test_higher_bq_moves_strictly_less(node, stage, phase, high_bq, scores):
    """BQ resistance 1/(1+BQ) (§9.3.1.2): of two identical nodes, the higher-BQ one moves less."""
    from tbn_env.intensity import intensities
    moves = []
    for bq in (0.0, high_bq):
        g = edgeless()
        g.graph.nodes[node]["bq_by_stage"] = (bq,) * 4
        g.set_levels(np.full(len(g.nodes), 5.0))
        high, low = intensities(np.array(scores))
        update = g.update(high, low, phase, stage, alliance=0.6)
        moves.append(abs(update.level_change[node]))
    assert moves[0] > 0
    assert moves[1] < moves[0]


def drive(graph: ClientGraph, source: str, raw: float, stage: int, alliance: float):
    """Move only `source` by a raw improvement (scores in the dead zone); return first-order and final change."""
    zero = np.zeros(12)
    return graph.update(zero, zero, "D", stage, alliance, {source: raw})


@given(raw=st.floats(-3.0, 3.0).filter(lambda r: abs(r) > 0.05), alliance=st.floats(0.0, 1.0), stage=stages)
def test_protective_edges_flip_with_alliance(raw, alliance, stage):
    g = edgeless((("grief_access", "emotional_avoidance"),))
    g.set_levels(np.full(len(g.nodes), 5.0))
    up = drive(g, "grief_access", raw, stage, alliance)
    u_src = up.first_order["grief_access"]
    u_dst = improvement(5.0, g.graph.nodes["emotional_avoidance"]["level"], "decrease")
    sign = 1.0 if alliance > PROTECTIVE_ALLIANCE else -1.0
    k = g.graph.edges["grief_access", "emotional_avoidance"]["k"]
    assert u_dst == pytest.approx(sign * DAMPENING * k * u_src, abs=1e-12)
    assert np.sign(u_dst) == sign * np.sign(u_src)


@given(start=st.floats(0.0, 10.0), raw=st.floats(-2.0, 2.0), stage=stages)
def test_prerequisite_edge_is_silent_below_threshold(start, raw, stage):
    g = edgeless((("trust_capacity", "intimacy_tolerance"),))
    g.set_levels(np.full(len(g.nodes), 5.0))
    g.graph.nodes["trust_capacity"]["level"] = start
    up = drive(g, "trust_capacity", raw, stage, 0.6)
    moved = g.graph.nodes["intimacy_tolerance"]["level"] - 5.0
    if g.graph.nodes["trust_capacity"]["level"] < 3.0:  # §9.3.1.1
        assert moved == 0.0
    else:
        assert moved == pytest.approx(DAMPENING * 0.5 * up.first_order["trust_capacity"], abs=1e-12)


@given(raw=st.floats(-3.0, 3.0).filter(lambda r: abs(r) > 0.05), stage=stages)
def test_paradoxical_edges_invert_in_stages_1_and_2_only(raw, stage):
    g = edgeless((("emotional_avoidance", "anxiety_level"),))
    g.set_levels(np.full(len(g.nodes), 5.0))
    up = drive(g, "emotional_avoidance", raw, stage, 0.6)
    u_dst = improvement(5.0, g.graph.nodes["anxiety_level"]["level"], "decrease")
    expected = (-1.0 if stage <= 2 else 1.0) * np.sign(up.first_order["emotional_avoidance"])
    assert np.sign(u_dst) == expected


@given(raw=st.floats(-3.0, 3.0).filter(lambda r: abs(r) > 0.05), stage=stages)
def test_compensatory_edges_fire_only_when_the_source_rises(raw, stage):
    g = edgeless((("abandonment_fear", "people_pleasing"),))
    g.set_levels(np.full(len(g.nodes), 5.0))
    up = drive(g, "abandonment_fear", raw, stage, 0.6)
    rise = up.first_order["abandonment_fear"] < 0  # worsening a decrease node raises its level
    moved = g.graph.nodes["people_pleasing"]["level"] - 5.0
    assert (moved > 0) if rise else (moved == 0.0)


@given(raw=st.floats(0.1, 3.0), stage=stages)
def test_gated_edges_scale_with_the_stage_multiplier(raw, stage):
    g = edgeless((("grief_access", "meaning_coherence"),))
    g.set_levels(np.full(len(g.nodes), 5.0))
    up = drive(g, "grief_access", raw, stage, 0.6)
    e = g.graph.edges["grief_access", "meaning_coherence"]
    moved = g.graph.nodes["meaning_coherence"]["level"] - 5.0
    assert moved == pytest.approx(DAMPENING * e["k"] * e["gates"][stage - 1] * up.first_order["grief_access"])


@given(level=st.floats(0.0, 10.0), stage=stages, scores=st.lists(st.floats(0, 10), min_size=12, max_size=12))
def test_suppressive_edge_damps_in_proportion_to_source_pathology(level, stage, scores):
    from tbn_env.intensity import intensities
    changes = {}
    for keep in ((), (("shame_core", "self_compassion"),)):
        g = edgeless(keep)
        g.set_levels(np.full(len(g.nodes), 5.0))
        g.graph.nodes["shame_core"]["level"] = level
        high, low = intensities(np.array(scores))
        changes[bool(keep)] = g.update(high, low, "B", stage, 0.6).first_order["self_compassion"]
    factor = 1.0 - 0.6 * pathology(level, "decrease")
    assert changes[True] == pytest.approx(changes[False] * factor, abs=1e-12)


def test_reference_checks_its_graph_params():
    from tbn_env import Params
    init = sample_initial_state(np.random.default_rng(0), 1, GRAPH)
    with pytest.raises(ValueError, match="different Params"):
        ReferenceCore(init, Params(b_ref=0.3), graph=ClientGraph(GRAPH.graph.copy(), GRAPH.params))
    with pytest.raises(ValueError, match="different Params"):
        BatchKernel(1, Params(b_ref=0.3), graph=GRAPH, compiled=CompiledGraph(GRAPH))


@given(seed=seeds, stages_=st.lists(stages, min_size=1, max_size=6))
def test_loading_rows_together_equals_loading_them_one_by_one(seed, stages_):
    rng = np.random.default_rng(seed)
    inits = [sample_initial_state(rng, s, GRAPH) for s in stages_]
    rows = np.arange(len(inits))[::-1].copy()
    one, many = BatchKernel(len(inits), graph=GRAPH), BatchKernel(len(inits), graph=GRAPH)
    for i, init in zip(rows, inits):
        one.load(int(i), init)
    many.load_rows(rows, inits)
    a, b = one.state_dict(), many.state_dict()
    for k in a:  # batched BLAS may round differently in the last bit (coiling of several rows at once)
        assert np.allclose(a[k], b[k], rtol=1e-12, atol=1e-12) if a[k].dtype.kind == "f" else np.array_equal(a[k], b[k]), k


def test_load_rows_rejects_mismatched_or_repeated_rows_and_keeps_the_state():
    rng = np.random.default_rng(0)
    ker = BatchKernel(2, graph=GRAPH)
    ker.load_rows(np.array([0, 1]), [sample_initial_state(rng, 1, GRAPH) for _ in range(2)])
    before = ker.state_dict()
    with pytest.raises(ValueError, match="one initial state per distinct row"):
        ker.load_rows(np.array([0, 0]), [sample_initial_state(rng, 2, GRAPH) for _ in range(2)])
    with pytest.raises(ValueError, match="one initial state per distinct row"):
        ker.load_rows(np.array([1]), [])
    with pytest.raises(ValueError, match=r"distinct row in \[0, 2\)"):   # the compiled writes index rows unchecked
        ker.load_rows(np.array([2]), [sample_initial_state(rng, 1, GRAPH)])
    with pytest.raises(ValueError, match=r"distinct row in \[0, 2\)"):
        ker.load_rows(np.array([-1]), [sample_initial_state(rng, 1, GRAPH)])
    two = InitialBatch.stack([sample_initial_state(rng, 1, GRAPH) for _ in range(2)])
    with pytest.raises(ValueError, match="initial levels must have shape"):   # one row short
        ker.load_rows(np.array([0, 1]), dataclasses.replace(two, levels=two.levels[:1]))
    after = ker.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
