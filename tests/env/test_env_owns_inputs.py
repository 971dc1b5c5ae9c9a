"""The env owns its inputs: copies actions, survives a failing backend, refuses
out-of-space input in one clear error, and shows a tmog-mode agent nothing privileged."""
import copy
import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import tbn_env
from tbn_env.params import Params
from tbn_env.protocols import ClientTurn, JudgeResult
from tbn_env.rubric_judge import RubricJudge
from tbn_env.template_client import TemplateClient

from .strategies import assert_rejected_unchanged, env_state


def _summary_after(actions) -> dict:
    env = gym.make("Therapy-Scores-v0", max_turns=len(actions), info_mode="debug")
    env.reset(seed=4)
    for a in actions:
        *_, info = env.step(a)
    return info["session_summary"]


def test_a_reused_action_buffer_does_not_change_the_session():
    """Before the fix: the summary read the caller's buffer: wrong, then NaN."""
    rows = [np.full(12, v) for v in (2.0, 6.0, 9.0)]
    expected = _summary_after([r.copy() for r in rows])
    env = gym.make("Therapy-Scores-v0", max_turns=3, info_mode="debug")
    env.reset(seed=4)
    buffer = np.empty(12)
    for r in rows:
        buffer[:] = r
        *_, info = env.step(buffer)
        buffer[:] = np.nan   # the caller reuses its buffer after each step
    assert info["session_summary"]["dimensions"] == expected["dimensions"]


class FlakyClient:
    """The template client, except that it raises (a model client timing out) while `failing` is set."""

    deterministic = True

    def __init__(self):
        self.inner, self.failing = TemplateClient(), False

    def respond(self, view, history, rng):
        if self.failing:
            raise TimeoutError("the model server did not answer")
        return self.inner.respond(view, history, rng)


def test_a_client_that_raises_leaves_the_env_as_it_was_and_a_retry_works():
    """Before the fix: turn counter and history advanced, the retry played another turn."""
    turns = ["I'm here with you.", "What was that like?", "Take your time."]
    reference = gym.make("Therapy-v0", max_turns=4, client=FlakyClient())
    reference.reset(seed=1)
    expected = [reference.step(t)[:2] for t in turns]
    client = FlakyClient()
    env = gym.make("Therapy-v0", max_turns=4, client=client)
    env.reset(seed=1)
    got = [env.step(turns[0])[:2]]
    before = env_state(env)
    client.failing = True
    with pytest.raises(TimeoutError):
        env.unwrapped.step(turns[1])
    after = env_state(env)
    assert all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(before, after))
    client.failing = False
    got += [env.step(t)[:2] for t in turns[1:]]
    for (obs_a, r_a), (obs_b, r_b) in zip(got, expected):
        assert r_a == r_b and obs_a["client_utterance"] == obs_b["client_utterance"]
        assert np.array_equal(obs_a["tmog"], obs_b["tmog"])
        assert (obs_a["affect"], obs_a["arousal"]) == (obs_b["affect"], obs_b["arousal"])  # the signal draws too


class FlakyJudge:
    """The rubric judge, with a session narrator, failing at one of its three calls while `failing` names it."""

    deterministic = True

    def __init__(self):
        self.inner, self.failing = RubricJudge(), None

    def _call(self, name, *args):
        if self.failing == name:
            raise TimeoutError(f"the model server did not answer {name}")
        return getattr(self.inner, name)(*args) if name != "evaluate_session" else "A steady session."

    def score(self, context):
        return self._call("score", context)

    def assess_taie(self, context, axes):
        return self._call("assess_taie", context, axes)

    def evaluate_session(self, messages):
        return self._call("evaluate_session", messages)


