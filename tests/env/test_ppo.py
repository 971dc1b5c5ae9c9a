"""Classic RL learns what no constant action can: SB3 PPO beats the best constant action.

A test against a random therapist alone once passed while the constant `validation` matched the
oracle at the default setting, so PPO converging to it passed. Here PPO (fixed seeds, a
short budget, the default therapist's view: no true phase) must beat the best of the 13 constant
actions on the same held-out clients, by a margin whose 95 % bootstrap interval excludes zero.
"""
import numpy as np
import pytest

from tbn_env import baselines
from tbn_env.interventions import NAMES

SETTING = "stage4"     # the setting where the oracle's lead over the best constant is largest
PPO_STEPS = 40_960     # ten rollouts of the native batch (64 clients x 64 steps): under a minute on one core
HELD_OUT = 64


@pytest.mark.slow
def test_ppo_beats_the_best_constant_action_on_held_out_clients():
    pytest.importorskip("stable_baselines3")
    model, _ = baselines.train("ppo", SETTING, seed=0, steps=PPO_STEPS)
    learned = baselines.evaluate(SETTING, baselines.agent_policy(model, recurrent=False), HELD_OUT,
                                 baselines.EVAL_SEED)
    constants = [baselines.evaluate(SETTING, baselines.constant_policy(i), HELD_OUT, baselines.EVAL_SEED)
                 for i in range(len(NAMES))]
    best = max(constants, key=np.mean)
    lo, hi = baselines.bootstrap_ci(learned - best, statistic=np.mean)  # paired: the same clients
    assert lo > 0, (learned.mean(), best.mean(), NAMES[int(np.argmax([c.mean() for c in constants]))], lo, hi)
