"""Therapy-v0 through Gymnasium: registration, checkers, spaces, info contract, episodes."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import tbn_env  # noqa: F401  (registers the ids)
from tbn_env.profiles import PRESETS, ClientProfile

NUMERIC_IDS = ("Therapy-Scores-v0", "Therapy-Interventions-v0")
INFO_KEYS = {"scores", "phase", "stage", "stance", "guidance", "coiling", "alliance", "attunement", "taie",
             "events", "reward_breakdown"}
STEP_ONLY_KEYS = {"scores", "reward_breakdown"}   # what a turn produced: absent from a reset's info
BREAKDOWN_KEYS = {"composite", "modifiers", "phase_transition", "stage_transition", "taie", "total"}


@pytest.mark.parametrize("env_id", NUMERIC_IDS)
@pytest.mark.parametrize("observation_mode", ["tmog", "full"])
@pytest.mark.parametrize("episode", ["session", "treatment"])
def test_gymnasium_checker_passes(env_id, observation_mode, episode):
    env = gym.make(env_id, observation_mode=observation_mode, episode=episode, max_turns=4, max_sessions=2)
    if env_id == "Therapy-Scores-v0":  # Box(0, 10) is not the normalised Box RL libraries expect: said, not hidden
        with pytest.warns(UserWarning, match="symmetric and normalized"):
            check_env(env.unwrapped, skip_render_check=True)
    else:
        check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.filterwarnings("error::UserWarning")
@pytest.mark.parametrize("episode", ["session", "treatment"])
def test_unit_action_scale_passes_the_checker_without_warnings(episode):
    env = gym.make("Therapy-Scores-v0", action_scale="unit", episode=episode, max_turns=4, max_sessions=2)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (12,), np.float32)
    check_env(env.unwrapped, skip_render_check=True)


def test_unit_actions_are_the_scores_rescaled():
    """-1 -> 0, 0 -> 5, 1 -> 10: a unit-scale episode is the score-scale episode, step for step."""
    unit = np.random.default_rng(0).uniform(-1, 1, (6, 12)).astype(np.float32)
    runs = []
    for scale, actions in (("unit", unit), ("score", 5.0 * (unit.astype(np.float64) + 1.0))):
        env = gym.make("Therapy-Scores-v0", action_scale=scale, max_turns=6)
        env.reset(seed=4)
        runs.append([env.step(a)[1] for a in actions])
    assert runs[0] == pytest.approx(runs[1], rel=1e-6)
    venv = gym.make_vec("Therapy-Scores-v0", num_envs=2, vectorization_mode="vector_entry_point",
                        action_scale="unit", max_turns=6)
    venv.reset(seed=4)
    assert venv.single_action_space.low.min() == -1.0
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        venv.step(np.full((2, 12), 1.5, np.float32))
    with pytest.raises(ValueError, match="action_scale='unit' applies to action_mode='scores'"):
        gym.make("Therapy-Interventions-v0", action_scale="unit")


@pytest.mark.parametrize("env_id", NUMERIC_IDS)
@pytest.mark.parametrize("observation_mode", ["tmog", "full"])
def test_stable_baselines3_checker_passes(env_id, observation_mode):
    sb3 = pytest.importorskip("stable_baselines3.common.env_checker")
    sb3.check_env(gym.make(env_id, observation_mode=observation_mode, max_turns=4).unwrapped, warn=False)


def test_registered_both_ways_and_through_make_vec():
    assert gym.make("tbn_env:Therapy-Scores-v0").unwrapped.action_mode == "scores"
    assert gym.make("Therapy-Interventions-v0").unwrapped.action_mode == "intervention"
    for mode in ("sync", "vector_entry_point"):
        envs = gym.make_vec("Therapy-Scores-v0", num_envs=3, vectorization_mode=mode, max_turns=3)
        obs, _ = envs.reset(seed=1)
        assert obs["tmog"].shape == (3, 142)
        _, reward, *_ = envs.step(envs.action_space.sample())
        assert reward.shape == (3,)


def _nones(info: dict) -> list[str]:
    return [k for k, v in info.items() if v is None or isinstance(v, dict) and _nones(v)]


@pytest.mark.parametrize("env_id", NUMERIC_IDS)
def test_info_contract_and_reward_breakdown(env_id):
    env = gym.make(env_id, max_turns=6, info_mode="debug")
    _, info = env.reset(seed=3)
    assert INFO_KEYS - STEP_ONLY_KEYS <= set(info) and not STEP_ONLY_KEYS & set(info)
    assert not _nones(info)   # torchrl reads reset infos into specs: no None values
    for _ in range(6):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert INFO_KEYS <= set(info) and BREAKDOWN_KEYS <= set(info["reward_breakdown"])
        assert info["reward_breakdown"]["total"] == pytest.approx(reward)
        assert set(info["taie"]) == {"x", "y", "z", "transformation", "direction"}
        assert set(info["scores"]) == set(tbn_env.JUDGE_DIMENSIONS)
    assert terminated and not truncated
    summary = info["session_summary"]
    assert summary["turns"] == 6 and "worst_misread" in summary


def test_treatment_episode_chains_sessions_and_truncates():
    env = gym.make("Therapy-Scores-v0", episode="treatment", max_turns=3, max_sessions=4)
    env.reset(seed=0)
    sessions = set()
    for step in range(12):
        obs, _, terminated, truncated, info = env.step(np.full(12, 2.0, np.float32))
        sessions.add(info["session"])
        if step < 11:
            assert not (terminated or truncated)
    assert truncated and not terminated and sessions == {1, 2, 3, 4}
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.full(12, 5.0, np.float32))


def test_start_stage_and_profiles():
    env = gym.make("Therapy-Scores-v0", start_stage=3, profile="daniel_intellectualizer", info_mode="debug")
    obs, info = env.reset(seed=0)
    assert obs["stage"] == 2 and info["stage"] == 3 and info["profile"] == "daniel_intellectualizer"
    assert info["taie"]["x"] < -3  # DMM Type A starts rigid
    _, info = env.reset(seed=0, options={"profile": PRESETS["lena_preoccupied"], "start_stage": 1})
    assert info["stage"] == 1 and info["taie"]["x"] > 3  # Type C starts porous
    custom = ClientProfile(name="x", attachment="B0", presenting_concerns=("grief",))
    assert gym.make("Therapy-Scores-v0", profile=custom).reset(seed=1)[1]["profile"] == "x"


@pytest.mark.parametrize("kwargs, error, match", [
    ({"action_mode": "talk"}, ValueError, "action_mode"),
    ({"observation_mode": "x"}, ValueError, "observation_mode"),
    ({"episode": "course"}, ValueError, "episode"),
    ({"max_turns": 0}, ValueError, "max_turns"),
    ({"start_stage": 5}, ValueError, "start_stage"),
    ({"render_mode": "human"}, ValueError, "render_mode"),
    ({"profile": 3}, TypeError, "profile"),
])
def test_bad_kwargs_are_named(kwargs, error, match):
    from tbn_env.env import TherapyEnv
    with pytest.raises(error, match=match):
        TherapyEnv(**{"action_mode": "scores", **kwargs})


def test_unknown_preset_and_bad_dmm_code():
    with pytest.raises(ValueError, match="unknown profile preset"):
        gym.make("Therapy-Scores-v0", profile="nobody").reset(seed=0)
    with pytest.raises(ValueError, match="DMM code"):
        ClientProfile(attachment="D9")


@pytest.mark.parametrize("env_id", NUMERIC_IDS)
def test_seeded_episodes_are_bit_identical(env_id):
    def run():
        env = gym.make(env_id, episode="treatment", max_turns=5, max_sessions=3)
        obs, _ = env.reset(seed=42)
        env.action_space.seed(7)
        out = [obs["tmog"]]
        for _ in range(15):
            obs, r, *_ = env.step(env.action_space.sample())
            out += [obs["tmog"], np.array([r, obs["affect"], obs["arousal"], obs["rupture_cue"]])]
        return out
    for a, b in zip(run(), run()):
        assert np.array_equal(a, b)


def test_render_modes():
    env = gym.make("Therapy-Interventions-v0", render_mode="ansi", max_turns=3)
    env.reset(seed=0)
    _, _, _, _, info = env.step(0)
    text = env.render()
    assert "stage 1" in text and "reward" in text and info["render"] == text
    pic = gym.make("Therapy-Interventions-v0", render_mode="rgb_array", max_turns=3)
    pic.reset(seed=0)
    for a in (0, 1, 2):
        pic.step(a)
    frame = pic.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 and frame.std() > 0


def test_get_state_set_state_resumes_the_same_trajectory():
    import pickle

    def tail(env, n):
        out = []
        for i in range(n):
            obs, r, *_ = env.step(i % 13)
            out += [obs["tmog"], np.array([r, obs["stance"], obs["affect"], obs["arousal"], obs["rupture_cue"]])]
        return out

    env = gym.make("Therapy-Interventions-v0", episode="treatment", max_turns=4, max_sessions=5)
    env.reset(seed=5)
    tail(env, 6)
    state = pickle.loads(pickle.dumps(env.unwrapped.get_state()))
    expected = tail(env, 9)
    other = gym.make("Therapy-Interventions-v0", episode="treatment", max_turns=4, max_sessions=5)
    other.reset(seed=99)
    other.unwrapped.set_state(state)
    for a, b in zip(expected, tail(other, 9)):
        assert np.array_equal(a, b)


def test_registered_specs_carry_a_time_limit_and_a_threshold():
    for env_id in ("Therapy-v0", *NUMERIC_IDS):
        assert gym.spec(env_id).max_episode_steps == tbn_env.MAX_EPISODE_STEPS == 20 * 20
    assert gym.spec("Therapy-v0").reward_threshold is None
    for env_id, threshold in tbn_env.REWARD_THRESHOLDS.items():
        assert gym.spec(env_id).reward_threshold == threshold


def test_the_vector_env_applies_the_time_limit_like_time_limit_does():
    kwargs = dict(episode="treatment", max_turns=3, max_sessions=4, max_episode_steps=5)
    single = gym.make("Therapy-Scores-v0", **kwargs)
    single.reset(seed=0)
    flags = [single.step(np.full(12, 5.0, np.float32))[2:4] for _ in range(5)]
    assert flags[-1] == (False, True) and not any(any(f) for f in flags[:-1])
    venv = gym.make_vec("Therapy-Scores-v0", num_envs=2, vectorization_mode="vector_entry_point", **kwargs)
    venv.reset(seed=0)
    for step in range(1, 6):
        _, _, terminated, truncated, _ = venv.step(np.full((2, 12), 5.0, np.float32))
        assert not terminated.any() and truncated.all() == (step == 5)


def test_a_sampled_clients_profile_is_the_one_its_seed_draws():
    """A sampled client's ClientProfile is made when `env.profile` is first read (a reset's info needs only its
    name): the profile `sample_profile` draws from the same seed, kept by get_state and set_state."""
    from tbn_env.profiles import sample_profile
    env = gym.make("Therapy-Scores-v0").unwrapped
    for seed in (4, 5):
        assert env.reset(seed=seed)[1]["profile"] == "sampled"
        assert env.profile == sample_profile(np.random.default_rng(seed))
    saved = env.get_state()
    env.reset(seed=6)
    _, info = env.reset(seed=7, options={"profile": "ruth_caregiver"})
    assert env.profile is PRESETS["ruth_caregiver"] and info["profile"] == "ruth_caregiver"
    env.set_state(saved)
    assert env.step(np.full(12, 5.0, np.float32))[4]["profile"] == "sampled"
    assert env.profile == sample_profile(np.random.default_rng(5))


def test_a_profile_whose_resistance_leaves_the_range_is_refused_at_reset():
    """The env's draws are loaded unchecked, but a hand-made profile listing a defence four times (BQ x 1.25^4 on
    top of its strategy's) is still refused, before the client in the env changes."""
    stubborn = ClientProfile(name="stubborn", attachment="A8", defenses=("intellectualization",) * 4)
    env = gym.make("Therapy-Scores-v0").unwrapped
    env.reset(seed=0)
    before = env.get_state()
    with pytest.raises(ValueError, match=r"initial bq_scale must be finite and within \[0.0, 3.0\]"):
        env.reset(seed=1, options={"profile": stubborn})
    after = env.get_state()["core"]
    assert all(np.array_equal(before["core"]["kernel"][k], after["kernel"][k]) for k in after["kernel"])
