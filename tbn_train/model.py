"""Load a local mlx-lm model directory, never touching the network."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing downloads at run time

import mlx.nn as nn  # noqa: E402


def model_dir_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a local mlx-lm model directory, or None when it is one."""
    if not (Path(path) / "config.json").is_file():
        return (f"model directory {str(path)!r} is not a local mlx-lm model directory (no config.json; "
                f"Hub ids are not downloaded)")
    return None


def load_model(path: str | Path, adapter_path: str | Path | None = None) -> tuple[nn.Module, object]:
    """Return ``(model, tokenizer)`` from a local mlx-lm directory via ``mlx_lm.load``.

    Raises FileNotFoundError for a missing directory instead of letting mlx-lm treat the string
    as a Hub repository id.
    """
    from mlx_lm import load  # noqa: PLC0415 (mlx_lm import costs ~1 s; only when loading)

    path = Path(path)
    problem = model_dir_problem(path)
    if problem:
        raise FileNotFoundError(problem)
    if adapter_path is not None and not (Path(adapter_path) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"not an mlx-lm adapter directory (no adapter_config.json): {adapter_path}")
    from tbn_train.read_files import loading  # noqa: PLC0415

    with loading(path if adapter_path is None else f"{path} (adapter {adapter_path})", "mlx-lm model"):
        model, tokenizer = load(str(path), adapter_path=None if adapter_path is None else str(adapter_path))
    return model, tokenizer