def _same(a, b) -> bool:
    """Deep equality of get_state() output or of what a step returns (arrays by value)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, np.ndarray):   # an object array (per-row events, summaries) compared element by element
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and (
            _same(a.tolist(), b.tolist()) if a.dtype == object else np.array_equal(a, b))
    if dataclasses.is_dataclass(a):   # the last BatchStep: records of arrays
        return type(a) is type(b) and _same(vars(a), vars(b))
    return a == b


@pytest.mark.parametrize("at", [2, 5])
@pytest.mark.parametrize("where", ["score", "assess_taie", "evaluate_session", "client"])
def test_a_backend_failing_mid_treatment_leaves_everything_as_it_was(where, at):
    """A failure on the turn that closes session 1 (history cleared, session judged, the client speaking in
    session 2), or on the last turn of session 2 after two turns of it, puts back every part of the state,
    and the retried episode is the one never interrupted."""
    def make():
        judge, client = FlakyJudge(), FlakyClient()
        env = gym.make("Therapy-v0", judge=judge, client=client, episode="treatment", max_turns=3,
                       max_sessions=3, taie_mode="full", info_mode="debug")
        env.reset(seed=6)
        return env, judge, client

    turns = ["I'm here with you.", "What was that like?", "Take your time.", "It sounds like that hurt.",
             "Mm. Say more?", "That makes sense.", "We can go slowly."]
    reference, *_ = make()
    expected = [reference.step(t) for t in turns]
    env, judge, client = make()
    got = [env.step(t) for t in turns[:at]]
    before = env.unwrapped.get_state()
    if where == "client":
        client.failing = True
    else:
        judge.failing = where
    with pytest.raises(TimeoutError):
        env.unwrapped.step(turns[at])
    assert _same(env.unwrapped.get_state(), before)
    judge.failing, client.failing = None, False
    got += [env.step(t) for t in turns[at:]]
    assert "session_assessment" in got[2][4] and "session_assessment" in got[5][4]
    for (obs_a, r_a, *_, info_a), (obs_b, r_b, *_, info_b) in zip(got, expected):
        assert r_a == r_b and obs_a["client_utterance"] == obs_b["client_utterance"]
        assert np.array_equal(obs_a["tmog"], obs_b["tmog"]) and info_a.keys() == info_b.keys()
        assert all(_same(info_a[k], info_b[k]) for k in info_a)


class WrongJudge:
    deterministic = True

    def score(self, context):
        return {"scores": dict.fromkeys(tbn_env.JUDGE_DIMENSIONS, 5.0)}


class WrongClient:
    deterministic = True

    def __init__(self, reply):
        self.reply, self.calls = reply, 0

    def respond(self, view, history, rng):
        self.calls += 1
        return ClientTurn(thought="", utterance="Hello.") if self.calls == 1 else self.reply


def test_backends_breaking_their_protocol_are_named():
    """Before the fix: a bare AttributeError; an empty utterance was accepted."""
    env = gym.make("Therapy-v0", judge=WrongJudge(), max_turns=3)
    env.reset(seed=0)
    assert_rejected_unchanged(env, "Hello.")
    with pytest.raises(TypeError, match="Judge protocol.*dict, not a JudgeResult"):
        env.unwrapped.step("Hello.")
    for reply, error, message in (("plain text", TypeError, "Client protocol.*str, not a ClientTurn"),
                                  (ClientTurn(thought="", utterance="  "), ValueError, "Client protocol.*empty")):
        env = gym.make("Therapy-v0", client=WrongClient(reply), max_turns=3)
        env.reset(seed=0)
        with pytest.raises(error, match=message):
            env.unwrapped.step("Hello.")


@pytest.mark.parametrize("action", [np.full(12, 5 + 1j), np.array(["5"] * 12), ["5.0"] * 12,
                                    np.full(12, True), [5.0] * 11 + [None]])
def test_out_of_space_scores_are_refused(action):
    """Before the fix complex and string scores were converted (the imaginary part dropped)."""
    env = gym.make("Therapy-Scores-v0")
    env.reset(seed=0)
    assert_rejected_unchanged(env, action)
    with pytest.raises(ValueError, match="judge dimensions|shape"):
        JudgeResult(scores={"attunement": 5.0})


def test_an_oversized_text_turn_is_refused_before_it_is_parsed():
    """Before the fix: the length was checked after stripping: 50 MB accepted."""
    env = gym.make("Therapy-v0")
    env.reset(seed=0)
    for action in (" " * 50_000_000 + "Hello.", {"utterance": "Hi." + " " * 5000}):
        assert_rejected_unchanged(env, action)
        with pytest.raises(ValueError, match="limited to 4096 characters, got"):
            env.unwrapped.step(action)


def test_control_characters_are_refused_in_turns_and_kept_out_of_render():
    """Before the fix: terminal escapes reached render()."""
    env = gym.make("Therapy-v0", render_mode="ansi", client=WrongClient(ClientTurn(
        thought="", utterance="\x1b[2J\x1b[31mI'm fine.\x07")))
    env.reset(seed=0)
    assert_rejected_unchanged(env, "Hello.\x1b[2J")
    assert_rejected_unchanged(env, {"utterance": "Hi.", "thought": "\x00"})
    obs, *_, info = env.step("Hello.")
    assert "\x1b" not in info["render"] and "\x07" not in info["render"]
    assert obs["client_utterance"] == "[2J[31mI'm fine." and env.observation_space.contains(obs)


class GreekClient:
    deterministic = True

    def respond(self, view, history, rng):
        return ClientTurn(thought="", utterance="Δεν ξέρω. 分からない。")


def test_the_observation_keeps_the_client_s_unicode():
    """Before the fix: non-Latin text folded to '?'."""
    env = gym.make("Therapy-v0", client=GreekClient())
    obs, _ = env.reset(seed=0)
    assert obs["client_utterance"] == "Δεν ξέρω. 分からない。" and env.observation_space.contains(obs)


@pytest.mark.parametrize("env_id", ["Therapy-v0", "Therapy-Scores-v0"])
def test_tmog_mode_info_has_nothing_privileged(env_id):
    """Before the fix: hidden thought, coiling, alliance and TAIE in tmog-mode info."""
    privileged = {"client_thought", "coiling", "alliance", "attunement", "taie"}
    for kwargs, shown in (({}, False), ({"info_mode": "debug"}, True), ({"observation_mode": "full"}, True)):
        env = gym.make(env_id, max_turns=2, render_mode="ansi", **kwargs)
        _, info = env.reset(seed=0)
        action = "Hello." if env_id == "Therapy-v0" else np.full(12, 5.0)
        env.step(action)
        *_, info = env.step(action)
        assert (privileged - {"client_thought"} <= set(info)) is shown
        assert bool(privileged & set(info)) is shown
        assert ("worst_misread" in info["session_summary"]) is shown and "phase_reached" in info["session_summary"]
        assert ("coiling" in info["render"]) is shown   # the ansi render rides in info too
    with pytest.raises(ValueError, match="info_mode"):
        gym.make(env_id, info_mode="verbose")
    envs = gym.make_vec("Therapy-Scores-v0", num_envs=2, vectorization_mode="vector_entry_point")
    assert "coiling" not in envs.reset(seed=0)[1]


def test_a_wrong_reset_mask_is_refused_before_any_row_resets():
    """Before the fix: rows partly reset, then an IndexError."""
    envs = gym.make_vec("Therapy-Scores-v0", num_envs=3, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    envs.step(np.full((3, 12), 6.0))
    levels, turn = envs.unwrapped.kernel.levels.copy(), envs.unwrapped.batch.turn.copy()
    for mask in ([True, False, True, True, True], [1, 0, 1], [[True, False, True]]):
        with pytest.raises(ValueError, match="reset_mask must be 3 booleans"):
            envs.reset(options={"reset_mask": mask})
    assert np.array_equal(envs.unwrapped.kernel.levels, levels) and np.array_equal(envs.unwrapped.batch.turn, turn)
    envs.reset(options={"reset_mask": np.array([False, True, False])})
    assert list(envs.unwrapped.batch.turn) == [1, 0, 1]


@pytest.mark.parametrize("bad", [{"loa_rate": float("nan")}, {"taie_rate": float("inf")}, {"b_ref": -0.1},
                                 {"tmog_worst_k": 0}, {"loa_rate": "fast"}, {"init_loa": ((1.0, float("nan")),)},
                                 {"stage_evidence_sessions": 0}, {"init_sessions_completed": (0, 1.5, 2, 3)},
                                 {"init_sessions_completed": (0, -1, 2, 3)}])
def test_params_are_validated(bad):
    """Params(loa_rate=nan) was accepted once (NaN observations); every number is now checked."""
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"Params.{name} must"):
        Params(**bad)


@pytest.mark.parametrize("make", [
    lambda: gym.make("Therapy-Scores-v0", max_turns=3, info_mode="debug", episode="treatment"),
    lambda: gym.make_vec("Therapy-Scores-v0", num_envs=4, vectorization_mode="vector_entry_point", max_turns=3,
                         info_mode="debug", episode="treatment")])
def test_what_a_step_returns_keeps_its_values_while_the_client_moves_on(make):
    """Observations, rewards and info (a session's summary too) are the caller's: later turns, session closes
    and new clients leave them as they were returned."""
    env = make()
    env.reset(seed=1)
    kept = []
    for t in range(12):   # four sessions: each third step closes one
        out = env.step(np.full((4, 12) if hasattr(env, "num_envs") else 12, 2.0 + t % 7, dtype=np.float32))
        kept.append((out, copy.deepcopy(out)))
    for out, snapshot in kept:
        assert _same(out, snapshot)

