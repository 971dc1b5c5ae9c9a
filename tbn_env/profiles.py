"""Client profiles: who the simulated client is, and how that shapes their starting state.

A profile names a DMM attachment strategy (22 codes: A1-A8, B0-B5, C1-C8), active defences and
presenting concerns. They tilt the initial node pathology, the nodes' BQ (resistance) and the
buckets, and set the TAIE X prior (Type A rigid, Type C porous). `PRESETS` are a handful of named
clients for reproducible experiments; `sample_profile` draws one from a seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .buckets import BUCKET_INDEX
from .graph import ClientGraph
from .params import Params
from .compiled_pack import Pack, pack
from .compiled_state import profile_rows, settle_rows, tilt_rows
from .ranges import within
from .state import (BQ_SCALE_MAX, InitialBatch, InitialState, bind_draw, box_muller, check_draw, state_draws,
                    write_states)
from .taie import AXIS_MAX, AXIS_MIN

DMM_CODES: tuple[str, ...] = tuple([f"A{i}" for i in range(1, 9)] + [f"B{i}" for i in range(6)]
                                   + [f"C{i}" for i in range(1, 9)])  # the 22 DMM strategies (App. 24)

# Nodes each DMM family over-uses: Type A inhibits affect, Type C amplifies it (App. 24).
TYPE_NODES: dict[str, tuple[str, ...]] = {
    "A": ("intellectualization", "emotional_avoidance", "compulsive_self_reliance", "emotional_numbing",
          "alexithymia", "false_self_reliance", "compulsive_caregiving"),
    "B": (),
    "C": ("emotional_flooding", "abandonment_fear", "proximity_seeking", "rejection_sensitivity",
          "seduction_as_defense", "emotional_reactivity", "borderline_instability"),
}
TYPE_X_PRIOR = {"A": (-8.0, -4.0), "B": (-2.0, 2.0), "C": (4.0, 8.0)}  # TAIE X at reset
STRATEGY_SHIFT = 0.15       # pathology added to the nodes a strategy relies on
SECURE_RELIEF = -0.05       # a Type B client is a little healthier everywhere
DEFENSE_SHIFT = 0.15        # pathology added to each named active defence
DEFENSE_BQ = 1.25           # ... which is also 25 % more resistant to change
STRATEGY_BQ = 1.15          # the nodes a strategy relies on resist change 15 % more
CONCERN_SHIFT = 0.10        # pathology added to the nodes of each presenting concern
CONCERN_BUCKET = 0.10       # and to its reservoir
HIGHER_NUMBER_BQ = 0.02     # higher DMM numbers are more compulsive/coercive: +2 % BQ per step
SAMPLED = "sampled"         # the name of a sampled client's profile
CARDS_REMEMBERED = 256      # clients whose card text is kept: one per env of a large batch of single envs

#: Presenting concern -> (graph nodes it loads, maladaptive bucket it fills). Relational distress
#: dominates the corpus's concern weighting (§7), so it leads the list.
CONCERNS: dict[str, tuple[tuple[str, ...], str]] = {
    "relational_distress": (("attachment_security", "trust_capacity", "intimacy_tolerance"), "distrust"),
    "grief": (("grief_access", "despair", "meaning_coherence"), "grief"),
    "anxiety": (("anxiety_level", "hypervigilance", "catastrophizing"), "fear"),
    "depression": (("hope", "despair", "sense_of_agency"), "helplessness"),
    "trauma": (("trauma_narrative_coherence", "intrusive_memories", "dissociation"), "fear"),
    "shame": (("shame_core", "inner_critic_intensity", "somatic_shame"), "shame"),
    "anger": (("anger_regulation", "hostility", "emotional_reactivity"), "rage"),
    "low_self_worth": (("self_worth", "self_compassion", "identity_coherence"), "worthlessness"),
    "abandonment": (("abandonment_fear", "object_constancy", "rejection_sensitivity"), "abandonment"),
    "loneliness": (("existential_isolation", "social_withdrawal", "support_seeking"), "abandonment"),
}
DEFENSES: tuple[str, ...] = ("intellectualization", "emotional_avoidance", "denial", "projection", "splitting",
                             "compulsive_caregiving", "compulsive_self_reliance", "protective_part_activity",
                             "seduction_as_defense")


class ClientProfile(BaseModel):
    """Who the client is: attachment strategy, defences, concerns, and the scene a judge can check."""

    model_config = ConfigDict(frozen=True)
    name: str = SAMPLED
    attachment: str = Field("B2", description="DMM strategy code")
    defenses: tuple[str, ...] = ()
    presenting_concerns: tuple[str, ...] = ("relational_distress",)
    profile_card: str = ""

    @field_validator("attachment")
    @classmethod
    def _known_strategy(cls, v: str) -> str:
        if v not in DMM_CODES:
            raise ValueError(f"attachment must be a DMM code (A1-A8, B0-B5, C1-C8), got {v!r}")
        return v

    @field_validator("defenses")
    @classmethod
    def _known_defenses(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [d for d in v if d not in DEFENSES]
        if unknown:
            raise ValueError(f"unknown defenses {unknown}; known: {list(DEFENSES)}")
        return v

    @field_validator("presenting_concerns")
    @classmethod
    def _known_concerns(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in v if c not in CONCERNS]
        if unknown:
            raise ValueError(f"unknown presenting concerns {unknown}; known: {list(CONCERNS)}")
        return v

    @property
    def family(self) -> str:
        """A, B or C: the DMM family of the strategy."""
        return self.attachment[0]

    @property
    def inhibitory(self) -> bool:
        """Odd-numbered strategies inhibit (withdraw, false repair); even ones excite (protest) (App. 24)."""
        return int(self.attachment[1:]) % 2 == 1

    @lru_cache(maxsize=CARDS_REMEMBERED)   # frozen, so hashable: composed once, read every turn
    def card(self) -> str:
        """The profile card a judge and a client read (its own text, or one composed from the fields)."""
        if self.profile_card:
            return self.profile_card
        concerns = ", ".join(c.replace("_", " ") for c in self.presenting_concerns) or "unspecified"
        defenses = ", ".join(d.replace("_", " ") for d in self.defenses) or "none prominent"
        return (f"Client ({self.name}). Attachment strategy {self.attachment}. Presenting concerns: {concerns}. "
                f"Prominent defences: {defenses}. Setting: an online session from home.")

    def initial_state(self, rng: np.random.Generator, stage: int, graph: ClientGraph,
                      params: Params | None = None) -> InitialState:
        """Draw this client's starting state at `stage`, tilted by the profile (one block from `rng`)."""
        return initial_states([self], rng.random((1, state_draws(len(graph.nodes)))), stage, graph, params).row(0)


