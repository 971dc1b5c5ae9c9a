"""Crash-safe JSONL corpus output: appended shards and an atomically replaced manifest.

The manifest records each shard's committed byte length and the ids written; it is committed (after
an fsync of the shards) at most every COMMIT_SECONDS and when the writer closes. On `--resume`
every shard is cut back to its committed length, dropping anything written after the last commit
(including a line half-written when the run died), and the manifest's ids are skipped: a killed run
continues with no lost and no duplicated sample. Invalid samples go to `rejects.jsonl` with their
reason, never silently dropped.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from pydantic import BaseModel

SHARD_SIZE = 1000          # samples per shard file: small enough to inspect, large enough to stay few
MANIFEST = "manifest.json"
REJECTS = "rejects.jsonl"
COMMIT_SECONDS = 0.5       # manifest commits at most twice a second: fsyncs stop dominating fast backends


def _atomic_write(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically: a synced temp file, then os.replace."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class CorpusWriter:
    """Writes validated samples to `out/<prefix>-NNNNN.jsonl` shards, resumably."""

    def __init__(self, out: str | Path, prefix: str = "sessions", resume: bool = False, config: dict | None = None,
                 on_commit=None):
        """Open a new corpus in `out`, or with `resume` cut an existing one back to its manifest."""
        self.out = Path(out)
        self.prefix = prefix
        self.on_commit = on_commit  # called after each commit, e.g. to save state the samples depend on
        manifest = self.out / MANIFEST
        if manifest.exists() and not resume:
            raise FileExistsError(f"{self.out} already holds a corpus; pass --resume to continue it")
        if resume and not manifest.exists():
            raise FileNotFoundError(f"nothing to resume in {self.out}: no {MANIFEST}")
        self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            state = json.loads(manifest.read_text(encoding="utf-8"))
            if config is not None and state.get("config") != config:
                raise ValueError(f"--resume with different settings: {state.get('config')} vs {config}")
            self.shards: dict[str, int] = state["shards"]
            self.ids: list[str] = state["ids"]
            self.config = state.get("config")
            for name, length in self.shards.items():  # cut away a half-written tail
                with open(self.out / name, "r+b") as fh:
                    fh.truncate(length)
        else:
            self.shards, self.ids, self.config = {}, [], config
            self._commit()
        self.done = set(self.ids)
        self.pending: list[str] = []   # ids written since the last commit
        self.last_commit = time.monotonic()

    def _shard_of(self, position: int) -> str:
        """The shard file that holds the sample at `position`."""
        return f"{self.prefix}-{position // SHARD_SIZE:05d}.jsonl"

    def _shard(self) -> str:
        """The shard the next sample goes to."""
        return self._shard_of(len(self.ids) + len(self.pending))

    def write(self, sample: BaseModel, sample_id: str) -> None:
        """Append one validated sample durably, then record it in the manifest."""
        if sample_id in self.done:
            raise ValueError(f"sample {sample_id!r} is already in the corpus")
        name = self._shard()
        with open(self.out / name, "a", encoding="utf-8") as fh:
            fh.write(sample.model_dump_json() + "\n")
        self.pending.append(sample_id)
        self.done.add(sample_id)
        if time.monotonic() - self.last_commit >= COMMIT_SECONDS:
            self.commit()

    def commit(self) -> None:
        """Make everything written so far durable and record it in the manifest."""
        if not self.pending:
            return
        for name in {self._shard_of(i) for i in range(len(self.ids), len(self.ids) + len(self.pending))}:
            with open(self.out / name, "rb") as fh:
                os.fsync(fh.fileno())
            self.shards[name] = (self.out / name).stat().st_size
        self.ids.extend(self.pending)
        self.pending.clear()
        self._commit()
        if self.on_commit is not None:
            self.on_commit()
        self.last_commit = time.monotonic()

    def close(self) -> None:
        """Commit the tail; call when a run ends (normally or by exception)."""
        self.commit()

    def __enter__(self) -> "CorpusWriter":
        """Use as a context manager that commits on exit."""
        return self

    def __exit__(self, *exc) -> None:
        """Commit whatever was written, also when the run failed."""
        self.close()

    def reject(self, sample_id: str, reason: str, raw: object) -> None:
        """Keep an invalid sample with the reason it failed validation."""
        with open(self.out / REJECTS, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"id": sample_id, "reason": reason, "raw": raw}, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _commit(self) -> None:
        """Replace the manifest atomically with the committed shards and ids."""
        _atomic_write(self.out / MANIFEST, json.dumps({"shards": self.shards, "ids": self.ids,
                                                       "config": self.config}, indent=1))


def read_samples(directory: str | Path, prefix: str = "sessions"):
    """Yield (shard name, line number, raw text) of every committed sample line, shard by shard."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no corpus directory at {directory}")
    manifest = directory / MANIFEST
    shards = json.loads(manifest.read_text(encoding="utf-8"))["shards"] if manifest.exists() else \
        {p.name: p.stat().st_size for p in sorted(directory.glob("*.jsonl")) if p.name.startswith(prefix)}
    for name, length in shards.items():
        with open(directory / name, "rb") as fh:
            text = fh.read(length).decode("utf-8")  # the manifest counts bytes
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield name, i, line
