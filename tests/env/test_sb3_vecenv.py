"""stable-baselines3 on the native batch (`tbn_env.sb3`), and the vector env's autoreset and seeding."""
import gymnasium as gym
import numpy as np
import pytest

import tbn_env  # noqa: F401
from tbn_env.vector import TherapyVectorEnv

sb3 = pytest.importorskip("stable_baselines3")


def test_sb3_accepts_the_batch_as_a_vecenv_and_trains_ppo_and_a2c(tmp_path):
    import torch
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    from tbn_env.sb3 import make_vec_env

    torch.set_num_threads(1)
    env = VecNormalize(VecMonitor(make_vec_env("Therapy-Interventions-v0", n_envs=16, seed=0)),
                       norm_obs_keys=["tmog"])
    for algo in (sb3.PPO, sb3.A2C):
        model = algo("MultiInputPolicy", env, seed=0, n_steps=32, device="cpu")
        model.set_logger(configure(str(tmp_path), []))
        model.learn(total_timesteps=16 * 32 * 2)
        assert model.num_timesteps >= 16 * 32 * 2
    assert len(model.ep_info_buffer) > 0  # VecMonitor saw whole sessions end


def test_terminal_observation_and_truncation_flags_reach_sb3():
    from tbn_env.sb3 import make_vec_env

    env = make_vec_env("Therapy-Scores-v0", n_envs=3, seed=5, max_turns=2)
    first = env.reset()
    env.step_async(np.full((3, 12), 8.0, dtype=np.float32))
    env.step_wait()
    env.step_async(np.full((3, 12), 8.0, dtype=np.float32))
    obs, reward, done, infos = env.step_wait()
    assert done.all() and reward.dtype == np.float32
    for i, info in enumerate(infos):
        terminal = info["terminal_observation"]
        assert set(terminal) == set(first)
        assert not np.array_equal(terminal["tmog"], obs["tmog"][i])   # the finished client, not the new one
        assert not np.array_equal(obs["tmog"][i], first["tmog"][i])   # a new client took its place
        assert info["TimeLimit.truncated"] is False                     # a session ends by termination


def test_seed_gives_client_i_the_seed_plus_i_client_of_sb3_and_of_sync_mode():
    from tbn_env.sb3 import make_vec_env

    a = make_vec_env("Therapy-Scores-v0", n_envs=4, seed=11).reset()
    sync = gym.make_vec("Therapy-Scores-v0", num_envs=4, vectorization_mode="sync")
    b, _ = sync.reset(seed=11)
    np.testing.assert_array_equal(a["tmog"], b["tmog"])
    np.testing.assert_array_equal(a["affect"], b["affect"])
    np.testing.assert_array_equal(a["arousal"], b["arousal"])


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_reward_parts_add_up_to_the_reward_through_stage_changes_and_resets(mode):
    env = TherapyVectorEnv(4, episode="treatment", max_turns=5, max_sessions=3, start_stage=3, autoreset_mode=mode)
    env.reset(seed=0)
    parts = ("reward_composite", "reward_modifiers", "reward_phase_transition", "reward_stage_transition",
             "reward_taie")
    stage_terms = 0.0
    for _ in range(40):
        _, reward, _, _, info = env.step(np.full((4, 12), 1.0, dtype=np.float32))  # harm: stage 3 is lost
        np.testing.assert_allclose(sum(info[p] for p in parts), reward, atol=1e-9)
        stage_terms += np.abs(info["reward_stage_transition"]).sum()
        assert "stance" in info
    assert stage_terms > 0  # a stage was lost on the way, and its -150 was counted


def test_same_step_autoreset_is_declared_and_reports_the_final_observation():
    env = TherapyVectorEnv(2, max_turns=1, autoreset_mode="same_step")
    assert env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    env.reset(seed=1)
    _, _, terminated, _, info = env.step(np.full((2, 12), 7.0, dtype=np.float32))
    assert terminated.all() and info["_final_obs"].all() and set(info["final_obs"][0]) == set(env.single_observation_space)
    assert info["_final_info"].all() and "reward_composite" in info["final_info"]


def test_an_unknown_autoreset_mode_is_refused():
    with pytest.raises(ValueError, match="autoreset_mode"):
        TherapyVectorEnv(2, autoreset_mode="disabled")
