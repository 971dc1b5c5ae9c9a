"""The Claude judge against the local fake Messages API: plumbing only (the fake does not judge).

Every request carries the rubric anchors from tbn_env/data/rubric.toml; every verdict over the
adversarial suite validates as a JudgeResult with its composite; a malformed reply is repaired or
refused with a logged reason; whole sessions and full-mode TAIE go through the same client.
"""
import json
import logging
import sys
from pathlib import Path

import gymnasium as gym
import pytest

import tbn_env  # noqa: F401
from corpus.anthropic_api import DEFAULT_MODEL, AnthropicSettings
from corpus.anthropic_env import AnthropicJudge
from corpus.fake_anthropic import FakeMessagesAPI
from tbn_env.dimensions import JUDGE_DIMENSIONS
from tbn_env.protocols import JudgeResult
from tbn_env.rubric import load_rubric

sys.path.insert(0, str(Path(__file__).parents[1] / "env"))
from judge_suite import cases

VERDICT = {"scores": dict.fromkeys(JUDGE_DIMENSIONS, 6.0), "explanations": dict.fromkeys(JUDGE_DIMENSIONS, "ok"),
           "narrative": "fine", "critical_moments": ["turn 1"], "recommendations": ["slow down"]}


def reply(body: dict) -> str:
    system = body.get("system", "")
    if "clinical assessor" in system:
        return json.dumps({"x": 2, "y": -4, "z": 1, "narrative": "guarded", "stuck_realms": ["self-esteem"],
                           "recommendations": ["validate worth"]})
    if "whole therapy session" in system:
        return "The session moved from guarded to open; the repair held."
    return json.dumps(VERDICT)


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-a-real-key")


def test_every_suite_case_validates_and_every_prompt_carries_the_anchors():
    suite = cases()[:12]
    with FakeMessagesAPI(reply) as api:
        judge = AnthropicJudge("harsh", settings=AnthropicSettings(base_url=api.base_url, model="fake-model"))
        results = [judge.score(c.context) for c in suite]
    rubric = load_rubric()
    for body in api.requests:
        for d in rubric.dimensions.values():
            assert d.excellent in body["system"] and d.poor in body["system"]
    for r in results:
        JudgeResult.model_validate(r.model_dump())
        assert r.composite == 6.0 and r.persona == "harsh" and r.recommendations == ["slow down"]
    assert judge.verdicts == {"ok": len(suite), "repaired": 0, "fallback": 0}


def test_malformed_replies_are_refused_with_a_logged_reason(caplog):
    with FakeMessagesAPI(reply, script=["malformed"]) as api:
        judge = AnthropicJudge(settings=AnthropicSettings(base_url=api.base_url, model="fake-model"))
        with caplog.at_level(logging.WARNING, logger="corpus.anthropic_env"):
            r = judge.score(cases()[0].context)
    assert set(r.scores.values()) == {5.0} and judge.verdicts["fallback"] == 1
    assert "no dimension scores found" in caplog.text


def test_sessions_and_full_taie_go_through_claude():
    with FakeMessagesAPI(reply) as api:
        judge = AnthropicJudge(settings=AnthropicSettings(base_url=api.base_url, model="fake-model"))
        env = gym.make("Therapy-v0", judge=judge, max_turns=2, taie_mode="full", info_mode="debug")
        env.reset(seed=0)
        infos = [env.step("That sounds heavy.")[-1] for _ in range(2)]
    assert infos[0]["taie_full"]["stuck_realms"] == ["self-esteem"] and infos[0]["taie_full"]["source"] == "model"
    a = infos[-1]["session_assessment"]
    assert a["evaluation_source"] == "model" and a["evaluation"].startswith("The session moved")


def test_selfplay_runs_with_claude_as_its_judge(tiny_dirs, tmp_path, monkeypatch):
    from tbn_train.cli import main

    with FakeMessagesAPI(reply) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        out = tmp_path / "run"
        argv = ["selfplay", "--model", str(tiny_dirs["llama"]), "--sessions", "1", "--max-turns", "1",
                "--out", str(out), "--max-new-tokens", "8", "--judge", "anthropic"]
        assert main(argv) == 0
    (row,) = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert set(row["scores"].values()) == {6.0} and row["counters"]["judge"]["ok"] >= 3  # env + kind + harsh
    assert row["session_assessment"]["evaluation_source"] == "model"
    assert len(api.requests) >= 4 and all(r["model"] == DEFAULT_MODEL for r in api.requests)


def test_selfplay_with_claude_but_no_key_exits_2(tiny_dirs, tmp_path, monkeypatch, capsys):
    from tbn_train.cli import main

    monkeypatch.delenv("ANTHROPIC_API_KEY")
    argv = ["selfplay", "--model", str(tiny_dirs["llama"]), "--sessions", "1", "--max-turns", "1",
            "--out", str(tmp_path / "run"), "--judge", "anthropic"]
    assert main(argv) == 2
    assert "ANTHROPIC_API_KEY" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_the_default_model_is_not_one_the_sdk_calls_deprecated():
    """The SDK warns on a deprecated model at every request; the default must not draw that warning."""
    import warnings

    with FakeMessagesAPI(reply) as api, warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        judge = AnthropicJudge(settings=AnthropicSettings(base_url=api.base_url))
        judge.score(cases()[0].context)
    assert api.requests[0]["model"] == DEFAULT_MODEL
