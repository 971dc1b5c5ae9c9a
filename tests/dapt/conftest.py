"""The tiny llama (built once per session in tests/conftest.py) for the RRA tests."""
from __future__ import annotations

import tbn_train  # noqa: F401  (first: preloads OpenBLAS before mlx.core)
import mlx.core as mx  # noqa: E402
import pytest  # noqa: E402

mx.disable_compile()  # skip the cold g++ JIT (mlx-notes §1)


@pytest.fixture(scope="session")
def tiny_dir(tiny_dirs):
    return tiny_dirs["llama"]
