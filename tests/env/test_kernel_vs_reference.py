"""The compiled batch kernel and the reference implementation are one behaviour."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tbn_env import BatchKernel, ClientGraph, CompiledGraph, ReferenceCore, sample_initial_state
from tbn_env.kernel import DIRECTION_NAMES

from .strategies import score_sequences, seeds, stages

GRAPH = ClientGraph.default()
COMPILED = CompiledGraph(GRAPH)
TOL = 1e-9


def fresh_graph() -> ClientGraph:
    return ClientGraph(GRAPH.graph.copy(), GRAPH.params)


def draw_client(seed: int, stage: int):
    rng = np.random.default_rng(seed)
    n = len(GRAPH.nodes)
    shift = rng.normal(0.0, 0.1, n) if seed % 2 else None     # a random profile tilt
    bq_scale = rng.uniform(0.5, 2.0, n) if seed % 3 else None  # and a random per-node resistance
    return rng, sample_initial_state(rng, stage, GRAPH, pathology_shift=shift, bq_scale=bq_scale)


def assert_same_state(ref: ReferenceCore, ker: BatchKernel, row: int) -> None:
    a, b = ref.snapshot(), ker.snapshot(row)
    for key in a:
        np.testing.assert_allclose(np.asarray(b[key], float), np.asarray(a[key], float), rtol=0, atol=TOL,
                                   err_msg=key)


@given(seed=seeds, stage=stages, seq=score_sequences, session_len=st.integers(2, 12))
def test_one_client_agrees_to_1e9(seed, stage, seq, session_len):
    rng, init = draw_client(seed, stage)
    ref = ReferenceCore(init, graph=fresh_graph())
    ker = BatchKernel(1, compiled=COMPILED, graph=GRAPH)
    ker.load(0, init)
    for t, scores in enumerate(seq):
        noise = rng.standard_normal(len(GRAPH.nodes))
        a, b = ref.turn(scores, noise), ker.step(scores[None], noise[None])
        assert_same_state(ref, ker, 0)
        assert abs(a.reward.total - b.total[0]) <= TOL
        assert abs(a.reward.modifiers - b.modifiers[0]) <= TOL
        assert abs(a.phase_composite - b.phase_composite[0]) <= TOL
        assert a.phase_move == b.phase_move[0]
        assert a.taie_direction == DIRECTION_NAMES[int(b.taie_direction[0])]
        assert abs(a.tmog_accuracy_delta - b.tmog_accuracy_delta[0]) <= TOL
        assert [e.kind for e in a.loa_events].count("growth") == int((b.loa_growth[0] > 0).sum())
        if (t + 1) % session_len == 0:
            x, (move, reward, complete) = ref.end_session(), ker.end_session()
            assert (x.stage_move, x.reward, x.treatment_complete) == (move[0], reward[0], complete[0])
            assert_same_state(ref, ker, 0)


@settings(max_examples=15)
@given(seed=seeds, seq=score_sequences)
def test_batch_rows_are_independent_clients(seed, seq):
    """Three clients at different stages in one batch each match their own reference run."""
    clients = [draw_client(seed + i, stage) for i, stage in enumerate((1, 3, 4))]
    refs = [ReferenceCore(init, graph=fresh_graph()) for _, init in clients]
    ker = BatchKernel(3, compiled=COMPILED, graph=GRAPH)
    for i, (_, init) in enumerate(clients):
        ker.load(i, init)
    noise_rng = np.random.default_rng(seed)
    for t, scores in enumerate(seq):
        batch = np.stack([scores, scores[::-1], np.full(12, 9.0)])
        noise = noise_rng.standard_normal((3, len(GRAPH.nodes)))
        out = ker.step(batch, noise)
        for i, ref in enumerate(refs):
            a = ref.turn(batch[i], noise[i])
            assert abs(a.reward.total - out.total[i]) <= TOL
            assert_same_state(ref, ker, i)
        if t % 7 == 6:
            move, _, _ = ker.end_session()
            assert [r.end_session().stage_move for r in refs] == move.tolist()


def test_stage_transitions_agree_over_a_whole_course():
    """Eight excellent sessions then four harmful ones: both implementations win and lose the same stages."""
    rng, init = draw_client(3, 1)
    ref = ReferenceCore(init, graph=fresh_graph())
    ker = BatchKernel(1, compiled=COMPILED, graph=GRAPH)
    ker.load(0, init)
    stages = []
    for session in range(12):
        scores = np.full(12, 9.0 if session < 8 else 1.0)
        for _ in range(20):
            noise = rng.standard_normal(len(GRAPH.nodes))
            ref.turn(scores, noise)
            ker.step(scores[None], noise[None])
        x, (move, _, _) = ref.end_session(), ker.end_session()
        assert x.stage_move == move[0]
        assert_same_state(ref, ker, 0)
        stages.append(ref.stage)
    assert max(stages) >= 3 and stages[-1] < max(stages)


def test_a_batch_split_over_threads_equals_each_client_stepped_alone():
    """Large batches are stepped by several threads, each on its own rows: the same bits as batch 1."""
    from tbn_env.kernel import MIN_CLIENTS_PER_THREAD
    b = 2 * MIN_CLIENTS_PER_THREAD + 3   # two threads' worth and an uneven split
    rng = np.random.default_rng(7)
    inits = [draw_client(seed, 1 + seed % 4)[1] for seed in range(b)]
    big = BatchKernel(b, compiled=COMPILED, graph=GRAPH)
    big.load_rows(np.arange(b), inits)
    alone = [BatchKernel(1, compiled=COMPILED, graph=GRAPH) for _ in range(b)]
    for k, init in zip(alone, inits):
        k.load(0, init)
    for _ in range(5):
        scores, noise = rng.uniform(0, 10, (b, 12)), rng.standard_normal((b, len(GRAPH.nodes)))
        out = big.step(scores, noise)
        for i, k in enumerate(alone):
            one = k.step(scores[i:i + 1], noise[i:i + 1])
            assert one.composite[0] == out.composite[i] and one.phase_move[0] == out.phase_move[i]
    for i, k in enumerate(alone):
        for key, value in k.snapshot(0).items():
            np.testing.assert_array_equal(big.snapshot(i)[key], value, err_msg=f"row {i} {key}")
