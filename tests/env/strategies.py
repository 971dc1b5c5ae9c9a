"""Hypothesis strategies shared by the env tests."""
import numpy as np
from hypothesis import strategies as st

score = st.one_of(st.floats(0.0, 10.0, allow_nan=False), st.sampled_from([0.0, 3.5, 5.0, 6.5, 10.0]),
                  st.integers(0, 10).map(float))


@st.composite
def score_vector(draw):
    """12 scores: a turn-level tone plus per-dimension variation, so runs of good or bad turns occur."""
    base = draw(st.floats(0.0, 10.0, allow_nan=False))
    spread = draw(st.sampled_from([0.0, 1.0, 4.0, 10.0]))
    jitter = np.array(draw(st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=12, max_size=12)))
    return np.clip(base + spread * jitter, 0.0, 10.0)


score_sequences = st.lists(score_vector(), min_size=1, max_size=30)
stages = st.integers(1, 4)
seeds = st.integers(0, 2**32 - 1)


def env_state(env) -> list:
    """A deep copy of everything a step could change in a TherapyEnv (for 'changes nothing' checks)."""
    import copy
    u = env.unwrapped
    k = u.core.kernel
    return copy.deepcopy([k.levels, k.tmog, k.buckets, k.loa, k.taie, k.phase, k.stage, u.core.turn_in_session,
                          u.core.rng.bit_generator.state, u.np_random.bit_generator.state, u.rupture,
                          u.history, u.client_words])


def assert_rejected_unchanged(env, action) -> None:
    """Stepping with `action` raises ValueError/TypeError and leaves the env exactly as it was."""
    import pytest
    before = env_state(env)
    with pytest.raises((ValueError, TypeError)):
        env.unwrapped.step(action)
    after = env_state(env)
    assert all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(before, after))
