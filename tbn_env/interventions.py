"""The intervention catalogue and its deterministic response model (the "intervention" action mode).

Each intervention is a clinically named move from the schools the paper draws on (§7, Table 2); the
catalogue and every rule below are data, in `data/interventions.toml`. The response model turns
(intervention, moment) into the 12 judge scores. The moment is what a therapist reads off the client:
stage and phase pick the cell of the guidance matrix (§9.3.5.4) and so the move's base fit; an open
rupture, a flooded fear reservoir or a thin alliance shift it (the moment rules, after §9.3.8). The fit
q in [-1, 1] lifts the dimensions a move expresses when positive and drops those it risks when
negative. Each cell has its own task, and a move off the task lands as neutral (the client stalls) or
harms, so no single move serves a whole session: the best move depends on where the client is.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from numba import njit

from .buckets import BUCKET_INDEX
from .compiled_state import weighted_pathology
from .dimensions import JUDGE_DIMENSIONS
from .ranges import within

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KINDS = ("plain", "regulate", "deepen", "repair")
SIGNALS = ("rupture", "fear", "alliance")


@dataclass(frozen=True)
class Intervention:
    """A therapist move: the dimensions it expresses, those it risks, and its fit by stage and phase."""

    name: str
    school: str
    kind: str
    expresses: tuple[str, ...]
    risks: tuple[str, ...]
    fit: tuple[tuple[float, float, float, float], ...]  # [stage 1-4][phase A-D] in [-1, 1]
    why: tuple[str, ...]                                # one line per stage row


@dataclass(frozen=True)
class MomentRule:
    """Shift every move's fit by its kind while `signal` is at least `at_least` (or below `below`)."""

    name: str
    signal: str
    shift: dict[str, float]
    why: str
    at_least: float | None = None
    below: float | None = None


@dataclass(frozen=True)
class Moment:
    """What the response model reads off each client (scalars or equal-length arrays)."""

    stage: np.ndarray      # 1-4
    phase: np.ndarray      # 0-3 (A-D)
    rupture: np.ndarray    # an open rupture
    fear: np.ndarray       # the fear reservoir, 0-1
    alliance: np.ndarray   # the alliance reading, 0-1


def _need(entry: dict[str, Any], key: str, where: str) -> Any:
    if key not in entry:
        raise ValueError(f"{where}: missing field {key!r}")
    return entry[key]


def _intervention(e: dict[str, Any]) -> Intervention:
    name = _need(e, "name", "intervention")
    where = f"intervention {name!r}"
    kind = _need(e, "kind", where)
    if kind not in KINDS:
        raise ValueError(f"{where}: kind must be one of {KINDS}, got {kind!r}")
    dims = {k: tuple(_need(e, k, where)) for k in ("expresses", "risks")}
    for k, values in dims.items():
        unknown = [d for d in values if d not in JUDGE_DIMENSIONS]
        if unknown or not values:
            raise ValueError(f"{where}: {k} must name judge dimensions, got {list(values)}")
    rows = _need(e, "fit", where)
    fit = np.asarray(rows, dtype=float) if all(isinstance(r, list) and len(r) == 4 for r in rows) else np.zeros(0)
    if fit.shape != (4, 4) or np.abs(fit).max() > 1.0:
        raise ValueError(f"{where}: fit must be 4 stage rows of 4 phase values in [-1, 1]")
    why = tuple(_need(e, "why", where))
    if len(why) != 4:
        raise ValueError(f"{where}: why needs one line per stage (4), got {len(why)}")
    return Intervention(name, _need(e, "school", where), kind, dims["expresses"], dims["risks"],
                        tuple(tuple(row) for row in fit.tolist()), why)


def _moment_rule(e: dict[str, Any]) -> MomentRule:
    name = _need(e, "name", "moment")
    where = f"moment {name!r}"
    signal = _need(e, "signal", where)
    if signal not in SIGNALS:
        raise ValueError(f"{where}: signal must be one of {SIGNALS}, got {signal!r}")
    if ("at_least" in e) == ("below" in e):
        raise ValueError(f"{where}: give exactly one of at_least or below")
    shift = dict(_need(e, "shift", where))
    unknown = set(shift) - set(KINDS) - {"other"}
    if unknown:
        raise ValueError(f"{where}: shift keys must be kinds {KINDS} or 'other', got {sorted(unknown)}")
    return MomentRule(name, signal, shift, _need(e, "why", where), e.get("at_least"), e.get("below"))


