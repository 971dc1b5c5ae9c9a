"""The Anthropic backends, with the real SDK against a local fake Messages API on 127.0.0.1 (issue 5)."""
import asyncio
import json
import subprocess
import sys

import gymnasium as gym
import pytest

import tbn_env  # noqa: F401
from corpus.anthropic_api import AnthropicSettings, extract_json
from corpus.anthropic_backend import generate_anthropic
from corpus.anthropic_env import AnthropicClient, AnthropicJudge
from corpus.fake_anthropic import FakeMessagesAPI
from corpus.generate import sample_id
from corpus.schema import Session
from corpus.writer import MANIFEST, read_samples

KEY = "sk-test-not-a-real-key"


def session_reply(body: dict) -> str:
    turn = {"client_thought": "I'm unsure.", "client_utterance": "I don't know where to start.",
            "therapist_model": {"active_defenses": ["denial"], "working_focus_areas": ["grief"],
                                "probable_issues": [{"label": "grief", "tally": 1, "evidence": "start"}],
                                "attachment_hypothesis": "A3", "stage_assessment": "early"},
            "therapist_thought": {"gco": "Build safety first.", "omo": "Person-centred: reflect."},
            "therapist_utterance": "We can start wherever feels right.", "phase": "A"}
    return "Here it is:\n```json\n" + json.dumps({"turns": [turn, turn]}) + "\n```"


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)


def settings(api, **kw):
    return AnthropicSettings(base_url=api.base_url, timeout=kw.pop("timeout", 5.0), max_retries=kw.pop("max_retries", 3),
                             concurrency=kw.pop("concurrency", 4), model="fake-model", **kw)


def run(out, n, api, resume=False, **kw):
    return asyncio.run(generate_anthropic(out, n, 7, settings(api, **kw), resume=resume))


def test_sessions_survive_rate_limits_overload_errors_timeouts_and_bad_replies(tmp_path):
    script = ["429", "ok", "529", "500", "stall", "malformed", "ok", "ok"]
    with FakeMessagesAPI(session_reply, script=script, stall=2.0) as api:
        report = run(tmp_path, 4, api, timeout=0.5)
    assert report.written == [sample_id(7, i) for i in range(4)] and not report.rejected
    assert report.retries >= 1                      # the malformed reply was regenerated
    assert report.usage.calls >= 4 and report.usage.cost_usd > 0
    for _, _, line in read_samples(tmp_path):
        s = Session.model_validate_json(line)
        assert s.generation.backend == "anthropic" and s.generation.model == "fake-model"
    assert all(KEY in h.get("x-api-key", "") + h.get("authorization", "") for h in api.headers)  # key sent, from env
    assert KEY not in (tmp_path / MANIFEST).read_text()


def test_unusable_replies_are_rejected_with_a_reason_not_dropped(tmp_path):
    with FakeMessagesAPI(lambda body: '{"turns": []}') as api:
        report = run(tmp_path, 2, api, attempts=2)
    assert report.rejected == [sample_id(7, 0), sample_id(7, 1)] and report.retries == 2
    rejects = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rejects} == set(report.rejected) and all("no turns" in r["reason"] for r in rejects)


def test_killed_cli_run_resumes_with_every_sample_exactly_once(tmp_path):
    out = tmp_path / "corpus"
    with FakeMessagesAPI(session_reply, latency=0.05) as api:
        cmd = [sys.executable, "-m", "corpus.cli", "generate", "--backend", "anthropic", "--n", "24", "--out", str(out),
               "--seed", "7", "--concurrency", "2", "--base-url", api.base_url, "--model", "fake-model"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None:
            if (out / MANIFEST).exists() and len(json.loads((out / MANIFEST).read_text())["ids"]) >= 6:
                proc.kill()
                break
        proc.wait()
        done_before = len(json.loads((out / MANIFEST).read_text())["ids"])
        assert 6 <= done_before < 24  # killed mid-run
        resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    ids = [json.loads(line)["session_id"] for _, _, line in read_samples(out)]
    assert ids == [sample_id(7, i) for i in range(24)]


def test_missing_api_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(ValueError, match="ANTHROPIC_API_KEY"):
        asyncio.run(generate_anthropic(tmp_path, 1, 0, AnthropicSettings()))


def test_extract_json_variants():
    assert extract_json('{"a": 1}') == {"a": 1}
    assert extract_json('text ```json\n{"a": 2}\n``` more') == {"a": 2}
    with pytest.raises(ValueError, match="no JSON"):
        extract_json("nothing here")


def test_claude_as_therapy_v0_judge_and_client():
    scores = {d: 7.5 for d in tbn_env.JUDGE_DIMENSIONS}

    def reply(body):
        if "JSON" in body["system"]:  # the judge's system prompt asks for a JSON verdict
            return json.dumps({"scores": scores, "explanations": {}, "narrative": "fine"})
        return "<think>I feel exposed.</think>I'm not sure I want to talk about it."

    with FakeMessagesAPI(reply, script=["ok", "malformed"]) as api:
        s = settings(api)
        env = gym.make("Therapy-v0", judge=AnthropicJudge(settings=s), client=AnthropicClient(settings=s), max_turns=3)
        obs, _ = env.reset(seed=0)
        assert not env.unwrapped.deterministic
        _, _, _, _, info = env.step("It sounds like this is hard to talk about.")
        first = info["scores"]
        _, _, _, _, info = env.step("We can go slowly.")
    judge = env.unwrapped.judge
    assert obs["client_utterance"] == "I'm not sure I want to talk about it."
    assert set(first.values()) == {7.5} or judge.verdicts["fallback"] >= 1
    assert sum(judge.verdicts.values()) == 2 and judge.usage.calls == 2
