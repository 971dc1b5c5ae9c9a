"""The scores action space is a gymnasium Box whose sample() draws exactly what Box.sample draws."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.spaces import Box
from hypothesis import given, settings
from hypothesis import strategies as st

import tbn_env  # noqa: F401
from tbn_env.spaces import UniformBox

bound = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), low=bound, width=st.floats(0.0, 1e6, width=32), shape=st.sampled_from(
    [(12,), (3, 4), (1,)]), per_coordinate=st.booleans())
def test_a_uniform_box_samples_what_a_box_samples(seed, low, width, shape, per_coordinate):
    """Same seed, same numbers, sample after sample: with bounds shared by every coordinate or one per coordinate."""
    high = low + width
    if per_coordinate:
        offsets = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
        low, high = low + offsets, high + 2 * offsets
    ours, theirs = UniformBox(low, high, shape, np.float32, seed=seed), Box(low, high, shape, np.float32, seed=seed)
    for _ in range(20):
        a, b = ours.sample(), theirs.sample()
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
        assert ours.contains(a)


@pytest.mark.parametrize("env_id, kwargs, low, high", [("Therapy-Scores-v0", {}, 0.0, 10.0),
                                                        ("Therapy-Scores-v0", {"action_scale": "unit"}, -1.0, 1.0)])
def test_the_scores_env_samples_its_actions_as_a_box_would(env_id, kwargs, low, high):
    env = gym.make(env_id, **kwargs)
    space = env.action_space
    assert isinstance(space, Box) and space == Box(low, high, (12,), np.float32)
    box = Box(low, high, (12,), np.float32)
    space.seed(7)
    box.seed(7)
    for _ in range(50):
        np.testing.assert_array_equal(space.sample(), box.sample())
    vector = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point", **kwargs)
    assert isinstance(vector.single_action_space, UniformBox) and vector.single_action_space == space


def test_a_uniform_box_needs_finite_float_bounds_and_refuses_a_mask_as_box_does():
    with pytest.raises(ValueError, match="finite bounds and a float dtype"):
        UniformBox(0.0, np.inf, (3,), np.float32)
    with pytest.raises(ValueError, match="finite bounds and a float dtype"):
        UniformBox(0, 10, (3,), np.int64)
    with pytest.raises(gym.error.Error, match="cannot be provided a mask"):
        UniformBox(0.0, 1.0, (3,), np.float32).sample(mask=np.ones(3))
