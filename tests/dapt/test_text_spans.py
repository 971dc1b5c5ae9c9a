"""Text-span factor anchors (App. 29.1.2): pure insertions, and each kind exactly where it belongs."""
import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.counterfactuals import Moment, offline_counterfactual
from corpus.generate import offline_session
from corpus.schema import PIPELINES, TherapistModel
from corpus.therapist import schools
from dapt import adwc, dfr, uhd
from dapt.markers import session_header, to_text
from dapt.text_spans import SPAN_FACTORS, frameworks_in, strip, turn_spans

NAMES = [s["name"] for s in schools()]
# every way the catalogue names a school: full, without the parenthesis, the abbreviation
FORMS = sorted({f for n in NAMES for f in (n, n.partition(" (")[0], n.partition(" (")[2].rstrip(")"))
                if f and f not in ("I", "II")})
TURN = re.compile(r"\[TURN (\d+)\]\n<CLIENT_COT>(.*?)</CLIENT_COT>\n<CLIENT_UTT>(.*?)</CLIENT_UTT>\n<TMOC>(.*?)</TMOC>\n"
                  r"<THER_COT>(.*?)</THER_COT>\n<THER_UTT>(.*?)</THER_UTT>\n", re.S)


def spans(text: str, kind: str) -> list[str]:
    return re.findall(rf"<FAC:{kind}>(.*?)</FAC:{kind}>", text, re.S)


def json_string(raw: str) -> str:
    """A span read out of the Mᵀ JSON, unescaped."""
    return json.loads(f'"{raw}"')


@st.composite
def rich_sessions(draw):
    """Offline sessions whose therapist names schools in Mᵀ and Θᵀ (with quotes to escape) and whose
    client names them too, in the words said and in the evidence Mᵀ quotes."""
    session = draw(st.builds(offline_session, st.integers(0, 10_000), st.integers(0, 500)))
    forms = st.sampled_from(FORMS)
    turns = []
    for t in session.turns:
        said = f"{t.client_utterance} A friend swears by {draw(forms)}."
        m = t.therapist_model
        model = m.model_copy(update={
            "stage_assessment": draw(st.sampled_from(["", m.stage_assessment, f'stage-typical "testing"; {draw(forms)}'])),
            "modality_insights": tuple(f'{draw(forms)} reads the "no" as protection' for _ in range(draw(st.integers(0, 2)))),
            "probable_issues": tuple(i.model_copy(update={"evidence": said}) for i in m.probable_issues)})
        thought = t.therapist_thought.model_copy(update={"gco": f"{t.therapist_thought.gco} Compare {draw(forms)}."})
        turns.append(t.model_copy(update={"client_utterance": said, "therapist_model": model,
                                          "therapist_thought": thought}))
    return session.model_copy(update={"turns": tuple(turns)})


@given(rich_sessions())
def test_anchors_are_pure_insertions_and_decompose_recompose_stays_exact(session):
    units = dfr.decompose(session)
    assert dfr.recompose(units) == session
    for kind in SPAN_FACTORS:   # the text-span factors are DFR segments too
        assert [x for _, name, x in units.segments if name == kind.lower()] == dfr.factors(session)["text_spans"][kind]
    text = to_text(dfr.full_session(session))
    blocks = TURN.findall(text)
    assert len(blocks) == len(session.turns)
    for (index, client_cot, client_utt, tmoc, ther_cot, ther_utt), t in zip(blocks, session.turns):
        assert int(index) == t.index and client_cot == t.client_thought and client_utt == t.client_utterance
        assert TherapistModel.model_validate_json(strip(tmoc)) == t.therapist_model   # still valid JSON, exact
        assert strip(ther_cot) == f"<GCO>{t.therapist_thought.gco}</GCO><OMO>{t.therapist_thought.omo}</OMO>"
        assert strip(ther_utt) == t.therapist_utterance


