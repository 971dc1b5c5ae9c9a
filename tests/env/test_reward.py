"""Stage-aware reward (§9.3.6), recomputed by hand."""
import numpy as np
import pytest

from tbn_env import JUDGE_DIMENSIONS, Params, SessionCore
from tbn_env.reward import STAGE_WEIGHTS, modifier_terms, stage_modifiers, weighted_composite

P = Params()


def scores(**named):
    vec = np.full(12, 5.0)
    for k, v in named.items():
        vec[JUDGE_DIMENSIONS.index(k)] = v
    return vec


def test_stage_weights_hold_every_number_the_paper_names():
    w = dict(zip(JUDGE_DIMENSIONS, STAGE_WEIGHTS[0]))
    assert (w["safety"], w["attunement"], w["validation"], w["clinical_wisdom"], w["artfulness"]) == \
        (1.8, 1.5, 1.5, 0.5, 0.4)
    w3 = dict(zip(JUDGE_DIMENSIONS, STAGE_WEIGHTS[2]))
    assert (w3["clinical_wisdom"], w3["thoughtfulness"], w3["parallel_thinking"], w3["safety"]) == (1.5, 1.5, 1.5, 0.8)
    w4 = dict(zip(JUDGE_DIMENSIONS, STAGE_WEIGHTS[3]))
    assert (w4["tenderness"], w4["artfulness"]) == (1.5, 1.5)
    assert (STAGE_WEIGHTS[1] == 1.0).all()


def test_weighted_composite_by_hand():
    s = scores(safety=9.0, artfulness=1.0)
    # stage 1: (1.8*9 + 0.4*1 + 5*(1.5+1.5+0.5+7*1.0)) / (1.8+0.4+1.5+1.5+0.5+7)
    expected = (1.8 * 9 + 0.4 * 1 + 5 * (1.5 + 1.5 + 0.5 + 7)) / (1.8 + 0.4 + 1.5 + 1.5 + 0.5 + 7)
    assert weighted_composite(s, 1, P) == pytest.approx(expected)
    assert weighted_composite(s, 2, P) == pytest.approx(s.mean())


@pytest.mark.parametrize("stage, named, expected", [
    (1, {"safety": 9.0}, {"safety_bonus": 2.0}),                         # the worked example
    (1, {"safety": 8.0}, {}),                                            # strict: 8.0 is not > 8.0
    (1, {"attunement": 8.0, "validation": 7.2}, {"alliance_bonus": 2.5}),  # mean 7.6 > 7.5
    (1, {"clinical_wisdom": 8.5}, {"premature_depth_penalty": -1.5}),
    (2, {"clinical_wisdom": 7.6}, {"depth_bonus": 2.0}),
    (2, {"repair": 7.6}, {"repair_bonus": 3.0}),
    (2, {"clinical_wisdom": 3.0}, {"avoidance_penalty": -1.0}),
    (3, {"thoughtfulness": 8.0, "parallel_thinking": 7.1}, {"meaning_making_bonus": 2.5}),
    (3, {"safety": 7.5, "non_reactivity": 6.6}, {"containment_bonus": 1.0}),
    (3, {"artfulness": 8.1}, {"artfulness_bonus": 1.5}),
    (4, {"tenderness": 7.8, "repair": 7.4}, {"closure_bonus": 3.0}),
    (4, {"tenderness": 8.5, "repair": 5.0}, {"tenderness_bonus": 2.0}),
    (4, {"clinical_wisdom": 9.0}, {"new_material_penalty": -2.5}),        # the worked example
])
def test_each_modifier_fires_on_its_threshold(stage, named, expected):
    assert modifier_terms(scores(**named), stage, P) == expected


def test_all_twelve_modifiers_and_stacking():
    assert len(stage_modifiers(P)) == 12
    s = scores(safety=9.0, attunement=9.0, validation=9.0, clinical_wisdom=9.0)
    assert modifier_terms(s, 1, P) == {"safety_bonus": 2.0, "alliance_bonus": 2.5, "premature_depth_penalty": -1.5}


@pytest.mark.parametrize("stage, named, bonus", [(1, {"safety": 9.0}, 2.0), (4, {"clinical_wisdom": 9.0}, -2.5)])
def test_session_turn_reward_breakdown_sums_to_total(stage, named, bonus):
    core = SessionCore.sample(stage, seed=3)
    r = core.turn(scores(**named)).reward
    assert r.modifiers == bonus
    assert r.composite == pytest.approx(weighted_composite(scores(**named), stage, P))
    d = r.as_dict()
    assert set(d) >= {"composite", "modifiers", "phase_transition", "stage_transition", "taie", "total"}
    assert d["total"] == pytest.approx(d["composite"] + d["modifiers"] + d["phase_transition"]
                                       + d["stage_transition"] + d["taie"])


def test_transition_rewards_are_the_papers():
    from tbn_env import params
    assert (params.PHASE_FORWARD_REWARD, params.PHASE_REGRESSION_REWARD) == (20.0, -30.0)
    assert (params.STAGE_FORWARD_REWARD, params.STAGE_REGRESSION_REWARD) == (100.0, -150.0)


def test_phase_forward_and_regression_rewards_reach_the_breakdown():
    core = SessionCore.sample(3, seed=1)
    seen = {}
    for t in range(40):
        r = core.turn(np.full(12, 9.0 if t < 8 else 1.0))
        if r.reward.phase_transition:
            seen.setdefault(r.reward.phase_transition, t)
    assert 20.0 in seen and -30.0 in seen
    assert seen[20.0] < seen[-30.0]
