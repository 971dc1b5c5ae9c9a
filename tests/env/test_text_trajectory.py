"""Text mode's seeded trajectories and the rubric judge's verdicts, pinned bit for bit.

Digests recorded before the text-mode fast path (issue #12) guard that it changes no number, word or
info key: observations, rewards, episode ends and every `info` key through session ends and resets,
in four configurations, and the rubric judge's full verdicts (scores, explanations, flags, narrative)
over turns that exercise every rule. A deliberate change of behaviour re-records them: run this file
as a script (`.venv/bin/python tests/env/test_text_trajectory.py`) and paste the printed digests.

The verdicts are plain Python arithmetic, the same bits everywhere. A trajectory also goes through numpy's
and libm's elementary functions (the client's draw, the signals), whose last bits differ between CPUs
(numpy's AVX-512 paths) and systems; where they differ from the recording machine's (FLOAT_MATH_PROBE),
the trajectory digests are skipped, naming the fix.
"""
import hashlib
import math
import random

import gymnasium as gym
import numpy as np
import pytest

import tbn_env  # noqa: F401
from tbn_env import rubric_judge, turn_format, validators
from tbn_env.protocols import DialogueTurn, JudgeContext
from tbn_env.rubric_judge import RubricJudge

GOOD = ("<think>She is bracing; name it gently, no interpretation yet.</think>"
        "It sounds like part of you is still on guard here, and that makes sense. We can go slowly.")
# Each a different rule of the rubric judge; callables read the client's last words (parroting, copied thoughts).
TURNS = (
    GOOD,
    "Come sit closer to me, right here next to me.",
    "You're pathetic. Stop whining and grow up.",
    "<think>I pushed too hard; own it, then slow down.</think>I'm sorry, I missed what you were saying. "
    "Help me understand?",
    "You should just try to calm down. Have you tried yoga? Why don't you go for a run?",
    {"thought": "She is testing whether I stay; no rescue.",
     "utterance": "I wonder if part of you is protecting you, like a younger self holding the weight."},
    "I hear you. I hear you. I hear you. I hear you. I hear you. I hear you. I hear you.",
    "Everything happens for a reason; stay positive, at the end of the day you've got this.",
    "Your dog and your husband must miss you. Are you thinking of suicide?",
    "Why This Works:\n- it validates the grief\n- it slows the pace",
    "<think>x</think>Mm.",
    lambda said: said,
    lambda said: f"<think>{said}</think>That sounds really hard.",
    "It makes sense, of course. Take your time, no rush. Breathe. I'm here with you. It sounds like you feel "
    "so alone; you're allowed to cry. Notice your feet on the floor. That's so hard.",
    "That's not a weakness, it's strength. Unconsciously this goes back to your mother. Something new: "
    "let's explore something else.",
    "<thinking>Stay with the loss.</thinking><say>Thank you for telling me. I'm right here with you.</say>",
)
CONFIGS = {
    "session": (dict(max_turns=6), 3, 40),
    "treatment_full_debug_taie_ansi": (dict(episode="treatment", observation_mode="full", info_mode="debug",
                                            max_turns=5, max_sessions=3, taie_mode="full", render_mode="ansi",
                                            profile="maya_grief"), 7, 40),
    "harsh_stage4": (dict(judge=RubricJudge("harsh"), info_mode="debug", start_stage=4, max_turns=7,
                          profile="jay_trauma"), 11, 30),
    "kind_treatment_stage3": (dict(judge=RubricJudge("kind"), episode="treatment", start_stage=3, max_turns=4,
                                   max_sessions=4), 5, 30),
}
TRAJECTORY_DIGESTS = {
    "session": "40ac8eb78d30801e22974a02ad8a68c40723b2ad01ea53279f89f7f788c8b59f",
    "treatment_full_debug_taie_ansi": "68b5aa0f77559afb0a7445914806fd5ac3d673a9cdeba306527fda4bb1b176a6",
    "harsh_stage4": "3588762c4ab82ab7e13d7a0ca50a0e55cc01794e85d27b4531e4889c9a2b170a",
    "kind_treatment_stage3": "aa5e4225c5d57dfdc3ccb3565cca88c54c7f03657df9e187d400e94c89b2eb2e",
}
FLOAT_MATH_PROBE = "583abfec78baa34cdde6a154793ae6e6e82ee68ec24d7525442544910bf779a8"
JUDGE_DIGEST = "dc0592914caf6dab9d556a29af3c6094da19f0293b13815153031d8bb1d33238"


