"""Preload the system OpenBLAS before MLX is imported (Linux CPU speed fix).

The Linux ``mlx[cpu]`` wheel links the netlib reference BLAS, which runs a 1024³ sgemm at about
5 GFLOP/s on our CPU. Loading Debian's OpenBLAS (package ``libopenblas0-pthread``) into the
global symbol scope *before* ``import mlx.core`` makes MLX resolve its BLAS symbols there instead:
about 176 GFLOP/s and 6–19× faster training steps, with the same losses to ~1e-6
(../shared/spec/mlx-notes.md §6). ``tbn_train/__init__.py`` calls :func:`preload_openblas`, so
importing any ``tbn_train`` module does this before the module imports MLX.

It is a no-op on other systems, when the library is absent, or when the environment variable
``TBN_NO_OPENBLAS=1`` is set (used by the equality test and for debugging).

OpenBLAS's result bits depend on how many threads split a product (one thread and two give different
sgemm bits on the tiny model's shapes), and by default it takes that number from the CPUs and
``OPENBLAS_NUM_THREADS`` a process sees when it starts. A killed run resumed in another process, or
a run repeated on another machine, could then differ in the last bits. So the preload fixes the count
at ``OPENBLAS_THREADS`` whatever the environment; ``TBN_OPENBLAS_THREADS=N`` trades that identity
across machines for speed on a machine with more cores.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
import warnings

DISABLE_ENV = "TBN_NO_OPENBLAS"
THREADS_ENV = "TBN_OPENBLAS_THREADS"
OPENBLAS_THREADS = 2   # ours: the 2-core reference machine's default, so its measured speed is unchanged
# Debian/Ubuntu multiarch locations of libopenblas0-pthread's BLAS shim.
CANDIDATE_GLOBS = ("/usr/lib/*-linux-gnu/openblas-pthread/libblas.so.3", "/usr/lib/openblas-pthread/libblas.so.3")

_loaded: str | None = None
_attempted = False


def find_openblas() -> str | None:
    """Path of the system OpenBLAS BLAS library, or None when it is not installed."""
    for pattern in CANDIDATE_GLOBS:
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[0]
    return None


def preload_openblas() -> str | None:
    """Load OpenBLAS with RTLD_GLOBAL once; return its path, or None when not loaded.

    Must run before ``mlx.core`` is first imported; if MLX is already loaded a warning is
    issued and nothing is done (the netlib symbols are already bound).
    """
    global _loaded, _attempted
    if _attempted:
        return _loaded
    _attempted = True
    if not sys.platform.startswith("linux") or os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return None
    path = find_openblas()
    if path is None:
        return None
    if "mlx.core" in sys.modules:
        warnings.warn(
            "mlx.core was imported before tbn_train; OpenBLAS not preloaded (import tbn_train first "
            "or LD_PRELOAD=" + path + ")",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    if hasattr(lib, "openblas_set_num_threads"):
        lib.openblas_set_num_threads(openblas_threads())
    _loaded = path
    return _loaded


def openblas_threads() -> int:
    """The fixed OpenBLAS thread count: OPENBLAS_THREADS, or TBN_OPENBLAS_THREADS when set to N >= 1."""
    value = os.environ.get(THREADS_ENV, "")
    if value.isdigit() and int(value) >= 1:
        return int(value)
    if value:
        warnings.warn(f"{THREADS_ENV}={value!r} is not a positive integer; using {OPENBLAS_THREADS}", RuntimeWarning,
                      stacklevel=2)
    return OPENBLAS_THREADS


def openblas_active() -> bool:
    """True when the system OpenBLAS is mapped into this process (Linux only).

    numpy's own bundled OpenBLAS (``libscipy_openblas``) does not count: MLX cannot use it.
    """
    path = find_openblas()
    if path is None:
        return False
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            return os.path.realpath(path) in maps.read()
    except OSError:
        return False
