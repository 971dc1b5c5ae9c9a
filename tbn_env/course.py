"""The calibrated course of treatment: scripted therapists, every starting stage, figures and pictures.

`tbn-env course` (or `python -m tbn_env.course`) runs each scripted therapist (a fixed score on all
12 judge dimensions every turn, one of them with turn-to-turn noise) through whole treatments of
sampled clients, as `Therapy-Scores-v0` with `episode="treatment"` runs them, and writes:

- `course.json`: per starting stage and therapist, turns to each phase in the first session,
  sessions to each stage, the share of treatments completed within `max_sessions`, and how far a
  client fell (lowest stage reached);
- `course_stage{S}.png`: phase, stage, coiling, maladaptive and adaptive bucket means and alliance
  against sessions, one line per therapist (the mean over the clients still in treatment).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .buckets import MALADAPTIVE
from .env import DEFAULT_MAX_SESSIONS, _graph
from .kernel import BatchKernel
from .params import LOW_THRESHOLD, Params
from .profiles import sample_profile

DEFAULT_CLIENTS = 40       # clients per (therapist, stage): a 10 % share is then 4 clients
NOISE_SD = 1.0             # the noisy excellent therapist: +-1 point per dimension, turn to turn
MAX_TURNS = 20             # the env's default session length


@dataclass(frozen=True)
class Therapist:
    """A scripted therapist: the same score on every dimension, plus optional Gaussian noise."""

    name: str
    score: float
    noise_sd: float = 0.0

    def scores(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        s = np.full((batch, 12), self.score)
        if self.noise_sd:
            s = np.clip(s + rng.normal(0.0, self.noise_sd, s.shape), 0.0, 10.0)
        return s


THERAPISTS: dict[str, Therapist] = {t.name: t for t in (
    Therapist("harmful", 2.0), Therapist("poor", 3.5), Therapist("mediocre", 6.0), Therapist("good", 7.5),
    Therapist("excellent", 9.0), Therapist("noisy_excellent", 9.0, NOISE_SD))}
SERIES = ("phase", "stage", "coiling", "maladaptive", "adaptive", "alliance")


@dataclass
class CourseRun:
    """One therapist's treatments from one starting stage: per-turn series [clients, turns] (NaN once done)."""

    therapist: str
    start_stage: int
    series: dict[str, np.ndarray]
    completed_session: np.ndarray   # [clients] session whose end completed treatment, 0 if never
    first_stage_session: np.ndarray  # [clients, 4] first session whose end reached stage s+1, 0 if never
    first_phase_turn: np.ndarray    # [clients, 4] first-session turn reaching phase A-D, 0 if never

    def summary(self, max_turns: int) -> dict:
        """The figures of the course table for this run."""
        n = len(self.completed_session)

        def mean_when(values: np.ndarray) -> float | None:
            hit = values[values > 0]
            return round(float(hit.mean()), 2) if hit.size else None

        phases = {p: {"mean_turn": mean_when(self.first_phase_turn[:, i]),
                      "share": round(float((self.first_phase_turn[:, i] > 0).mean()), 3)}
                  for i, p in enumerate("BCD", start=1)}
        stages = {str(s): {"mean_session": mean_when(self.first_stage_session[:, s - 1]),
                           "share": round(float((self.first_stage_session[:, s - 1] > 0).mean()), 3)}
                  for s in range(self.start_stage + 1, 5)}
        stage_path = self.series["stage"]
        return {"clients": n, "first_session_phase": phases, "stage_reached": stages,
                "completed_share": round(float((self.completed_session > 0).mean()), 3),
                "completed_mean_session": mean_when(self.completed_session),
                "lowest_stage": int(np.nanmin(stage_path)), "final_stage_mean": round(float(
                    np.nanmean([row[~np.isnan(row)][-1] for row in stage_path])), 2),
                "turns_per_session": max_turns}


