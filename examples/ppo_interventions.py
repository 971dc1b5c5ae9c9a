"""Train stable-baselines3 PPO on Therapy-Interventions-v0 (or Therapy-Scores-v0) and compare it with the
reference policies on the same held-out clients: random, the best constant action and the state-aware
oracle (interventions) or the all-10 therapist (scores).

Needs the `sb3` extra: pip install torch==2.13.0 && pip install -e .[sb3]

    python examples/ppo_interventions.py --start-stage 4 --steps 50000
    python examples/ppo_interventions.py --scores --steps 20000   # Box(-1, 1) actions, action_scale="unit"
"""
import argparse

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

import tbn_env  # noqa: F401
from tbn_env import baselines

HELD_OUT_CLIENTS = 64


def scores_mode(steps: int, stage: int) -> None:
    """PPO on the 12 scores with the normalised Box: it learns to lift the scores toward 10."""
    kwargs = {"start_stage": stage, "action_scale": "unit"}
    model = PPO("MultiInputPolicy", make_vec_env("Therapy-Scores-v0", n_envs=8, seed=0, env_kwargs=kwargs), seed=0,
                n_steps=128, batch_size=256, learning_rate=1e-3, device="cpu")
    model.learn(total_timesteps=steps)

    def run(act) -> float:
        env = gym.make_vec("Therapy-Scores-v0", num_envs=HELD_OUT_CLIENTS, vectorization_mode="vector_entry_point",
                           **kwargs)
        obs, _ = env.reset(seed=baselines.EVAL_SEED)
        total = np.zeros(HELD_OUT_CLIENTS)
        for _ in range(20):
            obs, reward, *_ = env.step(act(obs))
            total += reward
        return float(total.mean())

    rng = np.random.default_rng(0)
    print(f"held-out return: PPO {run(lambda o: model.predict(o, deterministic=True)[0]):.1f}, "
          f"random {run(lambda o: rng.uniform(-1, 1, (HELD_OUT_CLIENTS, 12))):.1f}, "
          f"all-10 {run(lambda o: np.ones((HELD_OUT_CLIENTS, 12))):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50_000, help="PPO environment steps")
    parser.add_argument("--start-stage", type=int, default=4, choices=[1, 2, 3, 4])
    parser.add_argument("--scores", action="store_true", help="Therapy-Scores-v0 with action_scale='unit'")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.scores:
        return scores_mode(args.steps, args.start_stage)
    setting = f"stage{args.start_stage}"
    model, _ = baselines.train("ppo", setting, seed=0, steps=args.steps)
    learned = baselines.evaluate(setting, baselines.agent_policy(model, recurrent=False), HELD_OUT_CLIENTS,
                                 baselines.EVAL_SEED).mean()
    reference = baselines.reference_runs(setting, runs=1, clients=HELD_OUT_CLIENTS)
    best = max((k for k in reference if k.startswith("constant:")), key=lambda k: reference[k][0])
    print(f"held-out return: PPO {learned:.1f}, random {reference['random'][0]:.1f}, "
          f"best constant {reference[best][0]:.1f} ({best.split(':')[1]}), oracle {reference['oracle'][0]:.1f}")


if __name__ == "__main__":
    main()
