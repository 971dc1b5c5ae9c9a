"""The prefilter skips only searches that find nothing: every cue pattern of the judge, the harm check and the
validators answers exactly as the bare pattern does, on text made of the patterns' own words."""
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tbn_env import harm, rubric_judge, validators
from tbn_env.prefilter import Prefiltered, Screen, finder, required_literals

CUES = tuple({id(p): p for p in (
    *(v for m in (rubric_judge, validators) for v in vars(m).values() if isinstance(v, Prefiltered)),
    *(p for _, p in harm.PATTERNS), *(p for *_, p in validators._HARD))}.values())
# each pattern's required strings, cut and whole, their words, phrases that complete a match, and characters
# that stress word boundaries and case folding; joined with and without spaces
VOCABULARY = sorted({piece for cue in CUES for s in required_literals(cue.pattern) or ()
                     for piece in (s, s[:-1], s[1:], *s.split())}
                    | {" ", ".", ",", "'", "\n", "#", "- ", "1. ", "?", "!", "I", "'s", "B1 = 3/10", "Label: Phrase.",
                       "\u017f", "\u212a", "\u0131", "\u0130", "\u2019", "\u00df", "pathetic", "a burden", "sit",
                       "yourself", "fault", "closer", "suicide", "nothing", "don't", "worthless", "so", "just", "all"})
TEXTS = st.tuples(st.lists(st.sampled_from(VOCABULARY) | st.text(max_size=3), max_size=12),
                  st.sampled_from((" ", "", ", ", ". ", " but "))).map(lambda t: t[1].join(t[0])) \
    .flatmap(lambda t: st.sampled_from((t, t.upper(), t.title())))


def test_every_cue_pattern_is_screened_where_it_has_literals():
    assert len(CUES) >= 35   # 17 judge cues, 8 harm patterns, 7 hard and 3 soft checks
    unscreened = sorted(c.pattern.pattern[:30] for c in CUES if c.screen is None)
    assert len(unscreened) == 2, unscreened   # only the repeated-symbol and foreign-script checks


@settings(max_examples=1500, deadline=None)
@given(text=TEXTS)
def test_a_screened_pattern_finds_what_the_bare_pattern_finds(text):
    for cue in CUES:
        bare = cue.pattern
        assert [m.span() for m in cue.finditer(text)] == [m.span() for m in bare.finditer(text)], bare.pattern
        assert cue.findall(text) == bare.findall(text)
        found, expected = cue.search(text), bare.search(text)
        assert (found and found.span()) == (expected and expected.span())


READERS = (rubric_judge.REPLY_CUES, harm._SCREEN, validators._HARD_SCREEN, validators._SAID_SCREEN, Screen(CUES))


@settings(max_examples=1500, deadline=None)
@given(text=TEXTS)
def test_one_search_screens_a_text_for_many_patterns_as_each_screens_it_alone(text):
    """A reader's screen lets through exactly the patterns whose own screens would, folded or not, and its
    searches find what the bare patterns find."""
    for reader in READERS:
        assert reader.passing(text) == {cue for cue in reader.patterns if cue.could_match(text)}
        cues = reader.read(text)
        for cue in reader.patterns:
            expected = cue.pattern.search(text)
            assert (cues.search(cue) and cues.search(cue).span()) == (expected and expected.span()), cue.pattern
            assert cues.findall(cue) == cue.pattern.findall(text)


@settings(max_examples=500, deadline=None)
@given(strings=st.lists(st.text(alphabet="ab. \u00df", min_size=1, max_size=4), min_size=1, max_size=8),
       text=st.text(alphabet="ab. \u00df", max_size=30))
def test_a_finder_stops_at_each_place_on_the_longest_string_starting_there(strings, text):
    find = finder(strings)
    for at in range(len(text) + 1):
        starting = [s for s in strings if text.startswith(s, at)]
        m = find.match(text, at)
        assert (m and m.group()) == (max(starting, key=len) if starting else None)


@pytest.mark.parametrize("pattern, flags, needs", [
    (r"\bsounds like\b", 0, {"sounds like"}),
    (r"\byou'?re (wrong|right)", 0, {"you're wrong", "youre wrong", "you're right", "youre right"}),
    (r"slow(ly)?|no rush", 0, {"slow", "slowly", "no rush"}),        # an optional tail: both ways
    (r"(?<!no )\byou must\b", 0, {"you must"}),                      # lookarounds consume nothing
    (r"x+yz", 0, {"yz"}),                                            # the longer of two required pieces
    (r"x(yz)*", 0, {"x"}),                                           # a repeat that may be absent requires nothing
    (r"a*bc|d", 0, {"bc", "d"}),
    (r"Why This Works", re.I, {"why this works"}),                    # folded: compared with lower-cased text
    (r"(a|)b", 0, {"ab", "b"}),
    (r"(a|)", 0, None),                                               # may match the empty string
    (r"[abc]+", 0, None), (r"(\w)\1", 0, None), (r"\u017f", re.I, None),   # nothing known for sure
])
def test_required_literals(pattern, flags, needs):
    assert required_literals(re.compile(pattern, flags)) == (frozenset(needs) if needs is not None else None)


def test_a_screen_looks_for_each_string_once_and_not_for_one_holding_another():
    assert Prefiltered(r"slow(ly)?|no rush").screen == ("no rush", "slow")


def test_a_text_without_the_literals_is_not_searched_and_one_with_them_is():
    cliche = Prefiltered(r"\b(stay positive|time heals)\b")
    assert not cliche.could_match("it sounds like part of you is on guard")
    assert cliche.could_match("they say time heals") and cliche.search("they say time heals").group(0) == "time heals"


def test_case_folding_beyond_ascii_is_searched_not_screened():
    """Under IGNORECASE 's' also matches the long s and 'k' the Kelvin sign, which lower-casing does not give."""
    kiss = Prefiltered(r"\bkiss\b", re.I)
    for text in ("KI\u017f\u017f", "\u212aiss", "KISS"):
        assert kiss.search(text) is not None and re.search(r"\bkiss\b", text, re.I) is not None


@settings(max_examples=3000, deadline=None)
@given(text=st.text(alphabet="ab .!?\u201c\u201d~*-_\n", max_size=40))
def test_the_repeated_symbol_check_finds_what_its_plain_form_finds(text):
    """Written from its first symbol (so a search skips to symbols), it still finds the plain form's matches."""
    plain = re.compile(rf"([^\w\s])\1{{{validators.REPEAT_RUN - 1},}}|((?:[^\w\s]){{2}})\2{{3,}}")
    check = next(p for name, _, p in validators._HARD if name == "unicode_degeneration")
    found, expected = check.search(text), plain.search(text)
    assert (found and found.span()) == (expected and expected.span())
