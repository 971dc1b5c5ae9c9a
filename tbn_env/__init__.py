"""tbn_env: the Teaching-by-Negation therapy MDP (§9.3) — ClientGraph, trackers, detectors, reward.

`SessionCore` runs one client turn by turn from 12 judge scores; `BatchKernel` runs many at once;
`ReferenceCore` is the slow, readable definition both are tested against.
"""
from .dimensions import JUDGE_DIMENSIONS
from .dimension_tables import check_dimension_tables
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

from gymnasium.envs.registration import register, registry


def _register() -> None:
    """Register Therapy-v0 and its action-mode variants (idempotent, so re-imports are harmless)."""
    variants = {"Therapy-v0": "text", "Therapy-Scores-v0": "scores", "Therapy-Interventions-v0": "intervention"}
    for env_id, mode in variants.items():
        if env_id not in registry:
            register(id=env_id, entry_point="tbn_env.env:TherapyEnv",
                     vector_entry_point="tbn_env.vector:TherapyVectorEnv", kwargs={"action_mode": mode})


check_dimension_tables()   # a judge dimension added without its table entries stops here
_register()
