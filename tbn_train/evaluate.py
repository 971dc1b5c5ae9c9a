"""``tbn-train eval``: is this adapter a better therapist than that one, on clients it never trained on?

Every adapter (or the base model) plays the same held-out clients (:mod:`tbn_train.clients`) with
the same env seeds, start stages and sampling seeds, one Therapy-v0 session each, judged by the same
judge. Per adapter it reports the mean unweighted composite (§9.3.7.1) and each dimension with 95 %
bootstrap intervals over sessions, the phase each session reached (§9.3.5.1), stage transitions
(§9.3.5.3), the reward by term (§9.3.6), the validator failure rate (App. 31) and a reward-hacking
screen (lexical diversity, repeated phrases, empathy-formula density, length). It writes
``eval.json`` and PNG plots. With a deterministic judge and greedy decoding (the default) the same
adapter gives identical numbers on every run.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import gymnasium as gym
import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

import tbn_env  # noqa: F401  (registers Therapy-v0)
from tbn_env.dimensions import JUDGE_DIMENSIONS
from tbn_env.graph import PHASES
from tbn_env.protocols import Persona
from tbn_env.rubric_judge import FORMULAS
from tbn_train.atomic import atomic_path, write_json
from tbn_train.checkpoint import seed_step
from tbn_train.clients import load_clients
from tbn_train.generation import MAX_TEMPERATURE, generate
from tbn_train.judges import check_judge_spec, resolve_judge
from tbn_train.policy import ModelDir, existing_adapter_dir
from tbn_train.prompts import TherapistView, render, therapist_messages
from tbn_train.turns import SILENCE, hard_failures, split_turn

BOOTSTRAP_SAMPLES = 2000  # resamples per interval: the 2.5/97.5 percentiles settle to ~0.01
BOOTSTRAP_SEED = 0        # intervals are part of the report, so they are seeded too
CONFIDENCE = 95.0         # percent
EVAL_MAX_TURNS = 8        # turns per evaluation session: room for a phase to move, cheap on a CPU
EVAL_MAX_NEW_TOKENS = 128  # a spoken turn with a short thought
REPORT_FILE = "eval.json"
TOP_PHRASES = 5           # most repeated word trigrams listed in the hacking screen
_WORD = re.compile(r"[a-z']+")


def _adapter(path: str) -> str:
    existing_adapter_dir(path)
    return path


class EvalConfig(BaseModel):
    """What an evaluation depends on (stored in eval.json)."""

    model_config = ConfigDict(extra="forbid")

    model: ModelDir = Field(description="local mlx-lm model directory")
    adapters: list[Annotated[str, AfterValidator(_adapter)]] = Field(
        default_factory=list, description="mlx-lm adapter directories (none: the base model)")
    clients: str = Field("held-out", description="'held-out' or a TOML file of [[client]] profiles of held-out strategies")
    sessions: int = Field(ge=1, description="sessions per adapter, one held-out client each")
    max_turns: int = Field(EVAL_MAX_TURNS, ge=1, description="therapist turns per session")
    judge: Annotated[str, AfterValidator(check_judge_spec)] = Field("rubric", description="rubric, anthropic or module:factory")
    persona: Persona = Field("clinical", description="judge persona (§9.3.9)")
    seed: int = Field(0, description="env and sampling seed base (the same for every adapter)")
    temperature: float = Field(0.0, ge=0.0, le=MAX_TEMPERATURE, description="therapist sampling temperature (0: greedy)")
    max_new_tokens: int = Field(EVAL_MAX_NEW_TOKENS, ge=1, description="generation cap per therapist turn")


# ---------------------------------------------------------------- playing
def play_session(model, tokenizer, judge, profile, *, seed: int, start_stage: int, max_turns: int,
                 temperature: float, max_new_tokens: int) -> dict[str, Any]:
    """One session with the active adapter: per-turn composites, phases, rewards and the session's outcome."""
    env = gym.make("Therapy-v0", judge=judge, episode="session", max_turns=max_turns, profile=profile,
                   start_stage=start_stage)
    env.reset(seed=seed)
    base = env.unwrapped
    turns = []
    for t in range(max_turns):
        seed_step(seed, t)
        view = TherapistView.from_env(base)
        text = generate(model, tokenizer, render(tokenizer, therapist_messages(view)), temperature=temperature,
                        max_tokens=max_new_tokens).text
        thought, utterance = split_turn(text)
        failures = hard_failures(thought, utterance)
        _, reward, _, _, info = env.step({"thought": thought, "utterance": utterance or SILENCE})
        turns.append({"utterance": utterance, "thought": thought, "failures": failures, "reward": reward,
                      "composite": info["judge"]["composite"], "scores": info["scores"], "phase": info["phase"],
                      "breakdown": info["reward_breakdown"], "events": [e["type"] for e in info["events"]]})
    summary, assessment = info["session_summary"], info["session_assessment"]
    return {"client": profile.name, "attachment": profile.attachment, "seed": seed, "start_stage": start_stage,
            "stage_after": summary["stage_after"], "phase_reached": summary["phase_reached"],
            "reward_totals": summary["reward_totals"], "evaluation": assessment["evaluation"], "turns": turns}


