"""Single-model self-play over Therapy-v0: one RLAIF and one GRPO step per turn (§9.3.9–§9.3.14).

Per turn, in the paper's order (§9.3.14.2):

1. the therapist (trainable adapter) answers the client at T = 0.7 (§9.3.9);
2. ``env.step`` commits that answer — the env's judge scores it and the client state, phase,
   stage, TMoG and reward update (steps 1–9 of §9.3.14.2), then the client speaks again;
3. **RLAIF** (§9.3.9): the kind and harsh judges score the committed answer, a correction prompt
   is built from both, the therapist re-generates at T = 0.5, and the margin loss on x *without*
   the feedback is applied first, weighted 0.4 × the treatment-level modifier m (§9.3.13);
4. **GRPO** (§9.3.10): K = 4 candidates from the *updated* policy at T ∈ {0.6, 0.7, 0.8, 0.9},
   each scored stage composite + stage modifiers (0 if a hard validator fails, App. 31),
   z-scored, with a k1 KL to the frozen start; applied second, weighted 0.6.

The treatment-level modifier is m = clip(1 + u, 0.5, 2) with
u = −(phase + stage transition reward)/100 − 10 · Δ(TMoG attunement): a correction matters more
when the committed answer cost a phase, a stage, or attunement.

Every turn is one JSONL record (scores, reward breakdown, losses, phase/stage, attunement, skips,
judge fallbacks, timings by part); each session end prints the §9.3.14.2 summary; checkpoints
(adapter, Adam, env state, counters, log offset) make ``--resume`` exact. Determinism comes from
:func:`~tbn_train.checkpoint.seed_step` at the start of every turn.

Several clients per turn (``--clients N`` in one process, × R ranks with ``--distributed``): each
plays its own turn, then one RLAIF step and one GRPO step pool their gradients
(:func:`~tbn_train.distributed.pooled_gradient`); each client's phases are seeded by (turn, client,
phase), so a client plays the same whichever rank or process holds it.
"""

from __future__ import annotations

import logging
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import gymnasium as gym
import mlx.core as mx
import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from tqdm import tqdm

import tbn_env  # noqa: F401  (registers Therapy-v0)
from tbn_env.dimensions import as_score_vector
from tbn_env.params import Params
from tbn_env.protocols import (
    ClientTurn,
    ClientView,
    DialogueTurn,
    JudgeContext,
    JudgeResult,
)
from tbn_env.reward import modifier_terms, weighted_composite
from tbn_train.checkpoint import seed_step
from tbn_train.clients import training_profile
from tbn_train.read_files import load_pickle
from tbn_train.config import TrainConfig
from tbn_train.distributed import World, adapter_digest, check_ranks, drop_copy, open_run_dir, pooled_gradient, start_ranks
from tbn_train.generation import generate, generate_candidates
from tbn_train.judges import check_judge_spec, resolve_judge
from tbn_train.mlx_backends import (
    CLIENT_MAX_TOKENS,
    CLIENT_TEMPERATURE,
    JUDGE_MAX_TOKENS,
    JUDGE_TEMPERATURE,
    MLXClient,
    MLXJudge,
    ModelRole,
)
from tbn_train.policy import FROZEN_ADAPTER, AdapterDir, ModelDir, Policy, build_policy
from tbn_train.prompts import (
    TherapistView,
    correction_messages,
    format_therapist_turn,
    render,
    therapist_messages,
)
from tbn_train.timing import Timings, switched
from tbn_train.turns import SILENCE, hard_failures, split_turn
from tbn_train.update import Gradient, grpo_metrics

MODIFIER_MIN, MODIFIER_MAX = 0.5, 2.0  # the urgency modifier's clip range
TRANSITION_SCALE = 100.0  # ±20 phase / ±100–150 stage rewards → ±0.2 / ±1–1.5
ATTUNEMENT_SCALE = 10.0  # a 0.01 TMoG-accuracy loss adds 0.1 urgency
ENV_STATE_FILE = "env_state.pkl"  # env.get_state() is picklable, not JSON
EVAL_DIR = "eval"  # --eval-every writes curve.json and curve.png here
EVAL_SESSIONS = 3  # one held-out client of each DMM family per evaluation

log = logging.getLogger(__name__)


