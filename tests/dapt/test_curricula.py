"""DFR, UHD, ADWC and the length curriculum: property tests on random sessions."""
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.counterfactuals import Moment, offline_counterfactual
from corpus.generate import generate, generate_counterfactuals, offline_session
from corpus.schema import PIPELINES
from corpus.writer import read_samples
from dapt import adwc, dfr, uhd
from dapt.clusters import CLUSTER_BOUNDS, TokenCounter, cluster_of, curriculum_order
from dapt.markers import FORWARD_HEADER, MARKER, REVERSE_HEADER, session_header, to_text
from dapt.preprocess import encode, preprocess, stats

sessions = st.builds(offline_session, st.integers(0, 10_000), st.integers(0, 500), st.sampled_from([None, 1, 2, 3]))


@given(sessions)
def test_dfr_decompose_recompose_round_trips_exactly(session):
    units = dfr.decompose(session)
    assert dfr.recompose(units) == session
    assert len(units.turns) == len(session.turns) and len(units.components) == 5 * len(session.turns)
    assert {name for _, name, _ in units.segments} >= {"gco", "omo"}


@given(sessions)
def test_uhd_yields_n_prefixes_each_a_prefix_of_the_next(session):
    prefixes = [to_text(p) for p in uhd.expand(session)]
    assert len(prefixes) == len(session.turns)
    assert all(b.startswith(a) and len(b) > len(a) for a, b in zip(prefixes, prefixes[1:]))
    assert all(p.count("[TURN ") == i + 1 for i, p in enumerate(prefixes))
    assert all(p.startswith(session_header(session) + f"[CLIENT {session.client.name}, {session.client.age}, DMM ")
               for p in prefixes)   # App. 29.3: the client profile summary in the UHD header


@settings(max_examples=25)
@given(sessions, st.integers(0, 100))
def test_adwc_directions_alternate_and_every_turn_appears_as_expected(session, seed):
    ws = adwc.windows(session, seed=seed)
    n = len(session.turns)
    for w in ws:
        assert w.forward == (w.k % 2 == 1)
        text = to_text(list(w.pieces))
        assert text.startswith(session_header(session) + (FORWARD_HEADER if w.forward else REVERSE_HEADER))
        marks = re.findall(r"\[T([+-])(\d+)\]", text)
        assert [int(i) for _, i in marks] == list(range(w.k)) and {s for s, _ in marks} == {"+" if w.forward else "-"}
        assert list(w.turns) == (sorted(w.turns) if w.forward else sorted(w.turns, reverse=True))
    for k in range(1, min(adwc.MAX_WINDOW, n) + 1):  # forward sweeps ascend, backward sweeps descend
        starts = [w.start for w in ws if w.k == k]
        assert starts == (sorted(starts) if k % 2 else sorted(starts, reverse=True))
    for t in range(n):
        assert sum(t in w.turns for w in ws) == adwc.expected_appearances(n, t)


@given(st.lists(st.integers(0, 300_000), min_size=2, max_size=50))
def test_cluster_assignment_is_monotone_in_length(lengths):
    ordered = sorted(lengths)
    clusters = [cluster_of(n) for n in ordered]
    assert clusters == sorted(clusters) and all(0 <= c <= 5 for c in clusters)
    assert [cluster_of(b - 1) for b in CLUSTER_BOUNDS] == [0, 1, 2, 3, 4] and cluster_of(CLUSTER_BOUNDS[-1]) == 5
    ids = {f"s{i}": n for i, n in enumerate(lengths)}
    order = curriculum_order(ids)
    assert [ids[i] for i in order] == sorted(lengths)


@given(sessions)
def test_markers_are_well_formed(session):
    text = to_text(dfr.full_session(session))
    stack = []
    for close, name in re.findall(r"<(/?)(CLIENT_COT|CLIENT_UTT|TMOC|THER_COT|GCO|OMO|THER_UTT|FAC:[A-Z]+)>", text):
        if close:
            assert stack and stack.pop() == name, f"</{name}> closes the wrong tag"
        else:
            stack.append(name)
    assert stack == [] and "<FAC:STAGE>" in text and "<FAC:ATTACH>" in text
    assert all(MARKER.fullmatch(m.group(0)) for m in MARKER.finditer(text))


def test_loss_masks_select_components():
    session = offline_session(1, 2)
    text, spans = encode(dfr.full_session(session, frozenset({"therapist_utterance"})))
    trained = [text[a:b] for a, b in spans]
    assert len(trained) == len(session.turns) and all(s.startswith("<THER_UTT>") for s in trained)
    text, spans = encode(dfr.full_session(session, frozenset({"therapist_model"})))  # Mᵀ given Uᶜ in context
    assert spans and all(text[a:b].startswith("<TMOC>") for a, b in spans)
    with pytest.raises(ValueError, match="unknown loss targets"):
        dfr.full_session(session, frozenset({"mood"}))


