"""Per-client streams re-seeded in place start exactly where `np.random.default_rng(seed)` starts."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tbn_env.streams import Streams

EDGES = [0, 1, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1, 2**64, 2**100 + 7]


def seeded_states(seeds: list) -> list[dict]:
    """The generator states a batch's rows start in, seeded with `seeds`."""
    streams = Streams(len(seeds))
    streams.seed(list(range(len(seeds))), seeds)
    return streams.states()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=8))
def test_states_are_default_rngs_for_any_seed(seeds):
    assert seeded_states(seeds) == [np.random.default_rng(s).bit_generator.state for s in seeds]


def test_edge_seeds_and_big_ones_take_numpys_own_path():
    assert seeded_states(EDGES) == [np.random.default_rng(s).bit_generator.state for s in EDGES]


def test_a_reseeded_row_draws_what_a_new_generator_draws_and_leaves_other_rows_alone():
    streams = Streams(3)
    streams.seed([0, 1, 2], [11, 12, 13])
    streams[1].random(5)                         # row 1 moves on
    before = streams[2].bit_generator.state
    streams.seed([1], [99])
    assert np.array_equal(streams[1].standard_normal((4, 7)), np.random.default_rng(99).standard_normal((4, 7)))
    assert streams[2].bit_generator.state == before
    assert np.array_equal(streams[0].random(3), np.random.default_rng(11).random(3))


def test_no_seed_gives_fresh_entropy():
    a, b = seeded_states([None, None])
    assert a != b and a["bit_generator"] == "PCG64"


def test_a_checkpoint_holding_a_seed_for_a_stream_loads_as_that_seeds_generator():
    from tbn_env.session import SessionCore
    core = SessionCore.sample(seed=0)
    state = core.state_dict()
    state["rngs"] = [1234]   # how checkpoints held a client's misreading stream before its first use
    core.load_state_dict(state)
    assert np.array_equal(core.rng.random(4), np.random.default_rng(1234).random(4))
