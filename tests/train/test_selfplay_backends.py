"""Judge JSON repair/fallback, the MLX judge and client on the frozen adapter, prompts, and DPO."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tbn_env.dimensions import JUDGE_DIMENSIONS
from tbn_env.judge_parse import FALLBACK_SCORE, parse_judge_output
from tbn_env.protocols import ClientView, DialogueTurn, JudgeResult
from tbn_train.cli import main
from tbn_train.config import TrainConfig
from tbn_train.mlx_backends import MLXClient, MLXJudge, ModelRole
from tbn_train.policy import FROZEN_ADAPTER, build_policy
from tbn_train.prompts import TherapistView, correction_messages, therapist_messages
from tbn_train.run_dir import LOG_FILE
from tbn_train.selfplay import SelfPlay, SelfPlayConfig

CLEAN = {"scores": {d: 7 for d in JUDGE_DIMENSIONS}, "explanations": {"safety": "steady"}, "recommendations": ["slow down"]}


def check(parsed):
    assert set(parsed.result.scores) == set(JUDGE_DIMENSIONS)
    assert all(0.0 <= v <= 10.0 for v in parsed.result.scores.values())
    assert parsed.status in ("ok", "repaired", "fallback")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_always_yields_twelve_scores(text):
    check(parse_judge_output(text))


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8)
                    | st.sampled_from(JUDGE_DIMENSIONS),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from([*JUDGE_DIMENSIONS, "scores", "x"]), inner, max_size=6),
                    max_leaves=30))
def test_arbitrary_json_always_yields_twelve_scores(obj):
    check(parse_judge_output("verdict: " + json.dumps(obj)))


def test_clean_json_is_ok_and_keeps_explanations():
    parsed = parse_judge_output(json.dumps(CLEAN), "kind")
    assert parsed.status == "ok" and parsed.result.scores["safety"] == 7.0 and parsed.result.persona == "kind"
    assert parsed.result.explanations == {"safety": "steady"} and parsed.result.recommendations == ["slow down"]


def test_messy_json_is_repaired_coerced_clamped_and_filled():
    body = ', '.join([f'"{d}": "8/10"' for d in JUDGE_DIMENSIONS[:9]]) + ', "tenderness": {"score": 14, "explanation": "warm"}'
    parsed = parse_judge_output(f'Sure! Here is my verdict:\n{{"scores": {{{body},}}, "narrative": "ok",}}\nThanks')
    assert parsed.status == "repaired" and parsed.filled == 2
    assert parsed.result.scores["attunement"] == 8.0 and parsed.result.scores["tenderness"] == 10.0
    assert parsed.result.scores["artfulness"] == FALLBACK_SCORE and parsed.result.explanations["tenderness"] == "warm"


def test_pairs_without_json_are_repaired_and_garbage_falls_back():
    parsed = parse_judge_output("attunement: 3, Safety = 9.5 and pacing:-2")
    assert parsed.status == "repaired" and (parsed.result.scores["attunement"], parsed.result.scores["safety"]) == (3.0, 9.5)
    assert parsed.result.scores["pacing"] == 0.0
    fallback = parse_judge_output("\x00 }{ ]] nothing here {{")
    assert fallback.status == "fallback" and set(fallback.result.scores.values()) == {FALLBACK_SCORE}


VIEW = TherapistView(client_utterance="I don't know why I'm here.", history=(DialogueTurn(client="Hi.", therapist="Welcome."),),
                     stage=1, phase="A", stance="rapport_building", guidance="Build safety.", profile_card="Client (x).",
                     rupture_pending=False)


def test_correction_prompt_extends_the_feedback_free_prompt():
    kind = JudgeResult(scores=dict.fromkeys(JUDGE_DIMENSIONS, 8.0), recommendations=["name the fear gently"], persona="kind")
    harsh_scores = dict.fromkeys(JUDGE_DIMENSIONS, 8.0) | {"pacing": 2.0}
    harsh = JudgeResult(scores=harsh_scores, explanations={"pacing": "rushed"}, recommendations=["slow down"], persona="harsh")
    messages = correction_messages(VIEW, "<think>t</think>\nSo why now?", kind, harsh)
    assert messages[:2] == therapist_messages(VIEW)  # x for the loss is exactly the prompt without feedback
    feedback = messages[-1]["content"]
    assert "pacing (kind 8.0, harsh 2.0): rushed" in feedback and "name the fear gently" in feedback and "slow down" in feedback
    assert "Strengths" in feedback and "safety" in feedback.split("Strengths")[1]
    assert "Feedback" not in therapist_messages(VIEW)[1]["content"] and "Supervision" not in therapist_messages(VIEW)[1]["content"]


def test_mlx_judge_and_client_use_the_frozen_adapter_and_never_crash(llama_dir):
    policy = build_policy(llama_dir, TrainConfig(max_new_tokens=8))
    policy.router.active = "therapist"
    role = ModelRole(policy.model, policy.tokenizer, policy.router, FROZEN_ADAPTER, 0.0, 24)
    judge = MLXJudge(role, "harsh")
    verdict = judge.verdict(VIEW.judge_context("", "Tell me more."))
    assert judge.deterministic and verdict.status in ("repaired", "fallback") and verdict.result.persona == "harsh"
    assert judge.verdict(VIEW.judge_context("", "Tell me more.")) == verdict  # greedy: same input, same verdict
    assert policy.router.active == "therapist"  # the previous adapter is restored
    client = MLXClient(ModelRole(policy.model, policy.tokenizer, policy.router, FROZEN_ADAPTER, 0.8, 16))
    view = ClientView(profile_card="Client (x).", attachment="A3", dominant_maladaptive=("shame",), dominant_adaptive=("joy",))
    turn = client.respond(view, (), None)
    assert not client.deterministic and turn.utterance and policy.router.active == "therapist"
    with pytest.raises(ValueError, match="temperature"):
        ModelRole(policy.model, policy.tokenizer, policy.router, FROZEN_ADAPTER, 1.0, 8)


@pytest.mark.slow
def test_model_judge_fallbacks_are_counted_and_skip_training(llama_dir, tmp_path):
    cfg = SelfPlayConfig(model=str(llama_dir), sessions=1, max_turns=1, judge="model", client="model",
                         judge_max_tokens=12, client_max_tokens=12, train=TrainConfig(max_new_tokens=12))
    SelfPlay(cfg, tmp_path / "run").run_all()
    (row,) = [json.loads(line) for line in (tmp_path / "run" / LOG_FILE).read_text().splitlines()]
    judged = row["counters"]["judge"]
    assert judged["fallback"] + judged["repaired"] >= 3  # env judge + kind + harsh, at least
    if judged["fallback"] == sum(judged.values()):  # a 12-token random judge never writes a verdict
        assert row["rlaif"]["skipped"] == "judge_fallback" and row["counters"]["rlaif_skipped_judge_fallback"] == 1
        assert set(row["scores"].values()) == {5.0}


def write_pairs(path, pairs):
    path.write_text("\n".join(json.dumps(p) for p in pairs) + "\n")
    return path


PAIRS = [
    {"prompt": "I feel tired.", "chosen": "That sounds heavy. Tell me more.", "rejected": "Just sleep more."},
    {"prompt": [{"role": "user", "content": "Work is stressful."}], "chosen": "What feels hardest?", "rejected": "Quit then."},
    {"prompt": "I freeze when we argue.", "chosen": "Freezing can protect you.", "rejected": "That's not weakness!"},
]


def test_dpo_runs_and_lowers_the_loss(llama_dir, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", PAIRS)
    out = tmp_path / "dpo"
    argv = ["dpo", "--model", str(llama_dir), "--pairs", str(pairs), "--out", str(out), "--epochs", "4", "--learning-rate", "3e-3"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    assert len(rows) == 12 and sorted(rows[0]["pairs"] + rows[1]["pairs"] + rows[2]["pairs"]) == [0, 1, 2]
    assert rows[0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference at the start
    first, last = (sum(r["loss"] for r in rows[i:i + 3]) / 3 for i in (0, 9))
    assert last < first
    assert (out / "therapist" / "adapters.safetensors").is_file()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--model": "{tmp}/nope"}, "model directory"),
        ({"--config": "{tmp}/bad.toml"}, "learning_rat"),
        ({"--init-adapter": "{tmp}"}, "adapter directory"),
        ({"--resume": None}, "nothing to resume"),
        ({"--sessions": "0"}, "sessions"),
    ],
)
def test_bad_cli_input_gives_a_clear_error(llama_dir, tmp_path, capsys, change, message):
    (tmp_path / "bad.toml").write_text("[train]\nlearning_rat = 0.1\n")
    flags = {"--model": str(llama_dir), "--sessions": "1", "--max-turns": "1", "--out": str(tmp_path / "out")}
    flags.update({k: v if v is None else v.format(tmp=tmp_path) for k, v in change.items()})
    argv = ["selfplay"] + [x for k, v in flags.items() for x in ((k,) if v is None else (k, v))]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tbn-train: error:") and message in err
    assert not (tmp_path / "out" / "run.json").exists()  # nothing half-started


def test_bad_pairs_and_an_occupied_out_dir_are_named(llama_dir, tmp_path, capsys):
    bad = tmp_path / "pairs.jsonl"
    bad.write_text(json.dumps(PAIRS[0]) + "\n" + json.dumps({"prompt": "x", "chosen": ""}) + "\n")
    assert main(["dpo", "--model", str(llama_dir), "--pairs", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert f"{bad}:2" in capsys.readouterr().err
    good = write_pairs(tmp_path / "good.jsonl", PAIRS[:1])
    argv = ["dpo", "--model", str(llama_dir), "--pairs", str(good), "--out", str(tmp_path / "o2"), "--max-new-tokens", "4"]
    assert main(argv) == 0
    assert main(argv) == 2
    assert "already holds a run" in capsys.readouterr().err


@pytest.mark.parametrize(("mlp_rank", "reference"), [(16, FROZEN_ADAPTER), (32, "reference")])
def test_init_adapter_seeds_therapist_frozen_and_reference(llama_dir, tmp_path, prompt_of, mlp_rank, reference):
    import mlx.core as mx

    from tbn_train.adapter_io import save_adapter
    from tbn_train.lora import AdapterRouter, LoRASpec, add_adapter
    from tbn_train.model import load_model

    from .conftest import randomize_b

    src, tok = load_model(llama_dir)
    router = AdapterRouter()
    add_adapter(src, router, "dapt", LoRASpec(mlp_rank=mlp_rank), seed=4)
    randomize_b(src, router, "dapt", seed=5)
    save_adapter(src, router, "dapt", tmp_path / "dapt")
    router.active = "dapt"
    ids = mx.array([prompt_of(tok, "I keep going quiet.")])
    original = src(ids)

    policy = build_policy(llama_dir, TrainConfig(), init_adapter=tmp_path / "dapt")
    assert policy.updater.config.reference_adapter == reference

    def logits(name):
        with policy.router.use(name):
            return policy.model(ids)

    assert mx.array_equal(logits(FROZEN_ADAPTER), original).item()  # client/judge: the file as saved
    assert mx.array_equal(logits("therapist"), logits(reference)).item()  # KL starts at exactly 0
    if mlp_rank == 16:
        assert mx.array_equal(logits("therapist"), original).item()
    else:  # rank-32 MLP reduced to 16 by truncated SVD: close to, not equal to, the file
        assert not mx.array_equal(logits("therapist"), original).item()


def test_mlx_judge_reads_the_rubric_anchors_and_validates_over_the_suite(llama_dir, caplog):
    """The tiny random judge writes no real verdict: every output is repaired or refused, with a reason, and
    still validates; its prompt holds every anchor of the rubric data; session and TAIE calls never crash."""
    import logging
    import sys
    from pathlib import Path

    from tbn_env.llm_prompts import judge_messages
    from tbn_env.rubric import load_rubric

    sys.path.insert(0, str(Path(__file__).parents[1] / "env"))
    from judge_suite import cases

    policy = build_policy(llama_dir, TrainConfig(max_new_tokens=8))
    judge = MLXJudge(ModelRole(policy.model, policy.tokenizer, policy.router, FROZEN_ADAPTER, 0.0, 16), "kind")
    suite = cases()[::60]  # two cases: a 2.5k-token rubric prompt per call on the tiny model
    system = judge_messages(suite[0].context, "kind")[0]["content"]
    assert all(d.adequate in system for d in load_rubric().dimensions.values())
    with caplog.at_level(logging.INFO, logger="tbn_train.mlx_backends"):
        verdicts = [judge.verdict(c.context) for c in suite]
    for v in verdicts:
        JudgeResult.model_validate(v.result.model_dump())
        assert v.status in ("repaired", "fallback") and v.reason and v.reason in caplog.text
    assert isinstance(judge.evaluate_session([{"role": "user", "content": "Evaluate."}]), str)
    assert judge.assess_taie(suite[0].context, (0.0, 0.0, 0.0)) is None and "TAIE assessment refused" in caplog.text
