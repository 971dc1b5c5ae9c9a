"""The stage-gated context engine (App. 22) and the DMM catalogue (App. 24).

The treatment stage is the master controller (§7.4.2): it fixes the clinical picture a generator is
shown (seven dimensions per stage), the chance of a crescendo (an emotional breakthrough) and how
much core traumatic material is reachable. The DMM catalogue gives each of the 22 strategies its
label, description and odd/even coherence markers (shame direction, rupture style).
"""
from __future__ import annotations

from .catalogues import load
from .schema import DMM_CODES, SessionContext

STAGE_WEIGHTS = (0.35, 0.45, 0.20, 0.0)          # App. 22 §22.1.1.6: stage 4 only when forced
CRESCENDO_STAGE1, CRESCENDO_STAGE4 = 0.02, 0.75  # App. 22 §22.1.1.6: breakthrough probability 2 % -> 75 %
TRAUMA_ACCESS = {1: "inaccessible", 2: "fragments", 3: "full", 4: "full"}  # App. 22 §22.1.1.6


def _check_stage(stage: int) -> None:
    """Raise a clear error unless `stage` is 1-4."""
    if stage not in (1, 2, 3, 4):
        raise ValueError(f"stage must be 1-4, got {stage!r}")


def interpolate(stage: int, at_stage1: float, at_stage4: float) -> float:
    """A value at `stage` on the straight line between its stage 1 and stage 4 values (the paper gives
    only the ends; spec decision D11)."""
    _check_stage(stage)
    return at_stage1 + (at_stage4 - at_stage1) * (stage - 1) / 3


def crescendo_probability(stage: int) -> float:
    """The chance that a session at `stage` holds one gated breakthrough turn."""
    return interpolate(stage, CRESCENDO_STAGE1, CRESCENDO_STAGE4)


def stage_description(stage: int) -> str:
    """The stage's clinical picture on the seven dimensions of App. 22."""
    _check_stage(stage)
    data = load("stages")
    s = data["stages"][str(stage)]
    return f"Stage {stage} ({s['name']}). " + " ".join(f"{d.capitalize()}: {s[d]}" for d in data["dimensions"])


def stage_context(stage: int, session_number: int, previous_summary: str = "") -> SessionContext:
    """The context a session is generated in: its stage, number, picture and stage gates."""
    return SessionContext(stage=stage, session_number=session_number, stage_description=stage_description(stage),
                          previous_session_summary=previous_summary,
                          crescendo_probability=round(crescendo_probability(stage), 4),
                          trauma_access=TRAUMA_ACCESS[stage])


def parity(code: str) -> str:
    """"inhibitory" for odd A/C strategies, "excitatory" for even ones, "balanced" for B (App. 24)."""
    if code not in DMM_CODES:
        raise ValueError(f"unknown DMM strategy {code!r}; codes are A1-A8, B0-B5, C1-C8")
    return "balanced" if code[0] == "B" else ("inhibitory" if int(code[1:]) % 2 else "excitatory")


def dmm(code: str) -> dict[str, str]:
    """Label, description, parity and the parity's coherence markers of a DMM strategy."""
    data = load("dmm")
    kind = parity(code)
    return {**data[code], "parity": kind, **data["markers"][kind]}


def pipelines() -> dict[str, dict]:
    """The 13 counterfactual pipelines: name -> {teaching_factors, prompt}."""
    return dict(load("pipelines"))
