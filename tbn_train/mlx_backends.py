"""The frozen client/judge adapter as tbn_env Judge and Client backends (§9.3.12).

Both run on the shared base model with the frozen client/judge adapter active — the router is
switched for the call and the previous adapter restored after — so ``gym.make("Therapy-v0",
judge=MLXJudge(...), client=MLXClient(...))`` runs on the model. Judge output is parsed by
:mod:`tbn_env.judge_parse`: repaired when possible, else a logged neutral fallback; never an
exception. ``deterministic`` is True only at temperature 0 (greedy decoding).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mlx import nn

from tbn_env.judge_parse import ParsedVerdict, parse_judge_output
from tbn_env.llm_prompts import client_messages, judge_messages, taie_messages
from tbn_env.protocols import (
    ClientTurn,
    ClientView,
    DialogueTurn,
    JudgeContext,
    JudgeResult,
    Persona,
)
from tbn_env.taie_full import TaieAssessment, parse_taie_output
from tbn_train.generation import MAX_TEMPERATURE, generate
from tbn_train.lora import AdapterRouter
from tbn_train.prompts import render
from tbn_train.timing import Timings, switched
from tbn_train.turns import SILENCE, split_turn

JUDGE_TEMPERATURE = 0.0  # greedy, so a verdict is a function of its input
CLIENT_TEMPERATURE = 0.8  # a varied client, under the 0.9 cap of §9.3.10
JUDGE_MAX_TOKENS = 1024  # 12 scores + 12 explanations + narrative as JSON
CLIENT_MAX_TOKENS = 256  # thought + a few spoken sentences
LOG_SNIPPET = 200  # characters of unusable judge output quoted in the log

log = logging.getLogger(__name__)


@dataclass
class ModelRole:
    """The shared model, its tokenizer and router, and the adapter a role runs under."""

    model: nn.Module
    tokenizer: object
    router: AdapterRouter
    adapter: str | None
    temperature: float
    max_tokens: int
    timings: Timings | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= MAX_TEMPERATURE:
            raise ValueError(f"temperature {self.temperature} outside [0, {MAX_TEMPERATURE}] (cap from §9.3.10)")
        if self.adapter is not None and self.adapter not in self.router.specs:
            raise KeyError(f"adapter {self.adapter!r} is not loaded; known: {sorted(self.router.specs)}")

    @property
    def deterministic(self) -> bool:
        return self.temperature == 0.0

    def complete(self, messages) -> str:
        prompt = render(self.tokenizer, messages)
        with switched(self.router, self.adapter, self.timings):
            return generate(self.model, self.tokenizer, prompt, temperature=self.temperature, max_tokens=self.max_tokens).text


class MLXJudge:
    """The 12-dimension judge (§9.3.7) under one persona, on the frozen judge adapter."""

    def __init__(self, role: ModelRole, persona: Persona = "clinical") -> None:
        self.role, self.persona = role, persona
        self.deterministic = role.deterministic

    def verdict(self, context: JudgeContext) -> ParsedVerdict:
        """Score one turn and say how the verdict was obtained (ok / repaired / fallback)."""
        text = self.role.complete(judge_messages(context, self.persona))
        parsed = parse_judge_output(text, self.persona)
        if parsed.status == "fallback":
            log.warning("judge (%s) output refused (%s), neutral fallback scores: %r", self.persona, parsed.reason,
                        text[:LOG_SNIPPET])
        elif parsed.status == "repaired":
            log.info("judge (%s) output repaired: %s", self.persona, parsed.reason)
        return parsed

    def score(self, context: JudgeContext) -> JudgeResult:
        return self.verdict(context).result

    def evaluate_session(self, messages: list[dict[str, str]]) -> str:
        """The holistic session evaluation of §9.3.7.2 (see ``tbn_env.session_judge``)."""
        return self.role.complete(messages)

    def assess_taie(self, context: JudgeContext, axes) -> TaieAssessment | None:
        """Full-mode TAIE (§9.3.4); None, logged, when the model's reply is unusable."""
        text = self.role.complete(taie_messages(context, axes))
        assessment, reason = parse_taie_output(text)
        if assessment is None:
            log.warning("TAIE assessment refused (%s): %r", reason, text[:LOG_SNIPPET])
        return assessment


class MLXClient:
    """The simulated client (§9.3.12), speaking from the env's ClientView on the frozen adapter."""

    def __init__(self, role: ModelRole) -> None:
        self.role = role
        self.deterministic = role.deterministic

    def respond(self, view: ClientView, history: tuple[DialogueTurn, ...], rng) -> ClientTurn:
        """Sample the client's thought and words; ``rng`` is unused (MLX draws from its own seeded key)."""
        thought, utterance = split_turn(self.role.complete(client_messages(view, history)))
        return ClientTurn(thought=thought, utterance=utterance or SILENCE)
