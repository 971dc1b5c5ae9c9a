"""What the trainer tests read back from a finished run: its log and its exported adapter."""
from __future__ import annotations

import json
from pathlib import Path

from tbn_train.run_dir import FINAL_ADAPTER, LOG_FILE


def records(out: Path, drop: str | None = "timings") -> list[dict]:
    """The run's log, each record without `drop` (its wall times: the one field two equal runs do not share)."""
    rows = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    if drop is not None:
        for row in rows:
            row.pop(drop)
    return rows


def adapter_bytes(out: Path) -> bytes:
    return (out / FINAL_ADAPTER / "adapters.safetensors").read_bytes()
