"""The offline rubric judge and session aggregation (§9.3.7, App. 31)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tbn_env import JUDGE_DIMENSIONS
from tbn_env.protocols import DialogueTurn, JudgeContext, JudgeResult
from tbn_env.reward import weighted_composite
from tbn_env.rubric_judge import RubricJudge, score_in_range
from tbn_env.session_judge import judge_full_session

CLIENT = "I miss her so much. I feel so alone since she died, and I'm ashamed of how much I cry."
CARD = "Maya, 41, a nurse whose mother died in the spring. Lives alone with a cat, Miso."
CLEAN = ("It sounds like missing her leaves you feeling so alone, and of course you cry. That makes sense. "
         "Take your time; I'm here with you.")
THOUGHT = "Grief and shame together; she's ashamed of crying. Don't interpret yet, just stay with the loss."

# The paper's own App. 31 failures, each with the dimensions it must score lower on than CLEAN.
FAILURES = [
    ("Come sit closer to me, right next to me.", ("boundaries", "safety")),                          # Failure 11
    ("Why This Works:\n- it validates her grief\n- it slows the pace", ("artfulness", "attunement")),  # Failure 12
    ("<think>she is grieving</think> I hear you.", ("artfulness", "parallel_thinking")),             # Failure 14
    ("B1 = 1.0/10 and your grief is high.", ("clinical_wisdom", "attunement")),                      # Failure 6
    ("I hear you “”“”“”“”“”“”", ("artfulness", "attunement")),                                      # Failure 8
    ("我很抱歉 Mobiimplum, that sounds hard.", ("artfulness", "attunement")),                          # Failure 13
    ("I was watching your dog out the window, it reminded me of you.", ("attunement", "clinical_wisdom")),  # 10
    ("I see. Overthinking: Yeah. Dissociating: Totally.", ("artfulness", "safety")),                  # Failure 13
    ("That's not weakness, that's courage. You should stop crying so much.", ("validation", "attunement")),
]


def ctx(utterance, thought=THOUGHT, **kw):
    return JudgeContext(client_utterance=kw.pop("client", CLIENT), therapist_thought=thought,
                        therapist_utterance=utterance, profile_card=CARD, **kw)


@pytest.mark.parametrize("utterance, dims", FAILURES)
def test_each_appendix_31_failure_scores_below_a_clean_reply(utterance, dims):
    judge = RubricJudge()
    clean, bad = judge.score(ctx(CLEAN)), judge.score(ctx(utterance))
    for d in dims:
        assert bad.scores[d] < clean.scores[d], (d, bad.scores[d], clean.scores[d], bad.explanations[d])
    assert np.mean(bad.vector()) < np.mean(clean.vector())


def test_boundary_violation_floors_boundaries_and_safety():
    r = RubricJudge().score(ctx("Come sit closer to me."))
    assert r.scores["boundaries"] == 0.0 and r.scores["safety"] <= 2.0 and r.flags["boundary_violation"]


def test_clean_attuned_reply_scores_well_and_is_deterministic():
    a, b = RubricJudge().score(ctx(CLEAN)), RubricJudge().score(ctx(CLEAN))
    assert a == b
    assert np.mean(a.vector()) >= 6.5 and a.scores["attunement"] >= 7.5 and a.scores["tenderness"] >= 7.5


def test_personas_order_kind_clinical_harsh():
    means = {p: np.mean(RubricJudge(p).score(ctx(u)).vector()) for p in ("kind", "clinical", "harsh")
             for u in [CLEAN]}
    assert means["kind"] > means["clinical"] > means["harsh"]
    with pytest.raises(ValueError, match="persona"):
        RubricJudge("grumpy")


def test_repair_after_rupture_beats_ignoring_it():
    rupture = {"client": "You're not listening to me. That's not what I meant at all.", "rupture_pending": True}
    repaired = RubricJudge().score(ctx("I'm sorry, I missed what you meant. Help me understand it better?", **rupture))
    ignored = RubricJudge().score(ctx("Let's look at your sleep schedule. You should try a routine.", **rupture))
    assert repaired.scores["repair"] > ignored.scores["repair"] + 3


def test_interpretation_is_premature_at_stage_1_and_timely_at_stage_3():
    line = "I wonder if this pattern protects you, the way a younger part of you learned to stay small."
    early = RubricJudge().score(ctx(line, stage=1, phase="A"))
    later = RubricJudge().score(ctx(line, stage=3, phase="C"))
    assert later.scores["clinical_wisdom"] > early.scores["clinical_wisdom"]
    assert later.scores["pacing"] > early.scores["pacing"]


def test_grounded_details_from_the_history_are_not_ungrounded():
    history = (DialogueTurn(client="My cat Miso sleeps on her sweater.", therapist="That sounds tender."),)
    r = RubricJudge().score(ctx("Miso the cat keeps her close to you, it seems.", history=history))
    assert not r.flags["ungrounded_detail"]


@given(client=st.text(max_size=200), said=st.text(max_size=300), thought=st.text(max_size=200),
       stage=st.integers(1, 4), phase=st.sampled_from("ABCD"), persona=st.sampled_from(["clinical", "kind", "harsh"]))
def test_any_text_yields_twelve_in_range_scores(client, said, thought, stage, phase, persona):
    r = RubricJudge(persona).score(JudgeContext(client_utterance=client, therapist_thought=thought,
                                                therapist_utterance=said, stage=stage, phase=phase))
    JudgeResult.model_validate(r.model_dump())
    assert set(r.scores) == set(JUDGE_DIMENSIONS) and all(0 <= v <= 10 for v in r.scores.values())


def test_judge_full_session_by_hand():
    rows = [dict.fromkeys(JUDGE_DIMENSIONS, 4.0), dict.fromkeys(JUDGE_DIMENSIONS, 6.0),
            {**dict.fromkeys(JUDGE_DIMENSIONS, 8.0), "safety": 2.0}]
    results = [JudgeResult(scores=r) for r in rows]
    s = judge_full_session(results, stage=1)
    assert s.turns == 3
    assert s.dimensions["attunement"].mean == pytest.approx(6.0)
    assert s.dimensions["attunement"].trend == pytest.approx(4.0) and s.dimensions["attunement"].slope == pytest.approx(2.0)
    assert s.dimensions["safety"].min == 2.0 and s.dimensions["safety"].max == 6.0
    assert s.composite[2] == pytest.approx((11 * 8 + 2) / 12)
    assert s.stage_composite[2] == pytest.approx(weighted_composite(np.array(results[2].vector()), 1, __import__("tbn_env").Params()))
    assert "safety" in s.evaluation
    assert s.composite_trend == pytest.approx(s.composite[2] - s.composite[0])
    assert s.evaluation_source == "offline template" and s.evaluation.startswith("[offline template]")
    with pytest.raises(ValueError, match="at least one"):
        judge_full_session([], stage=1)


class Narrator(RubricJudge):
    """A judge that also narrates sessions, recording the prompt it was given."""

    def __init__(self, reply):
        super().__init__()
        self.reply, self.prompts = reply, []

    def evaluate_session(self, messages):
        self.prompts.append(messages)
        return self.reply


def test_the_env_judges_the_whole_session_on_its_last_step():
    import gymnasium as gym
    narrator = Narrator("The session deepened steadily; the repair at turn 2 held.")
    env = gym.make("Therapy-v0", judge=narrator, max_turns=3)
    env.reset(seed=0)
    infos = [env.step("That sounds heavy. I'm here with you.")[-1] for _ in range(3)]
    assert "session_assessment" not in infos[0] and "session_assessment" not in infos[1]
    a = infos[-1]["session_assessment"]
    assert a["turns"] == 3 and set(a["dimensions"]) == set(JUDGE_DIMENSIONS) and len(a["composite"]) == 3
    assert a["evaluation"] == narrator.reply and a["evaluation_source"] == "model"
    transcript = narrator.prompts[0][1]["content"]
    assert transcript.count("Therapist: That sounds heavy.") == 3 and "Strongest:" in transcript


def test_a_model_that_says_nothing_leaves_the_marked_template():
    rows = [JudgeResult(scores=dict.fromkeys(JUDGE_DIMENSIONS, 6.0))]
    s = judge_full_session(rows, stage=2, judge=Narrator("  "))
    assert s.evaluation_source == "offline template" and s.evaluation.startswith("[offline template]")


@given(st.one_of(st.floats(-20.0, 20.0), st.sampled_from([-0.0, 0.0, -0.004, 0.004, 0.5, 0.499, 0.504, 9.995, 10.0,
                                                          10.004, -0.005])),
       st.sampled_from([0.0, 0.5]))
def test_a_score_is_rounded_and_bounded_exactly_as_min_max_round(value, low):
    """The verdict's one-expression bound gives min(10, max(low, round(v, 2)))'s bits, signed zeros included."""
    assert score_in_range(value, low).hex() == float(min(10.0, max(low, round(value, 2)))).hex()
