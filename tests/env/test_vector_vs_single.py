"""N single envs (`vectorization_mode="sync"`) and one native vector env of N are the same MDP: with the
same seed and actions they give identical observations, rewards and episode ends, through autoresets."""
import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tbn_env  # noqa: F401


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), start_stage=st.integers(1, 4), episode=st.sampled_from(["session", "treatment"]))
@pytest.mark.parametrize("env_id", ["Therapy-Scores-v0", "Therapy-Interventions-v0"])
def test_sync_and_native_vector_envs_agree_step_for_step(env_id, seed, start_stage, episode):
    n, kwargs = 3, dict(max_turns=4, max_sessions=2, start_stage=start_stage, episode=episode)
    sync = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync", **kwargs)
    native = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    a, _ = sync.reset(seed=seed)
    b, _ = native.reset(seed=seed)
    rng = np.random.default_rng(seed)
    ends = 0
    for _ in range(20):  # 20 steps of 4-turn sessions: several sessions, ends and autoresets
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        action = rng.uniform(0, 10, (n, 12)).astype(np.float32) if "Scores" in env_id else rng.integers(0, 13, n)
        a, reward_a, term_a, trunc_a, _ = sync.step(action)
        b, reward_b, term_b, trunc_b, _ = native.step(action)
        np.testing.assert_allclose(reward_b, reward_a, rtol=0, atol=1e-9)
        np.testing.assert_array_equal(term_b, term_a)
        np.testing.assert_array_equal(trunc_b, trunc_a)
        ends += int((term_a | trunc_a).sum())
    assert ends >= n
