"""BucketTracker, LOA events, TAIE assessor, TMoG, PhaseShift, stage criteria, guidance (§9.3.2–9.3.5, 9.3.14)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tbn_env import JUDGE_DIMENSIONS, Params
from tbn_env.buckets import BUCKETS, BucketTracker, bucket_effect_matrices
from tbn_env.guidance import GUIDANCE, guidance
from tbn_env.intensity import intensities
from tbn_env.loa import LOA_DIMENSIONS, LoaTracker
from tbn_env.phase_shift import (FORWARD_THRESHOLDS, REGRESSION_THRESHOLDS, PhaseShiftDetector, StageMeasures,
                                 phase_composite, stage_advances, stage_slips)
from tbn_env.taie import TaieAssessor, distance
from tbn_env.tmog import TMoG, accuracy, worst_misreads

P = Params()


def vec(value=5.0, **named):
    v = np.full(12, value)
    for k, x in named.items():
        v[JUDGE_DIMENSIONS.index(k)] = x
    return v


# ---------------------------------------------------------------- buckets
@pytest.mark.parametrize("dim, score, bucket", [("attunement", 9.0, "trust"), ("safety", 1.0, "fear"),
                                                 ("validation", 9.0, "worth"), ("boundaries", 1.0, "distrust")])
def test_the_four_paper_mappings(dim, score, bucket):
    """High attunement fills trust, low safety fills fear, high validation fills worth, low boundaries fill distrust (§9.3.2)."""
    t = BucketTracker(dict.fromkeys(BUCKETS, 0.5), P)
    t.update(*intensities(vec(**{dim: score})))
    assert t.levels[bucket] > 0.5
    assert len(BUCKETS) == 16


def test_volatility_bounds_a_single_turn():
    high, low = bucket_effect_matrices()
    from tbn_env.buckets import VOLATILITY
    vol = np.array([VOLATILITY[b] for b in BUCKETS])
    assert np.allclose(np.abs(high).sum(axis=1), vol)  # an all-10 turn moves each bucket by its volatility


def test_harm_fills_faster_than_care_drains():
    levels = dict.fromkeys(BUCKETS, 0.5)
    good, bad = BucketTracker(levels, P), BucketTracker(levels, P)
    good.update(*intensities(vec(10.0)))
    bad.update(*intensities(vec(0.0)))
    assert 0.5 - good.levels["distrust"] < bad.levels["distrust"] - 0.5


def test_session_decay_erodes_progress_but_not_harm():
    t = BucketTracker(dict.fromkeys(BUCKETS, 0.5), P)
    for _ in range(5):
        t.update(*intensities(vec(9.0)))
    trust_end, fear_end = t.levels["trust"], t.levels["fear"]
    t.end_session()
    assert 0.5 < t.levels["trust"] < trust_end and fear_end < t.levels["fear"] < 0.5
    harmed = BucketTracker(dict.fromkeys(BUCKETS, 0.5), P)
    harmed.update(*intensities(vec(1.0)))
    before = dict(harmed.levels)
    harmed.end_session()
    assert harmed.levels == before


# ---------------------------------------------------------------- LOA
def test_loa_growth_and_regression_events_with_hysteresis():
    t = LoaTracker(dict.fromkeys(LOA_DIMENSIONS, 2.45), P)
    events = t.update(vec(10.0))
    assert {(e.kind, e.threshold) for e in events} == {("growth", 2.5)}
    assert len(events) == len(LOA_DIMENSIONS)
    assert t.update(vec(10.0)) == []  # already past 2.5: no re-fire
    down = LoaTracker(dict.fromkeys(LOA_DIMENSIONS, -2.45), P)
    assert {e.kind for e in down.update(vec(0.0))} == {"regression"}


def test_loa_moves_slowly():
    t = LoaTracker(dict.fromkeys(LOA_DIMENSIONS, 0.0), P)
    for _ in range(20):
        t.update(vec(10.0))
    assert all(0.9 <= v <= 1.0 + 1e-9 for v in t.values.values())  # about one point per 20-turn session


# ---------------------------------------------------------------- TAIE
def test_transformation_rises_as_the_client_heals():
    a = TaieAssessor(np.array([-6.0, -8.0, -7.0]), -1.0, P)
    assert a.transformation == 0.0
    for _ in range(40):
        a.assess(vec(9.0))
    assert 0 < a.transformation <= 1
    assert a.direction() == "toward_zero"
    assert abs(a.axes[0]) < 6.0 and a.axes[1] > -8.0 and a.axes[2] > -7.0


def test_healthy_pole_fixes_the_literal_formula():
    """Y moving -8 -> +8 is full healing on Y; the printed formula (toward 0) would score it as none."""
    start, end = np.array([0.0, -8.0, 0.0]), np.array([0.0, 8.0, 0.0])
    healed = 1 - distance(end, "healthy_pole") / distance(start, "healthy_pole")
    literal = 1 - distance(end, "literal_zero") / distance(start, "literal_zero")
    assert healed > 0.5 and literal == 0.0


def test_literal_zero_mode_is_the_printed_formula():
    a = TaieAssessor(np.array([4.0, -4.0, 2.0]), 1.0, Params(taie_target="literal_zero"))
    a.assess(vec(5.0))
    a.assess(vec(5.0))
    a.assess(vec(5.0))
    cur = np.mean(a.history[-3:], axis=0)
    init = np.mean(a.history[:3], axis=0)
    assert a.transformation == pytest.approx(max(0, min(1, 1 - np.abs(cur).sum() / np.abs(init).sum())))


def test_bad_boundaries_push_x_outward_on_the_clients_side():
    a = TaieAssessor(np.array([0.0, 0.0, 0.0]), -1.0, P)
    a.assess(vec(0.0))
    assert a.axes[0] < 0  # rigid client goes more rigid
    a.assess(vec(10.0))
    assert a.axes[0] == 0.0  # good boundaries pull back to the midpoint without overshoot


# ---------------------------------------------------------------- TMoG
@given(seed=st.integers(0, 1000), att=st.floats(0, 10))
def test_tmog_accuracy_stays_in_unit_interval_and_tracks_attunement(seed, att):
    rng = np.random.default_rng(seed)
    actual = rng.uniform(0, 10, 142)
    est = np.clip(actual + rng.normal(0, 2.5, 142), 0, 10)
    t = TMoG(est, P)
    before = accuracy(t.estimate, actual)
    t.update(actual, vec(attunement=att), rng.standard_normal(142))
    after = accuracy(t.estimate, actual)
    assert 0 <= after <= 1
    if att >= 5.0:
        assert after >= before


def test_worst_misread_nodes():
    actual = np.full(5, 5.0)
    t = TMoG(np.array([5.0, 9.0, 5.0, 1.5, 5.2]), Params(tmog_worst_k=2))
    assert [n for n, _ in t.worst_misread(actual, ("a", "b", "c", "d", "e"))] == ["b", "d"]


@given(st.integers(0, 2**32 - 1), st.integers(1, 9), st.integers(0, 2))
def test_worst_misreads_are_a_stable_sort_by_error_size(seed, k, decimals):
    """Largest |error| first and, of equal errors (rounded draws tie often), the earlier node: a stable sort."""
    rng = np.random.default_rng(seed)
    estimate, actual = np.round(rng.uniform(0, 10, (2, 6, 8)), decimals)
    nodes = tuple("abcdefgh")
    err = estimate - actual
    order = np.argsort(-np.abs(err), axis=1, kind="stable")[:, :k]
    assert worst_misreads(estimate, actual, nodes, k) == [[(nodes[j], err[i, j]) for j in row]
                                                           for i, row in enumerate(order)]


# ---------------------------------------------------------------- PhaseShift and stages
def test_paper_thresholds():
    assert FORWARD_THRESHOLDS[1][:2] == (0.35, 0.60) and FORWARD_THRESHOLDS[3][:2] == (0.15, 0.30)
    assert REGRESSION_THRESHOLDS[1] == -0.25 and REGRESSION_THRESHOLDS[3] == -0.45


def test_composite_weights_and_alliance_scaling():
    c = phase_composite(balance=0.2, balance_entry=0.0, coiling=0.5, coiling_entry=0.5, alliance=1.0, params=P)
    bucket_only = 0.4 * (0.2 / (P.b_ref * 0.5))
    assert c == pytest.approx(bucket_only * 1.3)
    c0 = phase_composite(0.0, 0.0, 0.45, 0.5, alliance=0.0, params=P)
    assert c0 == pytest.approx(0.6 * (0.05 / (P.c_ref * 0.5)) * 0.7)


@pytest.mark.parametrize("stage", [1, 3])
def test_forward_threshold_by_stage(stage):
    d = PhaseShiftDetector(balance=0.0, coiling=0.5, params=P)
    a_to_b = FORWARD_THRESHOLDS[stage][0]
    # a balance shift giving a composite just under, then just over, the threshold (alliance 0.5 -> x1.0)
    per_unit = 0.4 / (P.b_ref * 0.5)
    move, comp = d.step(balance=0.99 * a_to_b / per_unit, coiling=0.5, alliance=0.5, stage=stage)
    assert move == 0 and comp < a_to_b
    move, comp = d.step(balance=1.01 * a_to_b / per_unit, coiling=0.5, alliance=0.5, stage=stage)
    assert move == 1 and d.phase_name == "B"


def test_regression_from_b_and_one_transition_per_turn():
    d = PhaseShiftDetector(balance=0.0, coiling=0.5, params=P)
    d.step(balance=0.9, coiling=0.3, alliance=0.5, stage=1)
    assert d.phase_name == "B"  # a huge shift still moves one phase only
    move, _ = d.step(balance=0.0, coiling=0.6, alliance=0.5, stage=1)
    assert move == -1 and d.phase_name == "A"


def test_stage_criteria():
    m = StageMeasures(adaptive_mean=0.6, maladaptive_mean=0.5, coiling=0.5, reached_core_in_stage=True,
                      sessions_completed=3)
    assert stage_advances(1, m)
    assert not stage_advances(1, StageMeasures(0.6, 0.5, 0.5, False, 3))
    assert stage_advances(2, StageMeasures(0.71, 0.29, 0.39, False, 5))
    assert not stage_advances(2, StageMeasures(0.71, 0.31, 0.39, False, 5))
    assert not stage_advances(3, StageMeasures(0.9, 0.1, 0.19, False, 9))
    assert stage_advances(3, StageMeasures(0.9, 0.1, 0.19, False, 10))
    assert stage_slips(3, StageMeasures(0.5, 0.2, 0.3, False, 10))


def test_guidance_matrix_has_sixteen_cells_with_the_papers_three():
    assert len(GUIDANCE) == 16 and all(GUIDANCE.values())
    assert "containment" in guidance(1, "C")
    assert "witness without rescuing" in guidance(2, "C")
    assert "therapeutic relationship itself" in guidance(4, "D")
    with pytest.raises(ValueError, match="phase"):
        guidance(1, "E")
