"""The 142-node ClientGraph (§9.3.1): a networkx DiGraph built from `data/graph_v1.toml`.

This module is the *reference* implementation of the graph dynamics: it walks nodes and edges one
at a time so that it reads like §9.3.1.2. `tbn_env.kernel` lowers the same graph to arrays for speed,
and the property tests hold the two to 1e-9 of each other.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Any

import networkx as nx
import numpy as np
from numba import njit

from .dimensions import JUDGE_DIMENSIONS
from .params import DAMPEN_SOURCE, DAMPEN_TARGET, PROTECTIVE_ALLIANCE, Params

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

PHASES: tuple[str, ...] = ("A", "B", "C", "D")  # Defended, Opening, Core Access, Integration (§9.3.5.1)
STAGES: tuple[int, ...] = (1, 2, 3, 4)           # Foundation, Working, Integration, Termination (§9.3.5.3)
EDGE_TYPES: tuple[str, ...] = ("reinforcing", "protective", "compensatory", "suppressive",
                               "prerequisite", "paired", "gated", "paradoxical")  # §9.3.1.1
DIRECTIONS = {"I": "increase", "D": "decrease", "B": "bipolar"}
DOMAINS_CLINICAL = 9   # §9.3.1
DOMAINS_PROFILE = 7
NODE_COUNT = 142       # §9.3.1
BIPOLAR_CENTRE = 5.0   # the healthy point of a bipolar node on the 0-10 level scale
LEVEL_MIN, LEVEL_MAX = 0.0, 10.0
DAMPENING = DAMPEN_SOURCE * DAMPEN_TARGET  # both factors apply on every hop (§9.3.1.1)
ENGAGEMENT_NODE = "session_engagement"
ALLIANCE_DOMAIN = "therapeutic_alliance"


# ----------------------------------------------------------------------------- level semantics
def improvement_sign(direction: str) -> float:
    """+1 where a level rise is improvement or the unit is 'toward centre', -1 for decrease nodes."""
    return -1.0 if direction == "decrease" else 1.0


def pathology(level: float, direction: str) -> float:
    """Normalised distance in [0, 1] of a level from the node's healthy pole (used by coiling)."""
    if direction == "increase":
        return (LEVEL_MAX - level) / LEVEL_MAX
    if direction == "decrease":
        return level / LEVEL_MAX
    return abs(level - BIPOLAR_CENTRE) / BIPOLAR_CENTRE


def level_from_pathology(p: float, direction: str, pole: str) -> float:
    """Inverse of `pathology`; bipolar nodes sit on their pathological side."""
    if direction == "increase":
        return LEVEL_MAX * (1.0 - p)
    if direction == "decrease":
        return LEVEL_MAX * p
    return BIPOLAR_CENTRE + (1.0 if pole == "high" else -1.0) * BIPOLAR_CENTRE * p


def apply_improvement(level: float, u: float, direction: str, pole: str) -> float:
    """Move a level by `u` improvement units, direction-aware (§9.3.1.2 step 3), clipped to [0, 10].

    Bipolar nodes move toward the centre by u and stop there; a negative u pushes them away from it,
    toward their current side (or their pathological pole when exactly at the centre).
    """
    if direction == "increase":
        new = level + u
    elif direction == "decrease":
        new = level - u
    else:
        dev = level - BIPOLAR_CENTRE
        side = (1.0 if dev > 0 else -1.0) if dev != 0 else (1.0 if pole == "high" else -1.0)
        new = BIPOLAR_CENTRE + side * max(0.0, abs(dev) - u)
    return min(LEVEL_MAX, max(LEVEL_MIN, new))


def improvement(old: float, new: float, direction: str) -> float:
    """How much healthier a node became going from `old` to `new` (negative = worse)."""
    if direction == "bipolar":
        return abs(old - BIPOLAR_CENTRE) - abs(new - BIPOLAR_CENTRE)
    return improvement_sign(direction) * (new - old)


# ----------------------------------------------------------------------------- data loading
class GraphDataError(ValueError):
    """The graph data file is malformed; the message names the node or edge."""


def _load_toml(source: str | None) -> dict[str, Any]:
    if source is None:
        text = resources.files("tbn_env").joinpath("data/graph_v1.toml").read_text(encoding="utf-8")
    else:
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    return tomllib.loads(text)


