"""Anthropic-backend throughput: concurrency 16 against 1, on the local fake API with fixed latency.

Same run, same fake server settings; prints sessions/s and the ratio. Run: .venv/bin/python bench/bench_corpus.py
"""
import asyncio
import os
import tempfile
import time

from corpus.anthropic_api import AnthropicSettings
from corpus.anthropic_backend import generate_anthropic
from corpus.fake_anthropic import FakeMessagesAPI

LATENCY = 0.5   # seconds per request: a real generation call takes several seconds more
SESSIONS = 128  # eight waves of 16, so start-up and the last wave weigh little


def reply(body: dict) -> str:
    turn = ('{"client_thought": "t", "client_utterance": "u", "therapist_model": {}, '
            '"therapist_thought": {"gco": "g", "omo": "o"}, "therapist_utterance": "w", "phase": "A"}')
    return '{"turns": [%s, %s]}' % (turn, turn)


def rate(concurrency: int) -> float:
    os.environ.setdefault("ANTHROPIC_API_KEY", "sk-bench-local")
    with FakeMessagesAPI(reply, latency=LATENCY) as api, tempfile.TemporaryDirectory() as out:
        settings = AnthropicSettings(base_url=api.base_url, concurrency=concurrency, model="fake")
        t = time.perf_counter()
        report = asyncio.run(generate_anthropic(out, SESSIONS, 0, settings))
        assert len(report.written) == SESSIONS
        return SESSIONS / (time.perf_counter() - t)


def main() -> None:
    one, sixteen = rate(1), rate(16)
    print("| concurrency | sessions/s | x concurrency 1 |")
    print("|---:|---:|---:|")
    print(f"| 1 | {one:.2f} | 1.0 |")
    print(f"| 16 | {sixteen:.2f} | {sixteen / one:.1f} |")


if __name__ == "__main__":
    main()