class SelfPlayConfig(BaseModel):
    """Everything a self-play run depends on (stored in run.json; a resume must match it)."""

    model_config = ConfigDict(extra="forbid")

    model: ModelDir = Field(description="mlx-lm model directory or Hugging Face repository id")
    sessions: int = Field(ge=1, description="therapy sessions to play (one client's treatment, renewed if it completes)")
    max_turns: int = Field(ge=1, description="therapist turns per session")
    judge: Annotated[str, AfterValidator(check_judge_spec)] = Field(
        "rubric", description="judge backend: rubric, model (the frozen adapter), anthropic, or module:factory")
    client: Literal["template", "model"] = Field("template", description="client backend: offline template or the model's frozen adapter")
    init_adapter: AdapterDir = Field(None, description="mlx-lm adapter: therapist start, frozen client/judge, KL reference")
    checkpoint_every: int = Field(1, ge=1, description="checkpoint every N turns (and at the end)")
    judge_max_tokens: int = Field(JUDGE_MAX_TOKENS, ge=1, description="generation cap for the model judge's JSON")
    client_max_tokens: int = Field(CLIENT_MAX_TOKENS, ge=1, description="generation cap for the model client")
    taie: Literal["lightweight", "full"] = Field("lightweight", description="TAIE mode on training turns (§9.3.4)")
    eval_every: int | None = Field(None, ge=1, description="evaluate on held-out clients every N turns (and at the end)")
    eval_sessions: int = Field(EVAL_SESSIONS, ge=1, description="held-out sessions per evaluation")
    clients: int = Field(1, ge=1, description="clients each process plays side by side; their gradients are pooled into one step")
    ranks: int = Field(1, ge=1, description="processes of the data-parallel group (--distributed: mlx.launch -n R)")
    train: TrainConfig = Field(default_factory=TrainConfig)


@dataclass
class RunCounters:
    """Skips and fallbacks over the run (checkpointed with it)."""

    rlaif_skipped_judge_fallback: int = 0
    rlaif_skipped_invalid_correction: int = 0
    grpo_skipped_judge_fallback: int = 0
    empty_utterances: int = 0
    judge: dict[str, int] = field(default_factory=lambda: {"ok": 0, "repaired": 0, "fallback": 0})


class MeteredJudge:
    """A Judge that times its calls ("judging") and tallies how each verdict was obtained."""

    def __init__(self, judge, timings: Timings, tally: dict[str, int]) -> None:
        self.judge, self.timings, self.tally = judge, timings, tally
        self.deterministic = judge.deterministic
        self.last_status = "ok"
        for extra in ("evaluate_session", "assess_taie"):  # session narration (§9.3.7.2), full TAIE (§9.3.4)
            if callable(getattr(judge, extra, None)):
                setattr(self, extra, getattr(judge, extra))

    def score(self, context: JudgeContext) -> JudgeResult:
        with self.timings.part("judging"):
            if isinstance(self.judge, MLXJudge):
                verdict = self.judge.verdict(context)
                result, self.last_status = verdict.result, verdict.status
            else:
                result, self.last_status = self.judge.score(context), "ok"
        self.tally[self.last_status] += 1
        return result


class TimedClient:
    """A Client whose turns are charged to the "client" part."""

    def __init__(self, client, timings: Timings) -> None:
        self.client, self.timings = client, timings
        self.deterministic = client.deterministic

    def respond(self, view: ClientView, history: tuple[DialogueTurn, ...], rng) -> ClientTurn:
        with self.timings.part("client"):
            return self.client.respond(view, history, rng)


def candidate_score(scores: dict[str, float], stage: int, params: Params) -> float:
    """GRPO score of one candidate: stage-weighted composite + the stage modifiers it earns."""
    vec = as_score_vector(scores)
    return weighted_composite(vec, stage, params) + sum(modifier_terms(vec, stage, params).values())


def treatment_modifier(reward_breakdown: dict, attunement_delta: float) -> float:
    """m = clip(1 + u, 0.5, 2), u = −(R_phase + R_stage)/100 − 10 Δattunement."""
    u = -(reward_breakdown["phase_transition"] + reward_breakdown["stage_transition"]) / TRANSITION_SCALE
    u -= ATTUNEMENT_SCALE * attunement_delta
    return float(np.clip(1.0 + u, MODIFIER_MIN, MODIFIER_MAX))


