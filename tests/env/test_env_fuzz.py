"""Fuzzing step() with arbitrary actions: valid ones keep every invariant, invalid ones change nothing."""
import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import tbn_env  # noqa: F401

from .strategies import assert_rejected_unchanged


def check_invariants(obs, reward, info):
    assert np.isfinite(reward)
    assert ((obs["tmog"] >= 0) & (obs["tmog"] <= 10)).all()
    assert 0 <= obs["affect"] <= 3 and 0 <= obs["arousal"] <= 4 and obs["rupture_cue"] in (0, 1) and 0 <= obs["stage"] <= 3
    assert info["reward_breakdown"]["total"] == pytest.approx(reward)
    assert 0 <= info["coiling"] <= 1 and 0 <= info["alliance"] <= 1 and 0 <= info["attunement"] <= 1
    assert 0 <= info["taie"]["transformation"] <= 1


@settings(max_examples=30)
@given(actions=st.lists(arrays(np.float32, 12, elements=st.floats(0, 10, width=32)), min_size=1, max_size=25))
def test_valid_score_actions_keep_invariants(actions):
    env = gym.make("Therapy-Scores-v0", max_turns=30, info_mode="debug")
    env.reset(seed=0)
    for a in actions:
        check_invariants(*np.array(env.step(a), dtype=object)[[0, 1, 4]])


@settings(max_examples=30)
@given(actions=st.lists(st.integers(0, 12), min_size=1, max_size=25))
def test_valid_interventions_keep_invariants(actions):
    env = gym.make("Therapy-Interventions-v0", max_turns=30, observation_mode="full")
    env.reset(seed=1)
    for a in actions:
        obs, reward, _, _, info = env.step(a)
        check_invariants(obs, reward, info)
        assert ((obs["levels"] >= 0) & (obs["levels"] <= 10)).all()


bad_scores = st.one_of(
    arrays(np.float64, st.integers(0, 20).filter(lambda n: n != 12), elements=st.floats(0, 10)),
    arrays(np.float64, 12, elements=st.floats(allow_nan=True, allow_infinity=True)).filter(
        lambda a: not (np.isfinite(a).all() and ((a >= 0) & (a <= 10)).all())),
    st.text(), st.none(), st.dictionaries(st.text(max_size=5), st.floats(), max_size=3),
)


@given(action=bad_scores)
def test_invalid_score_actions_raise_and_change_nothing(action):
    env = gym.make("Therapy-Scores-v0")
    env.reset(seed=2)
    env.step(np.full(12, 1.0, np.float32))
    assert_rejected_unchanged(env, action)


bad_interventions = st.one_of(st.integers().filter(lambda i: not 0 <= i < 13), st.floats(), st.text(),
                              st.booleans(), st.none(), st.lists(st.integers(0, 12), min_size=2))


@given(action=bad_interventions)
def test_invalid_interventions_raise_and_change_nothing(action):
    env = gym.make("Therapy-Interventions-v0")
    env.reset(seed=3)
    assert_rejected_unchanged(env, action)


def test_vector_env_autoresets_on_the_next_step_and_rejects_bad_actions():
    envs = gym.make_vec("Therapy-Interventions-v0", num_envs=2, vectorization_mode="vector_entry_point",
                        max_turns=2)
    envs.reset(seed=0)
    envs.step(np.array([0, 1]))
    _, _, terminated, _, _ = envs.step(np.array([0, 1]))
    assert terminated.all()
    obs, reward, terminated, _, _ = envs.step(np.array([0, 1]))
    assert (reward == 0).all() and not terminated.any() and (obs["turn"] == 0).all()
    with pytest.raises(ValueError, match="integers"):
        envs.step(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        gym.make_vec("Therapy-Scores-v0", num_envs=2, vectorization_mode="vector_entry_point").step(np.zeros((3, 12)))