def _node_attrs(domain: dict, node: dict, spec: dict, params: Params) -> dict[str, Any]:
    """Resolve one node's seven properties from its domain defaults and its own overrides."""
    name = node["name"]

    def pick(key: str) -> Any:
        return node.get(key, domain.get(key))

    direction = DIRECTIONS.get(node.get("dir", ""))
    if direction is None:
        raise GraphDataError(f"node {name!r}: dir must be one of I, D, B")
    bq_name, phase_name = pick("bq"), pick("phase")
    if bq_name not in spec["bq_templates"]:
        raise GraphDataError(f"node {name!r}: unknown bq template {bq_name!r}")
    if phase_name not in spec["phase_templates"]:
        raise GraphDataError(f"node {name!r}: unknown phase template {phase_name!r}")
    sens = pick("sens")
    unknown = [d for d in sens if d not in JUDGE_DIMENSIONS]
    if unknown:
        raise GraphDataError(f"node {name!r}: unknown judge dimensions {unknown}")
    sign = improvement_sign(direction)
    judge_high = {d: sign * params.high_relevance_sens * sens.get(d, 0.0) for d in JUDGE_DIMENSIONS}
    judge_low = {d: -sign * params.low_relevance_sens * sens.get(d, 0.0) for d in JUDGE_DIMENSIONS}
    taie = tuple(float(v) for v in pick("taie"))
    weight = float(pick("weight"))
    bq = tuple(float(v) for v in spec["bq_templates"][bq_name])
    phase_w = spec["phase_templates"][phase_name]
    if len(taie) != 3 or any(abs(v) > 1 for v in taie):
        raise GraphDataError(f"node {name!r}: taie must be 3 loadings in [-1, 1]")
    if not 0.0 <= weight <= 1.0:
        raise GraphDataError(f"node {name!r}: weight must lie in [0, 1]")
    if len(bq) != 4 or any(not 0.0 <= b <= 10.0 for b in bq) or len(phase_w) != 4:
        raise GraphDataError(f"node {name!r}: bq needs 4 values in [0, 10] and phase weights 4 values")
    return {
        "domain": domain["name"],
        "level": level_from_pathology(0.5, direction, node.get("pole", "high")),
        "weight": weight,
        "bq_by_stage": bq,
        "direction": direction,
        "pole": node.get("pole", "high"),
        "taie": taie,
        "judge_high": judge_high,
        "judge_low": judge_low,
        "phase_weights": dict(zip(PHASES, (float(v) for v in phase_w))),
        "reason": node.get("reason", ""),
    }


def build_digraph(source: str | None = None, params: Params | None = None) -> nx.DiGraph:
    """Build the DiGraph from a graph data file (default: the packaged graph_v1.toml)."""
    params = params or Params()
    spec = _load_toml(source)
    g = nx.DiGraph(version=spec.get("version", 1))
    for domain in spec["domains"]:
        for node in domain["nodes"]:
            if node["name"] in g:
                raise GraphDataError(f"node {node['name']!r} is defined twice")
            g.add_node(node["name"], **_node_attrs(domain, node, spec, params))
    hub = spec["hub_edges"]
    for domain in spec["domains"]:
        hub_name = domain["nodes"][0]["name"]
        for node in domain["nodes"][1:]:
            g.add_edge(hub_name, node["name"], type="reinforcing", k=hub["hub_to_member"], reason=hub["reason"])
            g.add_edge(node["name"], hub_name, type="reinforcing", k=hub["member_to_hub"], reason=hub["reason"])
    for edge in spec.get("edges", []):  # a listed edge replaces a generated hub edge between the same nodes
        src, dst, typ = edge["src"], edge["dst"], edge["type"]
        for end in (src, dst):
            if end not in g:
                raise GraphDataError(f"edge {src}->{dst}: unknown node {end!r}")
        if typ not in EDGE_TYPES:
            raise GraphDataError(f"edge {src}->{dst}: unknown type {typ!r}")
        attrs = {"type": typ, "k": float(edge["k"]), "reason": edge["reason"]}
        if typ == "prerequisite":
            attrs["theta"] = float(edge["theta"])
        if typ == "gated":
            attrs["gates"] = tuple(float(v) for v in edge["gates"])
        g.add_edge(src, dst, **attrs)
        if typ == "paired":  # bidirectional same-direction co-variation (§9.3.1.1)
            g.add_edge(dst, src, **attrs)
    return g