def format_session_summary(summary: dict) -> str:
    """The §9.3.14.2 session summary as a few readable lines."""
    taie = summary["taie"]
    misread = ", ".join(f"{m['node']} ({m['error']:.2f})" for m in summary["worst_misread"][:3])
    loa = " ".join(f"{k}={v:+.1f}" for k, v in summary["loa"].items())
    return "\n".join([
        f"── session {summary['session']} summary: {summary['turns']} turns (total {summary['total_turns']})",
        f"   coiling {summary['coiling']:.3f} | TMoG attunement {summary['tmog_attunement']:.3f} | worst misread: {misread}",
        f"   buckets: maladaptive {summary['maladaptive_mean']:.3f}, adaptive {summary['adaptive_mean']:.3f}",
        f"   LOA {loa}",
        "   TAIE " + " ".join(f"{a}={taie[a]:+.2f}" for a in ("x", "y", "z") if a in taie)
        + f" | transformation {taie['transformation_pct']:.1f}%",
        (f"   phase reached {summary['phase_reached']} (final {summary['phase_final']}) | stage {summary['stage']} → "
         f"{summary['stage_after']} | reward {summary['reward_totals']['total']:+.1f}"),
    ])


class ClientSlot:
    """One client the run plays side by side with the others: its env, judges and counters."""

    def __init__(self, sp: SelfPlay, index: int) -> None:
        self.index = index  # the client's number over all ranks: rank × clients + local position
        self.counters = RunCounters()
        self.judges = {p: MeteredJudge(sp._judge(p), sp.timings, self.counters.judge) for p in ("clinical", "kind", "harsh")}
        client = TimedClient(sp._client(), sp.timings)
        cfg = sp.cfg
        self.env = gym.make("Therapy-v0", judge=self.judges["clinical"], client=client, episode="treatment",
                            max_turns=cfg.max_turns, max_sessions=cfg.sessions, taie_mode=cfg.taie,
                            info_mode="debug")  # the trainer, not the policy, reads the TMoG accuracy (RLAIF)
        self.base_env = self.env.unwrapped

    def restore(self, counters: dict, env_state: Path, seed: int) -> None:
        self.counters = RunCounters(**counters)
        for judge in self.judges.values():
            judge.tally = self.counters.judge
        self.env.reset(seed=seed)  # the wrappers insist on a reset before set_state
        self.base_env.set_state(load_pickle(env_state, "env state"))


