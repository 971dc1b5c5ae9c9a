"""Therapy-v0 step rates through gym.make for each action mode, against CartPole-v1 in the same run.

Prints a markdown table: steps/s and the share of CartPole's rate, with the actions drawn by
`action_space.sample()` inside the loop (a random agent's loop) and drawn beforehand (the env's own cost:
gymnasium's Box sample alone takes longer than a Therapy step's compiled turn). A do-nothing env with
Therapy-Scores-v0's spaces, returning a stored observation and info, shows the floor set by gymnasium itself. A
second table gives the microseconds of a reset (a new client) beside CartPole's.
Measured in a default process: no thread settings, as a user's script runs.
Run: .venv/bin/python bench/bench_env.py
"""
import itertools
import time

import gymnasium as gym
import numpy as np

import tbn_env  # noqa: F401

STEPS = 4000   # per timing window
REPEATS = 5    # best of 5 windows, taken in turns
VECTOR_ENVS, VECTOR_STEPS = 1024, 63  # 63 steps of 20-turn sessions: three autoresets of every client
RESETS = 3000  # per reset-timing window
EPISODE = 20   # the floor env's episode: a Therapy session's turns
TEXT_TURN = ("<think>She is bracing; name it gently, no interpretation yet.</think>"
             "It sounds like part of you is still on guard here, and that makes sense. We can go slowly.")

_TURN_NUMBERS = itertools.count()


def new_reply(env) -> str:
    """TEXT_TURN with a new last sentence each step, holding a word not seen before: a reply the judge has never
    read (as a policy's would be). A new number alone would not do: the rubric reads words, not digits."""
    return f"{TEXT_TURN} You said {_new_word(next(_TURN_NUMBERS))} there."


def _new_word(n: int) -> str:
    """The n-th word of letters: n written in base 26 with the digits a-z."""
    word = ""
    while True:
        n, digit = divmod(n, 26)
        word = "abcdefghijklmnopqrstuvwxyz"[digit] + word
        if not n:
            return word


class Floor(gym.Env):
    """Therapy-Scores-v0's spaces and one stored step's observation and info (copied per step), nothing else."""

    def __init__(self) -> None:
        therapy = gym.make("Therapy-Scores-v0")
        self.observation_space, self.action_space = therapy.observation_space, therapy.action_space
        self._reset = therapy.reset(seed=0)
        self._step = therapy.step(therapy.action_space.sample())
        self.turn = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.turn = 0
        return _fresh(self._reset[0]), _fresh(self._reset[1])

    def step(self, action):
        self.turn += 1
        obs, reward, _, _, info = self._step
        return _fresh(obs), reward, False, self.turn >= EPISODE, _fresh(info)


def _fresh(tree: dict) -> dict:
    """A copy of an observation or info with new containers and arrays (gymnasium checks none is shared)."""
    return {k: _fresh(v) if isinstance(v, dict) else v.copy() if isinstance(v, (np.ndarray, list)) else v
            for k, v in tree.items()}


def step_window(env_id: str, action, steps: int = STEPS, drawn_before: bool = False, **kwargs):
    """A timer of one window of `steps` steps (seconds), resetting when an episode ends (resets count as overhead).

    `action(env)` gives each step's action; `drawn_before` draws them all before the clock starts."""
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    env.action_space.seed(0)

    def window() -> float:
        actions = [action(env) for _ in range(steps)] if drawn_before else None
        t = time.perf_counter()
        if drawn_before:
            for a in actions:
                _, _, terminated, truncated, _ = env.step(a)
                if terminated or truncated:
                    env.reset()
        else:
            for _ in range(steps):
                _, _, terminated, truncated, _ = env.step(action(env))
                if terminated or truncated:
                    env.reset()
        return time.perf_counter() - t
    return window


def vector_window(num_envs: int = VECTOR_ENVS, steps: int = VECTOR_STEPS):
    """A timer of one window of `steps` steps over `num_envs` clients, with autoresets."""
    envs = gym.make_vec("Therapy-Scores-v0", num_envs=num_envs, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    actions = np.random.default_rng(0).uniform(0, 10, (num_envs, 12)).astype(np.float32)

    def window() -> float:
        t = time.perf_counter()
        for _ in range(steps):
            envs.step(actions)
        return time.perf_counter() - t
    return window


def reset_window(env_id: str, resets: int = RESETS):
    """A timer of `resets` resets of the unwrapped env, each a new client (the env's own cost: gymnasium's wrappers
    left out)."""
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)

    def window() -> float:
        t = time.perf_counter()
        for _ in range(resets):
            env.reset()
        return time.perf_counter() - t
    return window


def shortest(windows: list) -> list[float]:
    """Each timer's shortest of REPEATS windows, the timers taking turns window by window, so that every row's best
    comes from the same minutes as the yardstick's (a machine whose speed drifts moves all rows alike)."""
    best = [float("inf")] * len(windows)
    for _ in range(REPEATS):
        for i, window in enumerate(windows):
            best[i] = min(best[i], window())
    return best


def main() -> None:
    gym.register("TherapyFloor-v0", entry_point=Floor)
    sample = lambda e: e.action_space.sample()  # noqa: E731
    cases = (("CartPole-v1 (yardstick)", "CartPole-v1", sample, 4 * STEPS),
             ("floor: Therapy-Scores-v0's spaces, a stored step, nothing else", "TherapyFloor-v0", sample, 4 * STEPS),
             ("Therapy-Scores-v0", "Therapy-Scores-v0", sample, STEPS),
             ("Therapy-Interventions-v0", "Therapy-Interventions-v0", sample, STEPS),
             ("Therapy-v0 (text, rubric judge, template client), one fixed reply", "Therapy-v0",
              lambda e: TEXT_TURN, 1000),
             ("Therapy-v0 (text), a new reply every step", "Therapy-v0", new_reply, 1000))
    windows = [step_window(env_id, action, steps, drawn_before)
               for drawn_before in (False, True) for _, env_id, action, steps in cases]
    windows.append(vector_window())
    resetting = ("CartPole-v1", "Therapy-Scores-v0", "Therapy-Interventions-v0")
    windows += [reset_window(env_id) for env_id in resetting]
    seconds = shortest(windows)
    steps = [case[3] for case in cases]
    in_loop = [n / s for n, s in zip(steps, seconds[:len(cases)])]
    before = [n / s for n, s in zip(steps, seconds[len(cases):2 * len(cases)])]
    vector = VECTOR_STEPS * VECTOR_ENVS / seconds[2 * len(cases)]
    resets = [s / RESETS * 1e6 for s in seconds[2 * len(cases) + 1:]]
    print("| env | steps/s, `sample()` in the loop | share of CartPole | steps/s, actions drawn before | "
          "share of CartPole |")
    print("|---|---:|---:|---:|---:|")
    for (name, *_), r, b in zip(cases, in_loop, before):
        print(f"| {name} | {r:,.0f} | {r / in_loop[0]:.1%} | {b:,.0f} | {b / before[0]:.1%} |")
    print(f"| Therapy-Scores-v0 x1024, vector_entry_point, with autoresets (client-steps/s) | {vector:,.0f} | "
          f"{vector / in_loop[0]:.1%} | | |")
    print("\n| env | µs per reset (`env.unwrapped.reset()`, a new client) | × CartPole |")
    print("|---|---:|---:|")
    for env_id, us in zip(resetting, resets):
        print(f"| {env_id} | {us:.1f} | {us / resets[0]:.0f} |")


if __name__ == "__main__":
    main()
