"""Therapy-v0 in text mode: the rubric judge and template client in the loop."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import tbn_env  # noqa: F401
from tbn_env.demo import run
from tbn_env.protocols import ClientTurn, JudgeResult

from .strategies import assert_rejected_unchanged, env_state

GOOD = ("<think>She is bracing; reflect, no interpretation.</think>"
        "It sounds like part of you is still on guard here, and that makes sense. We can go slowly.")


def test_checker_passes_in_text_mode():
    for observation_mode in ("tmog", "full"):
        env = gym.make("Therapy-v0", observation_mode=observation_mode, max_turns=4)
        check_env(env.unwrapped, skip_render_check=True)


def test_text_session_end_to_end_is_deterministic():
    def session():
        env = gym.make("Therapy-v0", max_turns=6, profile="maya_grief")
        obs, _ = env.reset(seed=11)
        out = [obs["client_utterance"]]
        for _ in range(6):
            obs, r, terminated, _, info = env.step(GOOD)
            out += [obs["client_utterance"], r, info["judge"]["scores"]]
        assert terminated and "session_summary" in info
        return out
    first = session()
    assert first == session()
    utterances = [first[0]] + first[1::3]
    assert all(isinstance(u, str) and u for u in utterances) and len(set(utterances)) > 2


def test_dict_actions_and_the_think_format_agree():
    a = gym.make("Therapy-v0", max_turns=3)
    b = gym.make("Therapy-v0", max_turns=3)
    a.reset(seed=2)
    b.reset(seed=2)
    _, ra, *_ = a.step(GOOD)
    thought, said = GOOD[len("<think>"):].split("</think>")
    _, rb, *_ = b.step({"thought": thought, "utterance": said})
    assert ra == rb


def test_a_boundary_violation_is_worse_than_an_attuned_reply():
    rewards = {}
    for name, turn in (("good", GOOD), ("bad", "Come sit closer to me, right here next to me.")):
        env = gym.make("Therapy-v0", max_turns=4)
        env.reset(seed=5)
        _, rewards[name], _, _, info = env.step(turn)
        if name == "bad":
            assert info["scores"]["boundaries"] < 3.5
    assert rewards["bad"] < rewards["good"]


@settings(max_examples=25)
@given(action=st.one_of(st.just(""), st.just("   \n"), st.integers(), st.none(), st.floats(), st.binary(),
                        st.lists(st.text()), st.dictionaries(st.sampled_from(["thought", "x"]), st.text()),
                        st.text(min_size=4097, max_size=4200)))
def test_invalid_text_actions_raise_and_change_nothing(action):
    env = gym.make("Therapy-v0")
    env.reset(seed=4)
    assert_rejected_unchanged(env, action)


@settings(max_examples=25)
@given(text=st.text(st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from("\n\t"), min_size=1,
               max_size=300).filter(lambda s: s.strip()))
def test_any_nonempty_text_is_a_valid_turn(text):
    env = gym.make("Therapy-v0", max_turns=3)
    env.reset(seed=0)
    obs, reward, _, _, info = env.step(text)
    assert np.isfinite(reward) and env.observation_space.contains(obs)
    assert all(0 <= v <= 10 for v in info["scores"].values())


class EchoJudge:
    """A trivial user-written judge: proves any object with the protocol plugs in."""

    deterministic = True

    def score(self, context):
        return JudgeResult(scores=dict.fromkeys(tbn_env.JUDGE_DIMENSIONS, 7.0))


class PoliteClient:
    deterministic = False

    def respond(self, view, history, rng):
        return ClientTurn(thought="(hidden)", utterance=f"Turn {view.turn}: thank you.")


def test_custom_judge_and_client_plug_in_and_flag_nondeterminism():
    env = gym.make("Therapy-v0", judge=EchoJudge(), client=PoliteClient(), max_turns=2)
    obs, _ = env.reset(seed=0)
    assert obs["client_utterance"] == "Turn 0: thank you." and not env.unwrapped.deterministic
    _, _, _, _, info = env.step("Hello.")
    assert set(info["scores"].values()) == {7.0}
    with pytest.raises(TypeError, match="Judge protocol"):
        gym.make("Therapy-v0", judge=object())


def test_demo_runs_a_session(capsys):
    summary = run(seed=0, max_turns=4)
    assert summary["total_turns"] == 4
    assert "therapist:" in capsys.readouterr().out


class ViewRecorder:
    """The template client, keeping the last view it was shown."""

    deterministic = True

    def __init__(self):
        from tbn_env.template_client import TemplateClient
        self.inner, self.view = TemplateClient(), None

    def respond(self, view, history, rng):
        self.view = view
        return self.inner.respond(view, history, rng)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]) | st.floats(0.0, 1.0), min_size=16, max_size=16))
def test_the_client_is_shown_the_fullest_reservoirs_first_ties_to_the_earlier(levels):
    """The view's dominant buckets are a stable sort of each half by level (few distinct levels make ties)."""
    from tbn_env.buckets import ADAPTIVE, MALADAPTIVE
    client = ViewRecorder()
    env = gym.make("Therapy-v0", client=client, max_turns=3).unwrapped
    env.reset(seed=0)
    env.core.kernel.buckets[0] = levels
    env._client_speaks()
    order = lambda names, part: tuple(sorted(names, key=lambda b: -part[names.index(b)])[:3])  # noqa: E731
    assert client.view.dominant_maladaptive == order(MALADAPTIVE, levels[:8])
    assert client.view.dominant_adaptive == order(ADAPTIVE, levels[8:])


class UncheckedJudge:
    """Builds its result without validation (model_construct), one dimension misnamed."""

    deterministic = True

    def score(self, context):
        scores = dict.fromkeys(tbn_env.JUDGE_DIMENSIONS[1:], 6.0) | {"atunement": 6.0}
        return JudgeResult.model_construct(scores=scores)


def test_a_result_with_a_misnamed_dimension_is_refused_by_name_and_changes_nothing():
    env = gym.make("Therapy-v0", judge=UncheckedJudge(), max_turns=3)
    env.reset(seed=0)
    before = env_state(env)
    with pytest.raises(ValueError, match=r"missing \['attunement'\], unknown \['atunement'\]"):
        env.unwrapped.step(GOOD)
    after = env_state(env)
    assert all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(before, after))
