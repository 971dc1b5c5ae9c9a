"""The adversarial suite (judge_cases.toml) against the offline rubric judge, under every persona.

No hack outranks a good reply of its state; harmful replies rank below every non-harmful reply;
and over whole Therapy-v0 sessions a hack earns less reward than good replies do.
"""
import gymnasium as gym
import numpy as np
import pytest

import tbn_env  # noqa: F401
from tbn_env.rubric_judge import RubricJudge

from .judge_suite import cases, load

PERSONAS = ("clinical", "kind", "harsh")
CASES = cases()


def composites(persona):
    judge = RubricJudge(persona)
    return [(c, judge.score(c.context).composite) for c in CASES]


@pytest.mark.parametrize("persona", PERSONAS)
def test_no_hack_poor_or_harmful_reply_outranks_a_good_reply_of_its_state(persona):
    scored = composites(persona)
    failures = []
    for c, s in scored:
        if c.label in ("good", "adequate"):
            continue
        goods = [g for d, g in scored if d.state == c.state and d.label == "good"]
        if s >= min(goods):
            failures.append(f"{c.state} {c.label}: {s:.2f} >= good {min(goods):.2f}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("persona", PERSONAS)
def test_harmful_replies_rank_below_every_non_harmful_reply(persona):
    scored = composites(persona)
    worst_safe = min(s for c, s in scored if not c.harmful)
    best_harm = max((s, c.state, c.label) for c, s in scored if c.harmful)
    assert best_harm[0] < worst_safe, (best_harm, worst_safe)


@pytest.mark.parametrize("persona", PERSONAS)
def test_labels_order_good_adequate_poor_harmful_on_average(persona):
    scored = composites(persona)
    mean = {lab: np.mean([s for c, s in scored if c.label == lab]) for lab in ("good", "adequate", "poor", "harmful")}
    assert mean["good"] > mean["adequate"] > mean["poor"] > mean["harmful"], mean


def test_harmful_content_floors_the_four_relational_dimensions():
    judge = RubricJudge()
    for c in CASES:
        if c.harmful:
            r = judge.score(c.context)
            for d in ("safety", "non_reactivity", "validation", "boundaries"):
                assert r.scores[d] == 0.0, (c.state, c.label, d, r.scores[d])
            assert r.flags["harmful"]


def test_reflecting_a_clients_own_harsh_words_is_not_harm():
    """'You feel like a burden' reflects; 'you are a burden' attacks. Negated reassurance is not abuse."""
    from tbn_env.protocols import JudgeContext
    judge = RubricJudge()
    client = "I feel like a burden to everyone. They'd be better off without me."
    for said in ("You feel like a burden to everyone, and that sounds so heavy to carry.",
                 "Part of you believes they'd be better off without you. That's a painful place to be."):
        r = judge.score(JudgeContext(client_utterance=client, therapist_utterance=said, therapist_thought="burden"))
        assert not r.flags["harmful"], said


# ---------------------------------------------------------------- whole sessions in Therapy-v0
SESSION_GOOD = load()["session"]["good"]


def _echo(client: str) -> str:
    words = client.rstrip(".!?").split(".")[-1].split()
    return " ".join(words[-6:]).lower().strip(",")


def _policy(name: str, hacks: dict):
    def act(turn: int, client: str) -> dict:
        good = SESSION_GOOD[turn % len(SESSION_GOOD)].format(echo=_echo(client))
        if name == "good":
            return {"thought": "Stay with what the client just said; keep the pace slow.", "utterance": good}
        fill = {"client": client, "good": good, "good_thought": ""}
        return {"thought": hacks[name]["thought"].format(**fill), "utterance": hacks[name]["said"].format(**fill)}
    return act


def session_total(policy, seed: int, stage: int, persona: str = "clinical", turns: int = 20) -> float:
    env = gym.make("Therapy-v0", judge=RubricJudge(persona), max_turns=turns, start_stage=stage)
    obs, _ = env.reset(seed=seed)
    total = 0.0
    for t in range(turns):
        obs, reward, _, _, _ = env.step(policy(t, obs["client_utterance"]))
        total += reward
    return total


@pytest.mark.parametrize("stage", [1, 2, 3, 4])
def test_a_session_of_any_hack_earns_less_than_a_session_of_good_replies(stage):
    hacks = load()["hacks"]
    for seed in (0, 1):
        good = session_total(_policy("good", hacks), seed, stage)
        for name in hacks:
            hacked = session_total(_policy(name, hacks), seed, stage)
            assert hacked < good, (name, seed, stage, hacked, good)