@given(rich_sessions())
def test_each_anchor_kind_appears_where_it_belongs_and_nowhere_else(session):
    text = to_text(dfr.full_session(session))
    header, body = text[:len(session_header(session))], text[len(session_header(session)):]
    assert not re.search(r"<FAC:(INSIGHT|FRAMEWORK|INTERVENTION)>", header)
    assert not re.search(r"<FAC:(STAGE|ATTACH|PHASE|DEFENSE|FOCUS|ISSUE|STRENGTH|MODALITY)>", body)
    for (_, client_cot, client_utt, tmoc, ther_cot, ther_utt), t in zip(TURN.findall(text), session.turns):
        expected = turn_spans(t)
        assert "<FAC:" not in client_cot + client_utt   # the client names a school: not a framework reference
        issues = json.loads(tmoc)["probable_issues"]
        assert all("<FAC:" not in i["evidence"] for i in issues)   # nor when Mᵀ quotes the client
        assert [json_string(strip(s)) for s in spans(tmoc, "INSIGHT")] == expected["INSIGHT"]
        assert spans(tmoc, "INTERVENTION") == spans(ther_cot, "INTERVENTION") == spans(ther_cot, "INSIGHT") == []
        assert spans(tmoc, "FRAMEWORK") + spans(ther_cot, "FRAMEWORK") == expected["FRAMEWORK"]
        assert len(expected["FRAMEWORK"]) >= 1 + len(t.therapist_model.modality_insights)   # every mention caught
        assert ther_utt == f"<FAC:INTERVENTION>{t.therapist_utterance}</FAC:INTERVENTION>"   # the words, whole
    factors = dfr.factors(session)["text_spans"]
    assert [json_string(strip(s)) for s in spans(text, "INSIGHT")] == factors["INSIGHT"]
    assert spans(text, "FRAMEWORK") == factors["FRAMEWORK"]
    assert spans(text, "INTERVENTION") == factors["INTERVENTION"]


def test_framework_forms_are_the_catalogue_names_only():
    assert frameworks_in("From an IFS lens; Internal Family Systems (IFS) again; EFT, then AEDP-style work") == [
        "IFS", "Internal Family Systems (IFS)", "EFT", "AEDP"]
    assert frameworks_in("IFSx, the ifs of it, ACTION, Complex PTSD Recovery (II) (I)") == ["Complex PTSD Recovery (II)"]


@settings(max_examples=30)
@given(rich_sessions(), st.integers(0, 100))
def test_every_strategy_carries_the_anchors_of_the_turns_it_shows(session, seed):
    for i, prefix in enumerate(uhd.expand(session)):
        text = to_text(prefix)
        for kind in ("FRAMEWORK", "INTERVENTION"):
            assert spans(text, kind) == [x for t in session.turns[:i + 1] for x in turn_spans(t)[kind]]
    for w in adwc.windows(session, seed=seed):
        text = to_text(list(w.pieces))
        if w.k == 1:   # single-turn windows are never cut at the edges
            t = session.turns[w.turns[0]]
            assert spans(text, "INTERVENTION") == [t.therapist_utterance]
            assert spans(text, "FRAMEWORK") == turn_spans(t)["FRAMEWORK"]
        else:   # every turn a window shows whole (not cut at an edge) carries its intervention anchor
            shown = [session.turns[j].therapist_utterance for j in w.turns[:-1]]
            assert spans(text, "INTERVENTION")[:len(shown)] == shown


@given(rich_sessions(), st.integers(0, len(PIPELINES) - 1), st.integers(0, 1000), st.sampled_from(FORMS))
def test_counterfactual_branches_mark_their_intervention_and_the_schools_they_reason_with(session, j, pos, form):
    sample = offline_counterfactual(Moment("cf", session, PIPELINES[j], pos % len(session.turns)))
    sample = sample.model_copy(update={
        "rationale": f"{sample.rationale} ({form})",
        "branches": tuple(b.model_copy(update={"therapist_thought": f"{b.therapist_thought} Via {form}.",
                                               "client_response": f"{b.client_response} Is this {form}?"})
                          for b in sample.branches)})
    text = to_text(dfr.counterfactual(sample))
    assert dfr.recompose_counterfactual(dfr.decompose_counterfactual(sample)) == sample
    context = [u for t in sample.context_turns for u in turn_spans(t)["INTERVENTION"]]
    assert spans(text, "INTERVENTION") == context + [b.therapist_utterance for b in sample.branches]
    for b in sample.branches:
        assert f"<CLIENT_UTT>{b.client_response}</CLIENT_UTT>" in text   # the client's answer: no anchor
        assert f"<THER_COT>{b.therapist_thought}</THER_COT>" in strip(text)
    rationale = re.search(r"<RATIONALE>(.*)</RATIONALE>", text, re.S).group(1)
    assert spans(rationale, "FRAMEWORK")[-1] == form and strip(rationale) == sample.rationale
