"""Shared test configuration: Hypothesis profiles (`ci` when CI is set, `dev` otherwise), and the tiny
random-weight models the trainer and DAPT tests share (built once per session)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub: a test can never download

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", deadline=None, derandomize=True, max_examples=40, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=120, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory):
    """A tiny llama and a tiny gemma3_text (sliding-window layers), each with a locally trained tokenizer."""
    from tbn_train.tiny_model import make_tiny_model  # MLX only for the tests that ask for a model

    root = tmp_path_factory.mktemp("tiny")
    return {arch: make_tiny_model(root / arch, arch=arch, seed=0) for arch in ("llama", "gemma3_text")}


@pytest.fixture(scope="session")
def tiny_family(tmp_path_factory):
    """Factory (arch, bits) → a 4-layer, hidden-64 random-weight model of that mlx-lm family, built once per session."""
    from tbn_train.tiny_model import FAMILY_HIDDEN, FAMILY_LAYERS, make_tiny_model

    root, built = tmp_path_factory.mktemp("families"), {}

    def build(arch: str, bits: int | None = None):
        if (arch, bits) not in built:
            built[(arch, bits)] = make_tiny_model(root / f"{arch}-{bits or 'full'}", arch=arch, hidden=FAMILY_HIDDEN,
                                                  layers=FAMILY_LAYERS, bits=bits)
        return built[(arch, bits)]

    return build
