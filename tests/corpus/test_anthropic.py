"""The Anthropic backends, with the real SDK against a local fake Messages API on 127.0.0.1."""
import asyncio
import json
import subprocess
import sys
import time

import gymnasium as gym
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tbn_env  # noqa: F401
from corpus.anthropic_api import AnthropicSettings
from corpus.repair import extract_json
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
    return AnthropicSettings(base_url=api.base_url, timeout=kw.pop("timeout", 5.0),
                             max_retries=kw.pop("max_retries", 3),
                             concurrency=kw.pop("concurrency", 4), model="fake-model", **kw)


def run(out, n, api, resume=False, **kw):
    return asyncio.run(generate_anthropic(out, n, 7, settings(api, **kw), resume=resume))


@pytest.mark.slow
def test_sessions_survive_rate_limits_overload_errors_and_timeouts(tmp_path):
    script = ["429", "529", "500", "stall"]   # four transport failures, then normal replies
    with FakeMessagesAPI(session_reply, script=script, stall=2.0, retry_after=1) as api:
        report = run(tmp_path, 3, api, timeout=0.5, concurrency=1, max_retries=4)
    assert report.written == [sample_id(7, i) for i in range(3)] and not report.rejected
    assert [b for _, b in api.arrivals] == script + ["ok"] * 3         # every failure was retried by the SDK
    assert api.arrivals[1][0] - api.arrivals[0][0] >= 0.9               # it waited out retry-after: 1
    assert report.stats["calls"] == 3 and report.stats["repairs"] == 0  # only completed replies are billed
    sessions = [Session.model_validate_json(line) for _, _, line in read_samples(tmp_path)]
    assert all(s.generation.backend == "anthropic" and s.generation.model == "fake-model" for s in sessions)
    assert all(s.generation.input_tokens == 100 and s.generation.cost_usd > 0 for s in sessions)
    assert all(KEY in h.get("x-api-key", "") + h.get("authorization", "") for h in api.headers)  # key sent, from env
    assert KEY not in (tmp_path / MANIFEST).read_text()


def test_a_malformed_reply_is_sent_back_for_repair(tmp_path):
    with FakeMessagesAPI(session_reply, script=["malformed"]) as api:
        report = run(tmp_path, 1, api, concurrency=1)
    assert report.written == [sample_id(7, 0)] and report.stats["repairs"] == 1
    repair = api.requests[1]["messages"]
    assert [m["role"] for m in repair] == ["user", "assistant", "user"]
    assert repair[1]["content"] == "I am not JSON at all" and "no JSON object" in repair[2]["content"]
    session = Session.model_validate_json(next(read_samples(tmp_path))[2])
    assert session.generation.input_tokens == 200   # both replies of the sample are accounted


def test_unusable_replies_are_rejected_with_a_reason_not_dropped(tmp_path):
    with FakeMessagesAPI(lambda body: '{"turns": []}') as api:
        report = run(tmp_path, 2, api, attempts=2)
    assert report.rejected == [sample_id(7, 0), sample_id(7, 1)] and report.written == []
    assert len(api.requests) == 4
    rejects = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rejects} == set(report.rejected) and all("no turns" in r["reason"] for r in rejects)
    assert all(r["raw"]["reply"] == '{"turns": []}' for r in rejects)


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
            time.sleep(0.01)
        proc.wait()
        done_before = len(json.loads((out / MANIFEST).read_text())["ids"])
        assert 6 <= done_before < 24  # killed mid-run
        resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    ids = [json.loads(line)["session_id"] for _, _, line in read_samples(out)]
    assert ids == [sample_id(7, i) for i in range(24)]


def test_a_request_failing_past_its_retries_is_rejected_and_redone_on_resume(tmp_path):
    with FakeMessagesAPI(session_reply, script=["500", "500", "ok"]) as api:
        first = run(tmp_path, 2, api, concurrency=1, max_retries=1)
        assert first.rejected == [sample_id(7, 0)] and first.written == [sample_id(7, 1)]
        reason = json.loads((tmp_path / "rejects.jsonl").read_text())["reason"]
        assert "InternalServerError after 1 retries" in reason
        again = run(tmp_path, 2, api, resume=True, concurrency=1, max_retries=1)
    assert again.written == [sample_id(7, 0)]
    ids = sorted(json.loads(x)["session_id"] for _, _, x in read_samples(tmp_path))
    assert ids == [sample_id(7, 0), sample_id(7, 1)]


def test_missing_api_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(ValueError, match="ANTHROPIC_API_KEY"):
        asyncio.run(generate_anthropic(tmp_path, 1, 0, AnthropicSettings()))


def test_extract_json_variants():
    assert extract_json('{"a": 1}') == {"a": 1}
    assert extract_json('text ```json\n{"a": 2}\n``` more') == {"a": 2}
    with pytest.raises(ValueError, match="no JSON"):
        extract_json("nothing here")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                        max_size=3), max_leaves=8)


@given(obj=st.dictionaries(st.text(max_size=6), json_values, max_size=4),
       before=st.text(alphabet="abc .:\n", max_size=20), after=st.text(alphabet="abc .:\n", max_size=20),
       fenced=st.booleans())
def test_extract_json_finds_the_object_in_any_surrounding_prose(obj, before, after, fenced):
    body = json.dumps(obj)
    text = f"{before}```json\n{body}\n```{after}" if fenced else f"{before}{body}{after}"
    assert extract_json(text) == obj


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


def branches_reply(total: float):
    """A counterfactual reply with three branches whose probabilities sum to `total`."""
    def reply(body):
        branch = {"label": "x", "therapist_thought": "t", "therapist_utterance": "u", "client_response": "r",
                  "outcome": "o", "probability": total / 3}
        branches = [branch, {**branch, "label": "y"}, {**branch, "label": "z"}]
        return json.dumps({"rationale": "why", "branches": branches})
    return reply


def test_counterfactuals_from_claude_use_the_pipeline_templates_and_repair_bad_probabilities(tmp_path):
    from corpus.anthropic_backend import counterfactuals_anthropic
    from corpus.context import pipelines
    from corpus.generate import generate
    from corpus.schema import CounterfactualSample
    generate(tmp_path / "sessions", 3, seed=1)
    bad, good = branches_reply(1.5), branches_reply(0.9)
    with FakeMessagesAPI(lambda body: bad(body) if len(api.requests) == 1 else good(body)) as api:
        report = asyncio.run(counterfactuals_anthropic(tmp_path / "sessions", tmp_path / "cf",
                                                       settings(api, concurrency=1),
                                                       per_session=2, seed=0))
    assert len(report.written) == 6 and report.stats["repairs"] == 1 and report.stats["calls"] == 7
    assert "more than 1" in api.requests[1]["messages"][2]["content"]     # the validator's reason went back
    samples = [CounterfactualSample.model_validate_json(x) for _, _, x in read_samples(tmp_path / "cf")]
    specs = pipelines()
    for sample, request in zip(samples, [r for i, r in enumerate(api.requests) if i != 0]):
        instruction = specs[sample.pipeline]["prompt"].split("\n")[-1]
        assert instruction in request["messages"][0]["content"]
        assert sample.generation.model == "fake-model" and len(sample.branches) == 3
