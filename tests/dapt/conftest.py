"""A tiny random-weight llama with a locally trained tokenizer, built once for the RRA tests."""
from __future__ import annotations

import tbn_train  # noqa: F401  (first: preloads OpenBLAS before mlx.core)
import mlx.core as mx  # noqa: E402
import pytest  # noqa: E402

from tbn_train.tiny_model import make_tiny_model  # noqa: E402

mx.disable_compile()  # skip the cold g++ JIT (mlx-notes §1)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "llama", arch="llama", seed=0)
