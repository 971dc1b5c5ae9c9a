"""N single envs (`vectorization_mode="sync"`) and one native vector env of N are the same MDP: with the
same seed and actions they give identical observations, rewards, episode ends and `info` (every key,
nested ones included), through autoresets, in both action modes and both of gymnasium's autoreset modes."""
import os

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from hypothesis import given, settings
from hypothesis import strategies as st

import tbn_env  # noqa: F401
from tbn_env.session_batch import unbatch

MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}


def assert_same(a, b, where: str) -> None:
    """Equal values, floats to 1e-9 (batched BLAS may round differently), containers key by key."""
    if isinstance(a, dict):
        assert set(a) == set(b), f"{where}: keys {sorted(set(a) ^ set(b))} differ"
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for j, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{j}]")
    elif isinstance(a, (float, np.floating)) or isinstance(a, np.ndarray) and a.dtype.kind == "f":
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-9, err_msg=where)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(b, a, err_msg=where)
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"


def assert_same_info(a: dict, b: dict, n: int, where: str) -> None:
    for i in range(n):
        assert_same(unbatch(a, i), unbatch(b, i), f"{where} row {i}")


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), start_stage=st.integers(1, 4), episode=st.sampled_from(["session", "treatment"]),
       info_mode=st.sampled_from(["default", "debug", "numeric"]))
@pytest.mark.parametrize("autoreset", MODES)
@pytest.mark.parametrize("env_id", ["Therapy-Scores-v0", "Therapy-Interventions-v0"])
def test_sync_and_native_vector_envs_agree_step_for_step(env_id, autoreset, seed, start_stage, episode, info_mode):
    n, kwargs = 3, dict(max_turns=4, max_sessions=2, start_stage=start_stage, episode=episode, info_mode=info_mode)
    sync = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": MODES[autoreset]}, **kwargs)
    native = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", autoreset_mode=autoreset,
                          **kwargs)
    a, info_a = sync.reset(seed=seed)
    b, info_b = native.reset(seed=seed)
    assert_same_info(info_a, info_b, n, "reset")
    rng = np.random.default_rng(seed)
    ends = 0
    for t in range(20):  # 20 steps of 4-turn sessions: several sessions, ends and autoresets
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        action = rng.uniform(0, 10, (n, 12)).astype(np.float32) if "Scores" in env_id else rng.integers(0, 13, n)
        a, reward_a, term_a, trunc_a, info_a = sync.step(action)
        b, reward_b, term_b, trunc_b, info_b = native.step(action)
        np.testing.assert_allclose(reward_b, reward_a, rtol=0, atol=1e-9)
        np.testing.assert_array_equal(term_b, term_a)
        np.testing.assert_array_equal(trunc_b, trunc_a)
        assert_same_info(info_a, info_b, n, f"step {t}")
        ends += int((term_a | trunc_a).sum())
    assert ends >= n


def test_the_single_env_info_is_a_row_of_the_vector_info_with_every_key():
    """The keys a user reads from one env are all in the vector env's info, session summary included."""
    single = gym.make("Therapy-Scores-v0", max_turns=2, info_mode="debug")
    native = gym.make_vec("Therapy-Scores-v0", num_envs=1, vectorization_mode="vector_entry_point", max_turns=2,
                          info_mode="debug")
    single.reset(seed=4)
    native.reset(seed=4)
    for _ in range(2):
        *_, info = single.step(np.full(12, 8.0, np.float32))
        *_, vinfo = native.step(np.full((1, 12), 8.0, np.float32))
    assert {"session_summary", "treatment_complete", "events", "reward_breakdown", "scores", "taie"} <= set(info)
    assert_same(info, unbatch(vinfo, 0), "last step")


def test_a_vector_env_split_over_threads_is_its_single_envs():
    """A batch large enough to be stepped in a run of rows per core gives each client the single env's turns:
    past a spent block of signal draws (32 turns) and through sessions closing in different runs."""
    from tbn_env.kernel import MIN_CLIENTS_PER_THREAD
    n, kwargs = 2 * MIN_CLIENTS_PER_THREAD + 3, dict(max_turns=5, episode="treatment", max_sessions=20)
    sync = gym.make_vec("Therapy-Scores-v0", num_envs=n, vectorization_mode="sync", **kwargs)
    native = gym.make_vec("Therapy-Scores-v0", num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    a, _ = sync.reset(seed=11)
    b, _ = native.reset(seed=11)
    if len(os.sched_getaffinity(0)) > 1:
        assert len(native.unwrapped.batch.kernel.runs) > 1   # the batch is split
    rng = np.random.default_rng(11)
    for t in range(40):
        action = rng.uniform(0, 10, (n, 12)).astype(np.float32)
        a, reward_a, term_a, trunc_a, info_a = sync.step(action)
        b, reward_b, term_b, trunc_b, info_b = native.step(action)
        for key in a:
            np.testing.assert_array_equal(b[key], a[key], err_msg=f"step {t} {key}")
        np.testing.assert_array_equal(reward_b, reward_a)
        np.testing.assert_array_equal(term_b | trunc_b, term_a | trunc_a)
        for i in (0, n // 2, n - 1):   # a row of each run
            assert_same(unbatch(info_a, i), unbatch(info_b, i), f"step {t} row {i}")
