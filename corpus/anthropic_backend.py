"""Sessions and counterfactuals written by Claude through the Anthropic Messages API (§6.2, §7.4, App. 28).

The participants come from the seeded samplers, so a sample's id and its client are fixed by
(seed, index) whichever backend writes it; the model writes the turns (prompts in `corpus.prompts`).
Invalid replies go back for repair (`corpus.repair`); a sample still unusable, or a request still
failing after the SDK's retries (429 honouring retry-after, 5xx, 529, timeouts, with exponential
backoff and jitter), is written to the rejects file with its reason, and a later `--resume` tries
it again. Other API errors (a bad key, a bad request) stop the run with the API's message.
"""
from __future__ import annotations

import anthropic

from .anthropic_api import AnthropicSettings, async_client, sampling, text_of
from .counterfactuals import run_counterfactuals
from .driver import InvalidSample, RunReport
from .generate import run_generation
from .model_backend import ModelBackend


class AnthropicBackend(ModelBackend):
    """`corpus.generate.Backend` on Claude: one request per reply, `settings.concurrency` at a time."""

    name = "anthropic"

    def __init__(self, settings: AnthropicSettings) -> None:
        """An async client for `settings` (the key from ANTHROPIC_API_KEY)."""
        super().__init__()
        self.settings, self.model, self.attempts = settings, settings.model, settings.attempts
        self.client = async_client(settings)

    async def complete(self, system: str, messages: list[dict[str, str]]) -> tuple[str, int, int]:
        """One Messages API call; a transport failure past the SDK's retries becomes InvalidSample."""
        s = self.settings
        try:
            message = await self.client.messages.create(model=s.model, max_tokens=s.max_tokens, system=system,
                                                        messages=messages, **sampling(s))
        except (anthropic.APITimeoutError, anthropic.APIConnectionError, anthropic.RateLimitError,
                anthropic.InternalServerError) as exc:
            raise InvalidSample(f"{type(exc).__name__} after {s.max_retries} retries: {exc}") from exc
        return text_of(message), message.usage.input_tokens, message.usage.output_tokens

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        """At the configured price list."""
        return self.settings.cost(tokens_in, tokens_out)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.close()


async def generate_anthropic(out, n: int, seed: int, settings: AnthropicSettings, resume: bool = False,
                             progress: bool = False, stage: int | None = None, pool_path=None,
                             on_written=None) -> RunReport:
    """Generate `n` sessions with Claude into `out`, `settings.concurrency` requests at a time."""
    backend = AnthropicBackend(settings)
    try:
        return await run_generation(out, n, backend, seed, concurrency=settings.concurrency, resume=resume,
                                    stage=stage, pool_path=pool_path, progress=progress, on_written=on_written,
                                    config={"model": settings.model})
    finally:
        await backend.aclose()


async def counterfactuals_anthropic(sessions_dir, out, settings: AnthropicSettings, per_session: int = 2, seed: int = 0,
                                    resume: bool = False, progress: bool = False) -> RunReport:
    """The counterfactuals of a session corpus written by Claude, `settings.concurrency` at a time."""
    backend = AnthropicBackend(settings)
    try:
        return await run_counterfactuals(sessions_dir, out, backend, per_session, seed,
                                         concurrency=settings.concurrency,
                                         resume=resume, progress=progress, config={"model": settings.model})
    finally:
        await backend.aclose()
