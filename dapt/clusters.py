"""The expanding-window curriculum (App. 29.4): samples grouped by token length, short to long.

Clusters 0-5 hold < 10K, 10-20K, 20-30K, 30-50K, 50-100K and > 100K tokens, counted with the tokenizer
of the model being trained; within an epoch training goes from the shortest context to the longest.
"""
from __future__ import annotations

import bisect
from pathlib import Path

CLUSTER_BOUNDS = (10_000, 20_000, 30_000, 50_000, 100_000)   # App. 29.4, lower bounds of clusters 1-5


def cluster_of(n_tokens: int) -> int:
    """The cluster (0-5) of a sample of `n_tokens` tokens; bounds are [lo, hi)."""
    if n_tokens < 0:
        raise ValueError(f"a token count cannot be negative, got {n_tokens}")
    return bisect.bisect_right(CLUSTER_BOUNDS, n_tokens)


def load_tokenizer(model_dir: str | Path):
    """The `tokenizers` Tokenizer of a model directory's tokenizer.json (ids and character offsets)."""
    path = Path(model_dir) / "tokenizer.json"
    if not path.exists():
        raise ValueError(f"no tokenizer.json in {model_dir}")
    from tokenizers import Tokenizer

    from tbn_train.read_files import loading
    with loading(path, "tokenizer"):
        return Tokenizer.from_file(str(path))


class TokenCounter:
    """Counts tokens with a model's tokenizer.json (the `tokenizers` library), else by whitespace words."""

    def __init__(self, model_dir: str | Path | None = None) -> None:
        self.tokenizer = None if model_dir is None else load_tokenizer(model_dir)

    def __call__(self, text: str) -> int:
        if self.tokenizer is None:
            return len(text.split())
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)


def curriculum_order(lengths: dict[str, int]) -> list[str]:
    """Sample ids shortest first (cluster, then length, then id for ties)."""
    return sorted(lengths, key=lambda i: (cluster_of(lengths[i]), lengths[i], i))
