"""Baselines for Therapy-Interventions-v0: reference policies and trained agents, as a table and a picture.

`python -m tbn_env.baselines` (or `tbn-env-baselines`) measures, per setting (a session from each start
stage 1-4, and a whole treatment from stage 1):

- reference policies: uniformly random, every constant action, and the state-aware oracle (the
  best-fitting move at the client's true moment, `interventions.oracle`);
- agents trained with stable-baselines3 (PPO, A2C, DQN) and sb3-contrib (RecurrentPPO), over several
  training seeds, with the hyper-parameters in `AGENTS`.

Every policy is scored on the same held-out clients (drawn from `EVAL_SEED + run`) as the mean return
of deterministic actions. A run is one training seed (for reference policies, one batch of evaluation
clients); across runs we report the interquartile mean and a 95 % percentile-bootstrap interval, the
conventions of rliable (Agarwal et al., 2021). It writes `baselines.json`, the README's table
(`baselines.md`) and `learning_curves.png`.

Agents see the default therapist's view (no true phase or buckets: `tbn_env.signals`), train on the
native batch of 64 clients (`tbn_env.sb3`, in `make_training_env`) for their budget in `AGENTS` (or
`--steps`), on every setting or only the `--train` pairs; evaluation runs on the batch kernel's vector
env. Learning-curve points score the run's own held-out clients, so an agent trained for n steps is
compared with a longer-trained one at n steps on the same clients (`equal_budget`).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from .interventions import NAMES, moment_of, oracle

ENV_ID = "Therapy-Interventions-v0"
#: setting -> env kwargs: a session from each start stage, and a whole treatment from stage 1.
SETTINGS: dict[str, dict[str, Any]] = {
    "stage1": {"start_stage": 1}, "stage2": {"start_stage": 2}, "stage3": {"start_stage": 3},
    "stage4": {"start_stage": 4}, "treatment": {"start_stage": 1, "episode": "treatment"},
}
EVAL_SEED = 10_000       # evaluation clients come from seeds 10_000 + run: never the training envs' seeds
EVAL_CLIENTS = 64        # held-out clients per run
BOOTSTRAP_REPS = 2000    # percentile bootstrap resamples (rliable uses 2000 for its interval estimates)
N_ENVS = 64              # clients per training batch (the native batch: one kernel call steps them all)
DEFAULT_SEEDS = 5        # training seeds per agent and setting


@dataclass(frozen=True)
class Agent:
    """An SB3 algorithm with the hyper-parameters we give it (the rest are the library's defaults)."""

    algo: str          # class name in stable_baselines3 / sb3_contrib
    module: str
    policy: str
    steps: int         # the default training budget in env steps (`--steps` overrides it)
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def recurrent(self) -> bool:
        return "Lstm" in self.policy

    def build(self, env, seed: int):
        import importlib
        cls = getattr(importlib.import_module(self.module), self.algo)
        return cls(self.policy, env, seed=seed, device="cpu", verbose=0, **self.kwargs)


#: Hyper-parameters and budgets (each reason in docs/decisions.md). Training runs on the native batch of
#: N_ENVS = 64 clients; gamma 0.99 sees a whole 20-turn session. PPO: a rollout of 64 steps per client
#: (4,096 samples, three sessions a client), minibatches of 512, SB3's step size 3e-4 and a little entropy
#: to keep exploring; 300,000 steps put it at 89-91 % of the oracle at the default setting over 5 seeds,
#: so it gets 600,000 (with 12 curve points, one every 50,000: RecurrentPPO's budget is one of them).
#: RecurrentPPO: PPO's settings with a 64-unit LSTM (256 units took 3x the time), so the two differ only
#: by memory (with 1e-3 for RecurrentPPO alone, the step size made the whole of an apparent memory gain);
#: its budget is a sixth of PPO's (an LSTM step costs ~6x), where PPO's first curve point sits. DQN trains
#: on every batch of 64 transitions, explores over the first 30 % and syncs its target every 2,000 steps;
#: A2C keeps SB3's defaults.
AGENTS: dict[str, Agent] = {
    "ppo": Agent("PPO", "stable_baselines3", "MultiInputPolicy", 600_000,
                 {"n_steps": 64, "batch_size": 512, "learning_rate": 3e-4, "ent_coef": 0.01}),
    "a2c": Agent("A2C", "stable_baselines3", "MultiInputPolicy", 200_000),
    "dqn": Agent("DQN", "stable_baselines3", "MultiInputPolicy", 200_000,
                 {"learning_starts": 1000, "exploration_fraction": 0.3, "target_update_interval": 2000,
                  "train_freq": 1, "learning_rate": 1e-3}),
    "recurrent_ppo": Agent("RecurrentPPO", "sb3_contrib", "MultiInputLstmPolicy", 50_000,
                           {"n_steps": 64, "batch_size": 512, "learning_rate": 3e-4, "ent_coef": 0.01,
                            "policy_kwargs": {"lstm_hidden_size": 64}}),
}

Policy = Callable[[Any, dict, np.ndarray], np.ndarray]  # (vector env, observation, episode starts) -> actions


# ------------------------------------------------------------------ statistics (rliable conventions)
def iqm(scores) -> float:
    """Interquartile mean: the mean of the middle half of the scores (rliable's aggregate)."""
    x = np.sort(np.asarray(scores, dtype=float))
    cut = int(np.floor(0.25 * len(x)))
    return float(x[cut:len(x) - cut].mean())


def bootstrap_ci(scores, reps: int = BOOTSTRAP_REPS, seed: int = 0, level: float = 0.95,
                 statistic: Callable[[np.ndarray], float] = iqm) -> tuple[float, float]:
    """Percentile-bootstrap interval of a statistic (the IQM by default) over runs."""
    x = np.asarray(scores, dtype=float)
    rng = np.random.default_rng(seed)
    stats = [statistic(x[rng.integers(0, len(x), len(x))]) for _ in range(reps)]
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def summary(scores) -> dict[str, Any]:
    lo, hi = bootstrap_ci(scores)
    return {"iqm": round(iqm(scores), 2), "ci95": [round(lo, 2), round(hi, 2)],
            "runs": [round(float(s), 2) for s in scores]}


# ------------------------------------------------------------------ evaluation on the batch kernel
def evaluate(setting: str, policy: Policy, clients: int, seed: int) -> np.ndarray:
    """Each held-out client's return over one episode of `setting` (clients drawn from `seed`)."""
    env = gym.make_vec(ENV_ID, num_envs=clients, vectorization_mode="vector_entry_point", **SETTINGS[setting])
    venv = env.unwrapped
    obs, _ = env.reset(seed=seed)
    total, done, starts = np.zeros(clients), np.zeros(clients, dtype=bool), np.ones(clients, dtype=bool)
    while not done.all():
        obs, reward, terminated, truncated, _ = env.step(np.asarray(policy(venv, obs, starts), dtype=np.int64))
        total += np.where(done, 0.0, reward)
        starts = terminated | truncated
        done |= starts
    return total


def random_policy(seed: int) -> Policy:
    rng = np.random.default_rng(seed)
    return lambda venv, obs, starts: rng.integers(0, len(NAMES), venv.num_envs)


def constant_policy(index: int) -> Policy:
    return lambda venv, obs, starts: np.full(venv.num_envs, index)


def oracle_policy(venv, obs, starts) -> np.ndarray:
    """The best-fitting move at each client's true moment (privileged: reads the kernel)."""
    return oracle(moment_of(venv.kernel, venv.rupture))


def agent_policy(model, recurrent: bool) -> Policy:
    """A trained SB3 model acting deterministically (an LSTM keeps its state across the episode)."""
    state = None

    norm = model.get_vec_normalize_env()

    def act(venv, obs, starts):
        nonlocal state
        if norm is not None:
            obs = norm.normalize_obs(obs)
        if not recurrent:
            return model.predict(obs, deterministic=True)[0]
        actions, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        return actions
    return act


def reference_runs(setting: str, runs: int, clients: int) -> dict[str, np.ndarray]:
    """Mean return per run of random, every constant action and the oracle."""
    policies: dict[str, Callable[[int], Policy]] = {"random": random_policy, "oracle": lambda r: oracle_policy}
    policies.update({f"constant:{name}": (lambda r, i=i: constant_policy(i)) for i, name in enumerate(NAMES)})
    return {name: np.array([evaluate(setting, make(r), clients, EVAL_SEED + r).mean() for r in range(runs)])
            for name, make in policies.items()}


# ------------------------------------------------------------------ training
def make_training_env(setting: str, seed: int, n_envs: int = N_ENVS):
    """The training env: the native batch of `n_envs` clients (`tbn_env.sb3`, one kernel call per step)
    seeded from `seed`, with observations (the Box fields: TMoG levels 0-10) and rewards (returns in the
    hundreds) normalised by running statistics, as the RL Zoo does for such envs."""
    from stable_baselines3.common.vec_env import VecNormalize

    from .sb3 import make_vec_env
    env = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed, **SETTINGS[setting])
    boxes = [k for k, space in env.observation_space.spaces.items() if isinstance(space, gym.spaces.Box)]
    return VecNormalize(env, norm_obs_keys=boxes)


