"""Corpus sessions -> DAPT samples (DFR, UHD, ADWC), streamed one session at a time.

Each sample is one JSON line: its id, source session, strategy, text, the character spans the loss
trains on, its token count and length cluster. Output goes through corpus's crash-safe writer, so a
killed run resumes without losing or repeating a sample; `curriculum.json` lists the ids shortest
first (App. 29.4). Memory holds one session's samples plus one length per sample.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from corpus.schema import CounterfactualSample, Session
from corpus.writer import CorpusWriter, audit, read_samples

from . import adwc, dfr, uhd
from .clusters import TokenCounter, cluster_of, curriculum_order
from .markers import Piece
from .windows import check_sample

STRATEGIES = ("dfr", "uhd", "adwc")
DEFAULT_TARGETS = None  # choice: train on every component unless a mask spec is given


def encode(pieces: list[Piece] | tuple[Piece, ...]) -> tuple[str, list[list[int]]]:
    """Text and the [start, end) character spans of its trainable pieces."""
    text, spans, at = [], [], 0
    for p in pieces:
        if p.trainable and p.text:
            spans.append([at, at + len(p.text)])
        text.append(p.text)
        at += len(p.text)
    return "".join(text), spans


def samples_of(session: Session, strategies: tuple[str, ...], targets, seed: int) -> Iterator[tuple[str, str, list]]:
    """(local id, strategy, pieces) of every sample one session yields."""
    if "dfr" in strategies:
        yield "full", "dfr", dfr.full_session(session, targets)
        for k, start, pieces in dfr.windowed(session, targets):
            yield f"win{k}-{start}", "dfr", pieces
    if "uhd" in strategies:
        for i, pieces in enumerate(uhd.expand(session, targets)):
            yield f"uhd{i + 1}", "uhd", pieces
    if "adwc" in strategies:
        for w in adwc.windows(session, targets, seed=seed):
            yield f"adwc{w.k}-{w.start}", "adwc", list(w.pieces)


def preprocess(corpus_dir: str | Path, out: str | Path, strategies: tuple[str, ...] = STRATEGIES,
               tokenizer_dir: str | Path | None = None, targets: frozenset[str] | None = DEFAULT_TARGETS,
               seed: int = 0, resume: bool = False, progress: bool = False,
               counterfactuals_dir: str | Path | None = None) -> int:
    """Write the samples of every session in `corpus_dir` (and, given, every counterfactual through DFR,
    strategy "dfr", §7) to `out`; return how many were written."""
    unknown = set(strategies) - set(STRATEGIES)
    if unknown or not strategies:
        raise ValueError(f"strategies must be some of {STRATEGIES}, got {strategies}")
    count = TokenCounter(tokenizer_dir)
    writer = CorpusWriter(out, prefix="samples", resume=resume,
                          config={"corpus": str(corpus_dir), "strategies": list(strategies),
                                  "targets": sorted(targets) if targets else None, "seed": seed,
                                  **({"counterfactuals": str(counterfactuals_dir)} if counterfactuals_dir else {})})
    lengths: dict[str, int] = {}
    lines = read_samples(corpus_dir)
    if progress:
        from tqdm import tqdm
        lines = tqdm(lines, desc="sessions", unit="session")
    written = 0
    with writer:
        for _, _, line in lines:
            session = Session.model_validate_json(line)
            for local, strategy, pieces in samples_of(session, strategies, targets, seed):
                sid = f"{session.session_id}/{local}"
                text, spans = encode(pieces)
                check_sample(sid, text, spans)
                n = count(text)
                lengths[sid] = n
                if sid in writer.done:
                    continue
                writer.write(_Sample(sid, session.session_id, strategy, text, spans, n, cluster_of(n)), sid)
                written += 1
        if counterfactuals_dir is not None and "dfr" in strategies:
            for _, _, line in read_samples(counterfactuals_dir, prefix="counterfactuals"):
                sample = CounterfactualSample.model_validate_json(line)
                sid = f"{sample.sample_id}/cf"
                text, spans = encode(dfr.counterfactual(sample, targets))
                check_sample(sid, text, spans)
                lengths[sid] = n = count(text)
                if sid not in writer.done:
                    writer.write(_Sample(sid, sample.session_ref, "dfr", text, spans, n, cluster_of(n)), sid)
                    written += 1
    tmp = Path(out) / "curriculum.json.tmp"
    tmp.write_text(json.dumps(curriculum_order(lengths)), encoding="utf-8")
    os.replace(tmp, Path(out) / "curriculum.json")
    return written


class _Sample:
    """A sample record with the `model_dump_json` the corpus writer expects."""

    def __init__(self, sid, session_id, strategy, text, spans, n_tokens, cluster) -> None:
        self.record = {"id": sid, "session_id": session_id, "strategy": strategy, "text": text,
                       "trainable": spans, "n_tokens": n_tokens, "cluster": cluster}

    def model_dump_json(self) -> str:
        return json.dumps(self.record, ensure_ascii=False)


def stats(out: str | Path) -> dict:
    """Samples by strategy and cluster, and token totals, of a preprocessed directory.

    Raises ValueError for a directory with repeated ids or a manifest its shards contradict.
    """
    problems = audit(out, prefix="samples")
    if problems:
        raise ValueError(f"{out} is inconsistent: {'; '.join(problems[:3])}")
    by_strategy: dict[str, int] = {}
    by_cluster: dict[int, int] = {}
    tokens = 0
    for _, _, line in read_samples(out, prefix="samples"):
        s = json.loads(line)
        by_strategy[s["strategy"]] = by_strategy.get(s["strategy"], 0) + 1
        by_cluster[s["cluster"]] = by_cluster.get(s["cluster"], 0) + 1
        tokens += s["n_tokens"]
    return {"samples": sum(by_strategy.values()), "by_strategy": by_strategy, "by_cluster": by_cluster,
            "tokens": tokens}
