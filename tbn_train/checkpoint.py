"""Checkpoints a killed run can resume from: adapters, Adam state, RNG state, caller state, step.

Layout under the run's checkpoint root::

    step-00000012/adapters/<name>/{adapters.safetensors, adapter_config.json}   (mlx-lm format)
    step-00000012/optimizer.safetensors                                         (flattened Adam state)
    step-00000012/state.json        {"step", "seed", "numpy_rng", "state": <caller's JSON blob>}
    step-00000012/<name>            optional caller files (e.g. the pickled env state)
    latest.json                     {"step": 12, "dir": "step-00000012"}

A checkpoint directory is assembled under a temporary name and renamed into place, and
``latest.json`` is replaced atomically afterwards, so a crash at any moment leaves the previous
checkpoint intact and ``latest.json`` never points at a partial one.

MLX's global random key cannot be read back into the generator, so reproducibility across a
resume comes from reseeding: call :func:`seed_step` at the start of every step/turn.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from tbn_train.adapter_io import restore_adapter, save_adapter
from tbn_train.atomic import write_json
from tbn_train.config import KEEP_CHECKPOINTS
from tbn_train.lora import AdapterRouter
from tbn_train.read_files import load_arrays, load_json

LATEST = "latest.json"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"


def seed_step(seed: int, step: int, *more: int) -> None:
    """Seed MLX's sampler deterministically from (run seed, step, *more) — resumable by construction.

    ``more`` names a stream within the step (e.g. one client's phase of a turn)."""
    mx.random.seed(int(np.random.SeedSequence([seed, step, *more]).generate_state(1)[0]))


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` restored besides the model/optimizer."""

    step: int
    seed: int
    state: dict[str, Any]
    path: Path


def _step_dir(step: int) -> str:
    return f"step-{step:08d}"


def save_checkpoint(
    root: str | Path,
    step: int,
    model: nn.Module,
    router: AdapterRouter,
    optimizer: optim.Optimizer,
    *,
    seed: int,
    state: dict[str, Any] | None = None,
    adapters: Sequence[str] | None = None,
    numpy_rng: np.random.Generator | None = None,
    keep: int = KEEP_CHECKPOINTS,
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write checkpoint ``step`` atomically and prune to the ``keep`` newest; return its path.

    ``adapters`` defaults to the trainable one (frozen adapters are reloaded from their source).
    ``state`` must be JSON-serialisable (e.g. counters, metrics cursor); ``files`` are extra
    named byte blobs written inside the checkpoint (read them back from ``Checkpoint.path``).
    """
    if step < 0:
        raise ValueError(f"step must be ≥ 0, got {step}")
    blob = {"step": step, "seed": seed, "state": state or {},
            "numpy_rng": None if numpy_rng is None else numpy_rng.bit_generator.state}
    text = json.dumps(blob, indent=2, sort_keys=True)  # fails here, before anything is written
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / _step_dir(step)
    tmp = root / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for name in adapters if adapters is not None else [router.trainable]:
            if name is None:
                raise ValueError("no adapter to save: the router has no trainable adapter")
            save_adapter(model, router, name, tmp / "adapters" / name)
        opt_state = dict(sorted(tree_flatten(optimizer.state)))  # fixed order: equal state, equal bytes
        mx.eval(opt_state)
        mx.save_safetensors(str(tmp / OPTIMIZER_FILE), opt_state)
        (tmp / STATE_FILE).write_text(text, encoding="utf-8")
        for name, data in (files or {}).items():
            if Path(name).name != name or name in (STATE_FILE, OPTIMIZER_FILE, "adapters"):
                raise ValueError(f"checkpoint file name {name!r} must be a plain name not used by the checkpoint itself")
            (tmp / name).write_bytes(data)
        if final.exists():  # re-saving a step: move the old one aside first
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_json(root / LATEST, {"step": step, "dir": final.name})
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old)
    return final


def latest_checkpoint(root: str | Path) -> Path | None:
    """The directory ``latest.json`` points at, or None when the root has no checkpoint."""
    pointer = Path(root) / LATEST
    if not pointer.is_file():
        return None
    return Path(root) / load_json(pointer, "checkpoint pointer")["dir"]


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    router: AdapterRouter,
    optimizer: optim.Optimizer,
    numpy_rng: np.random.Generator | None = None,
) -> Checkpoint:
    """Restore adapters (into existing slots), optimizer state and RNG from a checkpoint.

    ``path`` is a checkpoint root (its latest checkpoint is used) or one ``step-*`` directory.
    """
    path = Path(path)
    if (path / LATEST).is_file():
        path = latest_checkpoint(path)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"no checkpoint at {path} (missing {STATE_FILE})")
    blob = load_json(path / STATE_FILE, "checkpoint state")
    for adapter_dir in sorted((path / "adapters").iterdir()):
        if adapter_dir.name not in router.specs:
            raise KeyError(f"checkpoint has adapter {adapter_dir.name!r} but the model has no such slot: {sorted(router.specs)}")
        restore_adapter(model, router, adapter_dir.name, adapter_dir)
    optimizer.state = tree_unflatten(list(load_arrays(path / OPTIMIZER_FILE, "optimizer state").items()))
    if numpy_rng is not None and blob["numpy_rng"] is not None:
        numpy_rng.bit_generator.state = blob["numpy_rng"]
    mx.eval(model.parameters(), optimizer.state)
    return Checkpoint(step=blob["step"], seed=blob["seed"], state=blob["state"], path=path)
