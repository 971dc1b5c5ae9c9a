"""`tbn-corpus pairs` (DPO Methods A and B, §9.3.11) and `tbn-corpus export-sft` (mlx-lm chat samples)."""
import json

import pytest

from corpus.cli import main
from corpus.generate import generate, generate_counterfactuals
from corpus.heldout import heldout_groups
from corpus.pairs import heldout_path, write_pairs
from corpus.schema import Branch, PreferencePair
from corpus.sft import export_sft
from corpus.teaching import branch_class, divergence, load_counterfactuals, load_sessions
from corpus.writer import CorpusWriter
from tbn_train.dpo import read_pairs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    generate(root / "sessions", 5, seed=3)
    generate_counterfactuals(root / "sessions", root / "cf", per_session=2)
    return root


def _lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("method", ["A", "B"])
def test_pairs_of_both_methods_validate_dedupe_and_split_by_moment(corpus, tmp_path, method):
    out = tmp_path / "pairs.jsonl"
    report = write_pairs(corpus / "sessions", corpus / "cf", method, out)
    train, held = _lines(out), _lines(heldout_path(out))
    assert report.train == len(train) > 0 and report.heldout == len(held) > 0
    pairs = [PreferencePair.model_validate(p) for p in train + held]   # the corpus schema, every line
    assert len(read_pairs(out)) == len(train)                           # and what `tbn-train dpo` reads
    assert len({p.pair_id for p in pairs}) == len(pairs)
    assert len({(p.prompt, p.chosen, p.rejected) for p in pairs}) == len(pairs)
    assert all(p.chosen != p.rejected and p.chosen.startswith("<think>") for p in pairs)
    moment = lambda p: p.source.rsplit(":", 1)[1]  # noqa: E731
    assert not {moment(PreferencePair(**p)) for p in train} & {moment(PreferencePair(**p)) for p in held}
    sessions = load_sessions(corpus / "sessions")
    for cf in load_counterfactuals(corpus / "cf"):
        words = sessions[cf.session_ref].turns[divergence(cf)].client_utterance
        mine = [p for p in pairs if moment(p) == cf.sample_id]
        assert mine and all(p.prompt.endswith(f"Client: {words}\n\nYour turn.") for p in mine)
    strategies = {p.source.split(":")[1] for p in pairs}
    if method == "A":
        assert strategies == {"dialogue"}
    else:
        assert {"uhd", "rra"} <= strategies and any(s.startswith("adwc") for s in strategies)
        assert any("[ADWC: REVERSE TEMPORAL ORDER]" in p.prompt for p in pairs)
    assert write_pairs(corpus / "sessions", corpus / "cf", method, tmp_path / "again.jsonl") == report
    assert (tmp_path / "again.jsonl").read_bytes() == out.read_bytes()   # deterministic


def test_branch_classes_follow_the_labels():
    def b(label):
        return Branch(label=label, therapist_thought="t", therapist_utterance="u", client_response="c", outcome="o")
    assert [branch_class(b(x)) for x in ("lands", "partly lands", "misses", "HARMFUL (negation)", "BETTER",
                                         "something else")] == ["better", "partial", "harmful", "harmful",
                                                                "better", None]


def test_counterfactuals_without_a_better_branch_are_refused_and_nothing_is_written(corpus, tmp_path, capsys):
    cf = load_counterfactuals(corpus / "cf")[0]
    worse = cf.model_copy(update={"branches": tuple(b.model_copy(update={"label": "misses"}) for b in cf.branches)})
    with CorpusWriter(tmp_path / "cf", prefix="counterfactuals") as w:
        w.write(worse, worse.sample_id)
    out = tmp_path / "pairs.jsonl"
    code = main(["pairs", "--corpus", str(corpus / "sessions"), "--counterfactuals", str(tmp_path / "cf"),
                 "--method", "A", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("tbn-corpus: error: no counterfactual")
    assert not out.exists() and not heldout_path(out).exists()
    code = main(["pairs", "--corpus", str(tmp_path / "cf"), "--counterfactuals", str(corpus / "cf"),
                 "--method", "A", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not a session" in err[0] and not out.exists()


def test_export_sft_writes_mlx_lm_chat_samples_with_hidden_thoughts(corpus, tmp_path):
    report = export_sft(corpus / "sessions", tmp_path, corpus / "cf")
    train, valid = _lines(tmp_path / "train.jsonl"), _lines(tmp_path / "valid.jsonl")
    assert (report.train, report.valid) == (len(train), len(valid)) and valid
    assert report.train + report.valid == 5 + 10   # every session and every counterfactual (all have a better branch)
    for sample in train + valid:
        roles = [m["role"] for m in sample["messages"]]
        assert roles[0] == "system" and roles[-1] == "assistant" and set(roles) == {"system", "user", "assistant"}
        assert all(m["content"].startswith("<think>") and "</think>\n" in m["content"]
                   for m in sample["messages"] if m["role"] == "assistant")
    assert heldout_groups(load_sessions(corpus / "sessions"))   # whole sessions are held out


def test_heldout_split_is_stable_and_never_empties_either_side():
    keys = [f"s{i}" for i in range(10)]
    held = heldout_groups(keys)
    assert len(held) == 2 and held == heldout_groups(reversed(keys)) and held == heldout_groups(keys * 3)
    assert heldout_groups(["only"]) == set() and len(heldout_groups(["a", "b"])) == 1
