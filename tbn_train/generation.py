"""Sampling therapist responses: one sequence, or K candidates in one batch (§9.3.9, §9.3.10).

Both go through mlx-lm: :func:`generate` wraps ``mlx_lm.stream_generate`` and
:func:`generate_candidates` drives ``mlx_lm``'s ``BatchGenerator`` with one sampler per candidate
(each at its own temperature), which is how the K GRPO candidates are drawn in a single batch.
``batch_generate`` drops the EOS token from its ids; here a finished completion always ends with
its EOS id, so the trainer scores the stop decision too.

Generation uses whatever adapter is active on the router. Seed ``mx.random`` beforehand for
reproducible samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import mlx.nn as nn
from mlx_lm import stream_generate
from mlx_lm.generate import BatchGenerator
from mlx_lm.sample_utils import make_sampler

RLAIF_TEMPERATURE = 0.7  # §9.3.9: first draft
CORRECTION_TEMPERATURE = 0.5  # §9.3.9: re-generation conditioned on the judges' feedback
GRPO_TEMPERATURES = (0.6, 0.7, 0.8, 0.9)  # §9.3.10: K = 4 candidates
MAX_TEMPERATURE = 0.9  # §9.3.10: T = 1.0 garbled 8-bit models (Failure 13)
TOP_P = 1.0  # no nucleus truncation


@dataclass(frozen=True)
class Completion:
    """A sampled response: token ids (ending with EOS when ``finished``) and text without EOS."""

    tokens: list[int]
    text: str
    finished: bool


def _check(temperature: float, max_tokens: int) -> None:
    if not 0.0 <= temperature <= MAX_TEMPERATURE:
        raise ValueError(f"temperature {temperature} outside [0, {MAX_TEMPERATURE}] (cap from §9.3.10)")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be ≥ 1, got {max_tokens}")


def _prompt_ids(prompt: Sequence[int]) -> list[int]:
    if len(prompt) == 0:
        raise ValueError("prompt is empty")
    return [int(t) for t in prompt]


def _completion(tokenizer, tokens: list[int], finished: bool) -> Completion:
    body = tokens[:-1] if finished else tokens
    return Completion(tokens=tokens, text=tokenizer.decode(body), finished=finished)


def generate(
    model: nn.Module,
    tokenizer,
    prompt: Sequence[int],
    *,
    temperature: float = RLAIF_TEMPERATURE,
    max_tokens: int = 256,
    top_p: float = TOP_P,
) -> Completion:
    """Sample one completion with ``mlx_lm.stream_generate``."""
    _check(temperature, max_tokens)
    tokens, finished = [], False
    for response in stream_generate(
        model, tokenizer, _prompt_ids(prompt), max_tokens=max_tokens, sampler=make_sampler(temp=temperature, top_p=top_p)
    ):
        tokens.append(int(response.token))
        finished = response.finish_reason == "stop"
    return _completion(tokenizer, tokens, finished)


def generate_candidates(
    model: nn.Module,
    tokenizer,
    prompt: Sequence[int],
    temperatures: Sequence[float] = GRPO_TEMPERATURES,
    *,
    max_tokens: int = 256,
    top_p: float = TOP_P,
) -> list[Completion]:
    """Sample one completion per temperature for the same prompt, as one batch."""
    if len(temperatures) == 0:
        raise ValueError("no temperatures given")
    for t in temperatures:
        _check(t, max_tokens)
    prompt_ids = _prompt_ids(prompt)
    generator = BatchGenerator(model, stop_tokens=[[t] for t in tokenizer.eos_token_ids])
    try:
        uids = generator.insert(
            [prompt_ids] * len(temperatures),
            [max_tokens] * len(temperatures),
            samplers=[make_sampler(temp=t, top_p=top_p) for t in temperatures],
        )
        tokens = {uid: [] for uid in uids}
        finished = dict.fromkeys(uids, False)
        while responses := generator.next_generated():
            for r in responses:
                tokens[r.uid].append(int(r.token))  # includes the EOS token when r stopped on it
                finished[r.uid] = r.finish_reason == "stop"
    finally:
        generator.close()
    return [_completion(tokenizer, tokens[u], finished[u]) for u in uids]