def run_course(therapist: Therapist, start_stage: int, clients: int = DEFAULT_CLIENTS,
               max_sessions: int = DEFAULT_MAX_SESSIONS, max_turns: int = MAX_TURNS, seed: int = 0,
               params: Params | None = None) -> CourseRun:
    """Treat `clients` sampled clients (profiles drawn from `seed`) for up to `max_sessions` sessions.

    The same seed gives every therapist the same clients. A treatment ends, as in the env, when a
    stage-4 session reaches integration.
    """
    params = params or Params()
    graph, compiled = _graph(params)
    rng = np.random.default_rng(seed)
    inits = [sample_profile(rng).initial_state(rng, start_stage, graph, params) for _ in range(clients)]
    kernel = BatchKernel(clients, params, graph, compiled)
    kernel.load_rows(np.arange(clients), inits)
    score_rng = np.random.default_rng([seed, 1])
    total = max_sessions * max_turns
    series = {k: np.full((clients, total), np.nan) for k in SERIES}
    done = np.zeros(clients, dtype=bool)
    completed = np.zeros(clients, dtype=int)
    first_stage = np.zeros((clients, 4), dtype=int)
    first_stage[:, start_stage - 1] = -1  # marks the starting stage as held, not reached
    first_phase = np.zeros((clients, 4), dtype=int)
    mal = len(MALADAPTIVE)
    for session in range(1, max_sessions + 1):
        for turn in range(1, max_turns + 1):
            scores = therapist.scores(score_rng, clients)
            misattuned = scores[:, 0] < LOW_THRESHOLD
            noise = np.where(misattuned[:, None], score_rng.standard_normal((clients, kernel.cg.n)), 0.0)
            out = kernel.step(scores, noise)
            t = (session - 1) * max_turns + turn - 1
            live = ~done
            for key, value in (("phase", kernel.phase), ("stage", kernel.stage), ("coiling", out.coiling),
                               ("maladaptive", kernel.buckets[:, :mal].mean(axis=1)),
                               ("adaptive", kernel.buckets[:, mal:].mean(axis=1)), ("alliance", out.alliance)):
                series[key][live, t] = value[live]
            if session == 1:
                new = (first_phase[np.arange(clients), kernel.phase] == 0) & (kernel.phase > 0)
                first_phase[np.flatnonzero(new), kernel.phase[new]] = turn
        _, _, complete = kernel.end_session()
        newly = complete & ~done
        completed[newly] = session
        done |= complete
        reached = (first_stage[np.arange(clients), kernel.stage - 1] == 0) & ~done
        first_stage[np.flatnonzero(reached), kernel.stage[reached] - 1] = session
        if done.all():
            break
    first_stage[first_stage < 0] = 0
    return CourseRun(therapist.name, start_stage, series, completed, first_stage, first_phase)


