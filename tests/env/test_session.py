"""SessionCore: the per-turn loop, session boundaries and the §9.3.14.2 summary; bad input changes nothing."""
import copy
import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tbn_env import ClientGraph, SessionBatch, SessionCore
from tbn_env.state import sample_initial_state

GRAPH = ClientGraph.default()


def state(core):
    k = core.kernel
    return [a.copy() for a in (k.levels, k.tmog, k.buckets, k.loa, k.taie, k.phase, k.stage, k.transformation)] + \
        [core.turn_in_session, core.stance.stance, core.rng.bit_generator.state]


BAD = [
    (np.full(11, 5.0), ValueError, "shape"),
    (np.full(13, 5.0), ValueError, "shape"),
    ([5.0] * 11 + [float("nan")], ValueError, "NaN"),
    ([5.0] * 11 + [float("inf")], ValueError, "NaN or inf"),
    ([5.0] * 11 + [10.5], ValueError, "artfulness=10.5"),
    ([-1.0] + [5.0] * 11, ValueError, "attunement=-1"),
    ("not scores", TypeError, "string"),
    ([5.0] * 11 + ["x"], TypeError, "numbers"),
    ({"attunement": 5.0}, ValueError, "missing"),
]


@pytest.mark.parametrize("scores, exc, message", BAD)
def test_bad_scores_raise_and_change_nothing(scores, exc, message):
    core = SessionCore.sample(2, seed=7, graph=GRAPH)
    for _ in range(3):
        core.turn(np.full(12, 2.0))  # consume some noise so the RNG state matters
    before = copy.deepcopy(state(core))
    with pytest.raises(exc, match=message):
        core.turn(scores)
    after = state(core)
    for a, b in zip(before, after):
        assert (np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b)


def test_mapping_scores_are_accepted():
    from tbn_env import JUDGE_DIMENSIONS
    core = SessionCore.sample(1, seed=0, graph=GRAPH)
    r = core.turn(dict.fromkeys(JUDGE_DIMENSIONS, 9.0))
    assert r.scores["safety"] == 9.0


def test_session_end_summary_has_the_papers_fields():
    core = SessionCore.sample(1, seed=2, graph=GRAPH)
    for t in range(12):
        r = core.turn(np.full(12, 8.0), session_end=(t == 11))
    s = r.session_summary
    for key in ("coiling", "tmog_attunement", "worst_misread", "maladaptive_mean", "adaptive_mean", "buckets",
                "loa", "taie", "phase_reached", "stage", "total_turns", "dimensions", "reward_totals"):
        assert key in s
    assert len(s["worst_misread"]) == 5 and len(s["loa"]) == 7
    assert 0 <= s["taie"]["transformation_pct"] <= 100
    assert s["total_turns"] == 12 and s["turns"] == 12
    values = list(s["buckets"].values())   # the reservoirs' means are numpy's, to the bit
    assert (s["maladaptive_mean"], s["adaptive_mean"]) == (np.mean(values[:8]), np.mean(values[8:]))
    assert s["reward_totals"]["total"] == pytest.approx(sum(v for k, v in s["reward_totals"].items() if k != "total"))
    assert r.session_end and core.session == 2 and core.phase == "A" and core.turn_in_session == 0


def sessions_to_stage_2(seed: int, score: float, max_sessions: int = 6) -> int | None:
    """Run an excellent therapist; check the stage reward lands on a session's last turn only."""
    core = SessionCore.sample(1, seed=seed, graph=GRAPH)
    for session in range(1, max_sessions + 1):
        for t in range(20):
            r = core.turn(np.full(12, score), session_end=(t == 19))
            assert r.reward.stage_transition == 0.0 or t == 19
        if r.reward.stage_transition:
            assert r.reward.stage_transition == 100.0 and core.stage == 2
            assert any(e["type"] == "stage_forward" for e in r.events)
            return session
    return None