# ----------------------------------------------------------------------------- the graph
@dataclass
class GraphUpdate:
    """What one turn did to the graph: first-order improvement and the final level change."""

    first_order: dict[str, float]
    level_change: dict[str, float]


class ClientGraph:
    """The client's 142 psychological dimensions and their coupling (§9.3.1).

    `.graph` is the networkx DiGraph; each node has the attributes `domain`, `level`, `weight`,
    `bq_by_stage`, `direction`, `pole`, `taie`, `judge_high`, `judge_low` (signed as they move the
    level; for bipolar nodes + means toward the centre), `phase_weights`, `reason`; each edge has
    `type`, `k`, `reason` and, by type, `theta` (prerequisite) or `gates` (gated).
    """

    def __init__(self, graph: nx.DiGraph, params: Params | None = None) -> None:
        self.graph = graph
        self.params = params or Params()
        self.nodes: tuple[str, ...] = tuple(graph.nodes)

    @classmethod
    def default(cls, params: Params | None = None) -> "ClientGraph":
        """The packaged 142-node graph with every node at mid pathology (0.5)."""
        return cls(build_digraph(params=params), params)

    @cached_property
    def node_table(self) -> dict[str, np.ndarray]:
        """Per-node constants as arrays in node order: improvement sign, bipolar mask, pole side, TAIE loadings."""
        a = [self.graph.nodes[n] for n in self.nodes]
        return {"sign": np.array([improvement_sign(x["direction"]) for x in a]),
                "bipolar": np.array([x["direction"] == "bipolar" for x in a]),
                "increase": np.array([x["direction"] == "increase" for x in a]),
                "pole": np.array([1.0 if x["pole"] == "high" else -1.0 for x in a]),
                "taie": np.array([x["taie"] for x in a])}

    @cached_property
    def taie_norm(self) -> np.ndarray:
        """Each TAIE axis's total absolute loading (x, y, z): what a fully pathological client's loadings add to."""
        load = self.node_table["taie"]
        return np.array([np.abs(load[:, axis]).sum() for axis in range(3)])

    def levels_from_pathology(self, p: np.ndarray) -> np.ndarray:
        """`level_from_pathology` of every node ([N] or [B, N]; bipolar nodes on their pathological side)."""
        t = self.node_table
        out = np.empty(np.shape(p))
        _levels(np.asarray(p, dtype=np.float64).reshape(-1, len(self.nodes)), t["bipolar"], t["increase"], t["pole"],
                out.reshape(-1, len(self.nodes)))
        return out

    def pathologies(self, levels: np.ndarray) -> np.ndarray:
        """`pathology` of every node ([N] or [B, N])."""
        t = self.node_table
        out = np.empty(np.shape(levels))
        _pathologies(np.asarray(levels, dtype=np.float64).reshape(-1, len(self.nodes)), t["bipolar"], t["increase"],
                     out.reshape(-1, len(self.nodes)))
        return out

    # -- reading the state --
    def levels(self) -> np.ndarray:
        return np.array([self.graph.nodes[n]["level"] for n in self.nodes])

    def set_levels(self, levels: np.ndarray) -> None:
        for n, v in zip(self.nodes, levels):
            self.graph.nodes[n]["level"] = float(v)

    def pathology(self, node: str) -> float:
        a = self.graph.nodes[node]
        return pathology(a["level"], a["direction"])

    def coiling(self) -> float:
        """Weight-averaged pathology in [0, 1]: the graph's 'mean tightness' (§9.3.5)."""
        nodes = self.graph.nodes
        total = sum(nodes[n]["weight"] for n in self.nodes)
        return sum(nodes[n]["weight"] * self.pathology(n) for n in self.nodes) / total

    def alliance(self) -> float:
        """1 - weighted pathology of the therapeutic-alliance domain, in [0, 1]."""
        nodes = [n for n in self.nodes if self.graph.nodes[n]["domain"] == ALLIANCE_DOMAIN]
        total = sum(self.graph.nodes[n]["weight"] for n in nodes)
        return 1.0 - sum(self.graph.nodes[n]["weight"] * self.pathology(n) for n in nodes) / total

    def engagement(self) -> float:
        """The engagement factor of §9.3.1.2: the engagement node's level / 10, floored."""
        return max(self.params.engagement_floor, self.graph.nodes[ENGAGEMENT_NODE]["level"] / LEVEL_MAX)

    # -- the update pipeline of §9.3.1.2 --
    def update(self, high: np.ndarray, low: np.ndarray, phase: str, stage: int, alliance: float,
               extra_raw: dict[str, float] | None = None) -> GraphUpdate:
        """Apply one judged turn: raw deltas, modulation, direction-aware application, propagation.

        `high`/`low` are the per-dimension engagements from `tbn_env.intensity.intensities`;
        `extra_raw` adds bucket-driven raw improvement (`apply_bucket_coiling_interactions`).
        """
        g, extra_raw = self.graph, extra_raw or {}
        engagement = self.engagement()
        before = {n: g.nodes[n]["level"] for n in self.nodes}

        # suppressive edges damp the target's own first-order change by the source's pathology
        gate = dict.fromkeys(self.nodes, 1.0)
        for src, dst, e in g.edges(data=True):
            if e["type"] == "suppressive":
                gate[dst] *= 1.0 - e["k"] * pathology(before[src], g.nodes[src]["direction"])

        first, change = {}, {}
        for n in self.nodes:
            a = g.nodes[n]
            sign = improvement_sign(a["direction"])
            raw = extra_raw.get(n, 0.0)
            for i, d in enumerate(JUDGE_DIMENSIONS):
                raw += sign * (a["judge_high"][d] * high[i] + a["judge_low"][d] * low[i])
            delta = raw * gate[n] * a["phase_weights"][phase] * engagement / (1.0 + a["bq_by_stage"][stage - 1])
            new = apply_improvement(before[n], delta, a["direction"], a["pole"])
            first[n] = improvement(before[n], new, a["direction"])
            change[n] = new - before[n]
            a["level"] = new

        prop_u = dict.fromkeys(self.nodes, 0.0)
        prop_level = dict.fromkeys(self.nodes, 0.0)
        for src, dst, e in g.edges(data=True):
            c, typ, u = DAMPENING * e["k"], e["type"], first[src]
            if typ in ("reinforcing", "paired"):
                prop_u[dst] += c * u
            elif typ == "protective":
                prop_u[dst] += c * u * (1.0 if alliance > PROTECTIVE_ALLIANCE else -1.0)
            elif typ == "gated":
                prop_u[dst] += c * e["gates"][stage - 1] * u
            elif typ == "paradoxical":
                prop_u[dst] += c * u * (-1.0 if stage <= 2 else 1.0)
            elif typ == "prerequisite":
                if g.nodes[src]["level"] >= e["theta"]:
                    prop_u[dst] += c * u
            elif typ == "compensatory":
                if change[src] > 0:
                    prop_level[dst] += c * change[src]
            elif typ != "suppressive":   # suppressive edges gated the first-order change above
                raise ValueError(f"edge type {typ!r} has no propagation rule here (see docs/extending.md)")

        for n in self.nodes:
            a = g.nodes[n]
            moved = apply_improvement(a["level"], prop_u[n], a["direction"], a["pole"])
            a["level"] = min(LEVEL_MAX, max(LEVEL_MIN, moved + prop_level[n]))
            change[n] = a["level"] - before[n]
        return GraphUpdate(first_order=first, level_change=change)


