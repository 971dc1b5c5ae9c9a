"""A training run's output directory: settings, per-step JSONL log, checkpoints, final adapter.

Layout::

    OUT/run.json               the resolved run settings (a resume must match them)
    OUT/log.jsonl              one JSON record per step (turn or DPO batch)
    OUT/checkpoints/…          tbn_train.checkpoint layout; state holds the step and log offset
    OUT/therapist/             the trained adapter in mlx-lm format (end of run)

Exactly-once logging across a kill: each checkpoint stores the log's byte length after its step;
a resume truncates the log back to that length, so steps logged after the last checkpoint (and
therefore redone) appear once. Records are flushed and fsynced before the checkpoint that
covers them is written. A log shorter than its checkpoint says (removed or cut by hand) is refused,
never padded. One run per directory: ``OUT/.lock`` names the process writing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import mlx.nn as nn
import mlx.optimizers as optim
from pydantic import BaseModel

from tbn_train.adapter_io import save_adapter
from tbn_train.atomic import write_json
from tbn_train.checkpoint import Checkpoint, latest_checkpoint, load_checkpoint, save_checkpoint
from tbn_train.dir_lock import lock_directory, unlock_directory
from tbn_train.lora import AdapterRouter
from tbn_train.read_files import load_json

RUN_FILE = "run.json"
LOG_FILE = "log.jsonl"
CHECKPOINTS = "checkpoints"
FINAL_ADAPTER = "therapist"


class RunDir:
    """Opens ``out`` for a fresh run (refusing to overwrite one) or for ``--resume``."""

    def __init__(self, out: str | Path, settings: BaseModel, resume: bool) -> None:
        """Check ``out`` against the settings; nothing is written until :meth:`restore`."""
        self.out = Path(out)
        self.log_path = self.out / LOG_FILE
        self.checkpoints = self.out / CHECKPOINTS
        self.run_file = self.out / RUN_FILE
        self.wanted = json.loads(settings.model_dump_json())
        self.resume = resume
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"--out {self.out} is a file, not a directory; choose a directory path")
        existing = next((p for p in (self.out, *self.out.parents) if p.exists()), None)
        if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
            raise ValueError(f"--out {self.out}: {existing} is not writable; choose a writable directory")
        if resume:
            if not self.run_file.is_file():
                raise FileNotFoundError(f"nothing to resume: {self.run_file} does not exist (start without --resume)")
            saved = load_json(self.run_file, "run settings")
            diff = sorted(k for k in set(saved) | set(self.wanted) if saved.get(k) != self.wanted.get(k))
            if diff:
                details = "; ".join(f"{k}: run has {saved.get(k)!r}, now {self.wanted.get(k)!r}" for k in diff)
                raise ValueError(f"--resume settings differ from the run in {self.out}: {details}")
        elif self.run_file.exists():
            raise FileExistsError(f"{self.out} already holds a run; pass --resume to continue it or choose another --out")
        self._log = None

    def restore(self, model: nn.Module, router: AdapterRouter, optimizer: optim.Optimizer) -> Checkpoint | None:
        """Lock the directory, write the settings (fresh run) or load the latest checkpoint (resume),
        and cut the log back to what that checkpoint covers."""
        lock_directory(self.out)
        if not self.resume:
            if self.run_file.exists():   # another run started here since the check in __init__
                raise FileExistsError(f"{self.out} already holds a run; pass --resume to continue it")
            write_json(self.run_file, self.wanted)
        ck = None
        if latest_checkpoint(self.checkpoints) is not None:
            ck = load_checkpoint(self.checkpoints, model, router, optimizer)
        self._open_log(ck.state["log_offset"] if ck else 0)
        return ck

    def _open_log(self, offset: int) -> None:
        size = self.log_path.stat().st_size if self.log_path.is_file() else 0
        if size < offset:
            raise ValueError(f"{self.log_path} has {size} bytes but the last checkpoint covers {offset}: the log was "
                             f"cut or removed outside the run; restore it or start a new run in another --out")
        with open(self.log_path, "ab") as fh:
            fh.truncate(offset)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the run)

    def log(self, record: Mapping[str, Any]) -> None:
        """Append one record durably."""
        self._log.write((json.dumps(record, sort_keys=True, default=plain_json) + "\n").encode("utf-8"))
        self._log.flush()
        os.fsync(self._log.fileno())

    def checkpoint(self, step: int, model, router, optimizer, *, seed: int, state: dict, files=None, keep: int) -> Path:
        """Save checkpoint ``step`` covering everything logged so far."""
        state = {**state, "log_offset": self._log.tell()}
        return save_checkpoint(self.checkpoints, step, model, router, optimizer, seed=seed, state=state, files=files, keep=keep)

    def finish(self, model: nn.Module, router: AdapterRouter, name: str, folder: str = FINAL_ADAPTER) -> Path:
        """Close the log and write the trained adapter in mlx-lm format to ``OUT/folder``."""
        if self._log is not None:
            self._log.close()
        try:
            return save_adapter(model, router, name, self.out / folder)
        finally:
            unlock_directory(self.out)


def plain_json(value: Any) -> Any:
    """JSON for numpy scalars and arrays that turn up in env info."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot log a {type(value).__name__}")
