"""A uniformly random therapist on Therapy-Interventions-v0: the baseline any policy should beat."""
import gymnasium as gym
import numpy as np

import tbn_env  # noqa: F401  (registers the environments)


def main(episodes: int = 5) -> None:
    env = gym.make("Therapy-Interventions-v0", render_mode="ansi", info_mode="debug")  # prints the hidden outcome
    for seed in range(episodes):
        obs, info = env.reset(seed=seed)
        total, terminated, truncated = 0.0, False, False
        while not (terminated or truncated):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            total += reward
        summary = info["session_summary"]
        print(f"client {seed} ({info['profile']}): return {total:7.1f}, phase reached {summary['phase_reached']}, "
              f"coiling {summary['coiling']:.3f}, TMoG attunement {summary['tmog_attunement']:.3f}")
    print(env.render())
    print("mean per-step reward is bounded by the composite (0-10) plus modifiers and transitions; "
          f"{np.round(total / 20, 2)} for the last client")


if __name__ == "__main__":
    main()
