"""A client's starting state: node levels, buckets, LOA, TAIE axes and the therapist's first TMoG.

The paper says only that maladaptive buckets start "elevated" and adaptive ones "near zero"
(§9.3.2); the stage-ranged draws below make a client entering at stage s already meet the entry
criteria of stage s (§9.3.5.3), so `start_stage` can begin a client mid-treatment.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

from .buckets import ADAPTIVE, MALADAPTIVE
from .compiled_pack import Pack, pack
from .compiled_state import box_muller_pairs, draw_rows
from .graph import LEVEL_MAX, LEVEL_MIN, ClientGraph
from .loa import LOA_DIMENSIONS, LOA_MAX, LOA_MIN
from .params import Params
from .ranges import within
from .taie import AXIS_MAX, AXIS_MIN


BQ_SCALE_MAX = 3.0  # a profile may at most triple a node's resistance
_NO_TILT = np.zeros((0, 0))   # no profile's tilt (pathology shift or BQ multipliers)


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
        InitialBatch.stack([self.check_shapes(n_nodes)]).validate(n_nodes)
        return self

    def check_shapes(self, n_nodes: int) -> "InitialState":
        """Raise ValueError naming the first field of a wrong type or shape (`validate` checks the values too)."""
        if self.stage not in (1, 2, 3, 4):
            raise ValueError(f"stage must be 1-4, got {self.stage!r}")
        if not isinstance(self.sessions_completed, (int, np.integer)) or self.sessions_completed < 0:
            raise ValueError(f"sessions_completed must be a whole number >= 0, got {self.sessions_completed!r}")
        for name, *_ in _FIELDS:
            arr = np.asarray(getattr(self, name))
            shape = _shape(name, n_nodes)
            if arr.shape != shape:
                raise ValueError(f"initial {name} must have shape {shape}, got {arr.shape}")
        return self


#: The per-client arrays of a starting state, with their bounds.
_FIELDS = (("levels", LEVEL_MIN, LEVEL_MAX), ("buckets", 0.0, 1.0), ("loa", LOA_MIN, LOA_MAX),
           ("taie", AXIS_MIN, AXIS_MAX), ("tmog", LEVEL_MIN, LEVEL_MAX), ("bq_scale", 0.0, BQ_SCALE_MAX))


def _shape(name: str, n_nodes: int) -> tuple[int]:
    return {"buckets": (16,), "loa": (len(LOA_DIMENSIONS),), "taie": (3,)}.get(name, (n_nodes,))


#: What `InitialBatch.validate` checks, in order: the stage, the sessions behind, then the arrays of `_FIELDS`
_CHECKS = (("stage", 1, 4), ("sessions_completed", 0, np.inf), *_FIELDS)


@lru_cache(maxsize=64)
def _shapes(n_nodes: int, clients: int) -> list[tuple[int, ...]]:
    """The shape of each of `_CHECKS` for a batch of `clients`."""
    return [(clients,) if name in ("stage", "sessions_completed") else (clients, *_shape(name, n_nodes))
            for name, *_ in _CHECKS]


@dataclass(frozen=True)
class InitialBatch:
    """Starting states of several clients, one row each (what `BatchKernel.load_rows` takes at once)."""

    stage: np.ndarray               # [B]
    levels: np.ndarray              # [B, 142]
    buckets: np.ndarray             # [B, 16]
    loa: np.ndarray                 # [B, 7]
    taie: np.ndarray                # [B, 3]
    x_pole: np.ndarray              # [B]
    tmog: np.ndarray                # [B, 142]
    bq_scale: np.ndarray            # [B, 142]
    sessions_completed: np.ndarray  # [B]

    def __len__(self) -> int:
        return len(self.stage)

    @classmethod
    def stack(cls, states: list[InitialState]) -> "InitialBatch":
        return cls(*(np.stack([np.asarray(getattr(st, f.name)) for st in states]) for f in fields(cls)))

    @classmethod
    def empty(cls, clients: int, n_nodes: int) -> "InitialBatch":
        """A batch of `clients` whose arrays are yet to be written."""
        return cls(**{name: np.empty(shape, dtype=np.int64 if name in ("stage", "sessions_completed") else np.float64)
                      for (name, *_), shape in zip((*_CHECKS, ("x_pole",)), (*_shapes(n_nodes, clients), (clients,)))})

    def row(self, i: int) -> InitialState:
        return InitialState(int(self.stage[i]), self.levels[i], self.buckets[i], self.loa[i], self.taie[i],
                            float(self.x_pole[i]), self.tmog[i], self.bq_scale[i], int(self.sessions_completed[i]))

    def validate(self, n_nodes: int) -> "InitialBatch":
        """Raise ValueError naming the first field with a wrong shape or value; return self."""
        b = len(self.stage)
        arrays = [getattr(self, name) for name, *_ in _CHECKS]
        shapes = _shapes(n_nodes, b)
        if [a.shape for a in arrays] != shapes or self.x_pole.shape != (b,):
            for (name, *_), shape in zip((*_CHECKS, ("x_pole",)), (*shapes, (b,))):
                if getattr(self, name).shape != shape:
                    raise ValueError(f"initial {name} must have shape {shape[1:]} for each of {b} clients, got "
                                     f"{getattr(self, name).shape}")
        for bad, ((name, lo, hi), arr) in enumerate(zip(_CHECKS, arrays)):
            if within(arr, lo, hi):   # NaN fails; the bounds are finite
                continue
            if bad == 0:
                raise ValueError(f"stage must be 1-4, got {sorted(set(self.stage.tolist()))}")
            if bad == 1:
                raise ValueError("sessions_completed must be a whole number >= 0")
            raise ValueError(f"initial {name} must be finite and within [{lo}, {hi}]")
        return self


def state_draws(n_nodes: int) -> int:
    """Uniform numbers one client's starting state takes: pathology, bucket jitter, LOA, TMoG noise
    (Box-Muller pairs), and one for a profile's TAIE X prior."""
    return n_nodes + len(MALADAPTIVE) + len(ADAPTIVE) + len(LOA_DIMENSIONS) + 2 * ((n_nodes + 1) // 2) + 1


def stream_seeds(rng: np.random.Generator) -> tuple[int, int]:
    """The seeds of a new client's two streams, its TMoG misreadings and its signals: the generator's next two
    64-bit words halved, which is what `rng.integers(2**63, size=2)` returns (Lemire's method never rejects
    for a power-of-two range) at a tenth of its cost."""
    first, second = rng.bit_generator.random_raw(2).tolist()
    return first >> 1, second >> 1


def check_draw(u: np.ndarray, stage: int, n_nodes: int, params: Params) -> None:
    """Raise ValueError unless `stage` is 1-4, `u` holds [clients, state_draws(n_nodes)] uniforms and the stage's
    LOA range lies on the LOA scale (the other ranges a draw reads are checked by `Params` itself)."""
    if stage not in (1, 2, 3, 4):
        raise ValueError(f"stage must be 1-4, got {stage!r}")
    if u.shape != (len(u), state_draws(n_nodes)):
        raise ValueError(f"need [clients, {state_draws(n_nodes)}] uniforms, got {u.shape}")
    loa_lo, loa_hi = params.init_loa[stage - 1]
    if not (LOA_MIN <= loa_lo <= LOA_MAX and LOA_MIN <= loa_hi <= LOA_MAX):
        raise ValueError(f"Params.init_loa must lie in [{LOA_MIN}, {LOA_MAX}] (the LOA scale), got "
                         f"{params.init_loa[stage - 1]!r} for stage {stage}")


def states_from_uniforms(u: np.ndarray, stage: int, graph: ClientGraph, params: Params | None = None,
                         pathology_shift: np.ndarray | None = None,
                         bq_scale: np.ndarray | None = None) -> InitialBatch:
    """Clients entering treatment at `stage` (1-4), one per row of `u` ([B, state_draws(N)] uniforms in [0, 1)).

    Each client's randomness is one block drawn from its own generator, so a batch of clients and the
    same clients drawn one by one are the same clients. `pathology_shift` ([B, N], added before clipping
    to [0, 1]) and `bq_scale` ([B, N] BQ multipliers) let a profile tilt the draw (`write_states`).
    """
    n, params = len(graph.nodes), params or Params()
    check_draw(u, stage, n, params)
    batch = InitialBatch.empty(len(u), n)
    write_states(np.ascontiguousarray(u, dtype=np.float64), np.arange(len(u)), bind_draw(stage, graph, params, batch), n,
                 _NO_TILT if pathology_shift is None else np.ascontiguousarray(pathology_shift, dtype=np.float64),
                 _NO_TILT if bq_scale is None else np.ascontiguousarray(bq_scale, dtype=np.float64))
    return batch


def bind_draw(stage: int, graph: ClientGraph, params: Params, into) -> Pack:
    """What a draw of clients entering at `stage` writes to and reads (`compiled_state.start_rows`' arguments after
    the rows), bound once (a `drawing`): `into`'s arrays of `InitialBatch`'s names ([clients, ...] or a `BatchKernel`'s
    [batch, ...]), the stage's ranges in `params` and the graph's node tables."""
    t, s = graph.node_table, stage - 1
    (path_lo, path_hi), (loa_lo, loa_hi) = params.init_pathology[s], params.init_loa[s]
    return pack((into.levels, into.buckets, into.loa, into.taie, into.x_pole, into.tmog, into.bq_scale, into.stage,
                 into.sessions_completed),
                (float(path_lo), float(path_hi), float(params.init_maladaptive[s]), float(params.init_adaptive[s]),
                 float(loa_lo), float(loa_hi), float(params.tmog_sigma_by_stage[s]), stage,
                 int(params.init_sessions_completed[s]), t["bipolar"], t["increase"], t["pole"], LEVEL_MIN, LEVEL_MAX,
                 float(params.init_bucket_jitter), len(MALADAPTIVE), LOA_MIN, LOA_MAX, t["taie"], graph.taie_norm,
                 AXIS_MIN, AXIS_MAX, np.empty(len(graph.nodes))))


def box_muller(u: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy's log1p, cos and sin in Box-Muller for the TMoG noise of each row of `u` (`state_draws` uniforms):
    log1p(-u1), cos(2 pi u2) and sin(2 pi u2) of each uniform pair (the compiled ones round differently)."""
    half = (n_nodes + 1) // 2
    neg, angle = np.empty((len(u), half)), np.empty((len(u), half))
    box_muller_pairs(u, n_nodes + len(MALADAPTIVE) + len(ADAPTIVE) + len(LOA_DIMENSIONS), neg, angle)
    return np.log1p(neg), np.cos(angle), np.sin(angle)


def write_states(u: np.ndarray, rows: np.ndarray, drawing: Pack, n_nodes: int, pathology_shift: np.ndarray = _NO_TILT,
                 bq_scale: np.ndarray = _NO_TILT) -> None:
    """Clients entering treatment, one per row of `u` (checked: `check_draw`; float64, contiguous), written to rows
    `rows` (int64) of the arrays `drawing` binds with the stage's ranges (`bind_draw`), on a graph of `n_nodes`.
    `pathology_shift` and `bq_scale` are a profile's tilts ([B, N] each, or [0, 0] for none). Every value but the BQ multipliers, which
    are `bq_scale`'s, is clipped into its range, so the state of a profile whose BQ is in range is valid by
    construction (`tests/env/test_draws.py` holds drawn states to `InitialBatch.validate`). Box-Muller's normals for
    the TMoG misreading come from numpy's log1p, cos and sin (`box_muller`); the rest is one compiled pass per
    client (`tbn_env.compiled_state.start_rows`)."""
    draw_rows(u, *box_muller(u, n_nodes), pathology_shift, bq_scale, rows, drawing)


def sample_initial_state(rng: np.random.Generator, stage: int, graph: ClientGraph,
                         params: Params | None = None,
                         pathology_shift: np.ndarray | None = None,
                         bq_scale: np.ndarray | None = None) -> InitialState:
    """Draw one client entering treatment at `stage` (1-4): `states_from_uniforms` for a batch of one."""
    u = rng.random((1, state_draws(len(graph.nodes))))
    return states_from_uniforms(u, stage, graph, params, None if pathology_shift is None else pathology_shift[None],
                                None if bq_scale is None else bq_scale[None]).row(0)
