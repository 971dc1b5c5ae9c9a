"""Claude as Therapy-v0's judge or simulated client (tbn_env's Judge and Client protocols).

`gym.make("Therapy-v0", judge=AnthropicJudge(), client=AnthropicClient())` scores turns and speaks
the client with Claude. The prompts are the same model-agnostic ones the MLX backends use
(`tbn_env.llm_prompts`), and judge replies are repaired or scored by a counted fallback exactly as
there (`tbn_env.judge_parse`), so a malformed reply never crashes a run.
"""
from __future__ import annotations

import logging

from tbn_env.judge_parse import parse_judge_output
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
from tbn_env.turn_format import parse_therapist_turn

from .anthropic_api import (
    AnthropicSettings,
    Usage,
    sampling,
    split_system,
    sync_client,
    text_of,
)

JUDGE_TEMPERATURE = 0.0   # the judge scores greedily
CLIENT_TEMPERATURE = 0.8  # the client varies, capped well below 1.0 (App. 31 Failure 13)
JUDGE_MAX_TOKENS = 2048   # 12 scores with explanations
CLIENT_MAX_TOKENS = 512   # one client turn with its thought

log = logging.getLogger(__name__)


class _Claude:
    """Shared plumbing: a sync client at a fixed temperature and token cap, with usage."""

    def __init__(self, settings: AnthropicSettings | None, temperature: float, max_tokens: int) -> None:
        """Configure the client (settings default to AnthropicSettings())."""
        self.settings = (settings or AnthropicSettings()).model_copy(
            update={"temperature": temperature, "max_tokens": max_tokens})
        self.client = sync_client(self.settings)
        self.usage = Usage()

    def _ask(self, messages: list[dict[str, str]]) -> str:
        """One Messages call for chat `messages` (system first); the reply's text."""
        system, rest = split_system(messages)
        s = self.settings
        reply = self.client.messages.create(model=s.model, max_tokens=s.max_tokens, system=system, messages=rest,
                                            **sampling(s))
        self.usage.add(reply.usage.input_tokens, reply.usage.output_tokens, s)
        return text_of(reply)


class AnthropicJudge(_Claude):
    """The 12-dimension judge (clinical, kind or harsh persona) on Claude."""

    def __init__(self, persona: Persona = "clinical", settings: AnthropicSettings | None = None) -> None:
        """Configure the client (settings default to AnthropicSettings())."""
        super().__init__(settings, JUDGE_TEMPERATURE, JUDGE_MAX_TOKENS)
        self.persona = persona
        self.deterministic = False  # a remote model is not bit-reproducible even at temperature 0
        self.verdicts: dict[str, int] = {"ok": 0, "repaired": 0, "fallback": 0}

    def score(self, context: JudgeContext) -> JudgeResult:
        """The 12-dimension verdict for one therapist turn, repaired or counted as a fallback."""
        verdict = parse_judge_output(self._ask(judge_messages(context, self.persona)), self.persona)
        self.verdicts[verdict.status] += 1
        if verdict.status != "ok":
            log.warning("Claude judge (%s) output %s: %s", self.persona, verdict.status, verdict.reason)
        return verdict.result

    def evaluate_session(self, messages: list[dict[str, str]]) -> str:
        """The holistic session evaluation of §9.3.7.2 (see ``tbn_env.session_judge``)."""
        return self._ask(messages)

    def assess_taie(self, context: JudgeContext, axes) -> TaieAssessment | None:
        """Full-mode TAIE (§9.3.4); None, logged, when Claude's reply is unusable."""
        assessment, reason = parse_taie_output(self._ask(taie_messages(context, axes)))
        if assessment is None:
            log.warning("Claude TAIE assessment refused: %s", reason)
        return assessment


class AnthropicClient(_Claude):
    """The simulated client on Claude: a hidden thought in <think>...</think>, then its words."""

    deterministic = False

    def __init__(self, settings: AnthropicSettings | None = None) -> None:
        """Configure the client (settings default to AnthropicSettings())."""
        super().__init__(settings, CLIENT_TEMPERATURE, CLIENT_MAX_TOKENS)

    def respond(self, view: ClientView, history: tuple[DialogueTurn, ...], rng) -> ClientTurn:
        """The client's next thought and words."""
        turn = parse_therapist_turn(self._ask(client_messages(view, history)))  # same <think> format
        return ClientTurn(thought=turn.thought, utterance=turn.utterance or "…")
