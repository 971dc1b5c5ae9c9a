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
