"""Plumbing for the Anthropic Messages API: settings, clients, accounting, reply text.

Retries (429 with retry-after, 5xx, 529 overloaded, timeouts; exponential backoff with jitter) are
the official SDK's own: we set `max_retries` and `timeout` and let it do them. The API key comes
only from the ANTHROPIC_API_KEY environment variable and is never logged; model names and prices
are configuration.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from pydantic import BaseModel, Field

API_KEY_ENV = "ANTHROPIC_API_KEY"
DEFAULT_MODEL = "claude-sonnet-5-5"   # the paper wrote dialogue with Claude Sonnet (§6.2); the current Sonnet (4.5 retires 2026-11-30); configurable


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

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        """The price of these tokens in USD at the configured rates."""
        return (tokens_in * self.usd_per_mtok_in + tokens_out * self.usd_per_mtok_out) / 1e6


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
    """Calls, tokens and cost accumulated over calls: the one counter every model backend keeps."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, input_tokens: int, output_tokens: int, prices) -> float:
        """Count one call; return its cost in USD (`prices.cost(tokens in, tokens out)`, e.g. the settings)."""
        cost = prices.cost(input_tokens, output_tokens)
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