@dataclass(frozen=True)
class ProfileBatch:
    """Clients' profiles as index arrays, so starting states for many clients are drawn at once.

    `strategy` indexes DMM_CODES; `defenses` and `concerns` ([B, K]) index DEFENSES and CONCERNS in the
    profile's own order, -1 past its last one.
    """

    strategy: np.ndarray
    defenses: np.ndarray
    concerns: np.ndarray

    @classmethod
    def of(cls, profiles: list[ClientProfile]) -> ProfileBatch:
        """The index arrays of these profiles."""
        def padded(lists: list[list[int]]) -> np.ndarray:
            out = np.full((len(lists), max(map(len, lists), default=0)), -1, dtype=np.int64)
            for i, row in enumerate(lists):
                out[i, :len(row)] = row
            return out
        return cls(np.array([_STRATEGY_INDEX[p.attachment] for p in profiles], dtype=np.int64),
                   padded([[_DEFENSE_INDEX[d] for d in p.defenses] for p in profiles]),
                   padded([[_CONCERN_INDEX[c] for c in p.presenting_concerns] for p in profiles]))

    def profiles(self) -> list[ClientProfile]:
        """As sampled ClientProfiles (indices into the known catalogues, so valid by construction: no validation
        pass)."""
        concern_names = tuple(CONCERNS)
        return [ClientProfile.model_construct(
            name=SAMPLED, attachment=DMM_CODES[code], profile_card="", defenses=tuple(DEFENSES[j] for j in d if j >= 0),
            presenting_concerns=tuple(concern_names[j] for j in c if j >= 0))
            for code, d, c in zip(self.strategy.tolist(), self.defenses.tolist(), self.concerns.tolist())]


