"""`tbn-pipeline run`: the chain end to end, resumed after SIGKILL without redoing finished stages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

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


@pytest.mark.slow
def test_a_killed_chain_continues_without_redoing_finished_stages(llama_dir, tmp_path):
    out = tmp_path / "run"
    config = write_config(tmp_path, llama_dir, out)
    cmd = [sys.executable, "-m", "tbn_train.pipeline", "run", "--config", str(config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 900
    while not (out / "sft" / "log.jsonl").is_file() or not (out / "sft" / "log.jsonl").read_text():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before SFT trained a step"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)   # mid-SFT: corpus, preprocess and rra are finished
    proc.wait()
    state = json.loads((out / STATE_FILE).read_text())
    assert set(state["done"]) == {"corpus", "preprocess", "rra"}
    rra_adapter = out / "rra" / "adapter" / "adapters.safetensors"
    before = (rra_adapter.stat().st_mtime_ns, (out / "preprocess" / "manifest.json").read_bytes())
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    state = json.loads((out / STATE_FILE).read_text())
    assert set(state["done"]) == set(STAGES)
    assert state["attempts"] == {"corpus": 1, "preprocess": 1, "rra": 1, "sft": 2, "dpo": 1, "selfplay": 1}
    assert (rra_adapter.stat().st_mtime_ns, (out / "preprocess" / "manifest.json").read_bytes()) == before
    steps = [json.loads(x) for x in (out / "sft" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if r["kind"] == "step"] == [1, 2]   # resumed SFT logs every step once
    table = (out / "summary.md").read_text()
    assert all(f"| {s} |" in table for s in STAGES) and "held-out margin" in table and table in done.stdout


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
