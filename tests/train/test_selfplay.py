"""Self-play end to end on the tiny model: log, mlx-lm adapter, isolation, determinism, kill + resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import tbn_train  # noqa: F401  (preload OpenBLAS before mlx)
import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from tbn_env.dimensions import JUDGE_DIMENSIONS
from tbn_env.params import Params
from tbn_train.cli import main
from tbn_train.config import TrainConfig
from tbn_train.lora import adapter_pairs
from tbn_train.run_dir import CHECKPOINTS, FINAL_ADAPTER
from tbn_train.selfplay import SelfPlay, SelfPlayConfig, candidate_score, treatment_modifier
from .run_logs import adapter_bytes, records

MAX_NEW_TOKENS = 16  # short generations keep a tiny-model turn around a second
SESSIONS, TURNS = 2, 2  # crosses a session boundary (summary, stage assessment) in 4 turns


def config(model_dir, **kw) -> SelfPlayConfig:
    return SelfPlayConfig(model=str(model_dir), sessions=kw.pop("sessions", SESSIONS), max_turns=kw.pop("max_turns", TURNS),
                          train=TrainConfig(max_new_tokens=MAX_NEW_TOKENS, seed=3), **kw)


def cli_args(model_dir, out) -> list[str]:
    return ["selfplay", "--model", str(model_dir), "--sessions", str(SESSIONS), "--max-turns", str(TURNS),
            "--out", str(out), "--max-new-tokens", str(MAX_NEW_TOKENS), "--seed", "3"]


@pytest.fixture(scope="module")
def reference_run(llama_dir, tmp_path_factory):
    """One uninterrupted 2 × 2-turn run through the CLI entry point (in process)."""
    out = tmp_path_factory.mktemp("selfplay") / "ref"
    assert main(cli_args(llama_dir, out)) == 0
    return out


@pytest.mark.slow
def test_run_writes_turn_log_summary_and_mlx_lm_adapter(reference_run, llama_dir, prompt_of):
    rows = records(reference_run, drop=None)
    assert [r["turn"] for r in rows] == [0, 1, 2, 3]
    assert [r["session"] for r in rows] == [1, 1, 2, 2]
    for r in rows:
        assert set(r["scores"]) == set(JUDGE_DIMENSIONS)
        assert r["reward"] == pytest.approx(r["reward_breakdown"]["total"])
        assert 0.5 <= r["rlaif"]["modifier"] <= 2.0 and len(r["grpo"]["scores"]) == 4
        parts = {k: v for k, v in r["timings"].items() if k != "total"}
        assert {"generation", "judging", "env"} <= set(parts)
        assert sum(parts.values()) == pytest.approx(r["timings"]["total"])
    assert "session_summary" in rows[1] and "session_summary" in rows[3] and "session_summary" not in rows[0]
    assert rows[-1]["counters"]["rlaif_steps"] + rows[-1]["counters"]["grpo_steps"] > 0

    # the saved therapist loads with plain mlx_lm.load and computes what our in-memory adapter does
    from mlx_lm import load

    from tbn_train.adapter_io import load_adapter
    from tbn_train.lora import AdapterRouter
    from tbn_train.model import load_model

    plain, tok = load(str(llama_dir), adapter_path=str(reference_run / FINAL_ADAPTER))
    ours, _ = load_model(llama_dir)
    router = AdapterRouter()
    load_adapter(ours, router, "therapist", reference_run / FINAL_ADAPTER)
    router.active = "therapist"
    ids = mx.array([prompt_of(tok, "I keep going quiet when it matters.")])
    assert any(mx.any(p.lora_b != 0).item() for p in adapter_pairs(ours, router, "therapist").values())
    assert mx.allclose(plain(ids), ours(ids), atol=1e-4).item()


def test_one_turn_changes_only_therapist_lora(llama_dir, tmp_path):
    sp = SelfPlay(config(llama_dir, sessions=1, max_turns=1), tmp_path / "run")
    before = {k: np.array(v) for k, v in tree_flatten(sp.policy.model.parameters())}
    record = sp.step()
    assert record["rlaif"]["skipped"] is None and record["grpo"]["skipped"] is None
    after = dict(tree_flatten(sp.policy.model.parameters()))
    changed = {k for k in before if not np.array_equal(before[k], np.array(after[k]))}
    assert changed, "a turn with two optimizer steps must move the therapist"
    assert all(".adapters.therapist." in k for k in changed)
    frozen = [k for k in before if ".adapters.client_judge." in k]
    assert frozen and not set(frozen) & changed  # client/judge adapter bit-identical
    assert not any(".adapters." not in k for k in changed)  # base weights bit-identical


@pytest.mark.slow
def test_seeded_runs_are_bit_identical(reference_run, llama_dir, tmp_path):
    assert main(cli_args(llama_dir, tmp_path / "again")) == 0
    assert records(tmp_path / "again") == records(reference_run)
    assert adapter_bytes(tmp_path / "again") == adapter_bytes(reference_run)


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(reference_run, llama_dir, tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, "MLX_DISABLE_COMPILE": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tbn_train.cli", *cli_args(llama_dir, out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    latest = out / CHECKPOINTS / "latest.json"
    try:
        while proc.poll() is None and not (latest.is_file() and json.loads(latest.read_text())["step"] >= 2):
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert len(records(out)) < SESSIONS * TURNS  # really interrupted
    assert main([*cli_args(llama_dir, out), "--resume"]) == 0
    assert records(out) == records(reference_run)
    assert adapter_bytes(out) == adapter_bytes(reference_run)


def test_grpo_candidate_score_is_stage_composite_plus_modifiers_by_hand():
    scores = dict.fromkeys(JUDGE_DIMENSIONS, 6.0)
    scores.update(safety=9.0, attunement=8.0, validation=8.0, clinical_wisdom=9.0, artfulness=2.0)
    # stage 1 weights (§9.3.6.1): safety 1.8, attunement 1.5, validation 1.5, clinical_wisdom 0.5, artfulness 0.4, rest 1
    weighted = 1.8 * 9 + 1.5 * 8 + 1.5 * 8 + 0.5 * 9 + 0.4 * 2 + 7 * 6.0
    composite = weighted / (1.8 + 1.5 + 1.5 + 0.5 + 0.4 + 7)
    # safety > 8 (+2.0), mean(attunement, validation) > 7.5 (+2.5), clinical_wisdom > 8 (−1.5), §9.3.6.2
    assert candidate_score(scores, 1, Params()) == pytest.approx(composite + 2.0 + 2.5 - 1.5)
    # stage 2 is the plain mean; clinical_wisdom 9 > 7.5 earns the depth bonus (+2.0)
    assert candidate_score(scores, 2, Params()) == pytest.approx(sum(scores.values()) / 12 + 2.0)


@pytest.mark.parametrize(
    ("phase", "stage", "delta", "expected"),
    [(0, 0, 0.0, 1.0), (20, 0, 0.0, 0.8), (-30, 0, 0.0, 1.3), (0, -150, 0.0, 2.0), (0, 100, 0.0, 0.5), (0, 0, -0.02, 1.2)],
)
def test_treatment_modifier_follows_spec(phase, stage, delta, expected):
    bd = {"phase_transition": phase, "stage_transition": stage}
    assert treatment_modifier(bd, delta) == pytest.approx(expected)