def initial_states(profiles: list[ClientProfile] | ProfileBatch, u: np.ndarray, stage: int, graph: ClientGraph,
                   params: Params | None = None) -> InitialBatch:
    """Starting states at `stage` for `profiles`, one row of `u` ([B, state_draws(N)] uniforms) each: the
    `DrawnClients` written to arrays of their own.

    A profile tilts node pathology and BQ, fills its concerns' reservoirs and sets the TAIE X prior of
    its DMM family (Type A rigid, Type C porous); the last uniform of each row draws that prior.
    """
    params = params or Params()
    clients = DrawnClients.of(profiles if isinstance(profiles, ProfileBatch) else ProfileBatch.of(profiles), u, stage,
                              graph)
    state = InitialBatch.empty(len(u), len(graph.nodes))
    clients.check(len(graph.nodes), params).write(state, np.arange(len(u)), graph, params)
    return state


@dataclass(frozen=True)
class DrawnClients:
    """New clients as drawn: their profiles (with their tilts, `of`) and each one's block of uniforms
    (`state_draws(N)` in [0, 1), as a generator's `random` gives them), entering at `stage`. What the envs load: the
    state is valid by construction (every value clipped into its range, the profiles' BQ checked by `check`), so it
    is written straight into a batch's rows (`write`) without the checks a given `InitialState` or `InitialBatch`
    passes through."""

    profiles: ProfileBatch
    u: np.ndarray
    stage: int
    shift: np.ndarray   # [B, N] each profile's pathology shift (`_tilts`)
    bq: np.ndarray      # [B, N] and BQ multipliers

    @classmethod
    def of(cls, profiles: ProfileBatch, u: np.ndarray, stage: int, graph: ClientGraph) -> DrawnClients:
        """Clients of `profiles`, one per row of `u`, entering at `stage`, tilted on `graph`."""
        return cls(profiles, u, stage, *_tilts(graph, profiles))

    def __len__(self) -> int:
        return len(self.u)

    def check(self, n_nodes: int, params: Params) -> DrawnClients:
        """Raise ValueError unless there are a profile and `state_draws(n_nodes)` uniforms for each client, `params`
        can draw them at the stage (`state.check_draw`) and no profile lists a defence so often that its BQ
        multiplier leaves the range of a starting state's; return self."""
        check_draw(self.u, self.stage, n_nodes, params)
        if len(self.profiles.strategy) != len(self.u):
            raise ValueError(f"need a profile per client, got {len(self.profiles.strategy)} for {len(self.u)}")
        if not within(self.bq, 0.0, BQ_SCALE_MAX):
            raise ValueError(f"initial bq_scale must be finite and within [0.0, {BQ_SCALE_MAX}]: a profile lists a "
                             f"defence too many times (each listing multiplies its node's BQ by {DEFENSE_BQ})")
        return self

    def draws(self, n_nodes: int) -> tuple:
        """What entering these clients reads of them (`compiled_state.enter_drawn`'s arguments after the rows): the
        uniforms, their Box-Muller terms (`state.box_muller`), the tilts, the strategies and the concerns."""
        u = np.ascontiguousarray(self.u, dtype=np.float64)
        return (u, *box_muller(u, n_nodes), self.shift, self.bq, self.profiles.strategy, self.profiles.concerns)

    def write(self, into, rows: np.ndarray, graph: ClientGraph, params: Params) -> None:
        """The clients' starting states in rows `rows` (int64) of `into`'s arrays (`state.write_states`),
        tilted by their profiles, then their concerns' reservoirs and TAIE X priors (`settle_rows`). (A batch's
        rows take these and the clients' entry in one call: `BatchKernel.enter`.)"""
        u = np.ascontiguousarray(self.u, dtype=np.float64)
        write_states(u, rows, bind_draw(self.stage, graph, params, into), len(graph.nodes), self.shift, self.bq)
        settle_rows(rows, self.profiles.strategy, self.profiles.concerns, u, into.buckets, into.taie, into.x_pole,
                    *_SETTLING)


