"""Arguments bound once for a compiled call: the state arrays and constant tables of a turn, as one value.

numba unboxes every argument of every call (about 80 ns an array): the turn's hundred arguments cost more
than its arithmetic for one client. A `Pack` holds a tuple of per-client arrays (`rows`) and a tuple of
constants (`tables`) as one numba structure, built once; a compiled call then takes the pack, unboxed in
one step, and spreads it back into the callee's arguments (`f(*pack.rows, *pack.tables)`). The arrays are
shared, not copied: the state must only ever be written in place, as `BatchKernel` and `SessionBatch` do.
"""
from __future__ import annotations

from numba import njit, types
from numba.experimental import structref
from numba.extending import overload


@structref.register
class PackType(types.StructRef):
    """The numba type of a pack: its two fields' types are those of the tuples it was built from."""

    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class Pack(structref.StructRefProxy):
    """A compiled call's bound arguments (build with `pack`)."""


structref.define_boxing(PackType, Pack)


def _new(rows, tables):   # typed by the overload below; plain Python never calls it
    raise NotImplementedError("_new is compiled code: call pack(rows, tables)")


@overload(_new)
def _new_typed(rows, tables):
    typ = PackType([("rows", rows), ("tables", tables)])

    def build(rows, tables):
        p = structref.new(typ)
        p.rows = rows
        p.tables = tables
        return p
    return build


@njit(cache=True)
def pack(rows: tuple, tables: tuple) -> Pack:
    """A pack of per-client arrays `rows` (one row per client: a pack of row slices steps those clients alone)
    and constants `tables`."""
    return _new(rows, tables)


def leaf(**options):
    """`njit` for compiled code that allocates nothing and keeps no reference to the arrays it is handed (the
    turn's arithmetic and bookkeeping): numba's reference counting off, whose atomic increments and decrements of
    every array a call reads cost about a microsecond per turn. Cached on disk like the rest. An allocation (an
    `np.empty`, a returned new array) fails to compile under it, so a leaf cannot drift into needing the counts."""
    return njit(cache=True, _nrt=False, **options)