def plot_stage(runs: list[CourseRun], path: Path, max_turns: int = MAX_TURNS) -> None:
    """One PNG for a starting stage: six panels against sessions, one line per therapist."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {"phase": "in-session phase (0 A … 3 D)", "stage": "treatment stage", "coiling": "coiling",
              "maladaptive": "maladaptive bucket mean", "adaptive": "adaptive bucket mean", "alliance": "alliance"}
    fig, axes = plt.subplots(3, 2, figsize=(12, 10), sharex=True)
    for ax, key in zip(axes.flat, SERIES):
        for run in runs:
            values = run.series[key]
            alive = ~np.isnan(values)
            count = alive.sum(axis=0)
            mean = np.where(alive, values, 0.0).sum(axis=0) / np.maximum(count, 1)
            mean[count < 0.5 * len(values)] = np.nan  # drawn while at least half the clients are in treatment
            x = np.arange(values.shape[1]) / max_turns
            ax.plot(x, mean, label=run.therapist, lw=1.0 if key == "phase" else 1.6,
                    ls="--" if run.therapist == "poor" else "-")  # poor and mediocre coincide: both engage nothing
        ax.set_title(titles[key])
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("sessions")
    axes[0, 0].legend(fontsize=8, ncol=2)
    fig.suptitle(f"Course of treatment from stage {runs[0].start_stage}: scripted therapists, "
                 f"{len(runs[0].completed_session)} clients each (mean over clients in treatment)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def course(stages: list[int], therapists: list[str], clients: int, max_sessions: int, seed: int,
           out: Path, plots: bool = True) -> dict:
    """Run the course, write `course.json` (and the PNGs) to `out`, return the figures."""
    out.mkdir(parents=True, exist_ok=True)
    figures: dict = {"clients": clients, "max_sessions": max_sessions, "max_turns": MAX_TURNS, "seed": seed,
                     "therapists": {n: {"score": THERAPISTS[n].score, "noise_sd": THERAPISTS[n].noise_sd}
                                    for n in therapists}, "stages": {}}
    for stage in stages:
        runs = [run_course(THERAPISTS[n], stage, clients, max_sessions, seed=seed) for n in therapists]
        figures["stages"][str(stage)] = {run.therapist: run.summary(MAX_TURNS) for run in runs}
        if plots:
            plot_stage(runs, out / f"course_stage{stage}.png")
    (out / "course.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


def table(figures: dict) -> str:
    """The course as a Markdown table: one row per (starting stage, therapist)."""
    rows = ["| from | therapist | turns to B / C / D (session 1) | sessions to stage 2 / 3 / 4 | completed | lowest stage |",
            "|---|---|---|---|---|---|"]
    for stage, by_therapist in figures["stages"].items():
        for name, f in by_therapist.items():
            phases = " / ".join("–" if v["mean_turn"] is None else f"{v['mean_turn']:.1f}"
                                for v in f["first_session_phase"].values())
            reached = {int(k): v for k, v in f["stage_reached"].items()}
            stages = " / ".join("·" if s <= int(stage) else
                                ("–" if reached[s]["mean_session"] is None else
                                 f"{reached[s]['mean_session']:.1f} ({100 * reached[s]['share']:.0f} %)")
                                for s in (2, 3, 4))
            rows.append(f"| {stage} | {name} | {phases} | {stages} | {100 * f['completed_share']:.0f} % "
                        f"| {f['lowest_stage']} |")
    return "\n".join(rows)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (`tbn-env-course: error: ...`), exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tbn-env-course", description=__doc__.split("\n\n")[0])
    p.add_argument("--stages", type=int, nargs="+", default=[1, 2, 3, 4], help="starting stages (1-4)")
    p.add_argument("--therapists", nargs="+", default=list(THERAPISTS), help=f"any of {', '.join(THERAPISTS)}")
    p.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="clients per therapist and stage")
    p.add_argument("--max-sessions", type=int, default=DEFAULT_MAX_SESSIONS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/course"))
    p.add_argument("--no-plots", action="store_true", help="write course.json only")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    bad_stages = [s for s in args.stages if s not in (1, 2, 3, 4)]
    if bad_stages:
        parser.error(f"unknown starting stage {bad_stages[0]}: stages are 1-4")
    unknown = [t for t in args.therapists if t not in THERAPISTS]
    if unknown:
        parser.error(f"unknown therapist {unknown[0]!r}: choose from {', '.join(THERAPISTS)}")
    if args.clients < 1 or args.max_sessions < 1:
        parser.error("--clients and --max-sessions must be at least 1")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} exists and is not a directory: pass a directory")
    if not args.no_plots:
        try:
            import matplotlib  # noqa: F401, PLC0415
        except ImportError:
            parser.error("the pictures need matplotlib: pip install 'tbn[render]', or pass --no-plots")
    try:
        figures = course(args.stages, args.therapists, args.clients, args.max_sessions, args.seed, args.out,
                         plots=not args.no_plots)
    except OSError as exc:
        parser.error(f"cannot write to --out {args.out}: {exc.strerror or exc}; pass a writable directory")
    print(table(figures))
    print(f"wrote {args.out / 'course.json'}" + ("" if args.no_plots else " and course_stage*.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