def bind_settle(into) -> Pack:
    """`compiled_state.settle_rows`' arguments after the draws, bound once: `into`'s arrays it writes (an
    `InitialBatch`'s names) and the profile tables it reads."""
    return pack((into.buckets, into.taie, into.x_pole), _SETTLING)


@lru_cache(maxsize=4)
def _node_index(nodes: tuple[str, ...]) -> dict[str, int]:
    return {n: i for i, n in enumerate(nodes)}


@lru_cache(maxsize=4)   # by the graph: hashing its node names for every client would cost more than the tilt
def _strategy_tables(graph: ClientGraph) -> tuple[np.ndarray, np.ndarray]:
    """Each DMM strategy's per-node pathology shift and BQ multiplier ([22, N] each, read-only)."""
    nodes = graph.nodes
    index = _node_index(nodes)
    shift, bq = np.zeros((len(DMM_CODES), len(nodes))), np.ones((len(DMM_CODES), len(nodes)))
    for k, code in enumerate(DMM_CODES):
        family, number = code[0], int(code[1:])
        shift[k] = SECURE_RELIEF if family == "B" else 0.0
        for node in TYPE_NODES[family]:
            shift[k, index[node]] += STRATEGY_SHIFT
            bq[k, index[node]] *= STRATEGY_BQ + HIGHER_NUMBER_BQ * number
    shift.flags.writeable = bq.flags.writeable = False
    return shift, bq


def _tilts(graph: ClientGraph, batch: ProfileBatch) -> tuple[np.ndarray, np.ndarray]:
    """Each profile's per-node pathology shift and BQ multiplier ([B, N] each): its strategy's, then each
    defence's and each concern's in turn, in the order the profile lists them."""
    shift_table, bq_table = _strategy_tables(graph)
    defense_nodes, concern_nodes = _catalogue_nodes(graph)
    b, n = len(batch.strategy), len(graph.nodes)
    shift, bq = np.empty((b, n)), np.empty((b, n))
    tilt_rows(batch.strategy, batch.defenses, batch.concerns, shift_table, bq_table, defense_nodes, concern_nodes,
              DEFENSE_SHIFT, DEFENSE_BQ, CONCERN_SHIFT, shift, bq)
    return shift, bq


@lru_cache(maxsize=4)
def _catalogue_nodes(graph: ClientGraph) -> tuple[np.ndarray, np.ndarray]:
    """Each defence's node index (in DEFENSES order) and each concern's node indices (a row per concern in CONCERNS
    order, -1 past its last node)."""
    index = _node_index(graph.nodes)
    concern_nodes = [[index[node] for node in names] for names, _ in CONCERNS.values()]
    padded = np.full((len(concern_nodes), max(map(len, concern_nodes))), -1, dtype=np.int64)
    for row, indices in zip(padded, concern_nodes):
        row[:len(indices)] = indices
    return np.array([index[d] for d in DEFENSES], dtype=np.int64), padded


PRESETS: dict[str, ClientProfile] = {p.name: p for p in (
    ClientProfile(name="maya_grief", attachment="B2", presenting_concerns=("grief", "loneliness"),
                  profile_card="Maya, 41, a nurse whose mother died in the spring. Lives alone with a cat, Miso. "
                               "Joins the session from her kitchen."),
    ClientProfile(name="daniel_intellectualizer", attachment="A2", defenses=("intellectualization",),
                  presenting_concerns=("relational_distress", "low_self_worth"),
                  profile_card="Daniel, 36, a software architect; his partner Sam says he is 'never really there'. "
                               "Joins from his office."),
    ClientProfile(name="lena_preoccupied", attachment="C3", defenses=("splitting",),
                  presenting_concerns=("abandonment", "anxiety"),
                  profile_card="Lena, 27, a graduate student; her boyfriend Tom recently went quiet for two days. "
                               "Joins from her bedroom."),
    ClientProfile(name="ruth_caregiver", attachment="A3", defenses=("compulsive_caregiving",),
                  presenting_concerns=("depression", "shame"),
                  profile_card="Ruth, 58, cares for her husband Alan after his stroke; two adult children. "
                               "Joins from the car outside the hospital."),
    ClientProfile(name="jay_trauma", attachment="C5", defenses=("emotional_avoidance", "protective_part_activity"),
                  presenting_concerns=("trauma", "anger"),
                  profile_card="Jay, 33, a veteran and line cook; lives with his brother Marcus. "
                               "Joins from the back room of the restaurant."),
)}


