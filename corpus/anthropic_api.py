"""Plumbing for the Anthropic Messages API: settings, clients, one call with accounting, JSON extraction.

Retries (429 with retry-after, 5xx, 529 overloaded, timeouts; exponential backoff with jitter) are
the official SDK's own: we set `max_retries` and `timeout` and let it do them. The API key comes
only from the ANTHROPIC_API_KEY environment variable and is never logged; model names and prices
are configuration.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from pydantic import BaseModel, Field

API_KEY_ENV = "ANTHROPIC_API_KEY"
DEFAULT_MODEL = "claude-sonnet-4-5"   # the paper wrote dialogue with Claude Sonnet (§6.2); configurable


class AnthropicSettings(BaseModel):
    """How to call the API; every field can be set from the CLI."""

    model: str = DEFAULT_MODEL
    max_tokens: int = Field(8192, ge=1)                 # a full session of 5-tuples fits
    temperature: float | None = Field(None, ge=0.0, le=1.0)  # None = the model's default; sent only when set
    timeout: float = Field(120.0, gt=0)                 # seconds per request
    max_retries: int = Field(6, ge=0)                   # SDK retries with backoff on 429/5xx/529/timeouts
    concurrency: int = Field(8, ge=1)                   # requests in flight at once
    attempts: int = Field(3, ge=1)                      # replies per sample (1 + repairs) before rejection
    base_url: str | None = None                         # a proxy or a local test server
    usd_per_mtok_in: float = Field(3.0, ge=0)           # price list: set to your model's
    usd_per_mtok_out: float = Field(15.0, ge=0)


def api_key() -> str:
    """The API key from the environment, or a clear error (never printed)."""
    key = os.environ.get(API_KEY_ENV)
    if not key:
        raise ValueError(f"set {API_KEY_ENV} in the environment to use the Anthropic backend")
    return key


def async_client(settings: AnthropicSettings):
    """An AsyncAnthropic client with the settings' URL, timeout and SDK retries (key from the env)."""
    import anthropic
    return anthropic.AsyncAnthropic(api_key=api_key(), base_url=settings.base_url, timeout=settings.timeout,
                                    max_retries=settings.max_retries)


def sync_client(settings: AnthropicSettings):
    """A synchronous Anthropic client configured like `async_client`."""
    import anthropic
    return anthropic.Anthropic(api_key=api_key(), base_url=settings.base_url, timeout=settings.timeout,
                               max_retries=settings.max_retries)


@dataclass
class Usage:
    """Tokens and cost accumulated over calls."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, input_tokens: int, output_tokens: int, settings: AnthropicSettings) -> float:
        """Count one call; return its cost in USD."""
        cost = (input_tokens * settings.usd_per_mtok_in + output_tokens * settings.usd_per_mtok_out) / 1e6
        self.calls += 1
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cost_usd += cost
        return cost


def sampling(settings: AnthropicSettings) -> dict:
    """Extra request fields for sampling: the installed SDK has no temperature argument (newer models
    fix their sampling), so a temperature goes in the request body only when one is configured."""
    return {"extra_body": {"temperature": settings.temperature}} if settings.temperature is not None else {}


def split_system(messages: list[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
    """Chat messages (system first) as the Messages API wants them: system apart."""
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    return system, [m for m in messages if m["role"] != "system"]


def text_of(message) -> str:
    """The concatenated text blocks of a Messages API reply."""
    return "".join(getattr(block, "text", "") for block in message.content)


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def extract_json(text: str) -> object:
    """The JSON value in a model reply (bare, fenced, or the outermost {...}); ValueError if none."""
    for candidate in [m.group(1) for m in _FENCE.finditer(text)] + [text]:
        start, end = candidate.find("{"), candidate.rfind("}")
        if start != -1 and end > start:
            try:
                return json.loads(candidate[start:end + 1])
            except json.JSONDecodeError:
                continue
    raise ValueError("no JSON object in the reply")


REPAIR = ("Your reply could not be used: {error}\nAnswer again with the corrected JSON object only, "
          "in the same shape.")


async def ask_json(client, settings: AnthropicSettings, system: str, prompt: str, parse, usage: Usage):
    """Ask for a JSON reply and turn it into a validated value with `parse(obj)`, repairing bad replies.

    Transport failures (429, 5xx, 529, timeouts) are retried by the SDK. A reply that is not JSON or
    that `parse` rejects (ValueError / pydantic ValidationError) is sent back with the error and a
    request to correct it, up to `settings.attempts` replies in all. Returns (value, repairs,
    (input tokens, output tokens, cost)); raises ReplyError with the last error and reply when every
    attempt fails.
    """
    messages = [{"role": "user", "content": prompt}]
    tokens_in = tokens_out = 0
    cost = 0.0
    error, text = "", ""
    for attempt in range(settings.attempts):
        message = await client.messages.create(model=settings.model, max_tokens=settings.max_tokens, system=system,
                                               messages=messages, **sampling(settings))
        cost += usage.add(message.usage.input_tokens, message.usage.output_tokens, settings)
        tokens_in += message.usage.input_tokens
        tokens_out += message.usage.output_tokens
        text = text_of(message)
        try:
            return parse(extract_json(text)), attempt, (tokens_in, tokens_out, cost)
        except ValueError as exc:   # pydantic's ValidationError is a ValueError
            error = str(exc)[:1000]
            messages = messages[:1] + [{"role": "assistant", "content": text or "(empty)"},
                                       {"role": "user", "content": REPAIR.format(error=error)}]
    raise ReplyError(error, text)


class ReplyError(ValueError):
    """Every reply for one request was unusable: the last error and the last reply text."""

    def __init__(self, error: str, reply: str) -> None:
        """Keep the last error and reply for the rejects file."""
        super().__init__(f"no usable reply after repairs: {error}")
        self.error, self.reply = error, reply
