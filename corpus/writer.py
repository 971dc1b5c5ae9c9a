"""Crash-safe JSONL corpus output: appended shards and an atomically replaced manifest.

The manifest records each shard's committed byte length, the ids written, the rejects file's length
and the caller's state (e.g. the micro-variable pool) as it stood after the last committed sample,
all in one atomic replace. It is committed (after an fsync of the shards) at most every
COMMIT_SECONDS, before a new shard is opened, and when the writer closes. On `--resume` every file
is cut back to its committed length, dropping anything written after the last commit (including a
line half-written when the run died), and the manifest's ids are skipped: a killed run continues
with no lost and no duplicated sample, and with the state it had then. A shard the manifest does
not list, or one shorter than the manifest says, is refused rather than merged or padded. Invalid
samples go to `rejects.jsonl` with their reason, never silently dropped. One writer at a time: the
directory is locked (`tbn_train.dir_lock`).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from pydantic import BaseModel

from tbn_train.atomic import write_json
from tbn_train.dir_lock import lock_directory, unlock_directory

SHARD_SIZE = 1000          # samples per shard file: small enough to inspect, large enough to stay few
MANIFEST = "manifest.json"
REJECTS = "rejects.jsonl"
COMMIT_SECONDS = 0.5       # manifest commits at most twice a second: fsyncs stop dominating fast backends
ID_KEYS = ("id", "sample_id", "session_id")   # the top-level key naming a record, by record type


def _shard_files(directory: Path, prefix: str) -> list[str]:
    """Names of the `prefix` shard files on disk, in shard order."""
    return sorted(p.name for p in directory.glob(f"{prefix}-*.jsonl"))


def _cut(path: Path, length: int, what: str) -> None:
    """Truncate `path` to its committed `length`; refuse a file that is missing or shorter (never pad)."""
    size = path.stat().st_size if path.is_file() else None
    if size is None or size < length:
        found = "is missing" if size is None else f"has {size} bytes"
        raise ValueError(f"{path} {found} but the manifest committed {length} bytes of {what}; it was changed "
                         f"outside the writer: restore it or start a new run in another --out")
    with open(path, "r+b") as fh:
        fh.truncate(length)


class CorpusWriter:
    """Writes validated samples to `out/<prefix>-NNNNN.jsonl` shards, resumably."""

    def __init__(self, out: str | Path, prefix: str = "sessions", resume: bool = False, config: dict | None = None,
                 on_commit=None):
        """Open a new corpus in `out`, or with `resume` cut an existing one back to its manifest."""
        self.out = Path(out)
        self.prefix = prefix
        self.on_commit = on_commit  # called after each commit, e.g. to save state the samples depend on
        manifest = self.out / MANIFEST
        if resume and not self.out.is_dir():
            raise FileNotFoundError(f"nothing to resume in {self.out}: no such directory (start without --resume)")
        if manifest.exists() and not resume:
            raise FileExistsError(f"{self.out} already holds a corpus; pass --resume to continue it")
        lock_directory(self.out)
        try:
            self._open(manifest, resume and manifest.exists(), config)
        except BaseException:
            unlock_directory(self.out)
            raise
        self.done = set(self.ids)
        self.pending: list[str] = []   # ids written since the last commit
        self.pending_state = self.state
        self.last_commit = time.monotonic()

    def _open(self, manifest: Path, resume: bool, config: dict | None) -> None:
        """Load and cut back the committed corpus, or start an empty one (refusing foreign shards)."""
        on_disk = _shard_files(self.out, self.prefix)
        if not resume:
            if on_disk:
                raise FileExistsError(f"{self.out} holds shards no manifest lists ({', '.join(on_disk[:3])}); they "
                                      f"are not from this writer: move them away or choose another --out")
            self.shards: dict[str, int] = {}
            self.ids: list[str] = []
            self.rejects, self.state, self.config = 0, None, config
            self._commit()
            return
        state = json.loads(manifest.read_text(encoding="utf-8"))
        if config is not None and state.get("config") != config:
            raise ValueError(f"--resume with different settings: {state.get('config')} vs {config}")
        self.shards = dict(sorted(state["shards"].items()))
        self.ids = state["ids"]
        self.rejects, self.state, self.config = state.get("rejects", 0), state.get("state"), state.get("config")
        foreign = [name for name in on_disk if name not in self.shards]
        if foreign:
            raise FileExistsError(f"{self.out} holds shards its manifest does not list ({', '.join(foreign[:3])}); "
                                  f"they are not from this run: move them away to resume")
        for name, length in self.shards.items():  # cut away a half-written tail
            _cut(self.out / name, length, "samples")
        if self.rejects or (self.out / REJECTS).exists():
            _cut(self.out / REJECTS, self.rejects, "rejects")

    def _shard_of(self, position: int) -> str:
        """The shard file that holds the sample at `position`."""
        return f"{self.prefix}-{position // SHARD_SIZE:05d}.jsonl"

    def write(self, sample: BaseModel, sample_id: str, state: object = None) -> None:
        """Append one validated sample; `state` is the caller's state after it, committed with it."""
        if sample_id in self.done:
            raise ValueError(f"sample {sample_id!r} is already in the corpus")
        name = self._shard_of(len(self.ids) + len(self.pending))
        if name not in self.shards:  # the manifest lists a shard before its first line is written
            self.commit()
            self.shards[name] = 0
            self._commit()
        with open(self.out / name, "a", encoding="utf-8") as fh:
            fh.write(sample.model_dump_json() + "\n")
        self.pending.append(sample_id)
        self.pending_state = state
        self.done.add(sample_id)
        if time.monotonic() - self.last_commit >= COMMIT_SECONDS:
            self.commit()

    def commit(self) -> None:
        """Make everything written so far durable and record it in the manifest."""
        rejects = (self.out / REJECTS).stat().st_size if (self.out / REJECTS).exists() else 0
        if not self.pending and rejects == self.rejects:
            return
        if self.pending:
            name = self._shard_of(len(self.ids) + len(self.pending) - 1)   # pending lines are all in the last shard
            with open(self.out / name, "rb") as fh:
                os.fsync(fh.fileno())
            self.shards[name] = (self.out / name).stat().st_size
        self.rejects = rejects   # the rejects file is fsynced line by line in `reject`
        self.ids.extend(self.pending)
        self.pending.clear()
        self.state = self.pending_state
        self._commit()
        if self.on_commit is not None:
            self.on_commit(self.state)
        self.last_commit = time.monotonic()

    def close(self) -> None:
        """Commit the tail and release the directory; call when a run ends (normally or by exception)."""
        try:
            self.commit()
        finally:
            unlock_directory(self.out)

    def __enter__(self) -> "CorpusWriter":
        """Use as a context manager that commits on exit."""
        return self

    def __exit__(self, *exc) -> None:
        """Commit whatever was written, also when the run failed."""
        self.close()

    def reject(self, sample_id: str, reason: str, raw: object) -> None:
        """Keep an invalid sample with the reason it failed validation (a resume retries it)."""
        with open(self.out / REJECTS, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"id": sample_id, "reason": reason, "raw": raw}, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _commit(self) -> None:
        """Replace the manifest atomically with the committed shards, ids, rejects length and state."""
        write_json(self.out / MANIFEST, {"shards": self.shards, "ids": self.ids, "rejects": self.rejects,
                                         "state": self.state, "config": self.config})


