"""Hard and soft checks for the App. 31 failures, and the therapist-turn format."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tbn_env.turn_format import parse_therapist_turn
from tbn_env.validators import hard_violations, soft_flags, ungrounded_details, validate_utterance


@pytest.mark.parametrize("text, name", [
    ("Come sit closer to me.", "boundary_violation"),                       # Failure 11
    ("Could you move your chair over here?", "boundary_violation"),
    ("We could meet for a drink after the session.", "boundary_violation"),
    ("Why This Works:\n- it validates", "meta_commentary"),                  # Failure 12
    ("Here's a better response: I hear you.", "meta_commentary"),
    ("## Reflection\nI hear you.", "meta_commentary"),
    ("Therapist: I hear you.", "meta_commentary"),
    ("I hear you.</think> more", "leaked_reasoning"),                       # Failure 14
    ("Overthinking: Yeah. Dissociating: Totally.", "leaked_reasoning"),     # Failure 13
    ("Your B1 = 1.0/10 today.", "category_score"),                          # Failure 6
    ("I hear you “”“”“”“”“”", "unicode_degeneration"),                     # Failure 8
    ("!!!!!!!!", "unicode_degeneration"),
    ("我很抱歉 that hurts", "mixed_script"),                                  # Failure 13
    ("", "empty"),
    ("word " * 300, "overlong"),
])
def test_hard_failures_are_named(text, name):
    assert name in validate_utterance(text)
    assert all(v.failure is not None for v in hard_violations(text))


def test_an_overlong_turn_names_its_word_count():
    """Before the fix the evidence was the repr of a function, a memory address that changed run to run."""
    (overlong,) = [v for v in hard_violations("word " * 300) if v.name == "overlong"]
    assert overlong.evidence == "300 words"


@pytest.mark.parametrize("text", [
    "It sounds like you feel so alone. That makes sense, and I'm here with you.",
    "What was that like for you?",
    "I wonder if part of you has been carrying this for a long time.",
    "You said “I can't do this anymore.” Can you say more?",
])
def test_ordinary_therapeutic_speech_passes(text):
    assert validate_utterance(text) == []


def test_soft_flags():
    card = "Maya lives alone with a cat."
    assert soft_flags("That's not weakness, that's courage.", card, 2)["negation_reassurance"]
    assert ungrounded_details("I was watching your dog out the window", card) == ["dog", "window"]
    assert ungrounded_details("Your cat must miss you too", card) == []
    assert soft_flags("Deep down you resent your mother.", card, 1)["premature_depth"]
    assert not soft_flags("Deep down you resent your mother.", card, 3)["premature_depth"]
    assert soft_flags("Let's explore something new today.", card, 4)["new_material"]


def test_turn_format():
    t = parse_therapist_turn("<think>she is guarded</think>  It sounds hard. ")
    assert (t.thought, t.utterance, t.well_formed) == ("she is guarded", "It sounds hard.", True)
    t = parse_therapist_turn("<thinking>go slow</thinking><say>I'm here.</say>")
    assert (t.thought, t.utterance, t.well_formed) == ("go slow", "I'm here.", True)
    t = parse_therapist_turn("I'm here.")
    assert (t.thought, t.utterance, t.well_formed) == ("", "I'm here.", True)
    t = parse_therapist_turn("<think>unclosed I'm here.")
    assert not t.well_formed and "I'm here." in t.utterance and t.problems
    t = parse_therapist_turn("<think>a</think>I hear you.<think>b</think>")
    assert "tags inside the utterance" in t.problems
    with pytest.raises(TypeError, match="text"):
        parse_therapist_turn(3)


@given(st.text(max_size=400))
def test_parsing_and_validation_never_crash_and_keep_the_words(text):
    t = parse_therapist_turn(text)
    assert isinstance(validate_utterance(t.utterance, t.thought), list)
    if "<" not in text:
        assert t.utterance == text.strip() and t.thought == ""