def load_catalogue(text: str | None = None) -> tuple[dict[str, float], tuple[Intervention, ...],
                                                     tuple[MomentRule, ...]]:
    """The response constants, interventions and moment rules of a catalogue file (default: the packaged one)."""
    if text is None:
        text = resources.files("tbn_env").joinpath("data/interventions.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    response = {k: float(_need(data.get("response", {}), k, "response")) for k in ("neutral", "main_gain",
                                                                                     "spill_gain")}
    catalogue = tuple(_intervention(e) for e in _need(data, "intervention", "catalogue"))
    names = [i.name for i in catalogue]
    if len(set(names)) != len(names):
        raise ValueError(f"catalogue: intervention names must be unique, got {names}")
    return response, catalogue, tuple(_moment_rule(e) for e in data.get("moment", ()))


RESPONSE, CATALOGUE, MOMENT_RULES = load_catalogue()
NAMES: tuple[str, ...] = tuple(i.name for i in CATALOGUE)

# The catalogue as arrays, for the batched response model.
FIT = np.array([i.fit for i in CATALOGUE])                                                    # [n, 4, 4]
EXPRESSES = np.array([[d in i.expresses for d in JUDGE_DIMENSIONS] for i in CATALOGUE])      # [n, 12]
RISKS = np.array([[d in i.risks for d in JUDGE_DIMENSIONS] for i in CATALOGUE])              # [n, 12]
SHIFTS = np.array([[r.shift.get(i.kind, r.shift.get("other", 0.0)) for i in CATALOGUE]
                   for r in MOMENT_RULES]).reshape(len(MOMENT_RULES), len(CATALOGUE))        # [rules, n]


_MOMENT_FIELDS = ("stage", "phase", *SIGNALS)
_MOMENT_ROWS = len(_MOMENT_FIELDS)
if _MOMENT_FIELDS != ("stage", "phase", "rupture", "fear", "alliance"):   # the rows `_read_moment` writes
    raise RuntimeError(f"interventions._read_moment writes stage, phase, rupture, fear and alliance; SIGNALS is now "
                       f"{SIGNALS}: read the new signal off the kernel there too")
_RULE_SIGNAL = np.array([SIGNALS.index(r.signal) for r in MOMENT_RULES], dtype=np.int64)
_RULE_AT_LEAST = np.array([r.at_least is not None for r in MOMENT_RULES])
_RULE_LIMIT = np.array([r.at_least if r.at_least is not None else r.below for r in MOMENT_RULES], dtype=np.float64)


def moment_of(kernel, rupture) -> Moment:
    """The moment of every client in a BatchKernel, with the env's open-rupture flags (`_read_moment`)."""
    table = np.empty((_MOMENT_ROWS, len(kernel.stage)))
    _read_moments(*_on_kernel(kernel, rupture), table)
    return Moment(stage=kernel.stage, phase=kernel.phase, **dict(zip(SIGNALS, table[2:])))


def _on_kernel(kernel, rupture) -> tuple:
    """What reading the clients' moments off a BatchKernel takes (`_read_moment`'s arguments after the client)."""
    cg = kernel.cg
    return (kernel.stage, kernel.phase, rupture, kernel.buckets, BUCKET_INDEX["fear"], kernel.levels, cg.path_slope,
            cg.path_offset, cg.alliance_weight, cg.alliance_sum)


@njit(cache=True, inline="always")
def _read_moment(b, stage, phase, rupture, buckets, fear_i, levels, path_slope, path_offset, alliance_weight,
                 alliance_sum, scratch, moment):
    """Client b's moment into column b of `moment`: its stage and phase, then the SIGNALS (the open-rupture flag,
    the fear reservoir, the alliance as `CompiledGraph.alliance` sums it). `scratch` is [N]."""
    moment[0, b], moment[1, b] = stage[b], phase[b]
    moment[2, b] = rupture[b]
    moment[3, b] = buckets[b, fear_i]
    moment[4, b] = 1.0 - weighted_pathology(levels, b, path_slope, path_offset, alliance_weight, alliance_sum, scratch)


@njit(cache=True)
def _read_moments(stage, phase, rupture, buckets, fear_i, levels, path_slope, path_offset, alliance_weight,
                  alliance_sum, moment):
    """Every client's moment (`_read_moment`) into `moment` ([5, B])."""
    scratch = np.empty(levels.shape[1])
    for b in range(moment.shape[1]):
        _read_moment(b, stage, phase, rupture, buckets, fear_i, levels, path_slope, path_offset, alliance_weight,
                     alliance_sum, scratch, moment)


def fits(moment: Moment) -> np.ndarray:
    """How well every move fits each client's moment: [batch, n] in [-1, 1]."""
    values = [getattr(moment, name) for name in _MOMENT_FIELDS]
    try:   # stage, phase, then SIGNALS, one column per client (scalars: one client)
        table = np.array(values, dtype=np.float64).reshape(len(values), -1)
    except ValueError:   # scalars and arrays mixed: the scalars stand for every client
        table = np.array(np.broadcast_arrays(*values), dtype=np.float64).reshape(len(values), -1)
    out = np.empty((table.shape[1], len(CATALOGUE)))
    _fits(table, FIT, SHIFTS, _RULE_SIGNAL, _RULE_AT_LEAST, _RULE_LIMIT, out)
    return out


