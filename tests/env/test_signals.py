"""The default observation is a therapist's view (§9.3.14.1): the client's signals, not its true state.

Before these signals the `tmog` view held the true affective buckets and the true phase, so
`test_the_default_view_hides_the_true_state` failed, and a policy never needed memory.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import tbn_env  # noqa: F401
from tbn_env.baselines import oracle_policy
from tbn_env.buckets import BUCKET_INDEX
from tbn_env.interventions import NAMES
from tbn_env.signals import AFFECT_READ_ACCURACY, AFFECTS, AROUSAL_LEVELS

HIDDEN = {"buckets", "phase", "levels", "loa", "taie", "readings"}
SIGNALS = {"affect", "arousal", "rupture_cue"}


@pytest.mark.parametrize("vector", [False, True])
def test_the_default_view_hides_the_true_state(vector):
    def keys(**kwargs):
        if vector:
            env = gym.make_vec("Therapy-Interventions-v0", num_envs=2, vectorization_mode="vector_entry_point",
                               **kwargs)
        else:
            env = gym.make("Therapy-Interventions-v0", **kwargs)
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        return set(obs)
    tmog, full = keys(), keys(observation_mode="full")
    assert not tmog & HIDDEN and SIGNALS <= tmog
    assert HIDDEN | SIGNALS <= full and tmog <= full


def played(turns: int = 20, clients: int = 48, stage: int = 4, seed: int = 3):
    """(phase, affect, arousal, fear) of every client-turn of oracle-played sessions (full view: the truth too)."""
    env = gym.make_vec("Therapy-Interventions-v0", num_envs=clients, vectorization_mode="vector_entry_point",
                       start_stage=stage, observation_mode="full")
    obs, _ = env.reset(seed=seed)
    rows = []
    for _ in range(turns):
        rows.append((obs["phase"], obs["affect"], obs["arousal"], obs["buckets"][:, BUCKET_INDEX["fear"]], obs["turn"]))
        obs, *_ = env.step(oracle_policy(env.unwrapped, obs, None))
    return [np.stack(x, axis=1) for x in zip(*rows)]  # each [clients, turns]


def test_the_affect_shows_the_phase_noisily_and_never_far_off():
    phase, affect, *_ = played(stage=2)   # stage 2 sessions pass through every phase
    assert np.abs(affect - phase).max() == 1
    inner = (phase == 1) | (phase == 2)   # no clipping there: the phase's own category AFFECT_READ_ACCURACY of the time
    assert inner.sum() > 300
    assert (affect[inner] == phase[inner]).mean() == pytest.approx(AFFECT_READ_ACCURACY, abs=0.05)
    assert set(np.unique(affect)) == set(range(len(AFFECTS)))


def test_arousal_reads_the_fear_reservoir_coarsely():
    *_, arousal, fear, _ = played(stage=1)
    assert arousal.min() >= 0 and arousal.max() < AROUSAL_LEVELS
    overwhelmed = fear >= 0.6                   # the response model's overwhelm rule
    assert overwhelmed.any() and (~overwhelmed).any()
    assert ((arousal >= 3) == overwhelmed).mean() >= 0.85
    assert np.corrcoef(arousal.ravel(), fear.ravel())[0, 1] > 0.8


def test_the_rupture_cue_marks_the_turn_of_a_rupture_and_the_flag_stays_open():
    env = gym.make("Therapy-Interventions-v0", start_stage=1)
    obs, _ = env.reset(seed=0)
    assert obs["rupture_cue"] == 0
    obs, *_ = env.step(NAMES.index("challenge"))
    assert (obs["rupture_cue"], obs["rupture"]) == (1, 1)
    obs, *_ = env.step(NAMES.index("validation"))
    assert (obs["rupture_cue"], obs["rupture"]) == (0, 1)


def belief_phase(affect: np.ndarray, turn: np.ndarray) -> np.ndarray:
    """The most likely phase given every affect reading of the session so far (a forward filter).

    Its model is the plainest one: the reading's documented error, and a phase that holds with 0.8
    or moves one step (forward 0.15, back 0.05); each session starts in phase A (§9.3.5.1).
    """
    emit = np.zeros((4, 4))
    for phase in range(4):
        for offset, p in ((-1, (1 - AFFECT_READ_ACCURACY) / 2), (1, (1 - AFFECT_READ_ACCURACY) / 2),
                          (0, AFFECT_READ_ACCURACY)):
            emit[phase, min(3, max(0, phase + offset))] += p
    move = np.diag([0.8, 0.8, 0.8, 1.0]) + np.diag([0.15] * 3, 1) + np.diag([0.05] * 3, -1)
    move[0, 0] += 0.05
    start = np.array([1.0, 0.0, 0.0, 0.0])
    out = np.zeros_like(affect)
    belief = np.tile(start, (affect.shape[0], 1))
    for t in range(affect.shape[1]):
        belief = np.where((turn[:, t] == 0)[:, None], start, belief @ move) * emit[:, affect[:, t]].T
        belief /= belief.sum(axis=1, keepdims=True)
        out[:, t] = belief.argmax(axis=1)
    return out


@pytest.mark.parametrize("stage", [1, 2])
def test_the_phase_is_read_better_from_the_history_of_signals_than_from_one_turn(stage):
    """Memory helps: a filter over the session's affect readings names the true phase far more often
    than the latest reading alone (so a recurrent policy has something to gain)."""
    phase, affect, _, _, turn = played(stage=stage, clients=96)   # enough client-turns for a steady share
    one_turn = (affect == phase).mean()
    history = (belief_phase(affect, turn) == phase).mean()
    assert history >= one_turn + 0.1, (one_turn, history)


def test_every_turn_draws_its_signals_from_the_client_stream_past_spent_blocks_and_closes():
    """The signals a batch shows after each turn are what `Signals.express` draws for every client from the state
    the turn left (after a session's close, the next session's), past spent blocks of draws (32 turns), in a
    batch stepped in one run and in one split over threads."""
    from tbn_env.kernel import MIN_CLIENTS_PER_THREAD
    from tbn_env.session_batch import SessionBatch
    from tbn_env.signals import Signals
    from tbn_env.state import sample_initial_state
    for n in (3, 2 * MIN_CLIENTS_PER_THREAD + 3):
        batch = SessionBatch(n, episode="treatment", max_turns=5, max_sessions=20)
        rng = np.random.default_rng(5)
        seeds = rng.integers(0, 2**63, (2, n)).tolist()
        batch.load_rows(np.arange(n), [sample_initial_state(rng, 1, batch.kernel.graph) for _ in range(n)], *seeds)
        expected = Signals(n)
        expected.streams.seed(list(range(n)), seeds[1])
        expected.draw_blocks(list(range(n)))
        expected.express(np.arange(n), batch.kernel.phase, batch.kernel.buckets, np.zeros(n, dtype=bool))
        for t in range(40):
            step = batch.step(rng.uniform(0, 10, (n, 12)))
            expected.express(np.arange(n), batch.kernel.phase, batch.kernel.buckets, step.ruptured)
            for key in ("affect", "arousal", "rupture_cue"):
                np.testing.assert_array_equal(getattr(batch.signals, key), getattr(expected, key),
                                              err_msg=f"{n} clients, turn {t}: {key}")
