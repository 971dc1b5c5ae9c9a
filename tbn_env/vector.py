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

from .buckets import BUCKET_INDEX, BUCKETS, MALADAPTIVE
from .dimensions import ACTION_SCALES, DIM_INDEX, JUDGE_DIMENSIONS, as_score_batch, unit_to_scores
from .env import DEFAULT_MAX_SESSIONS, EPISODES, INFO_MODES, OBSERVATION_MODES, _graph
from .interventions import CATALOGUE, moment_of, response_scores
from .kernel import BatchKernel
from .params import LOW_THRESHOLD, Params
from .profiles import ClientProfile, resolve_profile
from .signals import Signals, express, signal_rng
from .spaces import observation_space, observe_batch
from .stance import DEFENSE_DOMAIN, OVERWHELM_BUCKETS, StanceDetector, rupture_open, stance_signals


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
        # per client, as in the single env: one generator draws the clients, one the TMoG misreadings
        self.client_rngs = [seeding.np_random()[0] for _ in range(num_envs)]
        self.noise_rngs = [np.random.default_rng() for _ in range(num_envs)]
        self.signal_rngs = [np.random.default_rng() for _ in range(num_envs)]
        self.signals = Signals.empty(num_envs)

    # ------------------------------------------------------------------ reset
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Draw a client for every row (rows in `options["reset_mask"]` only, if given); seed s seeds row i with s + i."""
        mask = np.ones(self.num_envs, dtype=bool) if not options or "reset_mask" not in options \
            else self._mask(options["reset_mask"])
        if seed is not None:
            self.client_rngs = [seeding.np_random(seed + i)[0] for i in range(self.num_envs)]
        self._reset_rows(np.flatnonzero(mask))
        self.prev_done[mask] = False
        return self._observation(), self._info(mask)

    def _mask(self, reset_mask) -> np.ndarray:
        """`reset_mask` as num_envs booleans, checked before any row is reset."""
        mask = np.asarray(reset_mask)
        if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
            raise ValueError(f"reset_mask must be {self.num_envs} booleans (one per client), got {mask.dtype} "
                             f"{mask.shape}")
        return mask.copy()

    def _reset_rows(self, rows: np.ndarray) -> None:
        inits = []
        for i in rows.tolist():  # the single env's draw order: profile, initial state, noise seed, signal seed
            rng = self.client_rngs[i]
            inits.append(resolve_profile(self.profile_spec, rng).initial_state(rng, self.start_stage, self.graph,
                                                                                self.params))
            self.noise_rngs[i] = np.random.default_rng(int(rng.integers(2**63)))
            self.signal_rngs[i] = signal_rng(rng)
        self.kernel.load_rows(rows, inits)
        self.stances.start_session(rows)
        self.turn[rows] = 0
        self.session[rows] = 1
        self.episode_steps[rows] = 0
        self.rupture[rows] = False
        self.signals = express(self.signals, rows, self.kernel, False, self.signal_rngs)

    # ------------------------------------------------------------------ step
    def step(self, actions):
        """Step every client; rows whose episode ended last step are reset instead."""
        scores = self._scores_for(actions)
        k, b = self.kernel, self.num_envs
        alliance_before = k.cg.alliance(k.levels)
        att = scores[:, DIM_INDEX["attunement"]]
        noise = np.zeros((b, k.cg.n))
        low = att < LOW_THRESHOLD
        for i in np.flatnonzero(low):
            noise[i] = self.noise_rngs[i].standard_normal(k.cg.n)
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
        stage_reward = np.zeros(b)
        if session_end.any():
            rows = np.flatnonzero(session_end)
            _, stage_reward[rows], complete = k.end_session(rows)
            reward[rows] += stage_reward[rows]
            self.stances.start_session(rows)
            self.turn[rows] = 0
            if self.episode == "session":
                terminated[rows] = True
            else:
                terminated[rows] = complete
                truncated[rows] = ~complete & (self.session[rows] >= self.max_sessions)
                going_on = rows[~(terminated[rows] | truncated[rows])]  # as the single env: a finished
                self.session[going_on] += 1                             # episode keeps its last view
                self.rupture[going_on] = False
        self.signals = express(self.signals, np.arange(b), k, ruptured, self.signal_rngs)
        parts = {"reward_composite": out.composite, "reward_modifiers": out.modifiers,
                 "reward_phase_transition": out.phase_transition, "reward_stage_transition": stage_reward,
                 "reward_taie": out.taie}
        if self.max_episode_steps is not None:
            truncated |= ~terminated & (self.episode_steps >= self.max_episode_steps)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            resetting = np.flatnonzero(self.prev_done)
            if resetting.size:  # next-step autoreset: discard this step for them and draw new clients
                self._reset_rows(resetting)
                reward[resetting] = 0.0
                for value in parts.values():
                    value[resetting] = 0.0
                terminated[resetting] = truncated[resetting] = False
            self.prev_done = terminated | truncated
        every = np.ones(b, dtype=bool)
        info = self._info(every)
        for key, value in parts.items():  # the parts add up to the reward
            info[key], info[f"_{key}"] = value, every
        done = terminated | truncated
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            rows = np.flatnonzero(done)
            last_obs = self._observation()
            final_obs = np.full(b, None, dtype=object)
            for i in rows:
                final_obs[i] = {key: value[i] for key, value in last_obs.items()}
            final_info = {key: (value.copy() if key.startswith("_") else value) for key, value in info.items()}
            for key in final_info:
                if key.startswith("_"):
                    final_info[key] &= done
            self._reset_rows(rows)
            info.update(self._info(every))  # the new clients' readings
            info.update(final_obs=final_obs, _final_obs=done.copy(), final_info=final_info, _final_info=done.copy())
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
        return observe_batch(self.kernel, self.stances.stance, self.rupture, self.turn, self.session,
                             self.observation_mode, self.signals)

    def _info(self, mask: np.ndarray) -> dict[str, np.ndarray]:
        k = self.kernel
        mal = len(MALADAPTIVE)
        values = {"stage": k.stage.copy(), "phase": k.phase.copy(), "stance": self.stances.stance.copy(),
                  **({"coiling": k.cg.coiling(k.levels)} if self.privileged_info else {}),
                  "maladaptive_mean": k.buckets[:, :mal].mean(axis=1),
                  "adaptive_mean": k.buckets[:, mal:len(BUCKETS)].mean(axis=1)}
        info: dict[str, np.ndarray] = {}
        for key, value in values.items():
            info[key] = value
            info[f"_{key}"] = mask.copy()
        return info
