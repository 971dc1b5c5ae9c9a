"""Reading the files a run depends on, with one clear error when one is damaged.

Every loader of weights, optimizer state, pickled env state and JSON settings goes through here,
so a truncated or corrupt file ends a command with ``PROG: error: <file>: unreadable <what> (<why>)``
and exit status 2 instead of a library traceback; nothing is written before the files are read.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from collections.abc import Callable
from typing import Any, TypeVar

M = TypeVar("M")


class DamagedFile(ValueError):
    """A file a run needs exists but cannot be read."""


def _damaged(path: str | Path, what: str, exc: BaseException) -> DamagedFile:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return DamagedFile(f"{path}: unreadable {what} ({reason}); restore it from a good copy or start a new run")


def load_arrays(path: str | Path, what: str) -> dict:
    """The arrays of a safetensors file (``mx.load``)."""
    import mlx.core as mx  # noqa: PLC0415 (callers have already imported MLX)

    try:
        return mx.load(str(path))
    except (RuntimeError, ValueError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise _damaged(path, what, exc) from None


def load_json(path: str | Path, what: str) -> Any:
    """A JSON file's content."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _damaged(path, what, exc) from None


def read_jsonl(path: str | Path, model: type[M], kind: str, what: str, shape: str,
               check: Callable[[M], str | None] | None = None) -> list[M]:
    """Every non-blank line of a JSONL file validated as ``model``; a bad line is refused naming file and line.

    ``kind`` names the file in "not found" ("preference pairs"), ``what`` one record ("a preference pair")
    and ``shape`` its expected form ("{prompt, chosen, rejected}"); ``check`` returns a further problem of a
    valid record, or None.
    """
    from pydantic import ValidationError  # noqa: PLC0415

    from tbn_train.cli_errors import error_message  # noqa: PLC0415

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{kind} file not found: {path}")
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(model.model_validate(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not JSON ({exc.msg}); one {shape} object per line") from None
        except ValidationError as exc:
            raise ValueError(f"{path}:{n}: not {what} {shape}: {error_message(exc)}") from None
        problem = check(records[-1]) if check else None
        if problem:
            raise ValueError(f"{path}:{n}: {problem}")
    return records


def load_pickle(path: str | Path, what: str) -> Any:
    """A pickle this project wrote itself (e.g. the env state of a checkpoint)."""
    try:
        return pickle.loads(Path(path).read_bytes())  # noqa: S301 (our own file)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError,
            KeyError) as exc:
        raise _damaged(path, what, exc) from None


def loading(path: str | Path, what: str):
    """Context manager: any error while a library reads ``path`` becomes a DamagedFile naming it."""
    return _Loading(path, what)


class _Loading:
    def __init__(self, path, what) -> None:
        self.path, self.what = path, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, (FileNotFoundError, KeyboardInterrupt, DamagedFile, MemoryError)) \
                or not isinstance(exc, Exception):
            return False
        raise _damaged(self.path, self.what, exc) from None
