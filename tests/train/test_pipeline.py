"""`tbn-pipeline run`: the chain end to end; SIGKILLed in each stage, it resumes without redoing finished stages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from tbn_train.pipeline import STAGES, STATE_FILE, main

CONFIG = """
model = "{model}"
out = "{out}"
[train]
max_new_tokens = 8
lora_layers = [3, 4]
attn_rank = 4
mlp_rank = 4
[corpus]
sessions = 2
per_session = 1
[preprocess]
strategies = ["dfr"]
[rra]
max_steps = 2
window_tokens = 256
recap_max_tokens = 8
rank = 4
[sft]
max_steps = 2
[dpo]
method = "A"
[selfplay]
sessions = 1
max_turns = 1
"""


def write_config(tmp_path, model, out, extra=""):
    path = tmp_path / "pipeline.toml"
    path.write_text(CONFIG.format(model=model, out=out) + extra, encoding="utf-8")
    return path


def _nonempty(*parts: str):
    return lambda out: (p := out.joinpath(*parts)).is_file() and p.stat().st_size > 0


def _logged_step(stage: str):
    """True once the stage's run log holds a training step (not just the held-out loss before training)."""
    def seen(out: Path) -> bool:
        log = out / stage / "log.jsonl"
        return log.is_file() and any('"kind": "heldout"' not in line for line in log.read_text().splitlines())
    return seen


@dataclass(frozen=True)
class KillCase:
    """Where to kill one stage: the stages run, config edits that keep the stage busy long enough to be
    caught mid-way, the sign that it is under way, and the outputs an uninterrupted run must match."""

    stages: tuple[str, ...]
    edits: str
    running: object
    outputs: tuple[str, ...]   # globs under OUT, compared byte for byte with an uninterrupted run


CASES = {
    # offline sessions are quick: enough of them that the kill lands after the first shard lines
    "corpus": KillCase(("corpus", "preprocess"), '[corpus]\nsessions = 300\n',
                       _nonempty("corpus", "sessions", "sessions-00000.jsonl"),
                       ("corpus/sessions/sessions-*.jsonl", "corpus/cf/counterfactuals-*.jsonl",
                        "preprocess/samples-*.jsonl", "preprocess/curriculum.json")),
    "preprocess": KillCase(("corpus", "preprocess"), '[corpus]\nsessions = 30\n[preprocess]\nstrategies = ["dfr", "uhd", "adwc"]\n',
                           _nonempty("preprocess", "samples-00000.jsonl"),
                           ("preprocess/samples-*.jsonl", "preprocess/curriculum.json")),
    "rra": KillCase(("corpus", "preprocess", "rra"), "[rra]\nmax_steps = 3\n", _nonempty("rra", "log.jsonl"),
                    ("rra/adapter/adapters.safetensors", "rra/compressor.safetensors")),
    "sft": KillCase(("corpus", "preprocess", "rra", "sft"), "[sft]\nmax_steps = 3\n", _logged_step("sft"),
                    ("sft/therapist/adapters.safetensors", "sft/summary.json")),
    "dpo": KillCase(("corpus", "dpo"), "", _logged_step("dpo"),
                    ("pairs.jsonl", "dpo/therapist/adapters.safetensors", "dpo/summary.json")),
    "selfplay": KillCase(("corpus", "selfplay"), "[selfplay]\nsessions = 2\n", _nonempty("selfplay", "log.jsonl"),
                         ("selfplay/therapist/adapters.safetensors",)),
}


def _case_config(tmp_path: Path, model: Path, out: Path, case: KillCase) -> Path:
    """The base config with the case's stages and edits (an edited table's keys replace the base's)."""
    cfg = tomllib.loads(CONFIG.format(model=model, out=out))
    for table, values in tomllib.loads(case.edits).items():
        cfg[table] = {**cfg[table], **values}
    lines = [f'model = "{model}"', f'out = "{out}"', f"stages = {json.dumps(list(case.stages))}"]
    for table in ("train", *STAGES):
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in cfg[table].items()]
    path = tmp_path / f"{out.name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(config: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "tbn_train.pipeline", "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def kill_during(config: Path, out: Path, stage: str, running) -> None:
    """Start the chain and SIGKILL it as soon as ``running(out)`` says ``stage`` is under way."""
    proc = subprocess.Popen([sys.executable, "-m", "tbn_train.pipeline", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 900
    try:
        while not running(out):
            assert proc.poll() is None, f"the chain ended before {stage} was caught under way"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def _files(out: Path, globs: tuple[str, ...]) -> dict[str, bytes]:
    found = {str(p.relative_to(out)): p.read_bytes() for g in globs for p in sorted(out.glob(g))}
    assert len(found) >= len(globs), f"missing outputs under {out}: {globs}"
    return found


def _stamps(out: Path, stages: tuple[str, ...]) -> dict[str, int]:
    """Modification times of every file the finished stages wrote (a redone stage would rewrite them)."""
    return {str(p): p.stat().st_mtime_ns for s in stages for p in (out / s).rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_a_chain_killed_in_any_stage_resumes_it_and_matches_an_uninterrupted_run(stage, llama_dir, tmp_path):
    case = CASES[stage]
    out, ref = tmp_path / "killed", tmp_path / "uninterrupted"
    config = _case_config(tmp_path, llama_dir, out, case)
    kill_during(config, out, stage, case.running)
    state = json.loads((out / STATE_FILE).read_text())
    earlier = case.stages[:case.stages.index(stage)]
    assert stage in state["attempts"] and stage not in state["done"] and set(state["done"]) == set(earlier)
    finished = _stamps(out, earlier)

    done = _run(config)
    state = json.loads((out / STATE_FILE).read_text())
    assert set(state["done"]) == set(case.stages)
    assert state["attempts"] == {s: 2 if s == stage else 1 for s in case.stages}
    assert _stamps(out, earlier) == finished   # finished stages were kept, not redone
    table = (out / "summary.md").read_text()
    assert all(f"| {s} |" in table for s in case.stages) and table in done.stdout
    for log in (out / stage).glob("log.jsonl"):   # a resumed run logs every step (self-play: turn) exactly once
        records = [r for r in map(json.loads, log.read_text().splitlines()) if r.get("kind", "step") == "step"]
        steps = [r["turn"] if "turn" in r else r["step"] for r in records]
        assert steps and steps == list(range(steps[0], steps[0] + len(steps)))

    _run(_case_config(tmp_path, llama_dir, ref, case))
    assert _files(out, case.outputs) == _files(ref, case.outputs)


@pytest.mark.parametrize("extra, problem", [
    ('stages = ["corpus", "grpo"]\n', "'grpo', which is no stage"),
    ("[grpo]\nsteps = 2\n", "unknown stage or key 'grpo'"),
    ('stages = ["sft", "corpus"]\n', "chain order"),
])
def test_a_config_naming_a_missing_stage_is_refused_with_one_line(llama_dir, tmp_path, capsys, extra, problem):
    out = tmp_path / "run"
    text = CONFIG.format(model=llama_dir, out=out)
    path = tmp_path / "pipeline.toml"
    path.write_text(extra + text if extra.startswith("stages") else text + extra, encoding="utf-8")
    code = main(["run", "--config", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("tbn-pipeline: error: ") and problem in err[0]
    assert not out.exists()
