"""The corpus schema (pydantic v2): the one definition of a client, a therapist, a session and a turn.

A turn is the paper's 5-tuple (τᶜ, Uᶜ, Mᵀ, Θᵀ, Uᵀ) with Θᵀ = GCO ‖ OMO (§7.3). Sessions carry their
stage (1-4), number, participants, turns and factor labels; counterfactual samples are the 13
guidance pipelines' teaching moments (App. 28); preference pairs feed DPO (§9.3.11). `dapt` and
`tbn_train` read these models; `export_json_schema` writes them for users of other languages.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tbn_env.profiles import DMM_CODES  # the 22 DMM strategies (App. 24), one definition for env and corpus

SCHEMA_VERSION = 1
Stage = Literal[1, 2, 3, 4]
Phase = Literal["A", "B", "C", "D"]
PIPELINES: tuple[str, ...] = (  # the 13 counterfactual guidance pipelines, table numbering (App. 28)
    "strengths_temporal_architecture", "polytheoretical_success", "polytheoretical_repair",
    "single_exchange_architecture", "stage_probability_calibration", "cross_client_probability_evolution",
    "ai_bridge_to_human_connection", "affirmative_language", "aesthetic_crescendo", "ambient_companionship",
    "attachment_coherent_shame_rupture", "strengths_anti_flattery", "intervention_arc_sequencing")


class _Record(BaseModel):
    """Base of every record: unknown fields are errors and records are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Strength(_Record):
    """A VIA character strength in one of its three states (App. 28 pipeline 12)."""

    strength: str
    state: Literal["accessible", "blocked", "shadow"] = "accessible"
    manifestation: str = ""


class ClientProfile(_Record):
    """A synthetic client: a composition of personhood variables (§7.4.1, App. 26)."""

    client_id: str
    name: str
    age: int = Field(ge=16, le=100)
    gender: str
    attachment: str = Field(description="DMM strategy code (A1-A8, B0-B5, C1-C8)")
    defenses: tuple[str, ...] = ()
    presenting_concerns: tuple[str, ...] = Field(min_length=1)
    personality: dict[str, float] = Field(default_factory=dict)      # dimension -> value in [0, 1]
    micro_variables: dict[str, str] = Field(default_factory=dict)    # App. 26 dimension -> option
    salience: dict[str, float] = Field(default_factory=dict,         # micro-variable -> turn-by-turn weight in [0, 1]
                                       description="independent expression weight per micro-variable (§11.5)")
    strengths: tuple[Strength, ...] = ()
    religion: str | None = None
    demographics: dict[str, str] = Field(default_factory=dict)
    scene: str = ""  # where the client is and who is around: what a grounded reply may mention

    @field_validator("attachment")
    @classmethod
    def _dmm(cls, v: str) -> str:
        """Only the 22 DMM codes are attachment strategies."""
        if v not in DMM_CODES:
            raise ValueError(f"attachment must be a DMM code (A1-A8, B0-B5, C1-C8), got {v!r}")
        return v

    @field_validator("personality", "salience")
    @classmethod
    def _unit(cls, v: dict[str, float]) -> dict[str, float]:
        """Personality and salience values are unit-scaled."""
        bad = {k: x for k, x in v.items() if not 0.0 <= x <= 1.0}
        if bad:
            raise ValueError(f"personality and salience values must lie in [0, 1]: {bad}")
        return v

    def summary(self) -> str:
        """One line a prompt or a sample header shows: name, age, DMM strategy, presenting concerns."""
        return f"{self.name}, {self.age}, DMM {self.attachment}, concerns: {', '.join(self.presenting_concerns)}"


class TherapistProfile(_Record):
    """A synthetic therapist on the five dimensions of App. 27."""

    therapist_id: str
    orientation: Literal["single_modality", "integrative", "eclectic"]
    schools: tuple[str, ...] = Field(min_length=1)
    experience: Literal["novice", "intermediate", "expert"]
    warmth: float = Field(ge=0.0, le=1.0)
    ambition: float = Field(ge=0.0, le=1.0)
    specialties: tuple[str, ...] = ()
    years_experience: int | None = Field(None, ge=0)
    quality: Literal["POOR", "ADEQUATE", "GOOD", "GREAT"] | None = None  # GREAT forced in stages 3-4 (App. 22)
    empathy: float | None = Field(None, ge=0.0, le=1.0)
    attunement: float | None = Field(None, ge=0.0, le=1.0)


class SessionContext(_Record):
    """Where in treatment the session sits: stage, session number, the stage's clinical picture."""

    stage: Stage
    session_number: int = Field(ge=1)
    stage_description: str = ""
    previous_session_summary: str = ""
    crescendo_probability: float | None = Field(None, ge=0.0, le=1.0)   # App. 22: 2 % at stage 1 -> 75 % at 4
    trauma_access: Literal["inaccessible", "fragments", "full"] | None = None  # App. 22 content gate


class ProbableIssue(_Record):
    """A construct the therapist suspects, how often it has shown, and the words that showed it (App. 22)."""

    label: str
    tally: int = Field(1, ge=1)
    evidence: str = ""


