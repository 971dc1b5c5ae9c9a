"""Full-mode TAIE (§9.3.4): the judge's explicit assessment blended into the running axes."""
import gymnasium as gym
import numpy as np
import pytest

import tbn_env  # noqa: F401
from tbn_env.protocols import JudgeContext
from tbn_env.rubric_judge import RubricJudge
from tbn_env.session import TAIE_FULL_MODE_WEIGHT
from tbn_env.taie_full import TaieAssessment, offline_taie, parse_taie_output


class FixedTaie(RubricJudge):
    """A rubric judge whose full TAIE reading is fixed, to check the blend by hand."""

    def assess_taie(self, context, axes):
        self.seen = np.array(axes)
        return TaieAssessment(x=1.0, y=8.0, z=-2.0, narrative="steady", stuck_realms=["cherishment"],
                              recommendations=["stay warm"])


def test_full_mode_blends_the_judges_axes_at_the_chosen_weight():
    judge = FixedTaie()
    light = gym.make("Therapy-v0", max_turns=4, info_mode="debug")
    full = gym.make("Therapy-v0", judge=judge, max_turns=4, taie_mode="full", info_mode="debug")
    for env in (light, full):
        env.reset(seed=3)
    _, _, _, _, info_l = light.step("That sounds heavy. I'm here.")
    _, _, _, _, info_f = full.step("That sounds heavy. I'm here.")
    running = np.array([info_l["taie"][a] for a in "xyz"])  # the lightweight estimate after the same turn
    assert np.allclose(judge.seen, running)
    expected = TAIE_FULL_MODE_WEIGHT * np.array([1.0, 8.0, -2.0]) + (1 - TAIE_FULL_MODE_WEIGHT) * running
    assert np.allclose(full.unwrapped.core.kernel.taie[0], expected)
    assert info_f["taie_full"]["stuck_realms"] == ["cherishment"] and "taie_full" not in info_l


def test_offline_full_taie_reads_the_clients_words_and_is_marked():
    ctx = JudgeContext(client_utterance="I feel worthless and alone, nobody cares.", therapist_utterance="I'm here.")
    a = offline_taie(ctx, [0.0, 0.0, 0.0])
    assert a.y < 0 and a.z < 0 and a.source == "offline template" and a.narrative.startswith("[offline template]")
    assert "self-esteem" in a.stuck_realms and a.recommendations
    env = gym.make("Therapy-v0", max_turns=2, taie_mode="full", info_mode="debug")  # the default rubric judge offers it
    env.reset(seed=0)
    assert env.step("Take your time.")[-1]["taie_full"]["source"] == "offline template"
    hidden = gym.make("Therapy-v0", max_turns=2, taie_mode="full")   # a therapist's view: the axes stay hidden
    hidden.reset(seed=0)
    assert "taie_full" not in hidden.step("Take your time.")[-1]


def test_full_mode_needs_a_judge_that_can_assess():
    with pytest.raises(ValueError, match="assess_taie"):
        gym.make("Therapy-Scores-v0", taie_mode="full")
    with pytest.raises(ValueError, match="taie_mode"):
        gym.make("Therapy-v0", taie_mode="heavy")


def test_model_replies_are_parsed_clamped_or_refused():
    a, _ = parse_taie_output('Sure: {"x": 14, "y": "-3", "z": 2, "narrative": "n", "stuck_realms": ["y"]} done')
    assert (a.x, a.y, a.z) == (10.0, -3.0, 2.0) and a.stuck_realms == ["y"] and a.source == "model"
    for bad in ("no json", '{"x": 1, "y": 2}', '{"x": "a", "y": 1, "z": 1}'):
        assessment, reason = parse_taie_output(bad)
        assert assessment is None and reason