class SelfPlay:
    """A self-play run: policy, the clients' environments and judges, and the per-turn training loop.

    ``cfg.clients`` clients play side by side in this process; with a :class:`World` of R ranks
    (``--distributed``) every rank plays its own ``cfg.clients``, and each turn's RLAIF and GRPO
    steps pool all R × clients gradients (:func:`~tbn_train.distributed.pooled_gradient`). Rank 0
    alone writes the run directory; the others send it their records and env states.
    """

    def __init__(self, cfg: SelfPlayConfig, out: str | Path, resume: bool = False, world: World | None = None) -> None:
        self.cfg, self.train = cfg, cfg.train
        self.world = world = world or World()
        check_ranks(cfg.ranks, world)
        self.policy: Policy = start_ranks(world, cfg, resume, self._build_policy)  # a refusal writes nothing
        p = self.policy
        self.run, ck = open_run_dir(world, cfg, out, resume, p.model, p.router, p.updater.optimizer)
        self.timings = Timings()
        self.clients = cfg.clients * world.size  # over all ranks
        self.slots = [ClientSlot(self, world.rank * cfg.clients + i) for i in range(cfg.clients)]
        self.turn = 0
        up = self.policy.updater
        if ck is not None:
            self.turn = ck.state["turn"]
            up.counters.__dict__.update(ck.state["updater_counters"])
            saved = ck.state["run_counters"]
            for slot in self.slots:
                counters = saved if self.clients == 1 else saved[slot.index]
                slot.restore(counters, ck.path / env_state_file(slot.index, self.clients), self.train.seed)
            drop_copy(ck)

    def _build_policy(self) -> Policy:
        if self.cfg.judge != "model":
            resolve_judge(self.cfg.judge)  # a judge that cannot be built fails before the run directory exists
        return build_policy(self.cfg.model, self.cfg.train, self.cfg.init_adapter)

    # ------------------------------------------------------------------ backends
    def _role(self, temperature: float, max_tokens: int) -> ModelRole:
        p = self.policy
        return ModelRole(p.model, p.tokenizer, p.router, FROZEN_ADAPTER, temperature, max_tokens, self.timings)

    def _judge(self, persona: str):
        if self.cfg.judge == "model":
            return MLXJudge(self._role(JUDGE_TEMPERATURE, self.cfg.judge_max_tokens), persona)
        return resolve_judge(self.cfg.judge, persona)

    def _client(self):
        if self.cfg.client == "model":
            return MLXClient(self._role(CLIENT_TEMPERATURE, self.cfg.client_max_tokens))
        from tbn_env.template_client import TemplateClient

        return TemplateClient()

    # ------------------------------------------------------------------ one turn
    def _sample(self, prompt: list[int], temperature: float):
        p = self.policy
        with self.timings.part("generation"), switched(p.router, p.therapist, self.timings):
            return generate(p.model, p.tokenizer, prompt, temperature=temperature, max_tokens=self.train.max_new_tokens)

    def _rlaif(self, slot: ClientSlot, view: TherapistView, x: list[int], original, committed: str,
               modifier: float) -> tuple[dict, Gradient | None]:
        judges, counters = slot.judges, slot.counters
        ctx = view.judge_context(*committed)
        kind, harsh = judges["kind"].score(ctx), judges["harsh"].score(ctx)
        out = {"modifier": modifier, "kind_mean": float(np.mean(kind.vector())), "harsh_mean": float(np.mean(harsh.vector()))}
        if judges["kind"].last_status == judges["harsh"].last_status == "fallback":
            counters.rlaif_skipped_judge_fallback += 1
            return {**out, "skipped": "judge_fallback"}, None
        messages = correction_messages(view, format_therapist_turn(*committed), kind, harsh)
        corrected = self._sample(render(self.policy.tokenizer, messages), self.train.correction_temperature)
        failures = hard_failures(*split_turn(corrected.text))
        out["corrected"] = corrected.text
        if failures:
            counters.rlaif_skipped_invalid_correction += 1
            return {**out, "skipped": "invalid_correction", "failures": failures}, None
        with self.timings.part("rlaif"):
            part = self.policy.updater.rlaif_gradient(x, original.tokens, corrected.tokens, modifier=modifier)
            mx.eval(part.loss, part.grads)
        return {**out, "skipped": None, "loss": part.loss.item()}, part

    def _grpo(self, slot: ClientSlot, view: TherapistView, x: list[int]) -> tuple[dict, Gradient | None]:
        p, clinical = self.policy, slot.judges["clinical"]
        with self.timings.part("generation"), switched(p.router, p.therapist, self.timings):
            cands = generate_candidates(p.model, p.tokenizer, x, self.train.grpo_temperatures, max_tokens=self.train.max_new_tokens)
        scores, failures, fallback = [], [], False
        for cand in cands:
            thought, utterance = split_turn(cand.text)
            failed = hard_failures(thought, utterance)
            failures.append(failed)
            if failed:
                scores.append(0.0)  # garbage ranks last, unjudged
                continue
            result = clinical.score(view.judge_context(thought, utterance))
            fallback |= clinical.last_status == "fallback"
            scores.append(candidate_score(result.scores, view.stage, slot.base_env.params))
        out = {"scores": scores, "temperatures": list(self.train.grpo_temperatures), "failures": failures,
               "reward": float(np.mean(scores)), "reward_std": float(np.std(scores)),  # TRL's per-group names
               "completion_length": float(np.mean([len(c.tokens) for c in cands]))}
        if fallback:  # a placeholder 5.0 must not be ranked against real verdicts
            slot.counters.grpo_skipped_judge_fallback += 1
            return {**out, "skipped": "judge_fallback"}, None
        with self.timings.part("grpo"):
            part = p.updater.grpo_gradient(x, [c.tokens for c in cands], scores)
            if part is None:
                return {**out, "skipped": "tied_scores", "loss": 0.0, "grad_norm": 0.0}, None
            mx.eval(part.loss, part.grads, *part.aux)
        return {**out, "skipped": None, "loss": part.loss.item(), **grpo_metrics(part)}, part

    def _pooled_step(self, kind: str, parts: list[Gradient | None], outs: list[dict], ties: int = 0) -> None:
        """One optimizer step from every client's ``kind`` gradient (pooled over the ranks); the
        step's pre-clip norm goes into each contributing client's record."""
        up = self.policy.updater
        with self.timings.part("sync"):
            pooled, ties = pooled_gradient(parts, up.model.trainable_parameters(), self.world, self.clients,
                                           f"the {kind} step of turn {self.turn}", ties)
        up.counters.grpo_skipped_ties += ties
        if pooled is None:
            return
        with self.timings.part(kind):
            norm = up.apply(pooled.grads, pooled.weight)
            mx.eval(up.model.trainable_parameters(), up.optimizer.state)
        if kind == "rlaif":
            up.counters.rlaif_steps += 1
        else:
            up.counters.grpo_steps += 1
        for out, part in zip(outs, parts):
            if part is not None:
                out["grad_norm"] = norm.item()

    def _seed(self, slot: ClientSlot, phase: int) -> None:
        """MLX's sampler for one client's phase of the turn: with one client the turn's seed (phase 0
        only, as always); with several, its own stream per (turn, client, phase), whatever the
        rank or the order the clients play in."""
        if self.clients == 1:
            if phase == 0:
                seed_step(self.train.seed, self.turn)
        else:
            seed_step(self.train.seed, self.turn, slot.index, phase)

    def _play(self, slot: ClientSlot) -> dict:
        """The turn up to its RLAIF gradient: answer, env step, judges, correction."""
        turn, T, env = self.turn, self.timings, slot.env
        self._seed(slot, 0)
        if turn == 0 or slot.base_env.done:  # first turn, or the treatment ended early: a new client
            with T.part("env"):
                number = (turn // self.cfg.max_turns) * self.clients + slot.index  # disjoint over clients and ranks
                env.reset(seed=self.train.seed + number, options={"profile": training_profile(self.train.seed, number)})
        view = TherapistView.from_env(slot.base_env)
        x = render(self.policy.tokenizer, therapist_messages(view))
        original = self._sample(x, self.train.rlaif_temperature)
        thought, utterance = split_turn(original.text)
        if not utterance:
            slot.counters.empty_utterances += 1
        committed = (thought, utterance or SILENCE)
        attunement_before = slot.base_env.core.attunement()
        with T.part("env"):
            _, reward, _, _, info = env.step({"thought": committed[0], "utterance": committed[1]})
        attunement_delta = info["attunement"] - attunement_before
        modifier = treatment_modifier(info["reward_breakdown"], attunement_delta)
        rlaif, part = self._rlaif(slot, view, x, original, committed, modifier)
        return {"view": view, "x": x, "committed": committed, "reward": reward, "info": info,
                "attunement_delta": attunement_delta, "rlaif": rlaif, "rlaif_part": part}

    def turn_records(self) -> list[dict]:
        """Play and train one turn of every local client (RLAIF then GRPO, each one pooled step); their log records."""
        start = time.perf_counter()
        played = [self._play(slot) for slot in self.slots]
        self._pooled_step("rlaif", [t["rlaif_part"] for t in played], [t["rlaif"] for t in played])
        grpo, parts, ties = [], [], 0
        for slot, t in zip(self.slots, played):
            self._seed(slot, 1)
            out, part = self._grpo(slot, t["view"], t["x"])
            grpo.append(out)
            parts.append(part)
            ties += out["skipped"] == "tied_scores"
        self._pooled_step("grpo", parts, grpo, ties)
        timings = self.timings.take()
        timings["total"] = time.perf_counter() - start
        timings["overhead"] = timings["total"] - sum(v for k, v in timings.items() if k != "total")
        records = [self._record(slot, t, g, timings) for slot, t, g in zip(self.slots, played, grpo)]
        self.turn += 1
        return records

    def step(self) -> dict:
        """Play and train one turn of a one-client run; return its log record."""
        if len(self.slots) != 1:
            raise ValueError(f"step() plays one client; this run has {len(self.slots)} per rank (use turn_records())")
        return self.turn_records()[0]

    def _record(self, slot: ClientSlot, t: dict, grpo: dict, timings: dict) -> dict:
        turn, view, info, committed = self.turn, t["view"], t["info"], t["committed"]
        record = {
            "turn": turn, "session": turn // self.cfg.max_turns + 1, "turn_in_session": turn % self.cfg.max_turns + 1,
            "stage": view.stage, "phase": view.phase, "stance": view.stance,
            "stage_after": info["stage"], "phase_after": info["phase"],
            "client": view.client_utterance, "thought": committed[0], "utterance": committed[1],
            "scores": info["scores"], "reward": t["reward"], "reward_breakdown": info["reward_breakdown"],
            "events": info["events"], "attunement": info["attunement"], "attunement_delta": t["attunement_delta"],
            "rlaif": t["rlaif"], "grpo": grpo, "taie": info["taie"],
            "counters": {**asdict(self.policy.updater.counters), **asdict(slot.counters)},
            "timings": timings,
        }
        if self.clients > 1:
            record["client_index"] = slot.index
        if "taie_full" in info:
            record["taie_full"] = info["taie_full"]
        if "session_summary" in info:
            record["session_summary"] = info["session_summary"]
            record["session_assessment"] = info["session_assessment"]
        return record

    # ------------------------------------------------------------------ the run
    def _evaluate(self) -> dict:
        """The current therapist on the held-out clients (``tbn-train eval``), added to the run's curve."""
        from tbn_train.evaluate import EvalConfig, add_to_curve, evaluate_slots

        p = self.policy
        cfg = EvalConfig(model=self.cfg.model, sessions=self.cfg.eval_sessions, max_turns=self.cfg.max_turns,
                         judge=self.cfg.judge, seed=self.train.seed, max_new_tokens=self.train.max_new_tokens)
        start = time.perf_counter()
        report = evaluate_slots(p.model, p.tokenizer, p.router, {"therapist": p.therapist}, cfg,
                                judge=self._judge("clinical"))["adapters"]["therapist"]
        add_to_curve(self.run.out / EVAL_DIR, self.turn, report)
        return {**report, "seconds": time.perf_counter() - start}

    def _checkpoint(self) -> None:
        """Every client's counters and env state go to rank 0, which writes the checkpoint; with several
        ranks it also records each rank's adapter digest and refuses to go on if they differ."""
        up = self.policy.updater
        mine = [(slot.index, asdict(slot.counters), pickle.dumps(slot.base_env.get_state())) for slot in self.slots]
        state = {"turn": self.turn, "updater_counters": asdict(up.counters)}
        if self.world.size > 1:
            blobs = self.world.gather_bytes(pickle.dumps((adapter_digest(up.model), mine)), f"the checkpoint of turn {self.turn}")
            every = [pickle.loads(blob) for blob in blobs]
            mine = [c for _, clients in every for c in clients]
            state["adapter_digests"] = [digest for digest, _ in every]
        if self.world.rank != 0:
            return
        if len(set(state.get("adapter_digests", ()))) > 1:
            raise RuntimeError(f"the ranks hold different adapters at turn {self.turn} ({state['adapter_digests']}): "
                               f"their updates diverged; resume from the last checkpoint")
        state["run_counters"] = mine[0][1] if self.clients == 1 else [c for _, c, _ in mine]
        files = {env_state_file(index, self.clients): env for index, _, env in mine}
        self.run.checkpoint(self.turn, self.policy.model, self.policy.router, up.optimizer, seed=self.train.seed,
                            state=state, files=files, keep=self.train.keep_checkpoints)

    def _gathered(self, records: list[dict]) -> list[dict]:
        """Every rank's records of the turn on rank 0, in client order (an empty list elsewhere)."""
        if self.world.size == 1:
            return records
        every = self.world.gather_json(records, f"the log of turn {self.turn - 1}")
        return [r for rank in every for r in rank] if self.world.rank == 0 else []

    def run_all(self) -> Path | None:
        """Play the remaining turns; return the saved therapist adapter directory (None on ranks other than 0)."""
        total = self.cfg.sessions * self.cfg.max_turns
        writer = self.world.rank == 0
        with tqdm(total=total, initial=self.turn, desc="self-play", unit="turn", disable=None if writer else True) as bar:
            while self.turn < total:
                records = self._gathered(self.turn_records())
                every = self.cfg.eval_every
                if writer and every is not None and (self.turn % every == 0 or self.turn == total):
                    records[0]["eval"] = {k: v for k, v in self._evaluate().items() if k != "sessions"}
                    tqdm.write(f"   held-out eval at turn {self.turn}: composite {records[0]['eval']['composite']['mean']:.2f} "
                               f"{records[0]['eval']['composite']['ci95']}")
                for record in records:
                    self.run.log(record)
                if self.turn % self.cfg.checkpoint_every == 0 or self.turn == total:
                    self._checkpoint()
                bar.update(1)
                if records:
                    bar.set_postfix(reward=f"{np.mean([r['reward'] for r in records]):.2f}",
                                    phase=records[0]["phase_after"], stage=records[0]["stage_after"])
                for record in records:
                    if "session_summary" in record:
                        tqdm.write(format_session_summary(record["session_summary"]))
                        tqdm.write(f"   judge_full_session: {record['session_assessment']['evaluation']}")
        if not writer:
            return None
        return self.run.finish(self.policy.model, self.policy.router, self.policy.therapist)


def env_state_file(client: int, clients: int) -> str:
    """A client's env state in a checkpoint (one client: the name single-client runs always used)."""
    return ENV_STATE_FILE if clients == 1 else f"env_state-{client}.pkl"

