"""stable-baselines3 on the native batch: a `VecEnv` over `TherapyVectorEnv` (needs the `sb3` extra).

SB3 steps its vectorised envs through `VecEnv`; `DummyVecEnv` and `SubprocVecEnv` step single envs one
by one. `TherapyVecEnv` hands SB3 the whole batch at once: one call of the compiled batch kernel per
step, same-step autoreset with `terminal_observation` and `TimeLimit.truncated` in the infos, as SB3
expects (each info holds the step's reward terms `reward_<term>`, from the numeric info), and the usual
`seed` / `get_attr` / `set_attr` / `env_method`. `VecNormalize` and `VecMonitor`
wrap it like any VecEnv::

    from tbn_env.sb3 import make_vec_env
    env = make_vec_env("Therapy-Interventions-v0", n_envs=64, seed=0)
    PPO("MultiInputPolicy", env).learn(100_000)
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from .vector import TherapyVectorEnv

def _columns(info: dict[str, Any]) -> dict[str, np.ndarray]:
    """The numeric info's per-client values (`info_mode="numeric"`), each key but the scores."""
    return {key: value for key, value in info.items() if not key.startswith("_") and key != "scores"}


class TherapyVecEnv(VecEnv):
    """SB3's VecEnv interface over one `TherapyVectorEnv` of `num_envs` clients (numeric action modes)."""

    def __init__(self, num_envs: int, **env_kwargs: Any) -> None:
        if "info_mode" in env_kwargs:
            raise ValueError("TherapyVecEnv reports the numeric info (the reward terms; the hidden readings with "
                             "observation_mode='full'): drop info_mode")
        self.vector = TherapyVectorEnv(num_envs, autoreset_mode=AutoresetMode.SAME_STEP, info_mode="numeric",
                                       **env_kwargs)
        super().__init__(num_envs, self.vector.single_observation_space, self.vector.single_action_space)
        self._actions: np.ndarray | None = None

    # ------------------------------------------------------------------ the VecEnv protocol
    def reset(self):
        """Draw every client; after `seed(s)`, client i is drawn from seed s + i (SB3's convention)."""
        obs, _ = self.vector.reset(seed=self._seeds[0])
        self._reset_seeds()  # a seed applies to the next reset only, as in SB3's own VecEnvs
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_wait() needs a step_async(actions) first")
        actions, self._actions = self._actions, None
        if self.vector.action_mode == "intervention":
            actions = actions.reshape(self.num_envs).astype(np.int64)
        obs, reward, terminated, truncated, info = self.vector.step(actions)
        done = terminated | truncated
        columns = _columns(info)
        if done.any():   # a finished client's info is its last step's, as DummyVecEnv reports it
            columns = {key: np.where(done, final, columns[key]) for key, final in _columns(info["final_info"]).items()}
        keys = tuple(columns)
        infos: list[dict[str, Any]] = [dict(zip(keys, row)) for row in zip(*(c.tolist() for c in columns.values()))]
        for i in np.flatnonzero(done):
            infos[i]["terminal_observation"] = info["final_obs"][i]
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, reward.astype(np.float32), done, infos

    def close(self) -> None:
        self.vector.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.vector, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.vector, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        method = getattr(self.vector, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


def make_vec_env(env_id: str, n_envs: int = 64, seed: int | None = None, **env_kwargs: Any) -> TherapyVecEnv:
    """`TherapyVecEnv` for a registered Therapy id (numeric action modes), seeded like SB3's `make_vec_env`."""
    modes = {"Therapy-Scores-v0": "scores", "Therapy-Interventions-v0": "intervention"}
    if env_id not in modes:
        raise ValueError(f"the native batch runs {sorted(modes)}, got {env_id!r}; use SB3's make_vec_env for text")
    env = TherapyVecEnv(n_envs, action_mode=modes[env_id], **env_kwargs)
    env.seed(seed)
    return env
