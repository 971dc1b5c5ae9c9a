"""`tbn-pipeline run --config pipeline.toml`: the whole training chain in one resumable command.

corpus → preprocess → rra → sft → dpo → selfplay (§7, §8, §9.2, §9.3.11, §9.3.14), each stage in
``OUT/<stage>/`` and each trained adapter warm-starting the next (``--init-adapter``):

* ``corpus``: offline sessions (``OUT/corpus/sessions``) and their counterfactuals (``OUT/corpus/cf``);
* ``preprocess``: sessions and counterfactuals cut into the DFR / UHD / ADWC curriculum (``tbn-dapt preprocess``);
* ``rra``: Rolling Recap DAPT on the curriculum (``tbn-dapt train``), adapter in ``OUT/rra/adapter``;
* ``sft``: ``tbn-corpus export-sft`` into ``OUT/sft-data``, then ``tbn-train sft``;
* ``dpo``: ``tbn-corpus pairs`` (Method A or B) into ``OUT/pairs.jsonl``, then ``tbn-train dpo``;
* ``selfplay``: RLAIF + GRPO self-play (``tbn-train selfplay``).

The TOML file names the model, the output directory, optionally the ``stages`` to run (in chain
order) and a ``[train]`` table of trainer settings shared by sft, dpo and selfplay; each stage's own
table holds its settings (the fields of the command it runs). ``OUT/pipeline.json`` records every
finished stage with what it produced; a rerun skips those and resumes the unfinished one from its
own checkpoints, so a killed run continues where it stopped. It ends with a summary table
(``OUT/summary.md``) and a picture of the SFT and DPO held-out evidence (``OUT/evidence.png``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tbn_train.atomic import write_json

STAGES = ("corpus", "preprocess", "rra", "sft", "dpo", "selfplay")
STATE_FILE = "pipeline.json"
SUMMARY_TABLE = "summary.md"
# The settings each stage table may hold; the pipeline wires model, data, adapters and output itself.
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "corpus": ("sessions", "per_session", "seed"),
    "preprocess": ("strategies", "seed"),
    "rra": ("epochs", "max_steps", "window_tokens", "window_jitter", "compressor_slots", "recap_max_tokens",
            "recap_temperature", "recap_gating", "layers", "rank", "learning_rate", "seed", "checkpoint_every"),
    "sft": ("epochs", "batch_size", "max_steps", "checkpoint_every", "train"),
    "dpo": ("method", "epochs", "batch_size", "checkpoint_every", "train"),
    "selfplay": ("sessions", "max_turns", "judge", "client", "checkpoint_every", "judge_max_tokens",
                 "client_max_tokens", "train"),
}
CORPUS_DEFAULTS = {"sessions": 2, "per_session": 2, "seed": 0}   # ours: the demo's size; real runs set their own


def _toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None


def load_config(path: str | Path, out: str | None = None, model: str | None = None) -> dict[str, Any]:
    """Read and check a pipeline TOML file (flags override ``out`` and ``model``); bad input is a ValueError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pipeline config not found: {path}")
    cfg = _toml(path)
    cfg.update({k: v for k, v in (("out", out), ("model", model)) if v is not None})
    known = {"model", "out", "stages", "train", *STAGES}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(f"{path}: unknown stage or key {unknown[0]!r}; the stages are {', '.join(STAGES)} "
                         "(plus model, out, stages and [train])")
    for key in ("model", "out"):
        if not isinstance(cfg.get(key), str):
            raise ValueError(f"{path}: set {key} = \"...\" (or pass --{key})")
    stages = cfg.setdefault("stages", list(STAGES))
    missing = [s for s in stages if s not in STAGES]
    if missing:
        raise ValueError(f"{path}: stages names {missing[0]!r}, which is no stage; the stages are {', '.join(STAGES)}")
    if not stages or list(stages) != [s for s in STAGES if s in stages]:
        raise ValueError(f"{path}: stages must be a non-empty list in chain order ({', '.join(STAGES)}), got {stages}")
    for stage in STAGES:
        table = cfg.setdefault(stage, {})
        extra = sorted(set(table) - set(STAGE_KEYS[stage]))
        if extra:
            raise ValueError(f"{path}: [{stage}] has no setting {extra[0]!r}; it takes {', '.join(STAGE_KEYS[stage])}")
    if cfg["dpo"].get("method", "A") not in ("A", "B"):
        raise ValueError(f"{path}: [dpo] method must be \"A\" or \"B\", got {cfg['dpo']['method']!r}")
    from tbn_train.config import TrainConfig  # noqa: PLC0415

    for stage in ("", "sft", "dpo", "selfplay"):   # every trainer-settings table, checked before anything runs
        TrainConfig(**_train(cfg, stage))
    return cfg


def _train(cfg: dict[str, Any], stage: str) -> dict[str, Any]:
    """The trainer settings of a stage: the shared [train] table under the stage's own ``train``."""
    return {**cfg.get("train", {}), **(cfg[stage].get("train", {}) if stage else {})}


