"""What every language-model backend shares: prompts, repair, accounting, rejects (§7.4, App. 28).

A subclass supplies `complete(system, messages) -> (text, tokens in, tokens out)` and the cost of
tokens; this class turns that into the `corpus.generate.Backend` protocol, sessions and
counterfactuals alike, with invalid replies repaired (`corpus.repair`) and unusable ones raised as
`InvalidSample` so the driver writes them to the rejects file with the reason.
"""
from __future__ import annotations

from .anthropic_api import Usage
from .counterfactuals import Moment
from .driver import InvalidSample
from .generate import Participants
from .prompts import CF_SYSTEM, SYSTEM, assemble, assemble_counterfactual, counterfactual_prompt, session_prompt
from .repair import ReplyError, ask_validated
from .schema import CounterfactualSample, GenerationInfo, Session


class ModelBackend:
    """A backend that asks a language model; subclasses say how to call it."""

    name = "model"
    model = ""
    attempts = 3

    def __init__(self) -> None:
        """Counters start at zero."""
        self.usage = Usage()
        self.repairs = 0

    async def complete(self, system: str, messages: list[dict[str, str]]) -> tuple[str, int, int]:
        """One reply to `messages` under `system`: its text and token counts."""
        raise NotImplementedError

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        """The price of these tokens in USD (free unless a subclass says otherwise)."""
        return 0.0

    async def _count(self, system: str, messages: list[dict[str, str]]) -> tuple[str, int, int]:
        """`complete`, with the call, its tokens and its cost counted."""
        text, n_in, n_out = await self.complete(system, messages)
        self.usage.add(n_in, n_out, self)
        return text, n_in, n_out

    async def _ask(self, system: str, prompt: str, parse):
        """One validated sample, its generation record filled with this model, tokens and cost."""
        try:
            sample, repairs, (n_in, n_out) = await ask_validated(lambda msgs: self._count(system, msgs), prompt,
                                                                 parse, self.attempts)
        except ReplyError as exc:
            raise InvalidSample(exc.error, {"reply": exc.reply}) from exc
        self.repairs += repairs
        info = GenerationInfo(backend=self.name, model=self.model, seed=sample.generation.seed, input_tokens=n_in,
                              output_tokens=n_out, cost_usd=self.cost(n_in, n_out))
        return sample.model_copy(update={"generation": info})

    async def session(self, p: Participants) -> Session:
        """The session of `p` written by the model, or InvalidSample with the last error and reply."""
        return await self._ask(SYSTEM, session_prompt(p), lambda obj: assemble(p, obj))

    async def counterfactual(self, m: Moment) -> CounterfactualSample:
        """The branches of moment `m`, written with its pipeline's prompt template."""
        return await self._ask(CF_SYSTEM, counterfactual_prompt(m), lambda obj: assemble_counterfactual(m, obj))

    def stats(self) -> dict:
        """Calls, tokens, cost and repaired replies so far."""
        u = self.usage
        return {"calls": u.calls, "input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                "cost_usd": u.cost_usd, "repairs": self.repairs}

    async def aclose(self) -> None:
        """Release what the model holds (nothing by default)."""
