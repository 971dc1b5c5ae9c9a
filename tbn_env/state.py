"""A client's starting state: node levels, buckets, LOA, TAIE axes and the therapist's first TMoG.

The paper says only that maladaptive buckets start "elevated" and adaptive ones "near zero"
(§9.3.2); the stage-ranged draws below make a client entering at stage s already meet the entry
criteria of stage s (§9.3.5.3), so `start_stage` can begin a client mid-treatment.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .buckets import ADAPTIVE, MALADAPTIVE
from .graph import LEVEL_MAX, LEVEL_MIN, ClientGraph
from .loa import LOA_DIMENSIONS, LOA_MAX, LOA_MIN
from .params import Params
from .taie import AXIS_MAX, AXIS_MIN


BQ_SCALE_MAX = 3.0  # a profile may at most triple a node's resistance


@dataclass(frozen=True)
class InitialState:
    """Everything that differs between clients at reset, as plain arrays."""

    stage: int
    levels: np.ndarray   # [142]
    buckets: np.ndarray  # [16], maladaptive then adaptive
    loa: np.ndarray      # [7]
    taie: np.ndarray     # [3]
    x_pole: float        # the client's pathological side of TAIE X: -1 rigid, +1 porous
    tmog: np.ndarray     # [142]
    bq_scale: np.ndarray | None = None  # [142] per-node BQ multiplier from the profile; None = 1
    sessions_completed: int = 0  # treatment sessions behind a client who enters mid-treatment

    def __post_init__(self) -> None:
        if self.bq_scale is None:
            object.__setattr__(self, "bq_scale", np.ones(len(self.levels)))

    def validate(self, n_nodes: int) -> "InitialState":
        """Raise ValueError naming the first field with a wrong shape or value; return self."""
        checks = (("levels", self.levels, (n_nodes,), LEVEL_MIN, LEVEL_MAX),
                  ("buckets", self.buckets, (16,), 0.0, 1.0),
                  ("loa", self.loa, (len(LOA_DIMENSIONS),), LOA_MIN, LOA_MAX),
                  ("taie", self.taie, (3,), AXIS_MIN, AXIS_MAX),
                  ("tmog", self.tmog, (n_nodes,), LEVEL_MIN, LEVEL_MAX),
                  ("bq_scale", self.bq_scale, (n_nodes,), 0.0, BQ_SCALE_MAX))
        if self.stage not in (1, 2, 3, 4):
            raise ValueError(f"stage must be 1-4, got {self.stage!r}")
        if not isinstance(self.sessions_completed, (int, np.integer)) or self.sessions_completed < 0:
            raise ValueError(f"sessions_completed must be a whole number >= 0, got {self.sessions_completed!r}")
        for name, arr, shape, lo, hi in checks:
            arr = np.asarray(arr)
            if arr.shape != shape:
                raise ValueError(f"initial {name} must have shape {shape}, got {arr.shape}")
            if not np.isfinite(arr).all() or (arr < lo).any() or (arr > hi).any():
                raise ValueError(f"initial {name} must be finite and within [{lo}, {hi}]")
        return self


def taie_from_levels(graph: ClientGraph, levels: np.ndarray) -> np.ndarray:
    """Axis positions implied by node pathology and TAIE loadings (x: signed by pole; y, z: health)."""
    p = graph.pathologies(levels)
    load = graph.node_table["taie"]
    x = 10.0 * (load[:, 0] @ p) / np.abs(load[:, 0]).sum()
    y = 10.0 * (np.abs(load[:, 1]) @ (1.0 - 2.0 * p)) / np.abs(load[:, 1]).sum()
    z = 10.0 * (np.abs(load[:, 2]) @ (1.0 - 2.0 * p)) / np.abs(load[:, 2]).sum()
    return np.clip(np.array([x, y, z]), AXIS_MIN, AXIS_MAX)


def sample_initial_state(rng: np.random.Generator, stage: int, graph: ClientGraph,
                         params: Params | None = None,
                         pathology_shift: np.ndarray | None = None,
                         bq_scale: np.ndarray | None = None) -> InitialState:
    """Draw a client entering treatment at `stage` (1-4).

    `pathology_shift` (per node, added before clipping to [0, 1]) and `bq_scale` (per-node BQ
    multiplier) let a profile tilt the draw, e.g. a DMM Type A client toward entrenched
    intellectualisation.
    """
    params = params or Params()
    if stage not in (1, 2, 3, 4):
        raise ValueError(f"stage must be 1-4, got {stage!r}")
    n = len(graph.nodes)
    lo, hi = params.init_pathology[stage - 1]
    p = rng.uniform(lo, hi, size=n)
    if pathology_shift is not None:
        p = np.clip(p + pathology_shift, 0.0, 1.0)
    levels = graph.levels_from_pathology(p)
    jitter = params.init_bucket_jitter
    buckets = np.concatenate([
        params.init_maladaptive[stage - 1] + rng.uniform(-jitter, jitter, len(MALADAPTIVE)),
        params.init_adaptive[stage - 1] + rng.uniform(-jitter, jitter, len(ADAPTIVE)),
    ]).clip(0.0, 1.0)
    loa = rng.uniform(*params.init_loa[stage - 1], size=len(LOA_DIMENSIONS))
    taie = taie_from_levels(graph, levels)
    x_pole = 1.0 if taie[0] >= 0 else -1.0
    tmog = np.clip(levels + rng.normal(0.0, params.tmog_sigma_by_stage[stage - 1], size=n), LEVEL_MIN, LEVEL_MAX)
    return InitialState(stage, levels, buckets, loa, taie, x_pole, tmog, bq_scale,
                        params.init_sessions_completed[stage - 1])


def with_taie(state: InitialState, taie: np.ndarray, x_pole: float) -> InitialState:
    """The same client with TAIE axes set by a profile prior (e.g. DMM Type A -> rigid X)."""
    return replace(state, taie=np.clip(np.asarray(taie, dtype=np.float64), AXIS_MIN, AXIS_MAX),
                   x_pole=1.0 if x_pole >= 0 else -1.0)