def train(agent: str, setting: str, seed: int, steps: int, curve_points: int = 0, clients: int = EVAL_CLIENTS
          ) -> tuple[Any, list[tuple[int, float]]]:
    """Train one agent on one setting; returns the model and its learning curve [(env steps, mean return)].

    Curve points are `curve_points` evenly spaced budgets, each scored on the run's held-out clients (from
    EVAL_SEED + seed), so a point at n steps compares with any agent trained for n steps on the same clients.
    """
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import Logger

    torch.set_num_threads(1)
    spec = AGENTS[agent]
    model = spec.build(make_training_env(setting, seed), seed)
    model.set_logger(Logger(folder=None, output_formats=[]))  # no log folder anywhere
    curve: list[tuple[int, float]] = []
    marks = [round(steps * (i + 1) / curve_points) for i in range(curve_points)] if curve_points else []

    class Curve(BaseCallback):
        def _on_step(self) -> bool:
            while marks and self.num_timesteps >= marks[0]:
                curve.append((marks.pop(0), float(evaluate(setting, agent_policy(self.model, spec.recurrent),
                                                           clients, EVAL_SEED + seed).mean())))
            return True

    model.learn(total_timesteps=steps, callback=Curve())
    return model, curve


def agent_run(agent: str, setting: str, seed: int, steps: int, clients: int, curve_points: int
              ) -> tuple[float, list[tuple[int, float]]]:
    """One training seed: its mean held-out return (clients from EVAL_SEED + seed) and its learning curve."""
    model, curve = train(agent, setting, seed, steps, curve_points, clients)
    score = evaluate(setting, agent_policy(model, AGENTS[agent].recurrent), clients, EVAL_SEED + seed).mean()
    return float(score), curve


