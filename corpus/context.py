"""The stage-gated context engine and the DMM catalogue: what a generator is told about where the
client is in treatment (App. 22, seven dimensions per stage) and who they are attached as (App. 25)."""
from __future__ import annotations

import sys
from functools import lru_cache
from importlib import resources

from .schema import DMM_CODES, SessionContext

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@lru_cache(maxsize=None)
def _data(name: str) -> dict:
    return tomllib.loads(resources.files("corpus").joinpath(f"data/{name}.toml").read_text(encoding="utf-8"))


def stage_description(stage: int) -> str:
    """The stage's clinical picture on the seven dimensions of App. 22."""
    if stage not in (1, 2, 3, 4):
        raise ValueError(f"stage must be 1-4, got {stage!r}")
    data = _data("stages")
    s = data["stages"][str(stage)]
    return f"Stage {stage} ({s['name']}). " + " ".join(f"{d.capitalize()}: {s[d]}" for d in data["dimensions"])


def stage_context(stage: int, session_number: int, previous_summary: str = "") -> SessionContext:
    """The context a session is generated in: its stage, number and the stage's picture."""
    return SessionContext(stage=stage, session_number=session_number, stage_description=stage_description(stage),
                          previous_session_summary=previous_summary)


def dmm(code: str) -> dict[str, str]:
    """Label, description and parity ("inhibitory", "excitatory" or "balanced") of a DMM strategy."""
    if code not in DMM_CODES:
        raise ValueError(f"unknown DMM strategy {code!r}")
    entry = dict(_data("dmm")[code])
    entry["parity"] = "balanced" if code[0] == "B" else ("inhibitory" if int(code[1:]) % 2 else "excitatory")
    return entry


def pipelines() -> dict[str, dict]:
    """The 13 counterfactual pipelines: name -> {teaching_factors, prompt}."""
    return dict(_data("pipelines"))
