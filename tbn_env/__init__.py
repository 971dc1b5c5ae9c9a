"""tbn_env: the Teaching-by-Negation therapy MDP (§9.3) — ClientGraph, trackers, detectors, reward.

`SessionCore` runs one client turn by turn from 12 judge scores; `BatchKernel` runs many at once;
`ReferenceCore` is the slow, readable definition both are tested against.
"""
from .dimensions import JUDGE_DIMENSIONS
from .graph import EDGE_TYPES, PHASES, STAGES, ClientGraph
from .kernel import BatchKernel, CompiledGraph
from .params import Params
from .reference import ReferenceCore
from .reward import RewardBreakdown
from .session import SessionCore, TurnResult
from .state import InitialState, sample_initial_state

__all__ = ["JUDGE_DIMENSIONS", "EDGE_TYPES", "PHASES", "STAGES", "ClientGraph", "BatchKernel", "CompiledGraph",
           "Params", "ReferenceCore", "RewardBreakdown", "SessionCore", "TurnResult", "InitialState",
           "sample_initial_state"]
