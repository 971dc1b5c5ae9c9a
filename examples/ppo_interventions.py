"""Train stable-baselines3 PPO on Therapy-Interventions-v0 and compare it with a random therapist.

Needs the `sb3` extra: pip install torch==2.13.0 && pip install -e .[sb3]
"""
import argparse

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FlattenObservation
from stable_baselines3 import PPO

import tbn_env  # noqa: F401
from tbn_env.interventions import NAMES


def evaluate(env, choose, seeds) -> float:
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        rng, total, done = np.random.default_rng(seed), 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(choose(obs, rng))
            total, done = total + reward, terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20_000, help="PPO environment steps")
    parser.add_argument("--start-stage", type=int, default=1, choices=[1, 2, 3, 4])
    args = parser.parse_args()
    make = lambda: FlattenObservation(gym.make("Therapy-Interventions-v0", start_stage=args.start_stage))  # noqa: E731
    model = PPO("MlpPolicy", make(), seed=0, n_steps=512, batch_size=128, learning_rate=1e-3, verbose=1)
    model.learn(total_timesteps=args.steps)
    held_out = range(10_000, 10_020)
    learned = evaluate(make(), lambda o, r: int(model.predict(o, deterministic=True)[0]), held_out)
    random = evaluate(make(), lambda o, r: int(r.integers(len(NAMES))), held_out)
    print(f"mean return on held-out clients: PPO {learned:.1f} vs random {random:.1f}")


if __name__ == "__main__":
    main()