@njit(cache=True, inline="always")
def level_of(p, bipolar, increase, pole):
    """`level_from_pathology` of one node (pathology p in [0, 1]), for compiled code."""
    if bipolar:
        return BIPOLAR_CENTRE + pole * BIPOLAR_CENTRE * p
    if increase:
        return LEVEL_MAX * (1.0 - p)
    return LEVEL_MAX * p


@njit(cache=True, inline="always")
def pathology_of(level, bipolar, increase):
    """`pathology` of one node at `level`, for compiled code."""
    if bipolar:
        return abs(level - BIPOLAR_CENTRE) / BIPOLAR_CENTRE
    if increase:
        return (LEVEL_MAX - level) / LEVEL_MAX
    return level / LEVEL_MAX


@njit(cache=True)
def _levels(p, bipolar, increase, pole, out):
    """`level_from_pathology` element by element (a batch's reset in one pass, no temporaries)."""
    for i in range(p.shape[0]):
        for j in range(p.shape[1]):
            out[i, j] = level_of(p[i, j], bipolar[j], increase[j], pole[j])


@njit(cache=True)
def _pathologies(levels, bipolar, increase, out):
    """`pathology` element by element."""
    for i in range(levels.shape[0]):
        for j in range(levels.shape[1]):
            out[i, j] = pathology_of(levels[i, j], bipolar[j], increase[j])
