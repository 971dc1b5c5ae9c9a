"""tbn_env: the Teaching-by-Negation therapy MDP (§9.3) — ClientGraph, trackers, detectors, reward.

`SessionCore` runs one client turn by turn from 12 judge scores; `SessionBatch` runs many at once (the
turn both environments share) on the compiled `BatchKernel`; `ReferenceCore` is the slow, readable
definition the kernel is tested against.
"""
from .dimensions import JUDGE_DIMENSIONS
from .dimension_tables import check_dimension_tables
from .graph import EDGE_TYPES, PHASES, STAGES, ClientGraph
from .kernel import BatchKernel, CompiledGraph
from .params import Params
from .reference import ReferenceCore
from .reward import RewardBreakdown
from .session import SessionCore, TurnResult
from .session_batch import SessionBatch
from .state import InitialState, sample_initial_state

__all__ = ["JUDGE_DIMENSIONS", "EDGE_TYPES", "PHASES", "STAGES", "ClientGraph", "BatchKernel", "CompiledGraph",
           "Params", "ReferenceCore", "RewardBreakdown", "SessionCore", "SessionBatch", "TurnResult", "InitialState",
           "sample_initial_state"]

from gymnasium.envs.registration import register, registry

#: The longest episode at the default settings: a treatment of 20 sessions of 20 turns. Pass a larger
#: `max_episode_steps` to gym.make when raising max_turns x max_sessions above it.
MAX_EPISODE_STEPS = 400
#: "Solved" at the default setting (a stage-1 session): 90 % of the mean return of the state-aware
#: oracle (272.7, Interventions) and of the all-10 therapist (333.0, Scores) on held-out clients
#: (`python -m tbn_env.baselines`); the text env's return depends on its judge, so it has none.
REWARD_THRESHOLDS = {"Therapy-Scores-v0": 300.0, "Therapy-Interventions-v0": 245.0}


def _register() -> None:
    """Register Therapy-v0 and its action-mode variants (idempotent, so re-imports are harmless)."""
    variants = {"Therapy-v0": "text", "Therapy-Scores-v0": "scores", "Therapy-Interventions-v0": "intervention"}
    for env_id, mode in variants.items():
        if env_id not in registry:
            register(id=env_id, entry_point="tbn_env.env:TherapyEnv",
                     vector_entry_point="tbn_env.vector:TherapyVectorEnv", kwargs={"action_mode": mode},
                     reward_threshold=REWARD_THRESHOLDS.get(env_id), max_episode_steps=MAX_EPISODE_STEPS)


check_dimension_tables()   # a judge dimension added without its table entries stops here
_register()
