"""The Judge and Client protocols every backend implements (rubric/template here, MLX, Anthropic).

A Judge scores one therapist turn on the 12 dimensions of §9.3.7 from the client's last words, the
therapist's thought and utterance, and the dialogue so far. A Client speaks the next client turn
from the state the environment exposes. Both are pydantic records so they cross package boundaries
(tbn_train's MLX backends, corpus's Anthropic backends) unchanged.
"""
from __future__ import annotations

from operator import itemgetter
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from .dimensions import JUDGE_DIMENSIONS, as_score_vector, score_dict

Persona = Literal["clinical", "kind", "harsh"]  # neutral rubric; §9.3.9's kind and harsh judges
_IN_ORDER = itemgetter(*JUDGE_DIMENSIONS)   # a dict's 12 scores in the order of JUDGE_DIMENSIONS, in one call


class DialogueTurn(BaseModel):
    """One exchange already in the history: what the client said, then what the therapist said."""

    model_config = ConfigDict(frozen=True)
    client: str
    therapist: str = ""
    therapist_thought: str = ""


class JudgeContext(BaseModel):
    """Everything a judge sees for one turn (§9.3.7: the triad plus history, stage and phase context)."""

    model_config = ConfigDict(frozen=True)
    client_utterance: str
    therapist_thought: str = ""
    therapist_utterance: str
    history: tuple[DialogueTurn, ...] = ()
    stage: int = Field(1, ge=1, le=4)
    phase: Literal["A", "B", "C", "D"] = "A"
    stance: str = "rapport_building"
    guidance: str = ""
    profile_card: str = ""  # the client's scene and people: what a grounded reply may refer to
    rupture_pending: bool = False  # the last client turn voiced a rupture that calls for repair


class JudgeResult(BaseModel):
    """12 scores in [0, 10] with per-dimension explanations, a narrative, critical moments,
    recommendations and the unweighted composite, as §9.3.7.1 describes."""

    scores: dict[str, float]
    explanations: dict[str, str] = Field(default_factory=dict)
    narrative: str = ""
    critical_moments: list[str] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
    flags: dict[str, bool] = Field(default_factory=dict)
    persona: Persona = "clinical"

    @field_validator("scores")
    @classmethod
    def _twelve_scores(cls, v: dict[str, float]) -> dict[str, float]:
        return score_dict(as_score_vector(v))

    def vector(self) -> list[float]:
        return list(_IN_ORDER(self.scores))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def composite(self) -> float:
        """The unweighted mean of the 12 scores (§9.3.7.1; stage weighting happens in the reward)."""
        return sum(self.scores.values()) / len(JUDGE_DIMENSIONS)


@runtime_checkable
class Judge(Protocol):
    """Scores therapist turns. `deterministic` is False for sampled model backends."""

    deterministic: bool

    def score(self, context: JudgeContext) -> JudgeResult: ...


class ClientView(BaseModel):
    """What a simulated client is conditioned on: its profile and its current state."""

    model_config = ConfigDict(frozen=True)
    profile_card: str
    attachment: str                       # DMM strategy code, e.g. "A3", "B2", "C5"
    defenses: tuple[str, ...] = ()
    presenting_concerns: tuple[str, ...] = ()
    stage: int = Field(1, ge=1, le=4)
    phase: Literal["A", "B", "C", "D"] = "A"
    turn: int = 0
    session: int = 1
    dominant_maladaptive: tuple[str, ...] = ()  # top buckets, most elevated first
    dominant_adaptive: tuple[str, ...] = ()
    salient_nodes: tuple[str, ...] = ()   # the most pathological graph nodes
    last_scores: dict[str, float] = Field(default_factory=dict)  # the judge's view of the last therapist turn
    ruptured: bool = False                # the last therapist turn ruptured the alliance


class ClientTurn(BaseModel):
    """The client's hidden thought (tau^C) and spoken words (U^C); `rupture` if it voices a rupture."""

    thought: str
    utterance: str
    rupture: bool = False


@runtime_checkable
class Client(Protocol):
    """Speaks the simulated client's turns. `deterministic` is False for sampled model backends."""

    deterministic: bool

    def respond(self, view: ClientView, history: tuple[DialogueTurn, ...], rng) -> ClientTurn: ...