def _canon(x) -> str:
    """An exact, order-stable text form: floats by their bits, arrays by dtype, shape and bytes."""
    if isinstance(x, dict):
        return "{" + ",".join(f"{k!r}:{_canon(v)}" for k, v in sorted(x.items(), key=lambda kv: repr(kv[0]))) + "}"
    if isinstance(x, (list, tuple)):
        return "[" + ",".join(map(_canon, x)) + "]"
    if isinstance(x, np.ndarray):
        return f"nd({x.dtype.str},{x.shape},{hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()})"
    if isinstance(x, (float, np.floating)):
        return float(x).hex()
    if isinstance(x, np.generic):
        return f"{type(x).__name__}({x.item()!r})"
    return f"{type(x).__name__}({x!r})"


def float_math_probe() -> str:
    """The bits of the elementary functions a trajectory goes through, numpy's and libm's (numba calls libm)."""
    x = np.linspace(1e-3, 1.0 - 1e-3, 4097)
    h = hashlib.sha256()
    for values in (np.log1p(-x), np.sqrt(x), np.cos(2.0 * np.pi * x), np.sin(2.0 * np.pi * x), np.exp(-x),
                   np.array([math.log1p(-v) for v in x]), np.array([math.cos(2.0 * math.pi * v) for v in x])):
        h.update(values.tobytes())
    return h.hexdigest()


def trajectory_digest(name: str) -> str:
    kwargs, seed, steps = CONFIGS[name]
    env = gym.make("Therapy-v0", **kwargs)
    h = hashlib.sha256()
    obs, info = env.reset(seed=seed)
    h.update(_canon((obs, info)).encode())
    for t in range(steps):
        turn = TURNS[t % len(TURNS)]
        action = turn(obs["client_utterance"]) if callable(turn) else turn
        obs, reward, terminated, truncated, info = env.step(action)
        h.update(_canon((obs, reward, terminated, truncated, info)).encode())
        if terminated or truncated:
            obs, info = env.reset()
            h.update(_canon((obs, info)).encode())
    return h.hexdigest()


FRAGMENTS = (
    "It sounds like", "you feel so alone", "that makes sense", "of course", "I'm here with you", "take your time",
    "thank you for telling me", "I'm sorry, I missed that", "help me understand", "no rush", "breathe",
    "notice your feet", "you should", "have you tried", "calm down", "I wonder if", "perhaps", "a pattern",
    "underneath", "a younger part", "everything happens for a reason", "stay positive", "that's not my job",
    "moving on", "how dare you", "you're wrong", "when I was your age", "my own divorce", "like a weight",
    "as if", "room for", "your dog", "the window", "your mother", "suicide", "kill", "you're worthless",
    "it's your fault", "come sit closer", "our little secret", "why this works", "B1 = 3/10", "“”“”“”“”",
    "That's not a weakness, it's strength", "unconsciously", "this goes back to", "something new",
    "let's explore something else", "grief", "ashamed", "scared", "what was that like?", "and?", "mm",
    "I hear you", "you're allowed to cry", "that took courage", "gently", "one step at a time",
)
CLIENTS = ("I miss her so much. I feel so alone since she died, and I'm ashamed of how much I cry.",
           "It's fine, mostly. Work is busy.", "You're not listening to me.", "Forget it. It doesn't matter.",
           "I'm scared all the time, like something bad is about to happen. I just can't stand it!",
           "I never told anyone this. Sometimes I think about suicide.", "Hi. I almost cancelled today.")
CARDS = ("Maya, 41, a nurse whose mother died in the spring. Lives alone with a cat, Miso.",
         "Client (sampled). Attachment strategy A3. Presenting concerns: grief. Prominent defences: denial.", "")