def test_preprocess_streams_a_corpus_and_resumes(tmp_path):
    generate(tmp_path / "corpus", 6, seed=2)
    n = preprocess(tmp_path / "corpus", tmp_path / "out", ("dfr", "uhd", "adwc"))
    s = stats(tmp_path / "out")
    assert s["samples"] == n and set(s["by_strategy"]) == {"dfr", "uhd", "adwc"}
    order = json.loads((tmp_path / "out" / "curriculum.json").read_text())
    assert len(order) == n
    assert preprocess(tmp_path / "corpus", tmp_path / "out", ("dfr", "uhd", "adwc"), resume=True) == 0
    with pytest.raises(ValueError, match="strategies"):
        preprocess(tmp_path / "corpus", tmp_path / "bad", ("sliding",))


def test_token_counter_uses_a_model_tokenizer(tmp_path):
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer, models, pre_tokenizers
    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "hello": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    assert TokenCounter(tmp_path)("hello there, friend") == 4  # hello there , friend
    with pytest.raises(ValueError, match="tokenizer.json"):
        TokenCounter(tmp_path / "missing")


moments = st.builds(lambda session, j, pos: Moment(f"{session.session_id}-cf{j}", session, PIPELINES[j],
                                                   pos % len(session.turns)),
                    sessions, st.integers(0, len(PIPELINES) - 1), st.integers(0, 1000))


@given(moments)
def test_counterfactuals_decompose_recompose_exactly_and_render_every_branch(moment):
    sample = offline_counterfactual(moment)
    units = dfr.decompose_counterfactual(sample)
    assert dfr.recompose_counterfactual(units) == sample
    assert len(units.components) == 5 * len(sample.context_turns)
    text, spans = encode(dfr.counterfactual(sample))
    assert text.startswith(f"[COUNTERFACTUAL pipeline={sample.pipeline} stage={sample.stage}]\n<FAC:STAGE>")
    assert all(f"<THER_UTT><FAC:INTERVENTION>{b.therapist_utterance}</FAC:INTERVENTION></THER_UTT>" in text
               for b in sample.branches)
    assert text.count("[BRANCH ") == len(sample.branches) and text.count("[TURN ") == len(sample.context_turns)
    assert all(MARKER.fullmatch(m.group(0)) for m in MARKER.finditer(text))
    _, only_said = encode(dfr.counterfactual(sample, frozenset({"therapist_utterance"})))
    assert [text[a:b] for a, b in only_said][-len(sample.branches):] == [
        f"<THER_UTT><FAC:INTERVENTION>{b.therapist_utterance}</FAC:INTERVENTION></THER_UTT>\n"
        for b in sample.branches]


def test_preprocess_takes_counterfactuals_through_dfr(tmp_path):
    generate(tmp_path / "corpus", 3, seed=4)
    generate_counterfactuals(tmp_path / "corpus", tmp_path / "cf", per_session=2)
    plain = preprocess(tmp_path / "corpus", tmp_path / "plain", ("dfr",))
    n = preprocess(tmp_path / "corpus", tmp_path / "out", ("dfr",), counterfactuals_dir=tmp_path / "cf")
    assert n == plain + 6
    cf = [json.loads(line) for _, _, line in read_samples(tmp_path / "out", prefix="samples")
          if json.loads(line)["id"].endswith("/cf")]
    assert len(cf) == 6 and all(s["strategy"] == "dfr" and s["text"].startswith("[COUNTERFACTUAL ") for s in cf)
    assert len(json.loads((tmp_path / "out" / "curriculum.json").read_text())) == n
    assert preprocess(tmp_path / "corpus", tmp_path / "out", ("dfr",), resume=True,
                      counterfactuals_dir=tmp_path / "cf") == 0


def test_out_of_range_spans_and_oversized_samples_are_refused():
    """Before the fix: spans past the text were clamped; a 20 MB sample was tokenized."""
    from dapt.windows import MAX_SAMPLE_CHARS, tokenize
    for spans in ([[0, 50]], [[5, 3]], [[4, 8], [2, 6]], [[-1, 2]]):
        with pytest.raises(ValueError, match="trainable span"):
            tokenize({"id": "s/x", "text": "a short sample", "trainable": spans}, tokenizer=None)
    with pytest.raises(ValueError, match="over the 2,000,000 limit"):
        tokenize({"id": "s/big", "text": "x" * (MAX_SAMPLE_CHARS + 1), "trainable": []}, tokenizer=None)
