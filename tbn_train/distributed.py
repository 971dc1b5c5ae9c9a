"""Data parallelism over ``mx.distributed``: several processes (ranks, e.g. one per Mac) train one adapter.

``mlx.launch -n R … tbn-train selfplay … --distributed`` starts R ranks (``tbn-train sft`` / ``dpo`` and
``tbn-dapt train`` alike); :meth:`World.join` connects them (ring over TCP/Thunderbolt, MPI or JACCL,
whichever the launcher set up). Each rank plays its own clients (or takes its share of a batch, its own
samples); per optimizer step the clients' gradients are pooled with one ``all_sum``
(:func:`pooled_gradient`) *before* the shared clip → scale → Adam, so every rank applies the same
update and holds the same adapter bit for bit. Besides the gradients the ranks exchange only small
things: settings (refused at start when they differ), startup errors, log records and env states
gathered to rank 0 (the only writer), and a resumed checkpoint sent from rank 0 to the others.

Every collective runs under a watchdog: a rank waiting longer than ``timeout`` seconds for the
others (a peer hung or unreachable) prints one line and exits with :data:`STOPPED_EXIT`; a peer
that died shows up sooner as a lost connection (:class:`RankLost`). Either way no rank hangs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_map_with_path

from tbn_train.checkpoint import Checkpoint, load_checkpoint
from tbn_train.cli_errors import USER_ERRORS, error_message
from tbn_train.distributed_flags import DISTRIBUTED_TIMEOUT
from tbn_train.run_dir import RunDir, plain_json
from tbn_train.update import Gradient, PolicyUpdater

WATCHDOG_TICK = 0.5  # seconds between the watchdog's looks at the clock
STOPPED_EXIT = 3  # exit status of a rank stopped because another rank failed (2 stays "bad input")
RESUME_COPY = "checkpoint"  # where a rank other than 0 unpacks the checkpoint rank 0 sends it

T = TypeVar("T")


class RankLost(RuntimeError):
    """Another rank stopped (died, was killed, or failed): this one cannot go on."""


class World:
    """This process's place in the data-parallel group: ``rank`` of ``size`` (1, 0 without ``--distributed``)."""

    def __init__(self, group: mx.distributed.Group | None = None, timeout: float = DISTRIBUTED_TIMEOUT,
                 prog: str = "tbn-train") -> None:
        if timeout <= 0:
            raise ValueError(f"--distributed-timeout must be > 0 seconds, got {timeout}")
        self.group, self.prog = group, prog
        self.rank = group.rank() if group is not None else 0
        self.size = group.size() if group is not None else 1
        self.timeout = timeout
        self._deadline: float | None = None
        self._what = ""
        if self.size > 1:
            threading.Thread(target=self._watch, name="tbn-watchdog", daemon=True).start()
            signal.signal(signal.SIGTERM, self._terminated)

    @classmethod
    def join(cls, timeout: float = DISTRIBUTED_TIMEOUT, prog: str = "tbn-train") -> World:
        """Connect to the ranks ``mlx.launch`` (or mpirun) started; a lone process is a group of one."""
        return cls(mx.distributed.init(), timeout, prog)

    @classmethod
    def from_flags(cls, distributed: bool, timeout: float | None, prog: str) -> World:
        """The group ``--distributed`` joins (``--distributed-timeout`` seconds), or this process alone."""
        if not distributed:
            if timeout is not None:
                raise ValueError("--distributed-timeout needs --distributed")
            return cls(prog=prog)
        return cls.join(DISTRIBUTED_TIMEOUT if timeout is None else timeout, prog)

    # ------------------------------------------------------------------ faults
    def _watch(self) -> None:
        while True:
            time.sleep(WATCHDOG_TICK)
            deadline = self._deadline
            if deadline is not None and time.monotonic() > deadline:
                print(f"{self.prog}: error: rank {self.rank} waited {self.timeout:.0f} s for the other ranks at "
                      f"{self._what}: one is hung or unreachable; stop them all and restart with --resume",
                      file=sys.stderr, flush=True)
                os._exit(STOPPED_EXIT)

    def _terminated(self, signum, frame) -> None:
        raise RankLost(f"rank {self.rank} stopped by the launcher (another rank ended); restart all ranks with --resume")

    def _collective(self, what: str, fn: Callable[[], mx.array]) -> mx.array:
        self._what, self._deadline = what, time.monotonic() + self.timeout
        try:
            out = fn()
            mx.eval(out)
            return out
        except RuntimeError as exc:  # the ring/MPI backends raise when a peer's connection drops
            raise RankLost(f"rank {self.rank} lost contact with another rank at {what} ({exc}); "
                           f"restart all ranks with --resume") from exc
        finally:
            self._deadline = None

    # ------------------------------------------------------------------ collectives
    def all_sum(self, x: mx.array, what: str) -> mx.array:
        """Elementwise sum over the ranks (the array itself in a group of one)."""
        if self.size == 1:
            return x
        return self._collective(what, lambda: mx.distributed.all_sum(x, group=self.group, stream=mx.cpu))

    def gather_bytes(self, payload: bytes, what: str) -> list[bytes]:
        """Every rank's ``payload``, in rank order (on every rank)."""
        if self.size == 1:
            return [payload]
        lengths = self._collective(what, lambda: mx.distributed.all_gather(
            mx.array([len(payload)], dtype=mx.int64), group=self.group, stream=mx.cpu)).tolist()
        width = max(1, *lengths)
        padded = np.frombuffer(payload.ljust(width, b"\0"), dtype=np.uint8)
        rows = self._collective(what, lambda: mx.distributed.all_gather(
            mx.array(padded), group=self.group, stream=mx.cpu))
        rows = np.array(rows).reshape(self.size, width)
        return [rows[r, :n].tobytes() for r, n in enumerate(lengths)]

    def broadcast_bytes(self, payload: bytes | None, what: str) -> bytes:
        """Rank 0's ``payload`` on every rank (the others pass None)."""
        if self.size == 1:
            return payload
        mine = payload if self.rank == 0 else b""
        length = int(self.all_sum(mx.array([len(mine)], dtype=mx.int64), what).item())
        if length == 0:
            return b""
        data = np.frombuffer(mine, dtype=np.uint8) if self.rank == 0 else np.zeros(length, dtype=np.uint8)
        return np.array(self.all_sum(mx.array(data), what)).tobytes()

    def gather_json(self, value: Any, what: str) -> list[Any]:
        """Every rank's JSON-able ``value`` in rank order (numpy scalars become plain numbers)."""
        text = json.dumps(value, sort_keys=True, default=plain_json)
        return [json.loads(b.decode("utf-8")) for b in self.gather_bytes(text.encode("utf-8"), what)]

    # ------------------------------------------------------------------ agreement
    def together(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` on every rank; if it fails on any, it fails on all with the first failing rank's message.

        Only rank 0 keeps the message (it prints the one error line); the others stop quietly with
        the same exit status, so a refusal at start is one line, not R.
        """
        try:
            result, error = fn(), None
        except Exception as exc:  # noqa: BLE001 (handed to the other ranks, then re-raised)
            result, error = None, exc
        if self.size == 1:
            if error is not None:
                raise error
            return result
        reports = self.gather_json(None if error is None else error_message(error), what)
        failed = [(r, m) for r, m in enumerate(reports) if m is not None]
        if not failed:
            return result
        if error is not None and failed[0][0] == self.rank:
            if self.rank == 0 or not isinstance(error, USER_ERRORS):
                raise error  # rank 0 prints the line; a bug keeps its traceback wherever it happened
            raise QuietStop(str(error)) from error
        rank, message = failed[0]
        if self.rank == 0:
            raise ValueError(f"rank {rank}: {message}")
        raise QuietStop(f"rank {rank}: {message}")

    def check_same_settings(self, settings: dict) -> None:
        """Refuse a start whose ranks were given different settings (naming the first that differ)."""
        every = self.gather_json(settings, "the settings check")
        for rank, theirs in enumerate(every):
            diff = sorted(k for k in set(theirs) | set(settings) if theirs.get(k) != every[0].get(k))
            if diff:
                details = "; ".join(f"{k}: rank 0 has {every[0].get(k)!r}, rank {rank} {theirs.get(k)!r}" for k in diff)
                raise ValueError(f"the ranks were started with different settings ({details}); "
                                 f"give every rank the same command line")


class QuietStop(ValueError):
    """A bad-input stop whose one-line message another rank (rank 0) prints."""


@dataclass(frozen=True)
class Pooled:
    """One optimizer step's pooled gradient over every client of every rank."""

    grads: dict
    weight: float
    clients: int  # clients that contributed a gradient


def pooled_gradient(parts: Sequence[Gradient | None], template: dict, world: World, clients: int,
                    what: str, ties: int = 0) -> tuple[Pooled | None, int]:
    """Pool this rank's clients' gradients with every other rank's; return (step or None, all ties).

    ``parts`` holds one entry per local client (None: that client skipped the step, e.g. a tied
    GRPO group); ``clients`` is the total over the ranks. With one client in all, its own gradient and
    weight come back untouched. Otherwise the step's gradient is the weight-averaged mean
    Σ wᵢ gᵢ / Σ wᵢ and its weight the mean Σ wᵢ / n over the n contributing clients: the clip then
    bounds the pooled step as it bounds one client's, and a client's weight (RLAIF's treatment
    modifier) still sets its share. One ``all_sum`` carries the gradients (concatenated into one
    float32 vector), Σ wᵢ, n and the local ``ties`` (GRPO groups of equal scores, summed for the
    counters). None when no client contributed. A rank may hold no client at all (``parts`` empty):
    it still joins the ``all_sum``, so every rank takes the same step.
    """
    if clients == 1 and world.size == 1:
        (part,) = parts
        return (None if part is None else Pooled(part.grads, part.weight, 1)), ties
    flat = tree_flatten(template)
    total = mx.zeros(sum(v.size for _, v in flat) + 3, dtype=mx.float32)
    for part in parts:
        if part is not None:
            vec = mx.concatenate([g.reshape(-1).astype(mx.float32) for _, g in tree_flatten(part.grads)])
            total = total + mx.concatenate([part.weight * vec, mx.array([part.weight, 1.0, 0.0])])
    total = total + mx.concatenate([mx.zeros(total.size - 1), mx.array([float(ties)])])
    total = world.all_sum(total, what)
    weight_sum, count, all_ties = (float(v) for v in total[-3:].tolist())
    if count == 0:
        return None, int(all_ties)
    mean = total[:-3] / weight_sum if weight_sum else total[:-3]  # all weights 0 (a weight set to 0): Σ wᵢgᵢ = 0
    offsets = dict(zip((key for key, _ in flat), np.cumsum([0] + [value.size for _, value in flat]).tolist()))
    # the template's own tree, empty containers included: Adam keys its state by the first step's tree, so a
    # pooled step and a lone client's step (e.g. a run's shorter last step) must hand it the same one
    grads = tree_map_with_path(lambda key, value: mean[offsets[key]:offsets[key] + value.size].reshape(value.shape)
                               .astype(value.dtype), template)
    return Pooled(grads, weight_sum / count, int(count)), int(all_ties)


def batch_step(updater: PolicyUpdater, world: World, part: Gradient | None, share: float, what: str) -> float:
    """One optimizer step on a batch split over the ranks; return the pre-clip norm.

    ``part`` is the gradient of this rank's share of the batch (None: an empty share) under a mean loss,
    ``share`` what that mean is over (pairs for DPO, target tokens for SFT): pooled with those
    weights it is the gradient of the whole batch's mean loss, then the usual clip and Adam (weight 1).
    """
    weighted = None if part is None else Gradient(part.loss, part.grads, share, part.aux)
    pooled, _ = pooled_gradient([weighted], updater.model.trainable_parameters(), world, world.size, what)
    norm = updater.apply(pooled.grads, 1.0)
    mx.eval(updater.model.trainable_parameters(), updater.optimizer.state)
    return norm.item()


def weighted_means(world: World, share: float, values: dict[str, float], what: str) -> dict[str, float]:
    """Every rank's ``values`` averaged with weights ``share`` (on every rank): a batch's mean from its shares'."""
    every = world.gather_json([share, values], what)
    total = sum(w for w, _ in every)
    keys = next(v for w, v in every if w)  # a batch is never empty: some rank has a share
    return {k: sum(w * v[k] for w, v in every if w) / total for k in keys}


def check_ranks(ranks: int, world: World) -> None:
    """Refuse a run set for another number of ranks than joined (``ranks`` is a run setting: a resume keeps it)."""
    if ranks != world.size:
        raise ValueError(f"the run is set for {ranks} ranks but {world.size} joined; start it with "
                         f"mlx.launch -n {ranks} … --distributed")


def start_ranks(world: World, settings, resume: bool, build: Callable[[], T]) -> T:
    """Check that every rank got the same settings, then ``build()`` (the policy, encoded data) on every rank.

    A failure on any rank stops all, rank 0 printing the one line; nothing is written yet.
    """
    world.together("the settings check", lambda: world.check_same_settings({**settings.model_dump(mode="json"),
                                                                            "resume": resume}))
    return world.together("the start", build)


def open_run_dir(world: World, settings, out, resume: bool, model, router, optimizer) -> tuple[RunDir | None,
                                                                                             Checkpoint | None]:
    """Rank 0 opens the run directory and loads its latest checkpoint into ``model``'s adapters and
    ``optimizer``; the other ranks receive that checkpoint from it (no shared disk needed) into a
    temporary copy, loaded the same way: :func:`drop_copy` it once its extra files are read."""
    run = world.together("the run directory", lambda: RunDir(out, settings, resume) if world.rank == 0 else None)
    ck = world.together("the checkpoint", lambda: run.restore(model, router, optimizer) if run else None)
    if world.size == 1:
        return run, ck
    payload = world.broadcast_bytes(_pack(ck.path) if ck is not None else b"", "the resume")
    if world.rank == 0 or not payload:
        return run, ck
    where = Path(tempfile.mkdtemp(prefix="tbn-resume-")) / RESUME_COPY
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r") as tar:
        tar.extractall(where, filter="data")
    return run, load_checkpoint(where, model, router, optimizer)


def begin_run(world: World, settings, out, resume: bool, build: Callable[[], tuple]) -> tuple[tuple, RunDir | None,
                                                                                         Checkpoint | None]:
    """A batch trainer's start (SFT, DPO) on every rank: the rank count, the same settings, ``build()`` (the
    policy first), rank 0's run directory and its checkpoint, already read into the model."""
    check_ranks(settings.ranks, world)
    built = start_ranks(world, settings, resume, build)
    p = built[0]
    run, ck = open_run_dir(world, settings, out, resume, p.model, p.router, p.updater.optimizer)
    drop_copy(ck)
    return built, run, ck


def drop_copy(ck: Checkpoint | None) -> None:
    """Remove a checkpoint copy :func:`open_run_dir` received from rank 0 (rank 0's own checkpoint stays)."""
    if ck is not None and ck.path.name == RESUME_COPY:
        shutil.rmtree(ck.path.parent, ignore_errors=True)


def _pack(path: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(path, arcname=".")
    return buf.getvalue()


def adapter_digest(module) -> str:
    """SHA-256 of the trainable parameters' bytes, in a fixed key order (equal on ranks that agree bit for bit)."""
    h = hashlib.sha256()
    for key, value in sorted(tree_flatten(module.trainable_parameters())):
        h.update(key.encode("utf-8"))
        h.update(np.array(value.astype(mx.float32)).tobytes())  # exact for float16 and bfloat16 too
    return h.hexdigest()
