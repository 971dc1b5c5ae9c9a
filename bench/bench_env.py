"""Therapy-v0 step rates through gym.make for each action mode, against CartPole-v1 in the same run.

Prints a markdown table: steps/s and the share of CartPole's rate. Measured in a default process:
no thread settings, as a user's script runs.
Run: .venv/bin/python bench/bench_env.py
"""
import itertools
import time

import gymnasium as gym
import numpy as np

import tbn_env  # noqa: F401

STEPS = 4000   # per timing window
REPEATS = 3    # best of 3 windows
TEXT_TURN = ("<think>She is bracing; name it gently, no interpretation yet.</think>"
             "It sounds like part of you is still on guard here, and that makes sense. We can go slowly.")


_TURN_NUMBERS = itertools.count()


def new_reply(env) -> str:
    """TEXT_TURN with a new last sentence each step: a reply the judge has never read (as a policy's would be)."""
    return f"{TEXT_TURN} That was turn {next(_TURN_NUMBERS)}."


def rate(env_id: str, action, steps: int = STEPS, **kwargs) -> float:
    """Best-of-REPEATS steps per second, resetting when an episode ends (resets count as overhead)."""
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    env.action_space.seed(0)
    best = float("inf")
    for _ in range(REPEATS):
        t = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(action(env))
            if terminated or truncated:
                env.reset()
        best = min(best, time.perf_counter() - t)
    return steps / best


def vector_rate(num_envs: int = 1024, steps: int = 63) -> float:
    """Client-steps per second over 63 steps of 20-turn sessions: three autoresets of every client included."""
    envs = gym.make_vec("Therapy-Scores-v0", num_envs=num_envs, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    actions = np.random.default_rng(0).uniform(0, 10, (num_envs, 12)).astype(np.float32)
    t = time.perf_counter()
    for _ in range(steps):
        envs.step(actions)
    return steps * num_envs / (time.perf_counter() - t)


def main() -> None:
    cartpole = rate("CartPole-v1", lambda e: e.action_space.sample(), steps=4 * STEPS)
    rows = [("CartPole-v1 (yardstick)", cartpole),
            ("Therapy-Scores-v0", rate("Therapy-Scores-v0", lambda e: e.action_space.sample())),
            ("Therapy-Interventions-v0", rate("Therapy-Interventions-v0", lambda e: e.action_space.sample())),
            ("Therapy-v0 (text, rubric judge, template client)", rate("Therapy-v0", lambda e: TEXT_TURN, steps=1000)),
            ("Therapy-v0 (text, a new reply every step)", rate("Therapy-v0", new_reply, steps=1000)),
            ("Therapy-Scores-v0 x1024, vector_entry_point, with autoresets (client-steps/s)", vector_rate())]
    print("| env | steps/s | share of CartPole |")
    print("|---|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r:,.0f} | {r / cartpole:.1%} |")


if __name__ == "__main__":
    main()
