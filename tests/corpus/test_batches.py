"""Message Batches mode with the real SDK against the local fake API (bulk runs)."""
import asyncio
import json

import pytest

from corpus.anthropic_api import AnthropicSettings
from corpus.anthropic_batches import BATCH_STATE, generate_batch
from corpus.fake_anthropic import FakeMessagesAPI
from corpus.generate import sample_id
from corpus.schema import Session
from corpus.writer import read_samples
from tests.corpus.test_anthropic import session_reply


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-batch")


def batch(out, n, api, **kw):
    settings = AnthropicSettings(base_url=api.base_url, model="fake-model", timeout=5.0, max_retries=1)
    return asyncio.run(generate_batch(out, n, 3, settings, poll_seconds=0.01, **kw))


def test_a_batch_writes_successes_in_order_and_rejects_failures_with_reasons(tmp_path):
    with FakeMessagesAPI(session_reply, script=["ok", "malformed", "errored"], batch_polls=3) as api:
        report = batch(tmp_path, 5, api)
    assert report.written == [sample_id(3, i) for i in (0, 3, 4)]
    assert report.rejected == [sample_id(3, 1), sample_id(3, 2)] and len(api.batches) == 1
    rejects = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    reasons = {r["id"]: r["reason"] for r in rejects}
    assert "no JSON object" in reasons[sample_id(3, 1)] and "errored" in reasons[sample_id(3, 2)]
    sessions = [Session.model_validate_json(x) for _, _, x in read_samples(tmp_path)]
    assert all(s.generation.backend == "anthropic-batch" for s in sessions)
    assert sessions[0].generation.cost_usd == pytest.approx((100 * 3 + 400 * 15) / 1e6 * 0.5)   # half price
    assert not (tmp_path / BATCH_STATE).exists()


def test_a_run_killed_while_writing_resumes_from_the_same_batch(tmp_path):
    def crash_at_2(sid, seen=[]):
        seen.append(sid)
        if len(seen) == 2:
            raise KeyboardInterrupt
    with FakeMessagesAPI(session_reply) as api:
        with pytest.raises(KeyboardInterrupt):
            batch(tmp_path, 6, api, on_written=crash_at_2)
        assert (tmp_path / BATCH_STATE).exists()
        report = batch(tmp_path, 6, api, resume=True)
    assert len(api.batches) == 1                      # no second batch was paid for
    assert report.written == [sample_id(3, i) for i in range(2, 6)]
    assert [json.loads(x)["session_id"] for _, _, x in read_samples(tmp_path)] == [sample_id(3, i) for i in range(6)]
