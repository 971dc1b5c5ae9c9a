"""stable-baselines3 PPO on Therapy-Interventions-v0: the native batch against SB3's default way, one run.

`TherapyVecEnv(64)` (one compiled kernel call per step) against `DummyVecEnv` of 8 single envs (SB3's
`make_vec_env` default way), same PPO hyper-parameters, same number of environment steps, best of 5 runs
each, the runs taking turns. Measured in a default process. Prints a markdown table of environment steps per second (PPO's updates included),
and the same envs stepped alone with random moves (the env's own part of a run). The ceiling row is PPO on a
do-nothing VecEnv with the same spaces (a stored step, copied): its updates and policy forward alone, the rate
no env can beat.
Run: .venv/bin/python bench/bench_sb3.py
"""
import time

import numpy as np

from gymnasium.wrappers import FlattenObservation
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

import tbn_env  # noqa: F401
from tbn_env.sb3 import make_vec_env

STEPS = 8_192    # environment steps per run (PPO updates included)
N_STEPS = 256    # PPO rollout length per env
REPEATS = 5      # best of 5 runs, taken in turns: this shared machine's speed drifts between runs


def ppo_run(make_env, n_envs: int):
    """A timer of one PPO run on a new `make_env()`: its environment steps per second."""
    def run() -> float:
        env = make_env()
        policy = "MultiInputPolicy" if hasattr(env.observation_space, "spaces") else "MlpPolicy"
        # the same rollout size (2,048 steps) and minibatches for every env layout
        model = PPO(policy, env, n_steps=N_STEPS * 8 // n_envs, batch_size=256, seed=0, device="cpu", verbose=0)
        t = time.perf_counter()
        model.learn(total_timesteps=STEPS)
        return model.num_timesteps / (time.perf_counter() - t)
    return run


def fastest(runs: list) -> list[float]:
    """Each run's best of REPEATS, the runs taking turns, so that every row's best comes from the same minutes (a
    machine whose speed drifts moves all rows alike)."""
    best = [0.0] * len(runs)
    for _ in range(REPEATS):
        for i, run in enumerate(runs):
            best[i] = max(best[i], run())
    return best


class FloorVecEnv(VecEnv):
    """`TherapyVecEnv`'s spaces and one stored step (copied per step), nothing else: PPO's rate with an env that
    costs nothing, the ceiling of any env's."""

    def __init__(self, n_envs: int) -> None:
        therapy = make_vec_env("Therapy-Interventions-v0", n_envs=n_envs, seed=0)
        super().__init__(n_envs, therapy.observation_space, therapy.action_space)
        self._obs = therapy.reset()
        self._step = therapy.step(np.zeros(n_envs, dtype=np.int64))

    def reset(self):
        return {key: value.copy() for key, value in self._obs.items()}

    def step_async(self, actions) -> None:
        pass

    def step_wait(self):
        obs, reward, done, infos = self._step
        return ({key: value.copy() for key, value in obs.items()}, reward.copy(), done.copy(),
                [dict(info) for info in infos])

    def close(self) -> None:
        pass

    def get_attr(self, attr_name, indices=None) -> list[None]:
        return [None] * len(self._get_indices(indices))   # nothing is set: e.g. no render_mode

    def set_attr(self, attr_name, value, indices=None) -> None:
        raise AttributeError(attr_name)

    def env_method(self, method_name, *args, indices=None, **kwargs):
        raise AttributeError(method_name)

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * self.num_envs


def stepping(make_env, n_envs: int, steps: int = STEPS):
    """A timer of `steps` environment steps of random moves, no PPO (the env's own part of a run): steps per
    second."""
    env = make_env()
    env.reset()
    moves = np.random.default_rng(0).integers(0, 13, (steps // n_envs, n_envs))

    def run() -> float:
        t = time.perf_counter()
        for move in moves:
            env.step(move)
        return steps / (time.perf_counter() - t)
    return run


def main() -> None:
    for env in (make_vec_env("Therapy-Interventions-v0", n_envs=1, seed=0),   # compile (or load) the numba code first:
                sb3_make_vec_env("Therapy-Interventions-v0", n_envs=1, seed=0)):   # its one-off cost is not a rate
        env.reset()
        env.step(np.zeros(1, dtype=np.int64))
    dummy, flat, native, floor, alone, batch = fastest([
        ppo_run(lambda: sb3_make_vec_env("Therapy-Interventions-v0", n_envs=8, seed=0), 8),
        ppo_run(lambda: sb3_make_vec_env("Therapy-Interventions-v0", n_envs=8, seed=0,
                                         wrapper_class=FlattenObservation), 8),
        ppo_run(lambda: VecMonitor(make_vec_env("Therapy-Interventions-v0", n_envs=64, seed=0)), 64),
        ppo_run(lambda: VecMonitor(FloorVecEnv(64)), 64),
        stepping(lambda: sb3_make_vec_env("Therapy-Interventions-v0", n_envs=8, seed=0), 8),
        stepping(lambda: make_vec_env("Therapy-Interventions-v0", n_envs=64, seed=0), 64)])
    print("| PPO on Therapy-Interventions-v0 | env steps/s | x DummyVecEnv(8) |")
    print("|---|---:|---:|")
    print(f"| DummyVecEnv of 8 single envs (SB3 default way), MultiInputPolicy | {dummy:,.0f} | 1.0 |")
    print(f"| DummyVecEnv of 8 single envs + FlattenObservation, MlpPolicy | {flat:,.0f} | {flat / dummy:.2f} |")
    print(f"| `tbn_env.sb3.TherapyVecEnv(64)`, MultiInputPolicy | {native:,.0f} | {native / dummy:.2f} |")
    print(f"| ceiling: a do-nothing VecEnv(64) with the same spaces (PPO's own work alone) | {floor:,.0f} | "
          f"{floor / dummy:.2f} |")
    print(f"| stepping alone (random moves, no PPO): DummyVecEnv(8) | {alone:,.0f} | 1.0 |")
    print(f"| stepping alone: `TherapyVecEnv(64)` | {batch:,.0f} | {batch / alone:.2f} |")


if __name__ == "__main__":
    main()
