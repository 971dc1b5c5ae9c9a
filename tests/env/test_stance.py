"""The adaptive stance detector (§9.3.8)."""
from hypothesis import given
from hypothesis import strategies as st

from tbn_env import Params
from tbn_env.stance import STANCES, StanceDetector, StanceSignals

READY = StanceSignals(attunement=8.0, self_disclosure=7.0, engagement=8.0, defensiveness=2.0, overwhelm=0.0,
                      rupture=False)


def signals(**kw):
    return StanceSignals(**{**READY.__dict__, **kw})


def run(detector, sigs):
    return [detector.update(s) for s in sigs]


def test_first_three_turns_are_locked_then_escalation_is_gradual():
    d = StanceDetector(Params())
    stances = run(d, [READY] * 10)
    assert stances[:3] == ["rapport_building"] * 3
    assert "personhood_assemblage" in stances and stances[-1] == "intervention"
    first_pa = stances.index("personhood_assemblage")
    assert stances.index("intervention") - first_pa >= 2  # sustained readiness, one level at a time


@given(turn=st.integers(4, 12))
def test_rupture_always_returns_to_rapport_building(turn):
    d = StanceDetector(Params())
    stances = run(d, [READY] * turn + [signals(rupture=True)])
    assert stances[-1] == "rapport_building"


def test_defensiveness_or_overwhelm_drops_one_level():
    d = StanceDetector(Params())
    run(d, [READY] * 7)
    assert d.name == "personhood_assemblage" or d.name == "intervention"
    level = int(d.stance[0])
    d.update(signals(defensiveness=5.0))
    assert d.stance[0] == max(0, level - 1) or d.arc_active[0]


def test_active_intervention_arc_holds_through_a_wobble_but_not_a_rupture():
    d = StanceDetector(Params())
    stances = run(d, [READY] * 12)
    while d.name != "intervention":
        d.update(READY)
    d.arc_step[:] = 1  # mid-arc
    assert d.update(signals(defensiveness=5.5)) == "intervention"  # wobble held by the arc
    assert d.update(signals(rupture=True)) == "rapport_building"
    assert stances[0] == STANCES[0]


def test_arc_does_not_hold_when_overwhelm_is_high():
    d = StanceDetector(Params())
    run(d, [READY] * 12)
    while d.name != "intervention":
        d.update(READY)
    assert d.update(signals(overwhelm=5.0)) == "personhood_assemblage"


def test_low_attunement_window_blocks_escalation():
    d = StanceDetector(Params())
    assert set(run(d, [signals(attunement=4.0)] * 10)) == {"rapport_building"}


@given(steps=st.lists(st.lists(st.tuples(st.floats(0, 10), st.floats(0, 10), st.floats(0, 10), st.floats(0, 10),
                                         st.floats(0, 10), st.booleans()), min_size=3, max_size=3),
                      min_size=1, max_size=20))
def test_a_batch_of_clients_matches_each_client_alone(steps):
    import numpy as np
    batch = StanceDetector(Params(), batch=3)
    alone = [StanceDetector(Params()) for _ in range(3)]
    for rows in steps:
        columns = [np.array(c) for c in zip(*rows)]
        out = batch.update_batch(StanceSignals(*columns))
        assert [d.update(StanceSignals(*row)) for d, row in zip(alone, rows)] == [STANCES[i] for i in out]