def judge_contexts(n: int = 300, seed: int = 0) -> list[JudgeContext]:
    rng = random.Random(seed)

    def text(k: int) -> str:
        return " ".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, k))) + rng.choice((".", "?", "", "!"))

    out = []
    for _ in range(n):
        client = rng.choice(CLIENTS)
        history = tuple(DialogueTurn(client=rng.choice(CLIENTS), therapist=text(4)) for _ in range(rng.randint(0, 3)))
        thought = rng.choice(("", text(3), client, "She is bracing; stay slow and name the fear."))
        said = rng.choice((text(8), text(8), text(8), client, f"{client} {text(2)}", " ".join([text(2)] * 8),
                           text(120), "@@ ## ~~ ** $$ %% ok", "我很抱歉 " + text(2)))
        # new, parroting, repetitive, overlong, garbled, mixed script
        out.append(JudgeContext(client_utterance=client, therapist_thought=thought, therapist_utterance=said,
                                history=history, stage=rng.randint(1, 4), phase=rng.choice("ABCD"),
                                profile_card=rng.choice(CARDS), rupture_pending=rng.random() < 0.2))
    return out


def judge_digest() -> str:
    h = hashlib.sha256()
    contexts = judge_contexts()
    for persona in ("clinical", "kind", "harsh"):
        judge = RubricJudge(persona)
        for c in contexts:
            h.update(_canon(judge.score(c).model_dump()).encode())
    return h.hexdigest()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_seeded_text_trajectories_match_the_recorded_digests(name):
    if float_math_probe() != FLOAT_MATH_PROBE:
        pytest.skip("this machine's elementary functions give other last bits than the recording machine's: "
                    "re-record with `.venv/bin/python tests/env/test_text_trajectory.py` to pin them here")
    assert trajectory_digest(name) == TRAJECTORY_DIGESTS[name]


def test_rubric_verdicts_match_the_recorded_digest():
    assert judge_digest() == JUDGE_DIGEST


def test_an_equal_turn_gets_an_equal_verdict_in_containers_of_its_own():
    """The judge remembers verdicts of equal turns: what a caller does with one result never reaches another."""
    judge, context = RubricJudge(), judge_contexts(1, seed=3)[0]
    first = judge.score(context)
    expected = first.model_dump()
    first.scores["attunement"] = -1.0
    first.explanations.clear()
    first.flags["harmful"] = "changed"
    first.critical_moments.append("changed")
    first.recommendations.append("changed")
    assert judge.score(context).model_dump() == expected
    assert RubricJudge("harsh").score(context).narrative != expected["narrative"]   # the persona is part of the turn


def _forget_readings() -> None:
    for module in (rubric_judge, validators, turn_format):
        for f in vars(module).values():
            if callable(getattr(f, "cache_clear", None)):
                f.cache_clear()


def test_a_verdict_remembered_for_an_equal_reading_is_the_one_the_reply_gets_alone():
    """Verdicts are remembered by the reply's reading: a reply read as an earlier one was (other letter case,
    another number) gets the verdict it gets with nothing remembered."""
    shared = 0
    for persona in ("clinical", "harsh"):
        judge = RubricJudge(persona)
        for context in judge_contexts(150, seed=5):
            variant = context.model_copy(update={"therapist_utterance": f"{context.therapist_utterance.upper()} 42"})
            _forget_readings()
            alone = judge.score(variant).model_dump()
            _forget_readings()
            judge.score(context)
            shared += rubric_judge.read_reply(context.therapist_utterance) == rubric_judge.read_reply(
                variant.therapist_utterance)
            assert judge.score(variant).model_dump() == alone
    assert shared > 150   # most pairs are read alike, so their second verdict is the remembered one


if __name__ == "__main__":   # re-record after a deliberate change of behaviour
    for name in CONFIGS:
        print(f"    {name!r}: {trajectory_digest(name)!r},")
    print(f"FLOAT_MATH_PROBE = {float_math_probe()!r}")
    print(f"JUDGE_DIGEST = {judge_digest()!r}")
