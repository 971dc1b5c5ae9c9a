"""Classic RL can learn Therapy-Interventions-v0: SB3 PPO beats a uniformly random policy (issue 3)."""
import gymnasium as gym
import numpy as np
import pytest

import tbn_env  # noqa: F401

PPO_STEPS = 4096        # a few thousand steps: seconds on CI
HELD_OUT = range(1000, 1012)


def episode_return(env, policy, seed: int) -> float:
    obs, _ = env.reset(seed=seed)
    rng, total = np.random.default_rng(seed), 0.0
    while True:
        obs, reward, terminated, truncated, _ = env.step(policy(obs, rng))
        total += reward
        if terminated or truncated:
            return total


@pytest.mark.slow
def test_ppo_beats_random_on_held_out_clients(tmp_path):
    sb3 = pytest.importorskip("stable_baselines3")
    import torch
    from gymnasium.wrappers import FlattenObservation
    from stable_baselines3.common.logger import configure

    torch.set_num_threads(1)
    env = FlattenObservation(gym.make("Therapy-Interventions-v0"))
    model = sb3.PPO("MlpPolicy", env, seed=0, n_steps=512, batch_size=128, learning_rate=1e-3, device="cpu")
    model.set_logger(configure(str(tmp_path), []))  # keep SB3's log folder out of the system temp dir
    model.learn(total_timesteps=PPO_STEPS)
    eval_env = FlattenObservation(gym.make("Therapy-Interventions-v0"))
    learned = np.mean([episode_return(eval_env, lambda o, r: int(model.predict(o, deterministic=True)[0]), s)
                       for s in HELD_OUT])
    random = np.mean([episode_return(eval_env, lambda o, r: int(r.integers(13)), s) for s in HELD_OUT])
    assert learned > random + 40.0, (learned, random)