# ------------------------------------------------------------------ the report
def reference_report(setting: str, runs: int, clients: int) -> dict[str, Any]:
    """Random, every constant and the oracle on one setting, with the gap share."""
    ref = reference_runs(setting, runs, clients)
    constants = {k: v for k, v in ref.items() if k.startswith("constant:")}
    best = max(constants, key=lambda k: iqm(constants[k]))
    report: dict[str, Any] = {
        "env_kwargs": SETTINGS[setting], "random": summary(ref["random"]), "oracle": summary(ref["oracle"]),
        "best_constant": {"action": best.split(":", 1)[1], **summary(ref[best])},
        "constants": {k.split(":", 1)[1]: summary(v) for k, v in constants.items()}, "agents": {}}
    o, c, r = report["oracle"]["iqm"], report["best_constant"]["iqm"], report["random"]["iqm"]
    report["gap_share"] = round((o - c) / (o - r), 3) if o != r else None
    return report


def equal_budget(agents: dict[str, Any]) -> list[dict[str, Any]]:
    """Agents compared at the same budget: each agent's learning-curve point at its own budget against the
    point at that budget of every agent trained longer. Both points are taken the same way (at the same
    number of updates, on the same held-out clients), so the runs pair up by seed."""
    out = []
    for short, a in agents.items():
        for long, b in agents.items():
            if long == short or b["seeds"] != a["seeds"] or b["steps"] <= a["steps"]:
                continue
            points = [[dict(curve).get(a["steps"]) for curve in x["curves"]] for x in (a, b)]
            if None not in points[0] + points[1]:
                out.append({"steps": a["steps"], short: summary(points[0]), long: summary(points[1])})
    return out


