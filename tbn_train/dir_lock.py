"""One writer per output directory: an advisory lock file that names the process holding it.

Every resumable writer (corpus shards, DAPT samples, training runs) takes the lock before it
touches its directory, so a second writer on the same ``--out`` stops with an error naming the
holder's pid instead of interleaving records. The lock is ``flock``-based: the kernel releases
it when the holder exits, also after ``kill -9``, so a stale lock file never blocks a resume.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = ".lock"

_held: dict[str, int] = {}  # real directory path -> descriptor of a lock this process holds


class DirectoryLocked(ValueError):
    """Another process is writing into the directory."""


def lock_directory(directory: str | Path) -> None:
    """Create ``directory`` if needed and take its lock; raise DirectoryLocked if another process holds it.

    Taking a lock this process already holds is a no-op (a resume in the same process).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(directory)
    if key in _held:
        return
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise DirectoryLocked(f"{directory} is in use by another writer (pid {holder}); "
                              f"wait for it to finish or stop it, or choose another --out") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    _held[key] = fd


def unlock_directory(directory: str | Path) -> None:
    """Release the lock this process holds on ``directory`` (no-op if it holds none)."""
    fd = _held.pop(os.path.realpath(directory), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock
