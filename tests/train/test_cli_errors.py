"""Damaged files and bad settings end every command with one `PROG: error: …` line, exit status 2,
and nothing written (each case below printed a traceback before)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dapt.cli import main as dapt_main
from tbn_train.cli import main
from tbn_train.dir_lock import LOCK_FILE
from tbn_train.run_dir import CHECKPOINTS, FINAL_ADAPTER

GARBAGE = b"\x00\x17 not what this file should hold \xff"


def run_args(model, out, *extra) -> list[str]:
    return ["selfplay", "--model", str(model), "--sessions", "1", "--max-turns", "1", "--out", str(out),
            "--max-new-tokens", "8", "--seed", "1", *extra]


@pytest.fixture(scope="module")
def finished_run(llama_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-errors") / "run"
    assert main(run_args(llama_dir, out)) == 0
    return out


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != LOCK_FILE}


def one_line_error(capsys, prog: str, *names: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and all(n in err for n in names), err
    return err


@pytest.mark.parametrize("damaged", ["optimizer.safetensors", "adapters/therapist/adapters.safetensors",
                                     "env_state.pkl", "state.json", "../latest.json", "../../run.json"])
def test_a_damaged_checkpoint_file_is_named_and_nothing_changes(finished_run, llama_dir, tmp_path, capsys, damaged):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    step = sorted((run / CHECKPOINTS).glob("step-*"))[-1]
    path = (step / damaged).resolve()
    path.write_bytes(GARBAGE)
    before = snapshot(run)
    assert main(run_args(llama_dir, run, "--resume")) == 2
    one_line_error(capsys, "tbn-train", path.name, "unreadable")
    assert snapshot(run) == before


@pytest.mark.parametrize("damaged", ["model.safetensors", "tokenizer.json", "config.json"])
def test_a_damaged_model_directory_is_named_and_nothing_is_written(llama_dir, tmp_path, capsys, damaged):
    model = tmp_path / "model"
    shutil.copytree(llama_dir, model)
    text = (model / damaged).read_bytes()
    (model / damaged).write_bytes(text[: len(text) // 2])   # truncated, as by a full disk or a cut download
    assert main(run_args(model, tmp_path / "out")) == 2
    one_line_error(capsys, "tbn-train", str(model))
    assert not (tmp_path / "out").exists()
    if damaged == "tokenizer.json":
        assert dapt_main(["preprocess", "--corpus", str(tmp_path), "--out", str(tmp_path / "pre"),
                          "--tokenizer", str(model)]) == 2
        one_line_error(capsys, "tbn-dapt", "tokenizer.json")
        assert not (tmp_path / "pre").exists()


def test_a_damaged_init_adapter_is_named(finished_run, llama_dir, tmp_path, capsys):
    adapter = tmp_path / "adapter"
    shutil.copytree(finished_run / FINAL_ADAPTER, adapter)
    (adapter / "adapters.safetensors").write_bytes(GARBAGE)
    assert main(run_args(llama_dir, tmp_path / "out", "--init-adapter", str(adapter))) == 2
    one_line_error(capsys, "tbn-train", "adapters.safetensors", "unreadable")
    assert not (tmp_path / "out").exists()


def test_bad_settings_are_one_line(llama_dir, tmp_path, capsys):
    config = tmp_path / "train.toml"
    config.write_text('learning_rate = "fast"\n')
    assert main(run_args(llama_dir, tmp_path / "a", "--config", str(config))) == 2
    one_line_error(capsys, "tbn-train", "learning_rate")
    config.write_text("learning_rate = \n")
    assert main(["show-config", "--config", str(config)]) == 2
    one_line_error(capsys, "tbn-train")
    assert main(["show-config", "--config", str(tmp_path / "missing.toml")]) == 2
    one_line_error(capsys, "tbn-train", "missing.toml")
    assert not (tmp_path / "a").exists()


def test_an_out_that_is_not_a_writable_directory_is_refused(llama_dir, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    for out in (afile, afile / "run"):
        assert main(run_args(llama_dir, out)) == 2
        one_line_error(capsys, "tbn-train", "afile")
    assert afile.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only permissions")
def test_a_read_only_run_directory_is_refused(finished_run, llama_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = snapshot(run)
    for p in (run, *run.rglob("*")):
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        assert main(run_args(llama_dir, run, "--resume")) == 2
        one_line_error(capsys, "tbn-train", "writable")
    finally:
        for p in (run, *run.rglob("*")):
            p.chmod(0o755 if p.is_dir() else 0o644)
    assert snapshot(run) == before


def test_a_missing_log_is_refused_not_padded_with_nul_bytes(finished_run, llama_dir, tmp_path, capsys):
    """Before the fix: a missing log.jsonl came back as NUL bytes, exit 0."""
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "log.jsonl").unlink()
    before = snapshot(run)
    assert main(run_args(llama_dir, run, "--resume")) == 2
    one_line_error(capsys, "tbn-train", "log.jsonl", "outside the run")
    assert snapshot(run) == before and not (run / "log.jsonl").exists()


def test_a_second_run_on_one_out_exits_2_naming_the_holder(llama_dir, tmp_path, capsys):
    """Before the fix: two runs on one --out both wrote every log record."""
    import subprocess
    import sys
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from tbn_train.dir_lock import lock_directory;"
                               "lock_directory(sys.argv[1]); print('held', flush=True); time.sleep(60)", str(out)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(run_args(llama_dir, out)) == 2
        one_line_error(capsys, "tbn-train", f"pid {holder.pid}")
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]
    finally:
        holder.kill()
        holder.wait()
