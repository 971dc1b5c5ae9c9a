"""Sequence log-probabilities log π(y | x) with one right-padded batched forward pass.

Every loss here (RLAIF §9.3.9, GRPO §9.3.10, DPO) is built on these. Log-probs are always taken
at temperature 1 (the sampling temperature is only a sampling setting),
and only completion tokens count: the prompt and the padding are masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import mlx.core as mx
import mlx.nn as nn

PAD_ID = 0  # any id works: padded positions sit after each sequence (causal) and are masked


@dataclass(frozen=True)
class SequenceLogprobs:
    """Per-token log-probs of a batch of completions, with their mask."""

    tokens: mx.array  # (B, T) log π of each completion token; 0 where masked
    mask: mx.array  # (B, T) 1.0 on completion tokens

    @property
    def total(self) -> mx.array:
        """(B,) Σ_t log π(y_t | x, y_<t)."""
        return self.tokens.sum(axis=-1)

    @property
    def mean(self) -> mx.array:
        """(B,) length-normalised log-prob (1/|y| normalisation)."""
        return self.total / self.mask.sum(axis=-1)

    def reduce(self, how: str) -> mx.array:
        """``"mean"`` or ``"sum"`` per sequence."""
        if how not in ("mean", "sum"):
            raise ValueError(f"log-prob reduction must be 'mean' or 'sum', not {how!r}")
        return self.mean if how == "mean" else self.total


def _check_ids(ids: Sequence[int], what: str) -> list[int]:
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):
        raise TypeError(f"{what} must be a list of token ids, got {type(ids).__name__}")
    if len(ids) == 0:
        raise ValueError(f"{what} is empty")
    return [int(t) for t in ids]


def pack_batch(
    prompts: Sequence[int] | Sequence[Sequence[int]], completions: Sequence[Sequence[int]]
) -> tuple[mx.array, mx.array, mx.array]:
    """Right-padded ``(inputs, targets, mask)`` of shape (B, S-1) for prompt+completion pairs.

    ``prompts`` is one prompt shared by every completion, or one prompt per completion.
    """
    if len(completions) == 0:
        raise ValueError("no completions given")
    comps = [_check_ids(c, f"completion {i}") for i, c in enumerate(completions)]
    if len(prompts) == 0:
        raise ValueError("prompt is empty")
    if not hasattr(prompts[0], "__len__"):
        prompts = [prompts] * len(comps)
    if len(prompts) != len(comps):
        raise ValueError(f"got {len(prompts)} prompts for {len(comps)} completions")
    seqs = [_check_ids(p, f"prompt {i}") + c for i, (p, c) in enumerate(zip(prompts, comps))]
    width = max(len(s) for s in seqs)
    ids = mx.array([s + [PAD_ID] * (width - len(s)) for s in seqs])
    pos = mx.arange(1, width)[None, :]
    starts = mx.array([len(s) - len(c) for s, c in zip(seqs, comps)])[:, None]
    ends = mx.array([len(s) for s in seqs])[:, None]
    mask = ((pos >= starts) & (pos < ends)).astype(mx.float32)
    return ids[:, :-1], ids[:, 1:], mask


def sequence_logprobs(
    model: nn.Module, prompts: Sequence[int] | Sequence[Sequence[int]], completions: Sequence[Sequence[int]]
) -> SequenceLogprobs:
    """log π(completion | prompt) for each completion, through the model's active adapter."""
    inputs, targets, mask = pack_batch(prompts, completions)
    logits = model(inputs).astype(mx.float32)
    token_lp = mx.take_along_axis(logits, targets[..., None], axis=-1).squeeze(-1)
    token_lp = token_lp - mx.logsumexp(logits, axis=-1)
    return SequenceLogprobs(tokens=token_lp * mask, mask=mask)
