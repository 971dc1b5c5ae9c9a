"""Sessions and counterfactuals from a local model on MLX, through tbn_train's loader (optional).

The model directory is loaded with `tbn_train.model.load_model` (local files only, an optional LoRA
adapter), prompts are rendered with the tokenizer's chat template, and replies are sampled with
`tbn_train.generation.generate`. Prompts, repair and rejects are those of every model backend
(`corpus.model_backend`). MLX runs one generation at a time, so calls are serialised whatever the
driver's concurrency. tbn_train is imported only when this backend is built.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

from .model_backend import ModelBackend

MLX_TEMPERATURE = 0.7     # ours: varied dialogue, below tbn_train's 0.9 cap (§9.3.10)
MLX_MAX_TOKENS = 4096     # ours: a session of 5-tuples from a local model; raise for long sessions


class MLXBackend(ModelBackend):
    """`corpus.generate.Backend` on a local mlx-lm model directory."""

    name = "mlx"

    def __init__(self, model_path: str | Path, adapter_path: str | Path | None = None,
                 temperature: float = MLX_TEMPERATURE, max_tokens: int = MLX_MAX_TOKENS, attempts: int = 3) -> None:
        """Load the model (FileNotFoundError for a directory that is not an mlx-lm model)."""
        super().__init__()
        import tbn_train  # noqa: F401  (first: it preloads OpenBLAS before mlx.core)
        from tbn_train.model import load_model
        self.weights, self.tokenizer = load_model(model_path, adapter_path)
        self.model = str(model_path) if adapter_path is None else f"{model_path}+{adapter_path}"
        self.temperature, self.max_tokens, self.attempts = temperature, max_tokens, attempts
        self.lock = asyncio.Lock()

    async def complete(self, system: str, messages: list[dict[str, str]]) -> tuple[str, int, int]:
        """One sampled reply, generated off the event loop, one at a time."""
        from tbn_train.generation import generate
        from tbn_train.prompts import render
        ids = render(self.tokenizer, [{"role": "system", "content": system}, *messages])
        async with self.lock:
            out = await asyncio.to_thread(generate, self.weights, self.tokenizer, ids, temperature=self.temperature,
                                          max_tokens=self.max_tokens)
        return out.text, len(ids), len(out.tokens)
