"""The 12-dimension rubric of §9.3.7.1 as data: questions, three-level anchors, recommendations.

Read once from ``tbn_env/data/rubric.toml`` and validated: exactly the 12 judge dimensions, every
anchor written, bands covering 0-10 in the paper's order. The model-judge prompts, the offline
rubric judge and the RLAIF correction all read it from here.
"""
from __future__ import annotations

import sys
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .dimensions import JUDGE_DIMENSIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LEVELS: tuple[str, ...] = ("poor", "adequate", "excellent")  # §9.3.7.1


class DimensionRubric(BaseModel):
    """One dimension: the question it asks and what each level looks like."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    question: str = Field(min_length=1)
    poor: str = Field(min_length=1)
    adequate: str = Field(min_length=1)
    excellent: str = Field(min_length=1)
    recommendation: str = Field(min_length=1)

    def anchor(self, level: str) -> str:
        return getattr(self, level)


class Rubric(BaseModel):
    """The whole rubric: score bands and the 12 dimensions in the paper's order."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    bands: dict[str, tuple[float, float]]
    dimensions: dict[str, DimensionRubric]

    @model_validator(mode="after")
    def _complete(self) -> Rubric:
        if set(self.dimensions) != set(JUDGE_DIMENSIONS):
            missing = sorted(set(JUDGE_DIMENSIONS) - set(self.dimensions))
            unknown = sorted(set(self.dimensions) - set(JUDGE_DIMENSIONS))
            raise ValueError(f"rubric needs exactly the 12 judge dimensions; missing {missing}, unknown {unknown}")
        if tuple(self.bands) != LEVELS:
            raise ValueError(f"rubric bands must be {LEVELS} in that order, got {tuple(self.bands)}")
        return self

    def level(self, score: float) -> str:
        """The band a score falls in (between two bands, e.g. 3.5, the lower one)."""
        for name in reversed(LEVELS):
            if score >= self.bands[name][0]:
                return name
        return LEVELS[0]

    def band_text(self) -> str:
        """"0-3 poor, 4-6 adequate, 7-10 excellent"."""
        return ", ".join(f"{lo:g}-{hi:g} {name}" for name, (lo, hi) in self.bands.items())


@lru_cache(maxsize=1)
def rubric_data() -> dict:
    """The packaged rubric file as parsed TOML, unvalidated (the import-time dimension check reads it)."""
    return tomllib.loads(resources.files("tbn_env").joinpath("data/rubric.toml").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def load_rubric() -> Rubric:
    """The packaged rubric (parsed and validated once per process)."""
    data = rubric_data()
    return Rubric(bands=data["bands"], dimensions={d: data["dimensions"][d] for d in JUDGE_DIMENSIONS
                                                   if d in data["dimensions"]} | data["dimensions"])