def evaluate_slots(model, tokenizer, router, slots: dict[str, str | None], cfg: EvalConfig, judge=None) -> dict[str, Any]:
    """Play every client with every adapter slot (None: the base model) and report on each."""
    judge = judge or resolve_judge(cfg.judge, cfg.persona)
    profiles = load_clients(cfg.clients, cfg.sessions)
    plan = [(p, cfg.seed + i, 1 + i % 4) for i, p in enumerate(profiles)]
    report: dict[str, Any] = {"clients": [{"name": p.name, "attachment": p.attachment, "seed": s, "start_stage": st,
                                           "card": p.card()} for p, s, st in plan], "adapters": {}}
    for label, slot in slots.items():
        with router.use(slot):
            sessions = [play_session(model, tokenizer, judge, p, seed=s, start_stage=st, max_turns=cfg.max_turns,
                                     temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
                        for p, s, st in plan]
        report["adapters"][label] = summarise(sessions)
    return report


# ---------------------------------------------------------------- statistics
def bootstrap_ci(values, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> list[float]:
    """Percentile bootstrap interval of the mean (a single value: a zero-width interval)."""
    x = np.asarray(values, dtype=np.float64)
    means = x[np.random.default_rng(seed).integers(0, len(x), (samples, len(x)))].mean(axis=1)
    tail = (100.0 - CONFIDENCE) / 2
    return [float(np.percentile(means, tail)), float(np.percentile(means, 100.0 - tail))]


def _stat(values) -> dict[str, Any]:
    return {"mean": float(np.mean(values)), "ci95": bootstrap_ci(values)}


def hacking_screen(utterances: list[str]) -> dict[str, Any]:
    """Signs a policy games its judge: few distinct words, stock phrases over and over, formula density, length."""
    words = [_WORD.findall(u.lower()) for u in utterances]
    flat = [w for ws in words for w in ws]
    grams = Counter(tuple(ws[i:i + 3]) for ws in words for i in range(len(ws) - 2))
    total = sum(grams.values())
    return {
        "type_token_ratio": len(set(flat)) / len(flat) if flat else 0.0,
        "distinct_utterances": len(set(utterances)) / len(utterances) if utterances else 0.0,
        "repeated_trigram_share": 1.0 - len(grams) / total if total else 0.0,
        "top_phrases": [{"phrase": " ".join(g), "count": c} for g, c in grams.most_common(TOP_PHRASES) if c > 1],
        "formulas_per_turn": float(np.mean([sum(len(f.findall(u.lower())) for f in FORMULAS) for u in utterances])),
        "words_per_turn": float(np.mean([len(ws) for ws in words])),
    }


def summarise(sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """One adapter's report from its sessions."""
    turns = [t for s in sessions for t in s["turns"]]

    def per_session(f) -> list[float]:
        return [float(np.mean([f(t) for t in s["turns"]])) for s in sessions]

    events = Counter(e for t in turns for e in t["events"])
    terms = ("composite", "modifiers", "phase_transition", "stage_transition", "taie", "total")
    return {
        "composite": _stat(per_session(lambda t: t["composite"])),
        "dimensions": {d: _stat(per_session(lambda t, d=d: t["scores"][d])) for d in JUDGE_DIMENSIONS},
        "composite_by_turn": np.mean([[t["composite"] for t in s["turns"]] for s in sessions], axis=0).tolist(),
        "phase_by_turn": np.mean([[PHASES.index(t["phase"]) for t in s["turns"]] for s in sessions], axis=0).tolist(),
        "phase_reached": {p: sum(s["phase_reached"] == p for s in sessions) for p in PHASES},
        "stage_transitions": {"forward": events["stage_forward"], "regression": events["stage_regression"]},
        "phase_transitions": {"forward": events["phase_forward"], "regression": events["phase_regression"]},
        "reward_per_session": {k: _stat([s["reward_totals"][k] for s in sessions]) for k in terms},
        "validator_failure_rate": sum(bool(t["failures"]) for t in turns) / len(turns),
        "hacking_screen": hacking_screen([t["utterance"] for t in turns]),
        "sessions": sessions,
    }


# ---------------------------------------------------------------- pictures
def write_plots(report: dict[str, Any], out: Path) -> list[Path]:
    """composite_by_turn.png, phase_progress.png and dimensions.png, adapters side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    adapters = report["adapters"]
    paths = []
    for name, key, ylabel, ylim in (("composite_by_turn.png", "composite_by_turn", "mean composite (0-10)", (0, 10)),
                                    ("phase_progress.png", "phase_by_turn", "mean phase (A=0 … D=3)", (0, 3))):
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        for label, rep in adapters.items():
            ax.plot(range(1, len(rep[key]) + 1), rep[key], marker="o", label=label)
        ax.set(xlabel="turn", ylabel=ylabel, ylim=ylim)
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(_save(fig, out / name))
    fig, ax = plt.subplots(figsize=(9, 3.8), dpi=100)
    width = 0.8 / max(1, len(adapters))
    x = np.arange(len(JUDGE_DIMENSIONS))
    for k, (label, rep) in enumerate(adapters.items()):
        dims = rep["dimensions"]
        means = np.array([dims[d]["mean"] for d in JUDGE_DIMENSIONS])
        lo = means - np.array([dims[d]["ci95"][0] for d in JUDGE_DIMENSIONS])
        hi = np.array([dims[d]["ci95"][1] for d in JUDGE_DIMENSIONS]) - means
        ax.bar(x + k * width, means, width, yerr=[lo, hi], capsize=2, label=label)
    ax.set_xticks(x + width * (len(adapters) - 1) / 2, [d.replace("_", "\n") for d in JUDGE_DIMENSIONS], fontsize=7)
    ax.set(ylabel="mean score, 95 % CI", ylim=(0, 10))
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(_save(fig, out / "dimensions.png"))
    return paths


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- the learning curve of a self-play run
CURVE_FILE, CURVE_PLOT = "curve.json", "curve.png"


def add_to_curve(folder: str | Path, turn: int, adapter_report: dict[str, Any]) -> Path:
    """Record one evaluation of a self-play run at ``turn`` (replacing an earlier one at the same turn,
    so a resumed run lists every turn once) and redraw the curve: mean composite with its 95 % CI."""
    import json

    folder = Path(folder)
    path = folder / CURVE_FILE
    points = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    keep = ("composite", "dimensions", "phase_reached", "validator_failure_rate", "hacking_screen", "reward_per_session")
    points = sorted([p for p in points if p["turn"] != turn] + [{"turn": turn, **{k: adapter_report[k] for k in keep}}],
                    key=lambda p: p["turn"])
    write_json(path, points)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    turns = [p["turn"] for p in points]
    mean = np.array([p["composite"]["mean"] for p in points])
    lo, hi = (np.array([p["composite"]["ci95"][i] for p in points]) for i in (0, 1))
    ax.fill_between(turns, lo, hi, alpha=0.25, label="95 % CI")
    ax.plot(turns, mean, marker="o", label="held-out mean composite")
    ax.set(xlabel="self-play turn", ylabel="composite (0-10)", ylim=(0, 10))
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, folder / CURVE_PLOT)
    return path


# ---------------------------------------------------------------- the command
def run_eval(cfg: EvalConfig, out: str | Path) -> Path:
    """Evaluate ``cfg.adapters`` (or the base model) and write eval.json and the plots to ``out``."""
    from tbn_train.adapter_io import load_adapter
    from tbn_train.lora import AdapterRouter
    from tbn_train.model import load_model

    out = Path(out)
    if (out / REPORT_FILE).exists():
        raise FileExistsError(f"{out / REPORT_FILE} exists; choose a new --out (an evaluation never overwrites one)")
    load_clients(cfg.clients, cfg.sessions)  # bad clients fail before the model loads
    judge = resolve_judge(cfg.judge, cfg.persona)
    model, tokenizer = load_model(cfg.model)
    router = AdapterRouter()
    names = [Path(a).name for a in cfg.adapters]
    labels = names if len(set(names)) == len(names) else list(cfg.adapters)  # short labels when unambiguous
    slots: dict[str, str | None] = {}
    for k, (label, path) in enumerate(zip(labels, cfg.adapters)):
        load_adapter(model, router, f"eval_{k}", path)
        slots[label] = f"eval_{k}"
    report = evaluate_slots(model, tokenizer, router, slots or {"base": None}, cfg, judge)
    report["config"] = cfg.model_dump(mode="json")
    out.mkdir(parents=True, exist_ok=True)
    write_plots(report, out)
    write_json(out / REPORT_FILE, report)
    return out / REPORT_FILE


def format_report(report: dict[str, Any]) -> str:
    """One line per adapter: composite with its interval, phases reached, failures, formula density."""
    lines = []
    for label, rep in report["adapters"].items():
        c, screen = rep["composite"], rep["hacking_screen"]
        reached = " ".join(f"{p}:{n}" for p, n in rep["phase_reached"].items() if n)
        lines.append(f"{label}: composite {c['mean']:.2f} [{c['ci95'][0]:.2f}, {c['ci95'][1]:.2f}] | phase reached {reached}"
                     f" | validator failures {rep['validator_failure_rate']:.0%} | TTR {screen['type_token_ratio']:.2f}"
                     f" | formulas/turn {screen['formulas_per_turn']:.2f} | words/turn {screen['words_per_turn']:.1f}")
    return "\n".join(lines)
