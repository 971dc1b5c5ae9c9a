"""The per-dimension tables a judge dimension needs, checked when tbn_env is imported.

Adding a dimension to `tbn_env.dimensions.JUDGE_DIMENSIONS` means adding its entry to every table
below (docs/extending.md lists the files). A half-done extension stops the import with one error
naming every table that lacks it, instead of a KeyError deep inside a turn or a silent zero weight.
"""
from __future__ import annotations

from collections.abc import Iterable

from .dimensions import JUDGE_DIMENSIONS


def dimension_tables() -> dict[str, set[str]]:
    """Table name -> the dimensions it has an entry for (tables that need every dimension)."""
    from .buckets import DIM_TO_BUCKET
    from .rubric import rubric_data

    return {
        "tbn_env/data/rubric.toml [dimensions] (judge questions, anchors, advice)": set(rubric_data()["dimensions"]),
        "tbn_env/buckets.py DIM_TO_BUCKET (bucket map)": set(DIM_TO_BUCKET),
    }


def named_dimensions() -> dict[str, set[str]]:
    """Table name -> dimensions it names (tables that may leave a dimension out: the LOA map weighs
    some dimensions only, interventions and modifiers name a few; stage weights default to 1.0 and
    refuse unknown names themselves, in tbn_env/reward.py)."""
    from .interventions import CATALOGUE
    from .loa import DIM_TO_LOA
    from .params import Params
    from .reward import stage_modifiers

    return {
        "tbn_env/loa.py DIM_TO_LOA (LOA map)": {d for row in DIM_TO_LOA.values() for d in row},
        "tbn_env/interventions.py CATALOGUE": {d for i in CATALOGUE for d in (*i.expresses, *i.risks)},
        "tbn_env/reward.py stage modifiers": {d for m in stage_modifiers(Params()) for d in m.dims},
    }


def check_dimension_tables(dimensions: Iterable[str] = JUDGE_DIMENSIONS) -> None:
    """Raise ImportError naming every table that lacks a dimension or names an unknown one."""
    dims = tuple(dimensions)
    problems = [f"{table} lacks {', '.join(d for d in dims if d not in have)}"
                for table, have in dimension_tables().items() if not set(dims) <= have]
    problems += [f"{table} names unknown {', '.join(sorted(named - set(dims)))}"
                 for table, named in {**dimension_tables(), **named_dimensions()}.items() if named - set(dims)]
    if problems:
        raise ImportError("judge dimensions and their tables disagree: " + "; ".join(problems)
                          + " (add the entries; docs/extending.md lists every table)")