@njit(cache=True)
def _fits(moment, fit, shifts, rule_signal, rule_at_least, rule_limit, out):
    """Every move's fit for each client (`moment`: stage, phase and the SIGNALS as rows)."""
    for b in range(moment.shape[1]):
        for m in range(fit.shape[0]):
            out[b, m] = _fit(moment, b, m, fit, shifts, rule_signal, rule_at_least, rule_limit)


@njit(cache=True, inline="always")
def _fit(moment, b, m, fit, shifts, rule_signal, rule_at_least, rule_limit):
    """Move m's fit for client b: its cell's, shifted by each moment rule that fires, clipped to [-1, 1]."""
    q = fit[m, int(moment[0, b]) - 1, int(moment[1, b])]
    for r in range(rule_signal.shape[0]):
        value = moment[2 + rule_signal[r], b]
        fires = value >= rule_limit[r] if rule_at_least[r] else value < rule_limit[r]
        q = q + (1.0 if fires else 0.0) * shifts[r, m]
    return min(max(q, -1.0), 1.0)


def oracle(moment: Moment) -> np.ndarray:
    """The state-aware oracle: the best-fitting move at each client's true moment."""
    return fits(moment).argmax(axis=1)


def response_scores(index, moment: Moment) -> np.ndarray:
    """The 12 judge scores each client's move earns at its moment (deterministic): [batch, 12]."""
    index = _moves(index)
    out = np.empty((len(index), len(JUDGE_DIMENSIONS)))
    _respond(index, fits(moment), EXPRESSES, RISKS, RESPONSE["neutral"], RESPONSE["main_gain"],
             RESPONSE["spill_gain"], out)
    return out


def response_at(index, kernel, rupture: np.ndarray) -> np.ndarray:
    """`response_scores(index, moment_of(kernel, rupture))` in one compiled pass that reads each client's moment
    off the kernel and fits its own move alone: [batch, 12]."""
    index = _moves(index)
    out = np.empty((len(index), len(JUDGE_DIMENSIONS)))
    _respond_now(index, *_on_kernel(kernel, rupture), FIT, SHIFTS, _RULE_SIGNAL, _RULE_AT_LEAST, _RULE_LIMIT,
                 EXPRESSES, RISKS, RESPONSE["neutral"], RESPONSE["main_gain"], RESPONSE["spill_gain"], out)
    return out


def _moves(index) -> np.ndarray:
    """Intervention indices as an array, or a ValueError naming the one out of the catalogue."""
    index = np.atleast_1d(np.asarray(index))
    if not within(index, 0, len(CATALOGUE) - 1):
        raise ValueError(f"intervention index must be in [0, {len(CATALOGUE)}), got {index}")
    return index


@njit(cache=True)
def _respond(index, q, expresses, risks, neutral, main_gain, spill_gain, out):
    """Each client's scores for its move, of fit q[b, move]."""
    for b in range(index.shape[0]):
        _scores(b, index[b], q[b, index[b]], expresses, risks, neutral, main_gain, spill_gain, out)


@njit(cache=True, inline="always")
def _scores(b, move, fit, expresses, risks, neutral, main_gain, spill_gain, out):
    """Client b's scores for its move of fit `fit`: a fitting move lifts what it expresses (main_gain), a misfit
    drops what it risks (main_gain) and the rest by spill_gain; clipped to 0-10."""
    for d in range(out.shape[1]):
        main = expresses[move, d] if fit >= 0 else risks[move, d]
        out[b, d] = min(max(neutral + (main_gain if main else spill_gain) * fit, 0.0), 10.0)


@njit(cache=True)
def _respond_now(index, stage, phase, rupture, buckets, fear_i, levels, path_slope, path_offset, alliance_weight,
                 alliance_sum, fit, shifts, rule_signal, rule_at_least, rule_limit, expresses, risks, neutral, main_gain,
                 spill_gain, out):
    """`_respond` of each client's move at its moment (`_read_moment`, as `moment_of` reads it), fitting that move
    alone."""
    n = index.shape[0]
    moment, scratch = np.empty((_MOMENT_ROWS, n)), np.empty(levels.shape[1])
    for b in range(n):
        _read_moment(b, stage, phase, rupture, buckets, fear_i, levels, path_slope, path_offset, alliance_weight,
                     alliance_sum, scratch, moment)
        move = index[b]
        _scores(b, move, _fit(moment, b, move, fit, shifts, rule_signal, rule_at_least, rule_limit), expresses, risks,
                neutral, main_gain, spill_gain, out)