def versus(reference: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """An agent's IQM as a share of the oracle's, and whether its interval lies above the best constant's."""
    return {"oracle_share": round(entry["iqm"] / reference["oracle"]["iqm"], 3),
            "beats_best_constant": entry["ci95"][0] > reference["best_constant"]["ci95"][1]}


def run(settings: list[str], agents: list[str], seeds: int, steps: dict[str, int], clients: int, curve_points: int,
        jobs: int = 1, log: Callable[[str], None] = lambda line: print(line, flush=True),
        save: Callable[[dict[str, Any]], None] | None = None,
        train_only: set[tuple[str, str]] | None = None) -> dict[str, Any]:
    """Every setting's reference report and every (agent, setting, seed) training run of `steps[agent]` env
    steps (only the (agent, setting) pairs in `train_only`, if given), on `jobs` processes.

    `save` receives the results so far after each finished task (a killed run keeps what it finished).
    """
    results: dict[str, Any] = {s: {} for s in settings}
    scores: dict[tuple[str, str], dict[int, tuple[float, list]]] = {}

    def finished() -> dict[str, Any]:
        out = {}
        for setting, rep in results.items():
            if rep:
                out[setting] = {**rep, "agents": {}}
                for agent in agents:
                    runs = scores.get((setting, agent), {})
                    if runs:
                        order = sorted(runs)
                        entry = summary([runs[r][0] for r in order])
                        out[setting]["agents"][agent] = {**entry, **versus(rep, entry), "steps": steps[agent],
                                                         "seeds": order, "curves": [runs[r][1] for r in order]}
                out[setting]["equal_budget"] = equal_budget(out[setting]["agents"])
        return out

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {}
        for s in settings:  # in the order given: a setting's reference, then its training runs
            futures[pool.submit(reference_report, s, seeds, clients)] = ("reference", s, None)
            futures.update({pool.submit(agent_run, a, s, seed, steps[a], clients, curve_points): (a, s, seed)
                            for a in agents for seed in range(seeds) if train_only is None or (a, s) in train_only})
        for future in as_completed(futures):
            what, setting, seed = futures[future]
            if what == "reference":
                results[setting] = rep = future.result()
                log(f"{setting}: random {rep['random']['iqm']:.1f}  best constant {rep['best_constant']['iqm']:.1f} "
                    f"({rep['best_constant']['action']})  oracle {rep['oracle']['iqm']:.1f}  "
                    f"gap share {rep['gap_share']}")
            else:
                scores.setdefault((setting, what), {})[seed] = future.result()
                log(f"{setting}: {what} seed {seed}: {scores[(setting, what)][seed][0]:.1f}")
            if save is not None:
                save(finished())
    return finished()


def plot_curves(results: dict[str, Any], path: Path) -> None:
    """One panel per setting an agent trained on: each agent's IQM learning curve against random, best
    constant and oracle."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    panels = {setting: rep for setting, rep in results.items() if rep["agents"]} or results
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.8), squeeze=False)
    for ax, (setting, rep) in zip(axes[0], panels.items()):
        for name, style in (("oracle", "k-"), ("best_constant", "k--"), ("random", "k:")):
            label = name if name != "best_constant" else f"best constant ({rep['best_constant']['action']})"
            ax.axhline(rep[name]["iqm"], color="k", linestyle=style[1:], linewidth=1, label=label)
        for agent, a in rep["agents"].items():
            curves = [c for c in a["curves"] if c]
            if not curves:
                continue
            x = [s for s, _ in curves[0]]
            y = np.array([[v for _, v in c] for c in curves])
            ax.plot(x, [iqm(col) for col in y.T], marker="o", markersize=3, label=agent)
        ax.set_title(setting)
        ax.set_xlabel("training env steps")
        ax.set_ylabel("mean return (IQM over seeds)")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:.0f}k"))
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cell(e: dict[str, Any]) -> str:
    return f"{e['iqm']:.1f} [{e['ci95'][0]:.1f}, {e['ci95'][1]:.1f}]"


def markdown_table(results: dict[str, Any]) -> str:
    """The README's table: IQM [95 % CI] per policy and setting, the oracle's lead over the best constant, and
    each agent's share of the oracle (in bold where its interval lies wholly above the best constant's);
    then the agents compared at equal budgets."""
    ordered = sorted(results.items(), key=lambda item: list(SETTINGS).index(item[0]))
    agents = sorted({a for rep in results.values() for a in rep["agents"]}, key=list(AGENTS).index)
    budget = {a: next(rep["agents"][a]["steps"] for rep in results.values() if a in rep["agents"]) for a in agents}

    def agent_cell(e: dict[str, Any]) -> str:  # bold: the whole interval above the best constant's
        text = f"{_cell(e)} ({100 * e['oracle_share']:.0f} %)"
        return f"**{text}**" if e["beats_best_constant"] else text
    head = ["setting", "random", "best constant", "oracle", "gap share",
            *[f"{AGENTS[a].algo} {budget[a]:,} steps" for a in agents]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for setting, rep in ordered:
        best = rep["best_constant"]
        row = [setting, _cell(rep["random"]), f"{_cell(best)} `{best['action']}`", _cell(rep["oracle"]),
               f"{rep['gap_share']:.2f}", *[agent_cell(rep["agents"][a]) if a in rep["agents"] else "–" for a in agents]]
        lines.append("| " + " | ".join(row) + " |")
    pairs = [(setting, e) for setting, rep in ordered for e in rep.get("equal_budget", [])]
    if pairs:
        lines += ["", "| setting | budget (env steps) | agent | its score there | agent trained longer | "
                      "its score there |", "|---|---|---|---|---|---|"]
        for setting, e in pairs:
            short, long = (k for k in e if k != "steps")
            lines.append(f"| {setting} | {e['steps']:,} | {AGENTS[short].algo} | {_cell(e[short])} | "
                         f"{AGENTS[long].algo} | {_cell(e[long])} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tbn-env-baselines", description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, from {list(SETTINGS)}")
    parser.add_argument("--agents", default=",".join(AGENTS),
                        help=f"comma-separated, from {list(AGENTS)}; empty for reference policies only")
    parser.add_argument("--train", default="", metavar="AGENT:SETTING,...",
                        help="train only these agent-setting pairs (default: every agent on every setting)")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="training seeds (runs) per agent")
    parser.add_argument("--steps", type=int, default=None,
                        help="env steps per training run for every agent (default: each agent's budget in AGENTS)")
    parser.add_argument("--clients", type=int, default=EVAL_CLIENTS, help="held-out clients per run")
    parser.add_argument("--curve-points", type=int, default=6, help="learning-curve evaluations per run")
    parser.add_argument("--jobs", type=int, default=1, help="training runs in parallel (processes)")
    parser.add_argument("--out", type=Path, default=Path("runs/baselines"), help="folder for the JSON and PNG")
    args = parser.parse_args(argv)
    args.settings = [s for s in args.settings.split(",") if s]
    args.agents = [a for a in args.agents.split(",") if a]
    for name, values, known in (("--settings", args.settings, SETTINGS), ("--agents", args.agents, AGENTS)):
        unknown = [v for v in values if v not in known]
        if unknown:
            parser.error(f"{name}: unknown {unknown}; choose from {list(known)}")
    if not args.settings:
        parser.error("--settings: name at least one setting")
    pairs = [tuple(p.split(":", 1)) for p in args.train.split(",") if p]
    bad = [":".join(p) for p in pairs if len(p) != 2 or p[0] not in args.agents or p[1] not in args.settings]
    if bad:
        parser.error(f"--train: {bad} are not AGENT:SETTING pairs of --agents and --settings")
    args.train = set(pairs) or None
    for name in ("seeds", "steps", "clients", "jobs"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.curve_points < 0:
        parser.error(f"--curve-points must be >= 0, got {args.curve_points}")
    if args.agents:
        missing = [m for m in {AGENTS[a].module for a in args.agents} if not _importable(m)]
        if missing:
            parser.error(f"--agents needs {missing}: pip install -e .[sb3]")
    return args


def _importable(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    steps = {a: args.steps or AGENTS[a].steps for a in args.agents}
    meta = {"env_id": ENV_ID, "seeds": args.seeds, "steps": steps, "clients": args.clients,
            "eval_seed": EVAL_SEED, "n_envs": N_ENVS, "hyperparameters": {a: AGENTS[a].kwargs for a in args.agents}}

    def save(results: dict[str, Any]) -> None:
        for name, text in (("baselines.json", json.dumps({"meta": meta, "settings": results}, indent=1)),
                           ("baselines.md", markdown_table(results) + "\n")):
            tmp = args.out / (name + ".tmp")  # whole files only: a killed run leaves the last report intact
            tmp.write_text(text)
            tmp.replace(args.out / name)

    results = run(args.settings, args.agents, args.seeds, steps, args.clients, args.curve_points, args.jobs,
                  save=save, train_only=args.train)
    save(results)
    if args.agents and args.curve_points:
        plot_curves(results, args.out / "learning_curves.png")
    print(markdown_table(results))
    print(f"wrote {args.out / 'baselines.json'} and baselines.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
