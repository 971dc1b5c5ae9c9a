"""Shared fixtures: the tiny llama (from tests/conftest.py) and a model with three adapters."""

from __future__ import annotations

import tbn_train  # noqa: F401  (first: preloads OpenBLAS before mlx.core is imported)
import mlx.core as mx  # noqa: E402
import pytest  # noqa: E402

from tbn_train.lora import AdapterRouter, LoRASpec, adapter_pairs, add_adapter, set_trainable
from tbn_train.model import load_model

mx.disable_compile()  # skip the 20–30 s cold g++ JIT (mlx-notes §1)


@pytest.fixture(scope="session")
def llama_dir(tiny_dirs):
    return tiny_dirs["llama"]


def randomize_b(model, router, name, seed, std=0.02):
    """Give an adapter non-zero B factors so it changes the function (fresh adapters start as no-ops)."""
    pairs = list(adapter_pairs(model, router, name).values())
    for key, pair in zip(mx.random.split(mx.random.key(seed), len(pairs)), pairs):
        pair.lora_b = std * mx.random.normal(pair.lora_b.shape, key=key)
    mx.eval(model.parameters())


def three_adapter_model(model_dir):
    """Base + therapist (trainable, paper layout) + client and judge (frozen, different layouts)."""
    model, tok = load_model(model_dir)
    router = AdapterRouter()
    add_adapter(model, router, "therapist", LoRASpec(), seed=1)
    add_adapter(model, router, "client", LoRASpec(layers=(1, 2, 3, 4, 5, 6), attn_rank=8, mlp_rank=8), seed=2)
    add_adapter(model, router, "judge", LoRASpec(attn_rank=4, mlp_rank=4), seed=3)
    for i, name in enumerate(("therapist", "client", "judge")):
        randomize_b(model, router, name, seed=10 + i)
    set_trainable(model, router, "therapist")
    return model, tok, router


@pytest.fixture
def setup(llama_dir):
    return three_adapter_model(llama_dir)


@pytest.fixture(scope="session")
def make_setup():
    """Factory: a fresh three-adapter model from a model dir (for tests that need several)."""
    return three_adapter_model


def chat_prompt(tok, text):
    return tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)


@pytest.fixture(scope="session")
def prompt_of():
    """Factory: chat-template token ids for one user message."""
    return chat_prompt