@given(seed=st.integers(0, 10**6))
def test_stage_reward_lands_on_the_session_final_turn(seed):
    sessions_to_stage_2(seed, 9.0)


def test_most_clients_leave_stage_1_within_six_excellent_sessions():
    """Calibration: an excellent therapist moves most stage-1 clients on."""
    reached = [sessions_to_stage_2(seed, 9.0) for seed in range(20)]
    assert sum(r is not None for r in reached) >= 16
    assert all(r is None or r >= 2 for r in reached)  # adaptive > 0.5 takes more than one session


def test_harmful_turns_rupture_and_regress():
    core = SessionCore.sample(3, seed=4, graph=GRAPH)
    for _ in range(6):
        core.turn(np.full(12, 9.0))
    assert core.phase != "A"
    events = [e["type"] for _ in range(6) for e in core.turn(np.full(12, 1.0)).events]
    assert "rupture" in events and "phase_regression" in events
    assert core.stance.name == "rapport_building"


def test_taie_blend_hook_validates_and_moves_axes():
    core = SessionCore.sample(1, seed=0, graph=GRAPH)
    x0 = core.taie()["x"]
    core.blend_taie([0.0, 10.0, 10.0])
    assert core.taie()["y"] > -10 and abs(core.taie()["x"]) <= abs(x0)
    with pytest.raises(ValueError, match="3 finite axes"):
        core.blend_taie([1.0, 2.0])



def _fields(step) -> dict[str, np.ndarray]:
    """Every array of a BatchStep, its turn's included, by name."""
    arrays = {f.name: getattr(step, f.name) for f in dataclasses.fields(step) if f.name not in ("turn", "closed")}
    return {**arrays, **{f"turn.{f.name}": getattr(step.turn, f.name) for f in dataclasses.fields(step.turn)}}


def _same(a, b) -> bool:
    """Equal trees of dicts, tuples and arrays (object arrays compared element by element)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, np.ndarray) and a.dtype == object:
        return _same(a.tolist(), b.tolist())
    return bool(np.array_equal(a, b))


def test_a_reused_step_record_reads_as_the_steps_a_caller_keeps():
    """`step(reuse=True)` hands out the batch's record, which the next turn writes over: each turn it holds what a
    twin batch's kept steps hold, through closes, stage moves and ends; a kept step is not written over."""
    n, rng = 300, np.random.default_rng(9)   # 300 clients: two runs of rows, each on its own thread
    twins = [SessionBatch(n, episode="treatment", max_turns=4, max_sessions=3) for _ in range(2)]
    seeds = rng.integers(0, 2**63, (2, n)).tolist()
    inits = [sample_initial_state(rng, 1 + i % 4, twins[0].kernel.graph) for i in range(n)]
    for batch in twins:
        batch.load_rows(np.arange(n), inits, *seeds)
    first = twins[0].step(rng.uniform(0, 10, (n, 12)))
    twins[1].step(first.scores, reuse=True)
    as_taken, record, closes, moves = copy.deepcopy(_fields(first)), None, 0, 0
    for t in range(30):
        scores = rng.uniform(0, 10, (n, 12))
        kept, reused = twins[0].step(scores), twins[1].step(scores, reuse=True)
        assert record is None or reused is record   # the one record, written over
        record = reused
        assert _same(_fields(kept), _fields(reused)), t
        assert _same(kept.summary(), reused.summary()), t
        closes += int(kept.session_end.sum())
        moves += int(np.count_nonzero(kept.stage_move))
        done = np.flatnonzero(kept.done).tolist()
        for batch in twins if done else ():   # a finished episode starts a new client, as the vector env's autoreset does
            batch.load_rows(np.array(done, dtype=np.int64), [inits[i] for i in done], [seeds[0][i] for i in done],
                            [seeds[1][i] for i in done])
    assert closes > n and moves > 0   # the record went through closes and stage moves
    assert _same(_fields(first), as_taken)   # the first kept step still holds its own turn
