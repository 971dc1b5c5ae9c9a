"""TherapyVectorEnv: many clients stepped by one call of the batch kernel (numeric action modes).

Registered as the `vector_entry_point` of every Therapy id, like gymnasium's CartPoleVectorEnv, so
`gym.make_vec("Therapy-Scores-v0", num_envs=N, vectorization_mode="vector_entry_point")` uses it.
Autoreset follows gymnasium's default next-step mode: the step after an episode ends resets that
client, ignores its action and returns reward 0.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from .buckets import BUCKET_INDEX, BUCKETS, MALADAPTIVE
from .dimensions import ACTION_SCALES, DIM_INDEX, JUDGE_DIMENSIONS, as_score_batch, unit_to_scores
from .env import DEFAULT_MAX_SESSIONS, EPISODES, OBSERVATION_MODES, _graph
from .interventions import CATALOGUE, moment_of, response_scores
from .kernel import BatchKernel
from .params import LOW_THRESHOLD, Params
from .profiles import ClientProfile, resolve_profile
from .spaces import observation_space
from .stance import DEFENSE_DOMAIN, OVERWHELM_BUCKETS, StanceDetector, rupture_open, stance_signals


class TherapyVectorEnv(gym.vector.VectorEnv):
    """`num_envs` simulated clients in one BatchKernel; the same MDP as TherapyEnv in numeric modes."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, action_mode: str = "scores", observation_mode: str = "tmog",
                 episode: str = "session", max_turns: int = 20, max_sessions: int = DEFAULT_MAX_SESSIONS,
                 profile: str | ClientProfile | None = None, start_stage: int = 1, params: Params | None = None,
                 render_mode: str | None = None, action_scale: str = "score",
                 max_episode_steps: int | None = None) -> None:
        if action_mode not in ("scores", "intervention"):
            raise ValueError(f"the vector env runs the numeric action modes 'scores' and 'intervention', "
                             f"got {action_mode!r}; use vectorization_mode='sync' for text")
        if observation_mode not in OBSERVATION_MODES or episode not in EPISODES:
            raise ValueError(f"observation_mode must be in {OBSERVATION_MODES} and episode in {EPISODES}")
        if action_scale not in ACTION_SCALES or (action_scale == "unit" and action_mode != "scores"):
            raise ValueError(f"action_scale must be one of {ACTION_SCALES} ('unit' with action_mode='scores'), "
                             f"got {action_scale!r}")
        if render_mode is not None:
            raise ValueError("the vector env does not render; use vectorization_mode='sync' with render_mode")
        if start_stage not in (1, 2, 3, 4) or num_envs < 1 or max_turns < 1 or max_sessions < 1:
            raise ValueError("need num_envs >= 1, max_turns >= 1, max_sessions >= 1 and start_stage in 1-4")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps!r}")
        self.max_episode_steps = max_episode_steps  # the registered time limit, as TimeLimit applies it to one env
        self.num_envs, self.action_mode, self.observation_mode, self.episode = num_envs, action_mode, \
            observation_mode, episode
        self.max_turns, self.max_sessions, self.start_stage, self.profile_spec = max_turns, max_sessions, \
            start_stage, profile
        self.params = params or Params()
        self.graph, compiled = _graph(self.params)
        self.kernel = BatchKernel(num_envs, self.params, self.graph, compiled)
        cg = self.kernel.cg
        self._defense = np.array([self.graph.graph.nodes[n]["domain"] == DEFENSE_DOMAIN for n in cg.nodes])
        self._nodes = [cg.nodes.index("self_disclosure"), cg.engagement]
        self._surge = [BUCKET_INDEX[b] for b in OVERWHELM_BUCKETS]
        self.action_scale = action_scale
        low, high = (-1.0, 1.0) if action_scale == "unit" else (0.0, 10.0)
        self.single_action_space = spaces.Box(low, high, (len(JUDGE_DIMENSIONS),), np.float32) \
            if action_mode == "scores" else spaces.Discrete(len(CATALOGUE))
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.single_observation_space = observation_space(observation_mode, False, max_turns, max_sessions)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.stances = StanceDetector(self.params, num_envs)
        self.turn = np.zeros(num_envs, dtype=int)
        self.session = np.ones(num_envs, dtype=int)
        self.episode_steps = np.zeros(num_envs, dtype=int)
        self.rupture = np.zeros(num_envs, dtype=bool)
        self.prev_done = np.zeros(num_envs, dtype=bool)
        self.rng = np.random.default_rng()

    # ------------------------------------------------------------------ reset
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Draw a client for every row (rows in `options["reset_mask"]` only, if given)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        mask = np.ones(self.num_envs, dtype=bool) if not options or "reset_mask" not in options \
            else np.asarray(options["reset_mask"], dtype=bool)
        self._reset_rows(np.flatnonzero(mask))
        self.prev_done[mask] = False
        return self._observation(), self._info(mask)

    def _reset_rows(self, rows: np.ndarray) -> None:
        inits = [resolve_profile(self.profile_spec, self.rng).initial_state(self.rng, self.start_stage, self.graph,
                                                                            self.params) for _ in rows]
        self.kernel.load_rows(rows, inits)
        self.stances.start_session(rows)
        self.turn[rows] = 0
        self.session[rows] = 1
        self.episode_steps[rows] = 0
        self.rupture[rows] = False

    # ------------------------------------------------------------------ step
    def step(self, actions):
        """Step every client; rows whose episode ended last step are reset instead."""
        scores = self._scores_for(actions)
        k, b = self.kernel, self.num_envs
        alliance_before = k.cg.alliance(k.levels)
        att = scores[:, DIM_INDEX["attunement"]]
        noise = np.zeros((b, k.cg.n))
        low = att < LOW_THRESHOLD
        noise[low] = self.rng.standard_normal((int(low.sum()), k.cg.n))
        out = k.step(scores, noise)
        self.turn += 1
        self.episode_steps += 1
        reward = out.total.copy()
        ruptured = (low & (scores[:, DIM_INDEX["safety"]] < LOW_THRESHOLD)) | \
            (alliance_before - out.alliance >= self.params.rupture_alliance_drop)
        self._update_stances(att, out.bucket_change, ruptured)
        self.rupture = rupture_open(self.rupture, ruptured, scores[:, DIM_INDEX["repair"]])
        session_end = self.turn >= self.max_turns
        terminated = np.zeros(b, dtype=bool)
        truncated = np.zeros(b, dtype=bool)
        if session_end.any():
            rows = np.flatnonzero(session_end)
            _, stage_reward, complete = k.end_session(rows)
            reward[rows] += stage_reward
            self.stances.start_session(rows)
            self.turn[rows] = 0
            if self.episode == "session":
                terminated[rows] = True
            else:
                terminated[rows] = complete
                truncated[rows] = ~complete & (self.session[rows] >= self.max_sessions)
                self.session[rows] += 1
                self.rupture[rows] = False
        if self.max_episode_steps is not None:
            truncated |= ~terminated & (self.episode_steps >= self.max_episode_steps)
        resetting = np.flatnonzero(self.prev_done)
        if resetting.size:  # next-step autoreset: discard this step for them and draw new clients
            self._reset_rows(resetting)
            reward[resetting] = 0.0
            terminated[resetting] = truncated[resetting] = False
        self.prev_done = terminated | truncated
        info = self._info(np.ones(b, dtype=bool))
        info.update(reward_composite=out.composite, reward_modifiers=out.modifiers,
                    reward_phase_transition=out.phase_transition, reward_taie=out.taie,
                    _reward_composite=np.ones(b, bool), _reward_modifiers=np.ones(b, bool),
                    _reward_phase_transition=np.ones(b, bool), _reward_taie=np.ones(b, bool))
        return self._observation(), reward, terminated, truncated, info

    def _scores_for(self, actions) -> np.ndarray:
        if self.action_mode == "scores":
            return as_score_batch(unit_to_scores(actions) if self.action_scale == "unit" else actions, self.num_envs)
        a = np.asarray(actions)
        if a.shape != (self.num_envs,) or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"intervention actions must be {self.num_envs} integers, got {a.dtype} {a.shape}")
        return response_scores(a, moment_of(self.kernel, self.rupture))

    def _update_stances(self, attunement: np.ndarray, bucket_change: np.ndarray, ruptured: np.ndarray) -> None:
        k = self.kernel
        defense = k.pathology_now[:, self._defense].mean(axis=1)
        surge = np.maximum(bucket_change[:, self._surge], 0.0).sum(axis=1)
        self.stances.update_batch(stance_signals(k.levels[:, self._nodes[0]], k.levels[:, self._nodes[1]], defense,
                                                 k.buckets[:, BUCKET_INDEX["distrust"]], surge, attunement,
                                                 ruptured, self.params))

    # ------------------------------------------------------------------ observation and info
    def _observation(self) -> dict[str, np.ndarray]:
        k = self.kernel
        obs = {"tmog": k.tmog.astype(np.float32), "buckets": k.buckets.astype(np.float32),
               "phase": k.phase.copy(), "stage": k.stage - 1,
               "stance": self.stances.stance.copy(),
               "rupture": self.rupture.astype(np.int64), "turn": self.turn.copy(), "session": self.session.copy()}
        if self.observation_mode == "full":
            path = k.cg.pathology(k.levels)
            obs.update(levels=k.levels.astype(np.float32), loa=k.loa.astype(np.float32),
                       taie=np.column_stack([k.taie, k.transformation]).astype(np.float32),
                       readings=np.column_stack([k.cg.coiling(k.levels, path), k.cg.alliance(k.levels, path),
                                                 1.0 - np.abs(k.tmog - k.levels).mean(axis=1) / 10.0]
                                                ).astype(np.float32))
        return obs

    def _info(self, mask: np.ndarray) -> dict[str, np.ndarray]:
        k = self.kernel
        mal = len(MALADAPTIVE)
        values = {"stage": k.stage.copy(), "phase": k.phase.copy(), "coiling": k.cg.coiling(k.levels),
                  "maladaptive_mean": k.buckets[:, :mal].mean(axis=1),
                  "adaptive_mean": k.buckets[:, mal:len(BUCKETS)].mean(axis=1)}
        info: dict[str, np.ndarray] = {}
        for key, value in values.items():
            info[key] = value
            info[f"_{key}"] = mask.copy()
        return info
