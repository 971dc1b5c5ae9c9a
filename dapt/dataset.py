"""A `tbn-dapt preprocess` directory read back for training: samples by id, in curriculum order.

The index keeps only (shard, byte offset, length, strategy) per sample and reads one sample at a time,
so training memory does not grow with the corpus, like preprocessing.
"""
from __future__ import annotations

import json
from pathlib import Path

from corpus.writer import MANIFEST

CURRICULUM = "curriculum.json"


class SampleIndex:
    """Byte offsets of every committed sample line in a preprocessed directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        manifest, curriculum = self.directory / MANIFEST, self.directory / CURRICULUM
        if not manifest.is_file() or not curriculum.is_file():
            raise FileNotFoundError(f"{self.directory} is not a tbn-dapt preprocess output "
                                    f"(needs {MANIFEST} and {CURRICULUM}; run `tbn-dapt preprocess` first)")
        self.where: dict[str, tuple[str, int, int, str]] = {}
        for name, length in json.loads(manifest.read_text(encoding="utf-8"))["shards"].items():
            with open(self.directory / name, "rb") as fh:
                at = 0
                for line in fh:
                    if at + len(line) > length:
                        break
                    if line.strip():
                        record = json.loads(line)
                        if record["id"] in self.where:
                            raise ValueError(f"{self.directory}: sample id {record['id']!r} appears twice; rerun "
                                             f"`tbn-dapt preprocess` into a new directory")
                        self.where[record["id"]] = (name, at, len(line), record["strategy"])
                    at += len(line)
        self.curriculum: list[str] = json.loads(curriculum.read_text(encoding="utf-8"))
        missing = [sid for sid in self.curriculum if sid not in self.where]
        if missing:
            raise ValueError(f"{self.directory}: {CURRICULUM} lists {len(missing)} samples missing from the shards, "
                             f"e.g. {missing[0]!r} (an interrupted preprocess: rerun it with --resume)")

    def order(self, strategies: tuple[str, ...] | None = None) -> list[str]:
        """Curriculum ids (shortest first, App. 29.4), optionally only those of some strategies."""
        return [sid for sid in self.curriculum if strategies is None or self.where[sid][3] in strategies]

    def read(self, sample_id: str) -> dict:
        name, at, size, _ = self.where[sample_id]
        with open(self.directory / name, "rb") as fh:
            fh.seek(at)
            return json.loads(fh.read(size))
