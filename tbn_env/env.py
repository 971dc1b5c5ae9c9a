"""Therapy-v0: the Teaching-by-Negation therapy MDP as a Gymnasium environment (§9.3)."""
from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .buckets import ADAPTIVE, MALADAPTIVE
from .dimensions import ACTION_SCALES, JUDGE_DIMENSIONS, unit_to_scores
from .graph import ClientGraph
from .interventions import CATALOGUE, NAMES, response_at
from .kernel import CompiledGraph
from .params import Params
from .profiles import (SAMPLED, ClientProfile, DrawnClients, ProfileBatch, profile_draws, profiles_from_uniforms,
                       resolve_profile)
from .state import state_draws, stream_seeds
from .protocols import Client, ClientTurn, ClientView, DialogueTurn, Judge, JudgeContext, JudgeResult
from .session import SessionCore, TurnResult
from .session_batch import EPISODES, BatchStep
from .session_judge import judge_full_session
from .tmog import largest_first
from .spaces import MAX_ACTION_CHARS, observation_space, printable, scores_space, text_space
from .turn_format import parse_therapist_turn

ACTION_MODES = ("text", "scores", "intervention")
TAIE_MODES = ("lightweight", "full")  # §9.3.4
OBSERVATION_MODES = ("tmog", "full")
INFO_MODES = ("default", "debug", "numeric")
# an excellent therapist completes a stage-1 treatment in ~14 sessions (course table); room for a noisy one
DEFAULT_MAX_SESSIONS = 20
HISTORY_TURNS = 12      # dialogue turns a judge or client sees (the last 12 verbatim)
SALIENT_NODES = 8       # most pathological nodes named to the client
DOMINANT_BUCKETS = 3    # top maladaptive and adaptive reservoirs named to the client
_DIMENSION_NAMES = frozenset(JUDGE_DIMENSIONS)


@lru_cache(maxsize=8)
def _graph(params: Params) -> tuple[ClientGraph, CompiledGraph]:
    """The ClientGraph and its compiled form, built once per Params and shared by every env."""
    graph = ClientGraph.default(params)
    return graph, CompiledGraph(graph)