class Pipeline:
    """Runs the stages of a checked config in ``out``, skipping those ``pipeline.json`` marks finished."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.out = Path(cfg["out"])
        self.state_path = self.out / STATE_FILE
        wanted = json.loads(json.dumps(cfg))
        if self.state_path.is_file():
            self.state = json.loads(self.state_path.read_text(encoding="utf-8"))
            if self.state["config"] != wanted:
                raise ValueError(f"{self.out} holds a pipeline run with other settings; continue it with the same "
                                 "config or choose another out")
        else:
            self.state = {"config": wanted, "attempts": {}, "done": {}}
            self.out.mkdir(parents=True, exist_ok=True)
            write_json(self.state_path, self.state)

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    def adapter_before(self, stage: str) -> str | None:
        """The adapter the last trained stage before ``stage`` produced (None: start from the base model)."""
        produced = {"rra": self.path("rra", "adapter"), "sft": self.path("sft", "therapist"),
                    "dpo": self.path("dpo", "therapist")}
        for earlier in reversed(STAGES[:STAGES.index(stage)]):
            if earlier in self.cfg["stages"] and earlier in produced:
                return str(produced[earlier])
        return None

    def run(self) -> list[dict[str, Any]]:
        """Run every unfinished stage; return the summary rows."""
        for stage in self.cfg["stages"]:
            if stage in self.state["done"]:
                print(f"[pipeline] {stage}: finished earlier, kept", file=sys.stderr)
                continue
            self.state["attempts"][stage] = self.state["attempts"].get(stage, 0) + 1
            write_json(self.state_path, self.state)
            print(f"[pipeline] {stage}: running", file=sys.stderr)
            start = time.perf_counter()
            produced = getattr(self, f"_{stage}")()
            self.state["done"][stage] = {**produced, "seconds": round(time.perf_counter() - start, 1)}
            write_json(self.state_path, self.state)
        rows = [{"stage": s, **self.state["done"][s]} for s in self.cfg["stages"]]
        self.path(SUMMARY_TABLE).write_text(format_table(rows), encoding="utf-8")
        self.plot_evidence()
        return rows

    def plot_evidence(self) -> Path | None:
        """``OUT/evidence.png``: SFT held-out loss and DPO held-out margin before and after (needs matplotlib)."""
        panels = [(stage, key, label) for stage, key, label in (
            ("sft", "heldout_loss", "SFT: held-out loss on assistant tokens (lower is better)"),
            ("dpo", "heldout_margin", "DPO: held-out log π(chosen) − log π(rejected) (higher is better)"))
            if stage in self.state["done"]]
        try:
            import matplotlib
        except ImportError:
            print("[pipeline] matplotlib is not installed: no evidence.png (pip install matplotlib)", file=sys.stderr)
            return None
        if not panels:
            return None
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415

        fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False)
        for ax, (stage, key, label) in zip(axes[0], panels):
            s = _summary(self.path(stage))
            values = [s[f"{key}_before"], s[f"{key}_after"]]
            ax.bar(["before", "after"], values, color=["#9aa5b1", "#2f6f9f"])
            for i, v in enumerate(values):
                ax.annotate(f"{v:.3f}", (i, v), ha="center", va="bottom" if v >= 0 else "top")
            ax.set_title(label, fontsize=9)
            ax.axhline(0, color="black", linewidth=0.6)
        fig.suptitle(f"{Path(self.cfg['model']).name}: held-out evidence of the chain's SFT and DPO stages",
                     fontsize=10)
        fig.tight_layout()
        path = self.path("evidence.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    def _corpus(self) -> dict[str, Any]:
        from corpus.generate import (
            generate,  # noqa: PLC0415
            generate_counterfactuals,  # noqa: PLC0415
        )

        c = {**CORPUS_DEFAULTS, **self.cfg["corpus"]}
        sessions, cf = self.path("corpus", "sessions"), self.path("corpus", "cf")
        generate(sessions, c["sessions"], seed=c["seed"], resume=(sessions / "manifest.json").is_file())
        generate_counterfactuals(sessions, cf, c["per_session"], c["seed"], resume=(cf / "manifest.json").is_file())
        from corpus.teaching import load_counterfactuals, load_sessions  # noqa: PLC0415

        n, k = len(load_sessions(sessions)), len(load_counterfactuals(cf))
        return {"output": str(self.path("corpus")), "result": f"{n} sessions, {k} counterfactuals"}

    def _preprocess(self) -> dict[str, Any]:
        from dapt.preprocess import STRATEGIES, preprocess  # noqa: PLC0415

        p, out = self.cfg["preprocess"], self.path("preprocess")
        n = preprocess(self.path("corpus", "sessions"), out, tuple(p.get("strategies", STRATEGIES)), self.cfg["model"],
                       seed=p.get("seed", 0), resume=(out / "manifest.json").is_file(),
                       counterfactuals_dir=self.path("corpus", "cf"))
        from dapt.preprocess import stats  # noqa: PLC0415

        s = stats(out)
        return {"output": str(out), "result": f"{s['samples']} samples, {s['tokens']} tokens"
                                              + (f" ({n} written this run)" if n != s["samples"] else "")}

    def _rra(self) -> dict[str, Any]:
        from dapt.train import DAPTConfig, train  # noqa: PLC0415

        out = self.path("rra")
        cfg = DAPTConfig(model=self.cfg["model"], data=str(self.path("preprocess")), **self.cfg["rra"])
        adapter = train(cfg, out, resume=(out / "run.json").is_file())
        losses = [r["loss"] for r in _log(out) if r.get("kind") == "step"]
        return {"output": str(adapter), "result": f"{len(losses)} samples, loss {losses[0]:.3f} -> {losses[-1]:.3f}"}

    def _sft(self) -> dict[str, Any]:
        from corpus.sft import export_sft  # noqa: PLC0415
        from tbn_train.sft import SFTConfig, data_files, run_sft  # noqa: PLC0415

        data, out = self.path("sft-data"), self.path("sft")
        export_sft(self.path("corpus", "sessions"), data, self.path("corpus", "cf"))
        train, valid = data_files(data)
        settings = {k: v for k, v in self.cfg["sft"].items() if k != "train"}
        cfg = SFTConfig(model=self.cfg["model"], data=train, valid=valid, init_adapter=self.adapter_before("sft"),
                        train=_train(self.cfg, "sft"), **settings)
        adapter = run_sft(cfg, out, resume=(out / "run.json").is_file())
        s = _summary(out)
        return {"output": str(adapter), "result": f"held-out loss {_num(s['heldout_loss_before'])} -> "
                                                  f"{_num(s['heldout_loss_after'])} ({s['steps']} steps)"}

    def _dpo(self) -> dict[str, Any]:
        from corpus.pairs import heldout_path, write_pairs  # noqa: PLC0415
        from tbn_train.dpo import DPOConfig, run_dpo  # noqa: PLC0415

        pairs, out = self.path("pairs.jsonl"), self.path("dpo")
        settings = {k: v for k, v in self.cfg["dpo"].items() if k not in ("train", "method")}
        write_pairs(self.path("corpus", "sessions"), self.path("corpus", "cf"), self.cfg["dpo"].get("method", "A"),
                    pairs)
        cfg = DPOConfig(model=self.cfg["model"], pairs=str(pairs), heldout=str(heldout_path(pairs)),
                        init_adapter=self.adapter_before("dpo"), train=_train(self.cfg, "dpo"), **settings)
        adapter = run_dpo(cfg, out, resume=(out / "run.json").is_file())
        s = _summary(out)
        return {"output": str(adapter), "result": f"held-out margin {_num(s['heldout_margin_before'])} -> "
                                                  f"{_num(s['heldout_margin_after'])} ({s['train_pairs']} pairs)"}

    def _selfplay(self) -> dict[str, Any]:
        from tbn_train.selfplay import SelfPlay, SelfPlayConfig  # noqa: PLC0415

        out = self.path("selfplay")
        settings = {k: v for k, v in self.cfg["selfplay"].items() if k != "train"}
        settings = {"sessions": 1, "max_turns": 2, **settings}
        cfg = SelfPlayConfig(model=self.cfg["model"], init_adapter=self.adapter_before("selfplay"),
                             train=_train(self.cfg, "selfplay"), **settings)
        adapter = SelfPlay(cfg, out, resume=(out / "run.json").is_file()).run_all()
        rewards = [r["reward"] for r in _log(out) if "reward" in r]
        return {"output": str(adapter), "result": f"{len(rewards)} turns, mean reward "
                                                  f"{sum(rewards) / max(len(rewards), 1):.3f}"}


def _log(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text(encoding="utf-8").splitlines() if line]


def _summary(run: Path) -> dict[str, Any]:
    return json.loads((run / "summary.json").read_text(encoding="utf-8"))


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """The summary as a Markdown table: stage, what it produced, seconds, output."""
    lines = ["| stage | result | seconds | output |", "|---|---|---|---|"]
    lines += [f"| {r['stage']} | {r['result']} | {r['seconds']} | `{r['output']}` |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tbn-pipeline",
                                     description="corpus → preprocess → RRA → SFT → DPO → self-play")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or continue) the chain a pipeline.toml describes")
    run.add_argument("--config", required=True, help="pipeline TOML file")
    run.add_argument("--out", help="output directory (overrides the file's out)")
    run.add_argument("--model", help="local mlx-lm model directory (overrides the file's model)")
    args = parser.parse_args(argv)
    from tbn_train.cli_errors import USER_ERRORS, report  # noqa: PLC0415

    try:
        rows = Pipeline(load_config(args.config, args.out, args.model)).run()
    except USER_ERRORS as exc:
        return report("tbn-pipeline", exc)
    print(format_table(rows), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