def _committed_shards(directory: Path, prefix: str) -> dict[str, int]:
    """Shard name -> committed byte length, in shard order; refuses a manifest its files contradict."""
    manifest = directory / MANIFEST
    if not manifest.exists():
        return {name: (directory / name).stat().st_size for name in _shard_files(directory, prefix)}
    shards = json.loads(manifest.read_text(encoding="utf-8"))["shards"]
    for name, length in shards.items():
        path = directory / name
        size = path.stat().st_size if path.is_file() else None
        if size is None or size < length:
            found = "is missing" if size is None else f"has only {size} bytes"
            raise ValueError(f"{path} {found} but {manifest} committed {length}: the corpus was changed outside "
                             f"its writer")
    return dict(sorted(shards.items()))


def read_samples(directory: str | Path, prefix: str = "sessions"):
    """Yield (shard name, line number, raw text) of every committed sample line, shard by shard.

    Without a manifest, every `prefix` shard on disk is read whole.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no corpus directory at {directory}")
    for name, length in _committed_shards(directory, prefix).items():
        with open(directory / name, "rb") as fh:
            text = fh.read(length).decode("utf-8")  # the manifest counts bytes
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield name, i, line


def record_id(line: str) -> str | None:
    """The id of a committed record line (None when it has none or is not JSON)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return next((str(record[k]) for k in ID_KEYS if isinstance(record, dict) and k in record), None)


def audit(directory: str | Path, prefix: str = "sessions") -> list[str]:
    """What makes a corpus untrustworthy: repeated ids, and a manifest that disagrees with its files."""
    directory = Path(directory)
    problems: list[str] = []
    try:
        lines = list(read_samples(directory, prefix))
    except ValueError as exc:
        return [str(exc)]
    seen: dict[str, str] = {}
    ids = []
    for shard, line_no, line in lines:
        sid = record_id(line)
        ids.append(sid)
        if sid is not None and sid in seen:
            problems.append(f"{shard}:{line_no}: id {sid!r} repeats {seen[sid]}")
        elif sid is not None:
            seen[sid] = f"{shard}:{line_no}"
    manifest = directory / MANIFEST
    if manifest.exists():
        state = json.loads(manifest.read_text(encoding="utf-8"))
        listed = state["ids"]
        if len(set(listed)) != len(listed):
            problems.append(f"{manifest} lists {len(listed) - len(set(listed))} ids twice")
        if len(listed) != len(lines) or any(a is not None and a != b for a, b in zip(ids, listed)):
            problems.append(f"{manifest} lists {len(listed)} ids but the shards hold {len(lines)} records "
                            f"that do not match them")
        foreign = [n for n in _shard_files(directory, next(iter(state["shards"]), prefix).rsplit("-", 1)[0])
                   if n not in state["shards"]]
        if foreign:
            problems.append(f"{directory} holds shards the manifest does not list: {', '.join(foreign[:3])}")
    return problems