class TherapyEnv(gym.Env):
    """A simulated psychotherapy client whose inner state responds to the therapist's turns.

    ## Description
    Each episode is a therapy session (or a whole treatment) with one simulated client, after the
    Teaching-by-Negation environment of §9.3. The client's state is a 142-node ClientGraph, 8+8
    affective buckets, 7 Levels of Adaptation, 3 TAIE axes, an in-session phase (A Defended, B Opening,
    C Core Access, D Integration) and a treatment stage (1 Foundation ... 4 Termination). Every
    therapist turn is scored on 12 judge dimensions, and those scores drive the dynamics (§9.3.14.2).

    ## Action Space
    By `action_mode`:
    - `"text"` (Therapy-v0): the therapist's turn as a string, `Text(4096)`. An optional hidden
      thought goes first in `<think>...</think>`; the rest is what is said. A dict
      `{"thought": str, "utterance": str}` is accepted too. A Judge (default: the offline rubric
      judge) scores it.
    - `"scores"` (Therapy-Scores-v0): the 12 judge scores themselves, `Box(0, 10, (12,))`, in the
      order of `tbn_env.JUDGE_DIMENSIONS`; with `action_scale="unit"`, `Box(-1, 1, (12,))` mapped
      linearly to 0-10 (what stable-baselines3's policies expect).
    - `"intervention"` (Therapy-Interventions-v0): `Discrete(13)` over `tbn_env.interventions.NAMES`
      (validation, reflection, grounding, interpretation, rupture repair, boundary setting,
      psychoeducation, somatic tracking, attentive silence, challenge, meaning-making, tender
      witnessing, reviewing the journey). A deterministic response model (`data/interventions.toml`)
      scores each move by how well it fits the stage and phase (§9.3.5.4), an open rupture, the
      client's fear and the alliance.

    ## Observation Space
    A `Dict`. With `observation_mode="tmog"` (default) it holds what a therapist could know:

    | key | meaning | min | max |
    |---|---|---|---|
    | tmog | the therapist's model of the 142 node levels (TMoG, §9.3.14.1) | 0 | 10 |
    | buckets | the 16 affective reservoirs, maladaptive then adaptive (§9.3.2) | 0 | 1 |
    | phase | in-session phase A-D as 0-3 (§9.3.5.1) | 0 | 3 |
    | stage | treatment stage 1-4 as 0-3 (§9.3.5.3) | 0 | 3 |
    | stance | rapport_building, personhood_assemblage, intervention (§9.3.8) | 0 | 2 |
    | rupture | a rupture is open (until a turn scores repair above 6.5) | 0 | 1 |
    | turn | therapist turns so far this session | 0 | max_turns |
    | session | session number in the episode | 0 | max_sessions + 1 |

    `"full"` adds the privileged truth: `levels` (142), `loa` (7, -10..10), `taie` (x, y, z in
    -10..10 and the transformation score in 0..1) and `readings` (coiling, alliance, TMoG accuracy).
    Text mode adds `client_utterance`.

    ## Rewards
    The stage-weighted composite of the 12 scores, plus the stage's modifiers, phase transitions
    (+20 / -30), stage transitions (+100 / -150, on a session's last turn) and the TAIE signal
    (§9.3.6). `info["reward_breakdown"]` holds each term and `total == reward`.

    ## Starting State
    A client from `profile` (a preset name, a `ClientProfile`, or None to sample one from the seed)
    entering treatment at `start_stage`, in phase A of session 1.

    ## Episode End
    `episode="session"`: terminated after `max_turns` turns, when the session ends.
    `episode="treatment"`: sessions follow one another (buckets decay between them, stages move);
    terminated when a stage-4 session reaches integration (phase D), truncated after `max_sessions`.

    ## Arguments
    `action_mode`, `observation_mode`, `episode`, `max_turns=20`, `max_sessions=20`, `judge`,
    `client`, `profile`, `start_stage=1`, `render_mode` ("ansi" or "rgb_array"), `params`, `info_mode`, `action_scale` ("score" or "unit", scores mode),
    `taie_mode` ("lightweight", or "full": every text turn the judge's explicit TAIE assessment of
    §9.3.4 is blended into the axes and returned as `info["taie_full"]`, a privileged key).
    With `observation_mode="tmog"`, `info` carries nothing a therapist could not know (no hidden
    thought, coiling, alliance, TMoG accuracy or TAIE) unless `info_mode="debug"`. `info_mode="numeric"`
    holds only numbers beside the observation's keys (the turn's `scores`, `reward_<part>` for each reward
    term, and the privileged readings where allowed), with the same keys at reset and step: for libraries
    that make a tensor of every info key (torchrl: `GymWrapper(env, categorical_action_encoding=True)`).

    The last step of each session adds `info["session_assessment"]`, the whole session judged
    (§9.3.7.2, `tbn_env.session_judge.judge_full_session`).

    ## Vectorized environment
    `gym.make_vec("Therapy-Scores-v0", num_envs=8, vectorization_mode="vector_entry_point")` steps all
    clients in one call of the compiled batch kernel (numeric action modes).

    >>> import gymnasium as gym, tbn_env
    >>> env = gym.make("Therapy-Scores-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> info["reward_breakdown"]["total"] == reward
    True
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(self, action_mode: str = "text", observation_mode: str = "tmog", episode: str = "session",
                 max_turns: int = 20, max_sessions: int = DEFAULT_MAX_SESSIONS, judge: Judge | None = None,
                 client: Client | None = None, profile: str | ClientProfile | None = None, start_stage: int = 1,
                 render_mode: str | None = None, params: Params | None = None, info_mode: str = "default",
                 taie_mode: str = "lightweight", action_scale: str = "score") -> None:
        for name, value, allowed in (("action_mode", action_mode, ACTION_MODES), ("taie_mode", taie_mode, TAIE_MODES),
                                     ("action_scale", action_scale, ACTION_SCALES),
                                     ("observation_mode", observation_mode, OBSERVATION_MODES),
                                     ("info_mode", info_mode, INFO_MODES),
                                     ("episode", episode, EPISODES)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        for name, value, lo in (("max_turns", max_turns, 1), ("max_sessions", max_sessions, 1)):
            if not isinstance(value, (int, np.integer)) or value < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
        if start_stage not in (1, 2, 3, 4):
            raise ValueError(f"start_stage must be 1-4, got {start_stage!r}")
        if info_mode == "numeric" and action_mode == "text":
            raise ValueError("info_mode='numeric' (numbers only, for torchrl) applies to the numeric action modes, "
                             "got action_mode='text'")
        if action_scale == "unit" and action_mode != "scores":
            raise ValueError(f"action_scale='unit' applies to action_mode='scores', "
                             f"got action_mode={action_mode!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if profile is not None and not isinstance(profile, (str, ClientProfile)):
            raise TypeError(f"profile must be a preset name, a ClientProfile or None, got {type(profile).__name__}")
        self.action_mode, self.observation_mode, self.episode = action_mode, observation_mode, episode
        self.privileged_info = observation_mode == "full" or info_mode == "debug"
        self.numeric_info = info_mode == "numeric"
        self.action_scale = action_scale
        self.max_turns, self.max_sessions, self.start_stage = int(max_turns), int(max_sessions), start_stage
        self.profile_spec, self.render_mode = profile, render_mode
        self.params = params or Params()
        self.graph, self.compiled = _graph(self.params)
        text = action_mode == "text"
        if text:
            from .rubric_judge import RubricJudge
            from .template_client import TemplateClient
            judge, client = judge or RubricJudge(), client or TemplateClient()
        for name, obj, proto in (("judge", judge, Judge), ("client", client, Client)):
            if obj is not None and not isinstance(obj, proto):
                raise TypeError(f"{name} must implement the tbn_env {proto.__name__} protocol")
        if taie_mode == "full" and not callable(getattr(judge, "assess_taie", None)):
            raise ValueError("taie_mode='full' needs a text-mode judge with assess_taie(context, axes) "
                             "(RubricJudge, MLXJudge or AnthropicJudge)")
        self.judge, self.client, self.taie_mode = judge, client, taie_mode
        #: False when a sampled model scores or speaks: same seed, different trajectory.
        self.deterministic = all(getattr(x, "deterministic", True) for x in (judge, client))
        self.action_space = {"text": text_space(MAX_ACTION_CHARS),
                             "scores": scores_space(action_scale),
                             "intervention": spaces.Discrete(len(CATALOGUE))}[action_mode]
        self.observation_space = observation_space(observation_mode, text, self.max_turns, self.max_sessions)
        self.core: SessionCore | None = None

    # ------------------------------------------------------------------ reset
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Draw a client (options may override `profile` and `start_stage`) and open session 1."""
        super().reset(seed=seed)
        options = options or {}
        stage = options.get("start_stage", self.start_stage)
        if stage not in (1, 2, 3, 4):
            raise ValueError(f"start_stage must be 1-4, got {stage!r}")
        spec = options.get("profile", self.profile_spec)
        n_profile = profile_draws() if spec is None else 0
        if spec is not None:
            self.profile = resolve_profile(spec, self.np_random)
        # the vector env's draw, for a batch of one: a sampled profile's uniforms, then the starting state's
        u = self.np_random.random((1, n_profile + state_draws(self.compiled.n)))
        if spec is None:   # sample_profile's client as index arrays: its ClientProfile is made when first read
            profiles = profiles_from_uniforms(u[:, :n_profile])
            self._profile, self._profile_name, self._sampled = None, SAMPLED, profiles
        else:
            profiles = ProfileBatch.of([self.profile])
        init = DrawnClients.of(profiles, u[:, n_profile:], stage, self.graph)
        seed, signal_seed = stream_seeds(self.np_random)
        if self.core is None:
            self.core = SessionCore(init, self.params, seed=seed, signal_seed=signal_seed, graph=self.graph,
                                    compiled=self.compiled, episode=self.episode, max_turns=self.max_turns,
                                    max_sessions=self.max_sessions)
        else:
            self.core.restart(init, seed, signal_seed)
        self.done = False
        self.history: list[DialogueTurn] = []
        self.trace: list[dict[str, float]] = []
        self.last: BatchStep | None = None   # the last turn as the batch recorded it
        self.last_judge: JudgeResult | None = None
        self.session_judged: list[JudgeResult] = []
        self.client_words = self._client_speaks() if self.action_mode == "text" else None
        self._replay = None   # text mode's rollback: the session's first snapshot and its turns since
        return self._observation(), self._info()

    @property
    def profile(self) -> ClientProfile:
        """The client's profile (a sampled one is made from its index arrays when first read)."""
        if self._profile is None:
            self._profile = self._sampled.profiles()[0]
        return self._profile

    @profile.setter
    def profile(self, profile: ClientProfile) -> None:
        self._profile, self._profile_name = profile, profile.name

    # ------------------------------------------------------------------ checkpointing
    _FIELDS = ("profile", "done", "history", "trace", "last", "last_judge",
               "session_judged", "client_words")

    def get_state(self) -> dict[str, Any]:
        """The episode's full state as picklable values: the client, the dialogue and every RNG.

        With `set_state` a trainer resumes a killed run exactly where it stopped (judge and client
        backends are configuration, not state).
        """
        if self.core is None:
            raise RuntimeError("call reset() before get_state()")
        return {"core": self.core.state_dict(), "np_random": copy.deepcopy(self.np_random.bit_generator.state),
                "fields": {k: copy.deepcopy(getattr(self, k)) for k in self._FIELDS}}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore `get_state()` output (the env must have the same configuration)."""
        if self.core is None:
            self.reset()
        self.core.load_state_dict(state["core"])
        self.np_random.bit_generator.state = copy.deepcopy(state["np_random"])
        for k, v in state["fields"].items():
            setattr(self, k, copy.deepcopy(v))
        self._replay = None

    # ------------------------------------------------------------------ step
    def step(self, action):
        """One therapist turn; an invalid action, or a judge or client that raises, leaves the env as it was."""
        if self.core is None or self.done:
            raise RuntimeError("call reset() before step(), and again after an episode ends")
        if self.action_mode != "text":   # no backend to fail after the checks in _scores_for
            return self._step(action)
        # The core is put back from the session's first snapshot and a replay of the session's turns: one
        # snapshot per session, not per turn. The step replaces the other fields and appends to the lists.
        if self._replay is None:
            self._replay = (self.core.state_dict(), [])
        fields = [getattr(self, k) for k in self._FIELDS]
        grown = [(v, len(v)) for v in (self.history, self.trace, self.session_judged)]   # a step only appends to these
        rng = self.np_random.bit_generator.state   # the getter builds a new dict
        rupture, self._taie_axes = bool(self.client_words and self.client_words.rupture), None
        try:
            out = self._step(action)
        except BaseException:   # e.g. a model client timing out: put everything back, so a retry is safe
            snapshot, turns = self._replay
            self.core.load_state_dict(snapshot)
            for scores, voiced, axes in turns:
                self.core.step(scores, rupture=voiced)
                if axes is not None:
                    self.core.blend_taie(axes)
            self.np_random.bit_generator.state = rng
            for k, v in zip(self._FIELDS, fields):
                setattr(self, k, v)
            for v, n in grown:
                del v[n:]
            raise
        if self.last.session_end[0]:
            self._replay = None   # the next session starts from a new snapshot
        else:
            self._replay[1].append((self.last.scores[0].copy(), rupture, self._taie_axes))
        return out

    def _step(self, action):
        scores, thought, utterance = self._scores_for(action)
        # numeric modes read the batch's step record in place (text mode keeps its steps: a failed turn is undone)
        step = self.core.step(scores, rupture=bool(self.client_words and self.client_words.rupture),
                              reuse=self.action_mode != "text")
        session_end = step.session_end.item(0)
        taie_full = self._assess_taie(thought, utterance) if self.taie_mode == "full" else None
        self.last = step
        if self.render_mode == "rgb_array":
            self._record(self.core.result(step))
        terminated, truncated = step.terminated.item(0), step.truncated.item(0)
        self.done = terminated or truncated
        assessment = None
        if self.action_mode == "text":
            self.history.append(DialogueTurn(client=self.client_words.utterance, therapist=utterance,
                                             therapist_thought=thought))
            self.session_judged.append(self.last_judge)
            if session_end:  # §9.3.7.2: the whole session judged at its end
                # the session's stage: it moves only after the session closes
                assessment = judge_full_session(self.session_judged, int(step.stage_before[0]), self.params,
                                                judge=self.judge, history=self.history)
                self.session_judged, self.history = [], []   # new lists: a failing step puts the old ones back
            if not self.done:
                self.client_words = self._client_speaks()
        info = self._info(step)
        if assessment is not None:
            info["session_assessment"] = assessment.model_dump()
        if self.taie_mode == "full" and self.privileged_info:   # axes of the hidden state: privileged like "taie"
            info["taie_full"] = taie_full.model_dump() if taie_full is not None else None
        if self.render_mode == "ansi":
            info["render"] = self.render()
        return self._observation(), step.reward.item(0), terminated, truncated, info

    def _scores_for(self, action) -> tuple[np.ndarray | dict[str, float], str, str]:
        """The 12 scores for this action by action mode, with the therapist's thought and words."""
        if self.action_mode == "scores":
            if isinstance(action, (str, bytes, dict)):
                raise TypeError(f"a scores action is 12 numbers, got {type(action).__name__}")
            # checked once, by the session's step
            return unit_to_scores(action) if self.action_scale == "unit" else action, "", ""
        if self.action_mode == "intervention":
            if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)) and not (
                    isinstance(action, np.ndarray) and action.shape == () and np.issubdtype(action.dtype, np.integer)):
                raise TypeError(f"an intervention action is an integer index, got {action!r}")
            index = int(action)
            if not 0 <= index < len(CATALOGUE):
                raise ValueError(f"intervention index must be in [0, {len(CATALOGUE)}), got {index}")
            return response_at(index, self.core.kernel, self.core.batch.rupture)[0], "", NAMES[index]
        thought, utterance = self._parse_text(action)
        verdict = self.judge.score(self._judge_context(thought, utterance,
                                                       rupture_pending=self.rupture or self.client_words.rupture))
        if not isinstance(verdict, JudgeResult):
            raise TypeError(f"the judge breaks the tbn_env Judge protocol: score() returned a "
                            f"{type(verdict).__name__}, not a JudgeResult")
        self.last_judge = verdict
        # checked once, by core.step, before anything changes: the 12 named scores as a vector in their order (no
        # name lookups there); other names as they came, for its message naming what is missing or unknown
        scores = verdict.scores
        return (verdict.vector() if isinstance(scores, dict) and scores.keys() == _DIMENSION_NAMES else scores,
                thought, utterance)

    def _judge_context(self, thought: str, utterance: str, rupture_pending: bool = False) -> JudgeContext:
        """What the judge sees of this turn (§9.3.7: the triad, the recent dialogue, stage and phase)."""
        core = self.core
        return JudgeContext(
            client_utterance=self.client_words.utterance, therapist_thought=thought, therapist_utterance=utterance,
            history=tuple(self.history[-HISTORY_TURNS:]), stage=core.stage, phase=core.phase,
            stance=core.stance.name, guidance=core.guidance, profile_card=self.profile.card(),
            rupture_pending=rupture_pending)

    def _assess_taie(self, thought: str, utterance: str):
        """Full-mode TAIE (§9.3.4): the judge's explicit axes, blended into the running estimate."""
        assessment = self.judge.assess_taie(self._judge_context(thought, utterance), self.core.kernel.taie[0].copy())
        if assessment is not None:
            self._taie_axes = assessment.axes()
            self.core.blend_taie(self._taie_axes)
        return assessment

    def _parse_text(self, action) -> tuple[str, str]:
        raw = [action] if isinstance(action, str) else [v for v in action.values() if isinstance(v, str)] \
            if isinstance(action, dict) else []
        if sum(map(len, raw)) > MAX_ACTION_CHARS:   # before any stripping or parsing
            raise ValueError(f"a therapist turn is limited to {MAX_ACTION_CHARS} characters, got {sum(map(len, raw))}")
        if any(printable(text, None) != text for text in raw):
            raise ValueError("a therapist turn must not contain control characters (e.g. terminal escapes)")
        if isinstance(action, dict):
            unknown = set(action) - {"thought", "utterance"}
            if unknown or "utterance" not in action:
                raise ValueError(f"a dict action needs 'utterance' (and optionally 'thought'); "
                                 f"got keys {sorted(action)}")
            thought, utterance = action.get("thought", ""), action["utterance"]
            if not isinstance(thought, str) or not isinstance(utterance, str):
                raise TypeError("thought and utterance must be strings")
        elif isinstance(action, str):
            turn = parse_therapist_turn(action)
            thought, utterance = turn.thought, turn.utterance
        else:
            raise TypeError(f"a text action is a string or a {{'thought', 'utterance'}} dict, "
                            f"got {type(action).__name__}")
        if not utterance.strip():
            raise ValueError("the therapist's utterance is empty")
        if len(thought) + len(utterance) > MAX_ACTION_CHARS:
            raise ValueError(f"a therapist turn is limited to {MAX_ACTION_CHARS} characters")
        return thought, utterance

    # ------------------------------------------------------------------ the client
    def _client_speaks(self):
        """The client's next words, conditioned on the state after the therapist's turn."""
        core, k = self.core, self.core.kernel
        # the top maladaptive and adaptive reservoirs (levels in [0, 1]: the largest first, ties to the earlier)
        mal, ada = largest_first(k.buckets.reshape(2, len(MALADAPTIVE)), DOMINANT_BUCKETS).tolist()
        worst = largest_first(self.compiled.pathology(k.levels), SALIENT_NODES)[0]
        view = ClientView(
            profile_card=self.profile.card(), attachment=self.profile.attachment, defenses=self.profile.defenses,
            presenting_concerns=self.profile.presenting_concerns, stage=core.stage, phase=core.phase,
            turn=core.turn_in_session, session=self.session_index,
            dominant_maladaptive=tuple(MALADAPTIVE[i] for i in mal), dominant_adaptive=tuple(ADAPTIVE[i] for i in ada),
            salient_nodes=tuple(self.compiled.nodes[i] for i in worst.tolist()),
            last_scores=self.last_judge.scores if self.last_judge and core.turn_in_session else {},
            ruptured=self.rupture)
        words = self.client.respond(view, tuple(self.history[-HISTORY_TURNS:]), self.np_random)
        if not isinstance(words, ClientTurn):
            raise TypeError(f"the client breaks the tbn_env Client protocol: respond() returned a "
                            f"{type(words).__name__}, not a ClientTurn")
        if not words.utterance.strip():
            raise ValueError("the client breaks the tbn_env Client protocol: respond() returned an empty utterance")
        return words

    # ------------------------------------------------------------------ observation, info, render
    @property
    def session_index(self) -> int:
        """The session's number in the episode."""
        return self.core.session

    @property
    def rupture(self) -> bool:
        """A rupture is open (until a turn scores repair above 6.5)."""
        return self.core.rupture_open

    def _observation(self) -> dict:
        obs = self.core.batch.observation(self.observation_mode, row=0)
        if self.client_words is not None:
            obs["client_utterance"] = printable(self.client_words.utterance)
        return obs

    def _info(self, step=None) -> dict[str, Any]:
        """Row 0 of the batch's info (the vector env's, by construction), plus what text mode adds."""
        info = self.core.info(self.privileged_info, step, self._profile_name, self.numeric_info)
        if self.client_words is not None and self.privileged_info:
            info["client_thought"] = self.client_words.thought   # the client's mind is privileged
        if self.last_judge is not None and step is not None:
            info["judge"] = self.last_judge.model_dump()
        return info

    def _record(self, r: TurnResult) -> None:
        k = self.core.kernel
        self.trace.append({"maladaptive": float(k.buckets[0, :len(MALADAPTIVE)].mean()),
                           "adaptive": float(k.buckets[0, len(MALADAPTIVE):].mean()),
                           "coiling": r.coiling, "phase": "ABCD".index(r.phase), "stage": r.stage,
                           "reward": r.reward.total, "session": self.session_index})

    def render(self):
        """"ansi": a readable summary of the last turn; "rgb_array": a plot of the session so far."""
        if self.render_mode is None or self.core is None:
            return None
        if self.render_mode == "rgb_array":
            from .render import plot_trace
            return plot_trace(self.trace)
        core = self.core
        r = None if self.last is None else core.result(self.last)
        turn = self.max_turns if r is not None and r.session_end else core.turn_in_session  # the turn just played
        head = (f"session {self.session_index} turn {turn}/{self.max_turns} | stage {core.stage} "
                f"phase {core.phase} | stance {core.stance.name}")
        if self.privileged_info:   # the render goes into info["render"]: the same rule as info
            head += f" | coiling {core.coiling():.3f} alliance {core.alliance():.2f} attunement {core.attunement():.2f}"
        lines = [head]
        if r is not None:
            b = r.reward
            lines.append(f"reward {b.total:+.2f} = composite {b.composite:.2f} + modifiers {b.modifiers:+.2f} "
                         f"+ phase {b.phase_transition:+.0f} + stage {b.stage_transition:+.0f} + taie {b.taie:+.2f}")
            lines.append("scores " + " ".join(f"{d[:4]}={v:.1f}" for d, v in r.scores.items()))
            lines.extend(f"event: {e}" for e in r.events)
        if self.history:
            lines.append(f"therapist: {printable(self.history[-1].therapist)}")
        if self.client_words is not None:
            lines.append(f"client: {printable(self.client_words.utterance)}")
        return "\n".join(lines)
