"""TherapyVectorEnv: many clients stepped by one call of the batch kernel (numeric action modes).

Registered as the `vector_entry_point` of every Therapy id, like gymnasium's CartPoleVectorEnv, so
`gym.make_vec("Therapy-Scores-v0", num_envs=N, vectorization_mode="vector_entry_point")` uses it.
Autoreset follows gymnasium's modes: `autoreset_mode="next_step"` (the default: the step after an
episode ends resets that client, ignores its action and returns reward 0) or `"same_step"` (the
finished client is replaced in the same step; its last observation and info are in
`info["final_obs"]` / `info["final_info"]`), which torchrl and stable-baselines3 expect.
`reset(seed=s)` gives row i the client that sub-env i of `vectorization_mode="sync"` gets (seed s + i).
`info` holds the true coiling only with `observation_mode="full"` or `info_mode="debug"`, as in TherapyEnv.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.utils import seeding
from gymnasium.vector.utils import batch_space

from .dimensions import ACTION_SCALES, as_score_batch, unit_to_scores
from .env import DEFAULT_MAX_SESSIONS, EPISODES, INFO_MODES, OBSERVATION_MODES, _graph
from .interventions import CATALOGUE, response_at
from .params import Params
from .profiles import (SAMPLED, ClientProfile, DrawnClients, ProfileBatch, profile_draws, profiles_from_uniforms,
                       resolve_profile)
from .state import state_draws, stream_seeds
from .session_batch import SessionBatch, overlay, restrict
from .spaces import observation_space, row_of, scores_space


class TherapyVectorEnv(gym.vector.VectorEnv):
    """`num_envs` simulated clients in one BatchKernel; the same MDP as TherapyEnv in numeric modes."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, action_mode: str = "scores", observation_mode: str = "tmog",
                 episode: str = "session", max_turns: int = 20, max_sessions: int = DEFAULT_MAX_SESSIONS,
                 profile: str | ClientProfile | None = None, start_stage: int = 1, params: Params | None = None,
                 render_mode: str | None = None, info_mode: str = "default", action_scale: str = "score",
                 max_episode_steps: int | None = None,
                 autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP) -> None:
        if action_mode not in ("scores", "intervention"):
            raise ValueError(f"the vector env runs the numeric action modes 'scores' and 'intervention', "
                             f"got {action_mode!r}; use vectorization_mode='sync' for text")
        if observation_mode not in OBSERVATION_MODES or episode not in EPISODES or info_mode not in INFO_MODES:
            raise ValueError(f"observation_mode must be in {OBSERVATION_MODES}, episode in {EPISODES} and info_mode "
                             f"in {INFO_MODES}")
        if action_scale not in ACTION_SCALES or (action_scale == "unit" and action_mode != "scores"):
            raise ValueError(f"action_scale must be one of {ACTION_SCALES} ('unit' with action_mode='scores'), "
                             f"got {action_scale!r}")
        self.privileged_info = observation_mode == "full" or info_mode == "debug"
        self.numeric_info = info_mode == "numeric"   # numbers only, for torchrl
        if render_mode is not None:
            raise ValueError("the vector env does not render; use vectorization_mode='sync' with render_mode")
        if start_stage not in (1, 2, 3, 4) or num_envs < 1 or max_turns < 1 or max_sessions < 1:
            raise ValueError("need num_envs >= 1, max_turns >= 1, max_sessions >= 1 and start_stage in 1-4")
        modes = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP,
                 AutoresetMode.NEXT_STEP: AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP: AutoresetMode.SAME_STEP,
                 "NextStep": AutoresetMode.NEXT_STEP, "SameStep": AutoresetMode.SAME_STEP}
        if autoreset_mode not in modes:
            raise ValueError(f"autoreset_mode must be 'next_step' or 'same_step' (gymnasium's AutoresetMode), "
                             f"got {autoreset_mode!r}")
        self.autoreset_mode = modes[autoreset_mode]
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps!r}")
        self.max_episode_steps = max_episode_steps  # the registered time limit, as TimeLimit applies it to one env
        self.num_envs, self.action_mode, self.observation_mode, self.episode = num_envs, action_mode, \
            observation_mode, episode
        self.max_turns, self.max_sessions, self.start_stage, self.profile_spec = max_turns, max_sessions, \
            start_stage, profile
        self.params = params or Params()
        self.graph, compiled = _graph(self.params)
        self.batch = SessionBatch(num_envs, self.params, self.graph, compiled, episode=episode, max_turns=max_turns,
                                  max_sessions=max_sessions)
        self.kernel = self.batch.kernel
        self.action_scale = action_scale
        self.single_action_space = scores_space(action_scale) if action_mode == "scores" else \
            spaces.Discrete(len(CATALOGUE))
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.single_observation_space = observation_space(observation_mode, False, max_turns, max_sessions)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.episode_steps = np.zeros(num_envs, dtype=int)
        self.prev_done = np.zeros(num_envs, dtype=bool)
        self.profiles = np.full(num_envs, "", dtype=object)
        # per client, as in the single env: one generator draws the clients (and seeds the TMoG misreadings)
        self.client_rngs = [seeding.np_random()[0] for _ in range(num_envs)]

    @property
    def rupture(self) -> np.ndarray:
        """Which clients have a rupture open."""
        return self.batch.rupture

    # ------------------------------------------------------------------ reset
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Draw a client for every row (rows in `options["reset_mask"]` only, if given); seed s seeds row i with s + i."""
        mask = np.ones(self.num_envs, dtype=bool) if not options or "reset_mask" not in options \
            else self._mask(options["reset_mask"])
        if seed is not None:
            self.client_rngs = [seeding.np_random(seed + i)[0] for i in range(self.num_envs)]
        rows = np.flatnonzero(mask)
        self._reset_rows(rows)
        self.prev_done[mask] = False
        return self._observation(), restrict(self._reset_info(), mask)

    def _mask(self, reset_mask) -> np.ndarray:
        """`reset_mask` as num_envs booleans, checked before any row is reset."""
        mask = np.asarray(reset_mask)
        if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
            raise ValueError(f"reset_mask must be {self.num_envs} booleans (one per client), got {mask.dtype} "
                             f"{mask.shape}")
        return mask.copy()

    def _reset_rows(self, rows: np.ndarray) -> None:
        """New clients for `rows`, each drawn from its own generator in the single env's order (profile,
        starting state, the seeds of its TMoG misreadings and of its signals), all transformed at once."""
        sampled = self.profile_spec is None
        n_profile = profile_draws() if sampled else 0
        u = np.empty((len(rows), n_profile + state_draws(self.kernel.cg.n)))
        seeds = []
        for j, i in enumerate(rows.tolist()):
            rng = self.client_rngs[i]
            rng.random(out=u[j])   # the profile's uniforms, then the state's: the single env's two draws in one
            seeds.append(stream_seeds(rng))
        u_profile, u_state = u[:, :n_profile], u[:, n_profile:]
        if sampled:
            profiles, self.profiles[rows] = profiles_from_uniforms(u_profile), SAMPLED
        else:
            chosen = resolve_profile(self.profile_spec, self.client_rngs[0])
            profiles, self.profiles[rows] = ProfileBatch.of([chosen] * len(rows)), chosen.name
        clients = DrawnClients.of(profiles, u_state, self.start_stage, self.graph)
        self.batch.load_rows(rows, clients, [s[0] for s in seeds], [s[1] for s in seeds])
        self.episode_steps[rows] = 0

    # ------------------------------------------------------------------ step
    def step(self, actions):
        """Step every client; rows whose episode ended last step are reset instead."""
        step = self.batch.step(self._scores_for(actions), reuse=True)
        self.episode_steps += 1
        reward, terminated, truncated = step.reward.copy(), step.terminated.copy(), step.truncated.copy()
        if self.max_episode_steps is not None:
            truncated |= ~terminated & (self.episode_steps >= self.max_episode_steps)
        info = self.batch.info(self.profiles.copy(), self.privileged_info, step, numeric=self.numeric_info)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            rows = np.flatnonzero(self.prev_done)
            if rows.size:  # next-step autoreset: discard this step for them and draw new clients
                self._reset_rows(rows)
                reward[rows] = 0.0
                terminated[rows] = truncated[rows] = False
                info = overlay(info, rows, self._reset_info())
            self.prev_done = terminated | truncated
        done = terminated | truncated
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            rows = np.flatnonzero(done)
            last_obs = self._observation()
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in rows.tolist():
                final_obs[i] = row_of(last_obs, i)
            final_info = restrict(info, done)
            self._reset_rows(rows)
            info = overlay(info, rows, self._reset_info())
            info.update(final_obs=final_obs, _final_obs=done.copy(), final_info=final_info, _final_info=done.copy())
        return self._observation(), reward, terminated, truncated, info

    def _scores_for(self, actions) -> np.ndarray:
        if self.action_mode == "scores":
            return as_score_batch(unit_to_scores(actions) if self.action_scale == "unit" else actions, self.num_envs)
        a = np.asarray(actions)
        if a.shape != (self.num_envs,) or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"intervention actions must be {self.num_envs} integers, got {a.dtype} {a.shape}")
        return response_at(a, self.kernel, self.batch.rupture)

    # ------------------------------------------------------------------ observation and info
    def _observation(self) -> dict[str, np.ndarray]:
        return self.batch.observation(self.observation_mode)

    def _reset_info(self) -> dict[str, Any]:
        return self.batch.info(self.profiles.copy(), self.privileged_info, numeric=self.numeric_info)
