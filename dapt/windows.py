"""RRA's input: a preprocessed sample as token ids plus a loss mask, cut into token-count windows (§8.2).

Window edges are token positions only; they ignore turn and utterance markers, so a turn's 5-tuple can
be split across windows, as the paper intends (§8.2). The loss mask comes from the sample's
trainable character spans (DFR's selective masking): a token trains when its characters overlap one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WINDOW_TOKENS = 2048   # the paper's windows run ~1.6–2.5K tokens (§8.2.1, §8.2.2.2), 1024 on GLM (§30.8)
WINDOW_JITTER = 0.0    # choice: fixed windows by default; §10.1.5.3 suggests trying varied sizes (--window-jitter)
MAX_SAMPLE_CHARS = 2_000_000  # ours: a whole generated session is ~50 kB; 40x headroom, and tokenizing stays ~1 s


@dataclass(frozen=True)
class TokenizedSample:
    """One training sample: ids and a same-length boolean loss mask."""

    sample_id: str
    ids: np.ndarray
    mask: np.ndarray


def loss_mask(offsets: np.ndarray, spans: list[list[int]]) -> np.ndarray:
    """True for tokens whose [start, end) characters overlap a trainable span (spans sorted, disjoint)."""
    starts, ends = offsets[:, 0], offsets[:, 1]
    mask = np.zeros(len(offsets), dtype=bool)
    for lo, hi in spans:
        mask[np.searchsorted(ends, lo, side="right"): np.searchsorted(starts, hi, side="left")] = True
    return mask & (ends > starts)


def check_sample(sample_id: str, text: str, spans: list[list[int]]) -> None:
    """Refuse a sample too long to tokenize in bounded memory, or whose trainable spans are not sorted,
    disjoint [start, end) ranges inside its text (they were silently clamped before)."""
    if len(text) > MAX_SAMPLE_CHARS:
        raise ValueError(f"sample {sample_id!r} has {len(text):,} characters, over the {MAX_SAMPLE_CHARS:,} limit; "
                         f"split the session or drop it from the corpus")
    at = 0
    for span in spans:
        if len(span) != 2 or not all(isinstance(x, int) for x in span) or not at <= span[0] < span[1] <= len(text):
            raise ValueError(f"sample {sample_id!r}: trainable span {span} is not a sorted, non-empty range inside "
                             f"its {len(text)} characters; rerun `tbn-dapt preprocess`")
        at = span[1]


def tokenize(record: dict, tokenizer) -> TokenizedSample:
    """Tokenize a `tbn-dapt preprocess` record with a `tokenizers.Tokenizer` (no special tokens)."""
    check_sample(record["id"], record["text"], record["trainable"])
    enc = tokenizer.encode(record["text"], add_special_tokens=False)
    if not enc.ids:
        raise ValueError(f"sample {record['id']!r} has no tokens")
    offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
    return TokenizedSample(record["id"], np.asarray(enc.ids, dtype=np.int32), loss_mask(offsets, record["trainable"]))


def window_bounds(n_tokens: int, size: int = WINDOW_TOKENS, jitter: float = WINDOW_JITTER,
                  rng: np.random.Generator | None = None) -> list[tuple[int, int]]:
    """[start, end) token ranges covering 0..n_tokens; with jitter each size is drawn from size·(1 ± jitter)."""
    if size < 1:
        raise ValueError(f"window size must be ≥ 1 token, got {size}")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"window jitter must be in [0, 1), got {jitter}")
    if jitter and rng is None:
        raise ValueError("window jitter needs a seeded rng")
    bounds, at = [], 0
    while at < n_tokens:
        width = size if not jitter else max(1, int(round(size * rng.uniform(1 - jitter, 1 + jitter))))
        bounds.append((at, min(n_tokens, at + width)))
        at += width
    return bounds