MAX_DEFENSES, MAX_CONCERNS = 2, 2   # a sampled client shows 0-2 defences and 1-2 concerns
_STRATEGY_INDEX = {code: i for i, code in enumerate(DMM_CODES)}
_DEFENSE_INDEX = {d: i for i, d in enumerate(DEFENSES)}
_CONCERN_INDEX = {c: i for i, c in enumerate(CONCERNS)}
_CONCERN_BUCKET = np.array([BUCKET_INDEX[bucket] for _, bucket in CONCERNS.values()])
_FAMILY_POLE = np.array([{"A": -1.0, "C": 1.0}.get(code[0], 0.0) for code in DMM_CODES])  # rigid, porous, either
_PRIOR_LOW, _PRIOR_HIGH = (np.array([TYPE_X_PRIOR[code[0]][k] for code in DMM_CODES]) for k in (0, 1))
_CONCERN_EXPONENT = 1.0 / np.array([2.0 if c == "relational_distress" else 1.0 for c in CONCERNS])   # 1 / weight
_ALL_CODES = np.arange(len(DMM_CODES))
#: `settle_rows`' tables: each concern's reservoir and fill, each strategy's TAIE X prior and pole, X's range
_SETTLING = (_CONCERN_BUCKET, CONCERN_BUCKET, _PRIOR_LOW, _PRIOR_HIGH, _FAMILY_POLE, AXIS_MIN, AXIS_MAX)


def profile_draws() -> int:
    """Uniform numbers one sampled profile takes: strategy, defence count and keys, concern count and keys."""
    return 3 + len(DEFENSES) + len(CONCERNS)


def profiles_from_uniforms(u: np.ndarray, strategies: tuple[str, ...] | None = None) -> ProfileBatch:
    """One random client per row of `u` ([B, profile_draws()] uniforms): a DMM strategy from `strategies`
    (default all 22), 0-2 defences (the largest of their uniforms), 1-2 concerns (relational distress twice as
    likely: weighted draws without replacement, the largest keys u^(1/w), after Efraimidis and Spirakis). The keys'
    power is numpy's (its bits); the picks are one compiled pass (`compiled_state.profile_rows`)."""
    codes = _ALL_CODES if strategies is None else np.array([_STRATEGY_INDEX[code] for code in strategies],
                                                           dtype=np.int64)
    b = len(u)
    strategy = np.empty(b, dtype=np.int64)
    defenses, concerns = np.empty((b, MAX_DEFENSES), dtype=np.int64), np.empty((b, MAX_CONCERNS), dtype=np.int64)
    profile_rows(u, u[:, 3 + len(DEFENSES):] ** _CONCERN_EXPONENT, codes, len(DEFENSES), MAX_DEFENSES + 1,
                 MAX_CONCERNS, strategy, defenses, concerns)
    return ProfileBatch(strategy, defenses, concerns)


def sample_profile(rng: np.random.Generator, strategies: tuple[str, ...] | None = None) -> ClientProfile:
    """A random client (`profiles_from_uniforms` for one row drawn from `rng`)."""
    return profiles_from_uniforms(rng.random((1, profile_draws())), strategies).profiles()[0]


def resolve_profile(profile: str | ClientProfile | None, rng: np.random.Generator) -> ClientProfile:
    """A preset name, a ClientProfile, or None (sample one from `rng`)."""
    if profile is None:
        return sample_profile(rng)
    if isinstance(profile, ClientProfile):
        return profile
    if isinstance(profile, str):
        if profile not in PRESETS:
            raise ValueError(f"unknown profile preset {profile!r}; presets: {sorted(PRESETS)}")
        return PRESETS[profile]
    raise TypeError(f"profile must be a preset name, a ClientProfile or None, got {type(profile).__name__}")