class TherapistModel(_Record):
    """Mᵀ, the therapist's model of the client (TMoC, §7.3; sections after the DFR factors)."""

    active_defenses: tuple[str, ...] = ()
    working_focus_areas: tuple[str, ...] = ()
    probable_issues: tuple[ProbableIssue, ...] = ()
    character_strengths: tuple[Strength, ...] = ()
    attachment_hypothesis: str | None = None
    stage_assessment: str = ""
    modality_insights: tuple[str, ...] = ()


class TherapistThought(_Record):
    """Θᵀ = Γ ‖ Ω: GCO (session-level formulation) then OMO (ontology-guided modality ideas) (§7.3)."""

    gco: str
    omo: str

    @property
    def text(self) -> str:
        """GCO then OMO as one text (Γ ‖ Ω)."""
        return f"{self.gco}\n{self.omo}"


class Turn(_Record):
    """One 5-tuple turn (τᶜ, Uᶜ, Mᵀ, Θᵀ, Uᵀ) in the paper's order."""

    index: int = Field(ge=0)
    client_thought: str
    client_utterance: str = Field(min_length=1)
    therapist_model: TherapistModel
    therapist_thought: TherapistThought
    therapist_utterance: str = Field(min_length=1)
    phase: Phase | None = None


class SessionFactors(_Record):
    """DFR factor labels (App. 29.1): multiclass stage/attachment/phase, multilabel the rest."""

    stage: Stage
    attachment: str
    phases: tuple[Phase, ...] = ()
    defenses: tuple[str, ...] = ()
    focus_areas: tuple[str, ...] = ()
    issues: tuple[str, ...] = ()
    strengths: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()


class GenerationInfo(_Record):
    """Provenance: backend, model, seed, tokens and cost of the generation."""

    backend: str
    model: str = ""
    seed: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class Session(_Record):
    """A raw session: participants, context, 5-tuple turns and factor labels."""

    schema_version: int = SCHEMA_VERSION
    session_id: str
    kind: Literal["raw"] = "raw"
    client: ClientProfile
    therapist: TherapistProfile
    context: SessionContext
    turns: tuple[Turn, ...] = Field(min_length=1)
    factors: SessionFactors
    generation: GenerationInfo

    @model_validator(mode="after")
    def _consistent(self) -> "Session":
        """Turn indices run 0, 1, ... and the factor stage matches the context."""
        if [t.index for t in self.turns] != list(range(len(self.turns))):
            raise ValueError("turn indices must run 0, 1, 2, ... in order")
        if self.factors.stage != self.context.stage:
            raise ValueError(f"factor stage {self.factors.stage} differs from context stage {self.context.stage}")
        return self


class Branch(_Record):
    """One counterfactual continuation: what the therapist thinks and says, how the client responds."""

    label: str
    therapist_thought: str
    therapist_utterance: str = Field(min_length=1)
    client_response: str
    outcome: str
    probability: float | None = Field(None, ge=0.0, le=1.0)


class CounterfactualSample(_Record):
    """A zoomed-in teaching moment from one of the 13 guidance pipelines (App. 28)."""

    schema_version: int = SCHEMA_VERSION
    sample_id: str
    kind: Literal["counterfactual"] = "counterfactual"
    pipeline: str
    teaching_factors: tuple[str, ...] = Field(min_length=1)
    stage: Stage
    session_ref: str
    context_turns: tuple[Turn, ...] = ()
    branches: tuple[Branch, ...] = Field(min_length=1)
    rationale: str
    generation: GenerationInfo

    @field_validator("pipeline")
    @classmethod
    def _known(cls, v: str) -> str:
        """Only the 13 pipelines of App. 28."""
        if v not in PIPELINES:
            raise ValueError(f"unknown pipeline {v!r}; the 13 are {PIPELINES}")
        return v

    @model_validator(mode="after")
    def _probabilities(self) -> "CounterfactualSample":
        """Branch probabilities cannot sum to more than 1 (App. 20 §20.3.2)."""
        total = sum(b.probability or 0.0 for b in self.branches)
        if total > 1.0 + 1e-6:
            raise ValueError(f"branch probabilities sum to {total:.3f}, more than 1")
        return self


class PreferencePair(_Record):
    """A DPO pair (§9.3.11): the same prompt, a chosen and a rejected therapist turn."""

    pair_id: str
    prompt: str = Field(min_length=1)
    chosen: str = Field(min_length=1)
    rejected: str = Field(min_length=1)
    source: str = ""


MODELS: dict[str, type[BaseModel]] = {"session": Session, "counterfactual": CounterfactualSample,
                                      "preference_pair": PreferencePair, "client": ClientProfile,
                                      "therapist": TherapistProfile, "session_context": SessionContext,
                                      "turn": Turn}


def export_json_schema(directory: str | Path) -> list[Path]:
    """Write one JSON Schema file per record type; return the paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, model in MODELS.items():
        path = out / f"{name}.schema.json"
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "$comment": f"corpus.schema version {SCHEMA_VERSION}", **model.model_json_schema()}
        path.write_text(json.dumps(schema, indent=2), encoding="utf-8")
        paths.append(path)
    return paths
