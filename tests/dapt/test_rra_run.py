"""`tbn-dapt train` end to end: offline corpus → preprocess → RRA → an adapter self-play starts from.

Also: the run log, determinism, a SIGKILLed run resuming to the uninterrupted result, bad input.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm import load as mlx_lm_load

from dapt.cli import main
from dapt.train import COMPRESSOR_FILE, DAPTConfig, check_samples_per_step, lora_spec
from tbn_train.adapter_io import read_adapter
from tbn_train.config import TrainConfig
from tbn_train.lora import adapter_pairs, latter_third, middle_third
from tbn_train.policy import FROZEN_ADAPTER
from tbn_train.run_dir import CHECKPOINTS, LOG_FILE
from tbn_train.selfplay import SelfPlay, SelfPlayConfig

STEPS = 4


@pytest.fixture(scope="module")
def reference_run(tiny_dir, dapt_samples, tmp_path_factory, dapt_run_args):
    out = tmp_path_factory.mktemp("dapt-run") / "ref"
    assert main(dapt_run_args(tiny_dir, dapt_samples, out, STEPS)) == 0
    return out


@pytest.mark.slow
def test_run_logs_every_window_and_one_step_per_sample(reference_run, dapt_samples, dapt_records):
    rows = dapt_records(reference_run)
    steps = [r for r in rows if r["kind"] == "step"]
    assert [r["step"] for r in steps] == list(range(STEPS))
    curriculum = json.loads((dapt_samples / "curriculum.json").read_text())
    assert [r["sample_ids"] for r in steps] == [[s] for s in curriculum[:STEPS]]  # shortest first (App. 29.4)
    for step in steps:
        windows = [r for r in rows if r["kind"] == "window" and r["step"] == step["step"]]
        (n_windows,) = step["n_windows"]
        assert [w["window"] for w in windows] == list(range(n_windows)) and n_windows >= 2
        assert all(np.isfinite(w["loss"]) and w["recap_quality"] in ("high", "low", "garbage") for w in windows)
        gated_out = not any(w["lora_weight"] > 0 and w["trainable_tokens"] > 0 for w in windows)
        assert step["stepped"] is not gated_out and (step["grad_norm"] > 0) is not gated_out
    assert any(s["stepped"] for s in steps)


@pytest.mark.slow
def test_adapter_is_an_mlx_lm_adapter_on_the_middle_third(reference_run, tiny_dir):
    config = json.loads((reference_run / "adapter" / "adapter_config.json").read_text())
    assert config["tbn_adapter"]["layers"] == middle_third(8) and config["lora_parameters"]["rank"] == 4
    assert set(config["lora_parameters"]["keys"]) == {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                      "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}
    base, _ = mlx_lm_load(str(tiny_dir))
    adapted, _ = mlx_lm_load(str(tiny_dir), adapter_path=str(reference_run / "adapter"))
    ids = mx.array([[5, 17, 42, 99, 123]])
    assert not mx.allclose(base(ids), adapted(ids)).item()  # training moved the adapter off the base


def test_latter_third_option_targets_the_last_layers(tiny_dir, dapt_samples):
    cfg = DAPTConfig(model=str(tiny_dir), data=str(dapt_samples), layers="latter")
    assert lora_spec(cfg, 8).resolve_layers(8) == latter_third(8) == [5, 6, 7]
    assert lora_spec(cfg.model_copy(update={"layers": "middle"}), 62).resolve_layers(62) == list(range(21, 42))  # §9.1
    assert lora_spec(cfg, 8).rank("q") == lora_spec(cfg, 8).rank("down") == 32  # §27.4.1


def test_a_step_with_fewer_samples_than_ranks_is_refused(tiny_dir, dapt_samples):
    cfg = DAPTConfig(model=str(tiny_dir), data=str(dapt_samples), ranks=2, samples_per_step=1)
    with pytest.raises(ValueError, match=r"--samples-per-step 1 leaves ranks idle: with 2 ranks give at least 2"):
        check_samples_per_step(cfg)
    check_samples_per_step(cfg.model_copy(update={"samples_per_step": 3}))  # uneven shares are fine


@pytest.mark.slow
def test_seeded_runs_are_bit_identical(reference_run, tiny_dir, dapt_samples, tmp_path, dapt_run_args, dapt_records,
                                        dapt_outputs):
    assert main(dapt_run_args(tiny_dir, dapt_samples, tmp_path / "again", STEPS)) == 0
    assert dapt_outputs(tmp_path / "again") == dapt_outputs(reference_run)
    assert dapt_records(tmp_path / "again") == dapt_records(reference_run)


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(reference_run, tiny_dir, dapt_samples, tmp_path, dapt_run_args,
                                                        dapt_records, dapt_outputs):
    out = tmp_path / "killed"
    env = {**os.environ, "MLX_DISABLE_COMPILE": "1", "HF_HUB_OFFLINE": "1"}
    argv = dapt_run_args(tiny_dir, dapt_samples, out, STEPS)
    proc = subprocess.Popen([sys.executable, "-m", "dapt.cli", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    latest = out / CHECKPOINTS / "latest.json"
    try:
        while proc.poll() is None and not latest.is_file():
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert sum(r["kind"] == "step" for r in dapt_records(out)) < STEPS  # really interrupted
    assert main([*dapt_run_args(tiny_dir, dapt_samples, out, STEPS), "--resume"]) == 0
    assert dapt_records(out) == dapt_records(reference_run)
    assert dapt_outputs(out) == dapt_outputs(reference_run)


@pytest.mark.slow
def test_selfplay_warm_starts_from_the_dapt_adapter(reference_run, tiny_dir, tmp_path):
    adapter = reference_run / "adapter"
    cfg = SelfPlayConfig(model=str(tiny_dir), sessions=1, max_turns=1, init_adapter=str(adapter),
                         train=TrainConfig(max_new_tokens=8, seed=1))
    play = SelfPlay(cfg, tmp_path / "selfplay", resume=False)
    out = play.run_all()
    assert (out / "adapters.safetensors").is_file()
    turns = [json.loads(line) for line in (tmp_path / "selfplay" / LOG_FILE).read_text().splitlines()]
    assert len(turns) == 1
    _, saved = read_adapter(play.policy.model, adapter)
    frozen = adapter_pairs(play.policy.model, play.policy.router, FROZEN_ADAPTER)
    assert set(frozen) == set(saved)
    for key, pair in frozen.items():  # the frozen client/judge adapter is the DAPT adapter, bit for bit
        assert mx.array_equal(pair.lora_a, saved[key][0]).item() and mx.array_equal(pair.lora_b, saved[key][1]).item()


@pytest.mark.slow
def test_bad_input_names_the_problem(tiny_dir, dapt_samples, reference_run, tmp_path, capsys, dapt_run_args,
                                     dapt_outputs):
    assert main(["train", "--model", str(tiny_dir), "--data", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "not a tbn-dapt preprocess output" in capsys.readouterr().err
    assert main(["train", "--model", str(tmp_path / "nowhere"), "--data", str(dapt_samples),
                 "--out", str(tmp_path / "m")]) == 2
    assert "model directory" in capsys.readouterr().err and not (tmp_path / "m").exists()
    assert main([*dapt_run_args(tiny_dir, dapt_samples, tmp_path / "y", STEPS), "--window-jitter", "1.5"]) == 2
    assert "window_jitter" in capsys.readouterr().err
    assert main([*dapt_run_args(tiny_dir, dapt_samples, tmp_path / "z", STEPS), "--strategies", "adwc"]) == 2
    assert "no samples of strategies ['adwc']" in capsys.readouterr().err
    before = dapt_outputs(reference_run)
    assert main([*dapt_run_args(tiny_dir, dapt_samples, reference_run, STEPS), "--rank", "8", "--resume"]) == 2
    assert "--resume settings differ" in capsys.readouterr().err
    assert main(dapt_run_args(tiny_dir, dapt_samples, reference_run, STEPS)) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert dapt_outputs(reference_run) == before  # nothing of the finished run was touched


@pytest.mark.slow
def test_a_damaged_compressor_checkpoint_is_one_line_and_changes_nothing(reference_run, tiny_dir, dapt_samples, tmp_path,
                                                                          capsys, dapt_run_args):
    """Before the fix: a safetensors traceback."""
    import shutil
    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    latest = sorted((run / CHECKPOINTS).glob("step-*"))[-1] / COMPRESSOR_FILE
    latest.write_bytes(b"\x00not safetensors")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert main([*dapt_run_args(tiny_dir, dapt_samples, run, STEPS), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tbn-dapt: error: ") and "compressor.safetensors" in err and len(err.splitlines()) == 1
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"} == before
