"""Data-parallel training: real ``mlx.launch --backend ring`` ranks on 127.0.0.1 against one process.

The reference for a 2-rank run is one process doing the same two ranks' work side by side: playing the
same two clients (selfplay ``--clients 2``), taking whole batches (sft, dpo), training two samples per
step (tbn-dapt ``--samples-per-step 2``): the same seeds, the same pooled steps. All run through the CLIs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import tbn_train  # noqa: F401  (preload OpenBLAS before mlx)
import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_unflatten

from dapt.cli import main as dapt_main
from dapt.train import ADAPTER_FOLDER, COMPRESSOR_FILE
from tbn_train.cli import main
from tbn_train.distributed import World, adapter_digest, pooled_gradient
from tbn_train.read_files import load_arrays
from tbn_train.run_dir import CHECKPOINTS, FINAL_ADAPTER, LOG_FILE
from tbn_train.update import Gradient
from .run_logs import adapter_bytes, records

MAX_NEW_TOKENS = 8  # the tiny model's turns stay short: two ranks share this machine's cores
SESSIONS, TURNS = 1, 3  # three pooled turns: room to kill a rank after the first checkpoint
LAUNCH_TIMEOUT = 600  # seconds a whole launch may take on a loaded 2-core machine before the test fails
KILLED_TIMEOUT = 60  # --distributed-timeout of a run whose rank 1 is killed: rank 0 gives up by then at the latest
ENTRY = Path(__file__).with_name("launch_rank.py")
LAUNCHER = Path(sys.executable).with_name("mlx.launch")


def selfplay_args(model_dir, out, *extra) -> list[str]:
    return ["selfplay", "--model", str(model_dir), "--sessions", str(SESSIONS), "--max-turns", str(TURNS),
            "--out", str(out), "--max-new-tokens", str(MAX_NEW_TOKENS), "--seed", "5", *extra]


def free_port() -> int:
    """A base port with its successor free too (the ring takes one port per rank)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def launch(args: list[str], env_extra: dict | None = None, prog: str = "tbn-train") -> subprocess.Popen:
    """Two ranks of ``prog`` (through tests/train/launch_rank.py) on the ring backend, 127.0.0.1."""
    env = {**os.environ, "MLX_DISABLE_COMPILE": "1", "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    cmd = [str(LAUNCHER), "-n", "2", "--backend", "ring", "--starting-port", str(free_port()),
           "--python", sys.executable, str(ENTRY), prog, *args, "--distributed"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[str, str]:
    out, err = proc.communicate(timeout=LAUNCH_TIMEOUT)
    return out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("tbn-train: error:")]


@pytest.fixture(scope="module")
def two_ranks(llama_dir, tmp_path_factory):
    """An uninterrupted 2-rank run."""
    out = tmp_path_factory.mktemp("distributed") / "ranks"
    _, err = finish(launch(selfplay_args(llama_dir, out)))
    assert (out / FINAL_ADAPTER).is_dir(), err[-3000:]
    return out


# ---------------------------------------------------------------------- pooling (one process)
def _part(value: float, weight: float) -> Gradient:
    return Gradient(mx.array(0.0), {"w": mx.full((2, 3), value)}, weight, [])


def test_pooled_gradient_is_the_weight_averaged_mean_with_the_mean_weight():
    template = {"w": mx.zeros((2, 3))}
    pooled, ties = pooled_gradient([_part(1.0, 0.2), None, _part(4.0, 0.6)], template, World(), clients=3,
                                   what="test", ties=1)
    assert mx.allclose(pooled.grads["w"], mx.full((2, 3), (0.2 * 1.0 + 0.6 * 4.0) / 0.8)).item()
    assert pooled.weight == pytest.approx(0.4) and pooled.clients == 2 and ties == 1
    assert pooled_gradient([None, None], template, World(), clients=2, what="test", ties=2) == (None, 2)


def test_one_client_keeps_its_own_gradient_untouched():
    part = _part(3.0, 0.7)
    pooled, _ = pooled_gradient([part], {"w": mx.zeros((2, 3))}, World(), clients=1, what="test")
    assert pooled.grads is part.grads and pooled.weight == 0.7


def test_distributed_timeout_without_distributed_is_one_line(llama_dir, tmp_path, capsys):
    assert main(selfplay_args(llama_dir, tmp_path / "run", "--distributed-timeout", "5")) == 2
    err = capsys.readouterr().err.strip()
    assert err == "tbn-train: error: --distributed-timeout needs --distributed"
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------- real ranks
@pytest.mark.slow
def test_two_ranks_equal_one_process_pooling_the_same_two_clients(two_ranks, llama_dir, tmp_path):
    assert main(selfplay_args(llama_dir, tmp_path / "one", "--clients", "2")) == 0
    ranks, one = records(two_ranks), records(tmp_path / "one")
    assert [(r["turn"], r["client_index"]) for r in ranks] == [(t, c) for t in range(TURNS) for c in (0, 1)]
    assert ranks[0]["client"] != ranks[1]["client"] or ranks[0]["utterance"] != ranks[1]["utterance"]  # two clients
    for a, b in zip(ranks, one, strict=True):
        assert a.keys() == b.keys()
        assert a["reward"] == pytest.approx(b["reward"]) and a["utterance"] == b["utterance"]
        for step in ("rlaif", "grpo"):
            for key in ("loss", "grad_norm"):
                assert (key in a[step]) == (key in b[step])
                if key in a[step]:
                    assert a[step][key] == pytest.approx(b[step][key], rel=1e-5, abs=1e-7)
    mine = load_arrays(two_ranks / FINAL_ADAPTER / "adapters.safetensors", "adapter")
    theirs = load_arrays(tmp_path / "one" / FINAL_ADAPTER / "adapters.safetensors", "adapter")
    assert mine.keys() == theirs.keys()
    for key in mine:
        np.testing.assert_allclose(np.array(mine[key]), np.array(theirs[key]), rtol=1e-5, atol=1e-7)
    # every checkpoint recorded both ranks' adapters, and they were the same bits
    state = json.loads((two_ranks / CHECKPOINTS / f"step-{TURNS:08d}" / "state.json").read_text())["state"]
    assert len(state["adapter_digests"]) == 2 and len(set(state["adapter_digests"])) == 1
    run = json.loads((two_ranks / "run.json").read_text())
    assert run["ranks"] == 2 and run["clients"] == 1


@pytest.mark.slow
def test_ranks_started_with_different_settings_are_refused_in_one_line(llama_dir, tmp_path):
    proc = launch(selfplay_args(llama_dir, tmp_path / "run"), {"TBN_TEST_RANK1_ARGS": "--max-new-tokens 9"})
    _, err = finish(proc)
    lines = error_lines(err)
    assert len(lines) == 1, err[-3000:]
    assert "different settings" in lines[0] and "max_new_tokens" in lines[0]
    assert not (tmp_path / "run").exists()  # refused before anything was written


def kill_rank_1_after_the_first_checkpoint(args: list[str], out: Path, pids: Path, prog: str = "tbn-train") -> None:
    """Launch two ranks, SIGKILL rank 1 once rank 0 has checkpointed step 1, and check that rank 0 then stops
    (the launcher returns, no hang) with one error line telling to ``--resume`` and no adapter written."""
    pids.mkdir()
    proc = launch([*args, "--distributed-timeout", str(KILLED_TIMEOUT)], {"TBN_TEST_PID_DIR": str(pids)}, prog)
    latest = out / CHECKPOINTS / "latest.json"
    try:
        while proc.poll() is None and not (latest.is_file() and json.loads(latest.read_text())["step"] >= 1):
            time.sleep(0.01)
        os.kill(int((pids / "rank-1.pid").read_text()), signal.SIGKILL)
        _, err = finish(proc)  # the launcher returns: rank 0 did not hang waiting for rank 1
    finally:
        if proc.poll() is None:
            proc.kill()
    stopped = [line for line in err.splitlines() if line.startswith(f"{prog}: error: rank 0")]
    assert len(stopped) == 1 and "--resume" in stopped[0], err[-3000:]
    assert not any((out / name).exists() for name in (FINAL_ADAPTER, "adapter"))


@pytest.mark.slow
def test_killed_rank_stops_the_other_and_resume_finishes_the_uninterrupted_run(two_ranks, llama_dir, tmp_path):
    out = tmp_path / "killed"
    kill_rank_1_after_the_first_checkpoint(selfplay_args(llama_dir, out), out, tmp_path / "pids")
    assert len(records(out)) < 2 * TURNS  # really interrupted

    _, err = finish(launch([*selfplay_args(llama_dir, out), "--resume"]))
    assert (out / FINAL_ADAPTER).is_dir(), err[-3000:]
    assert records(out) == records(two_ranks)  # every record exactly once, the same as uninterrupted
    assert adapter_bytes(out) == adapter_bytes(two_ranks)


def test_adapter_digest_sees_one_changed_value(setup):
    model, _, _ = setup
    before = adapter_digest(model)
    (key, value), *_ = tree_flatten(model.trainable_parameters())
    model.update(tree_unflatten([(key, value + (mx.arange(value.size).reshape(value.shape) == 0) * 1e-3)]))
    assert adapter_digest(model) != before


@pytest.mark.slow
def test_a_hung_rank_makes_the_other_give_up_after_the_timeout(llama_dir, tmp_path):
    """Rank 1 stopped (SIGSTOP) keeps its connection open: only rank 0's watchdog can end the wait."""
    out, pids, err_file = tmp_path / "hung", tmp_path / "pids", tmp_path / "stderr"
    pids.mkdir()
    env = {**os.environ, "MLX_DISABLE_COMPILE": "1", "HF_HUB_OFFLINE": "1", "TBN_TEST_PID_DIR": str(pids)}
    cmd = [str(LAUNCHER), "-n", "2", "--backend", "ring", "--starting-port", str(free_port()), "--python", sys.executable,
           str(ENTRY), "tbn-train", *selfplay_args(llama_dir, out), "--distributed", "--distributed-timeout", "5"]
    latest = out / CHECKPOINTS / "latest.json"
    with open(err_file, "w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    rank1 = None
    try:
        while proc.poll() is None and not latest.is_file():
            time.sleep(0.05)
        rank1 = int((pids / "rank-1.pid").read_text())
        os.kill(rank1, signal.SIGSTOP)
        deadline = time.monotonic() + LAUNCH_TIMEOUT
        while not error_lines(err_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        if rank1 is not None:
            os.kill(rank1, signal.SIGKILL)  # a stopped process ignores the launcher's SIGTERM
        proc.communicate(timeout=LAUNCH_TIMEOUT)
    lines = error_lines(err_file.read_text())
    assert len(lines) == 1 and lines[0].startswith("tbn-train: error: rank 0 waited 5 s for the other ranks"), lines
    assert "--resume" in lines[0]


def test_a_pooled_gradient_keeps_the_template_structure_of_a_single_clients_gradient():
    """Empty containers too (a model's list of layer types): Adam keys its state by the first step's tree."""
    template = {"w": mx.zeros((2, 3)), "layer_types": [{}, {}], "head": {}}
    pooled, _ = pooled_gradient([_part(1.0, 1.0), _part(3.0, 1.0)], template, World(), clients=2, what="test")
    assert pooled.grads.keys() == template.keys() and pooled.grads["layer_types"] == [{}, {}]
    assert mx.array_equal(pooled.grads["w"], mx.full((2, 3), 2.0)).item()


def test_zero_weights_pool_to_a_zero_step_not_nan():
    pooled, _ = pooled_gradient([_part(1.0, 0.0), _part(2.0, 0.0)], {"w": mx.zeros((2, 3))}, World(), clients=2, what="test")
    assert pooled.weight == 0.0 and not mx.any(pooled.grads["w"]).item()


BATCH_LR = 1e-3  # large enough that two steps move the adapter visibly
PAIRS = [{"prompt": f"I feel {w}.", "chosen": "<think>Stay.</think>\nThat sounds heavy. Tell me more.",
          "rejected": "<think>Fix it.</think>\nJust stop worrying."} for w in ("stuck", "tired", "alone", "angry")]
CHATS = [{"messages": [{"role": "user", "content": f"I feel {w}."},
                       {"role": "assistant", "content": "<think>Stay with her.</think>\nTake your time" + "." * (i + 1)}]}
         for i, w in enumerate(("stuck", "tired", "alone", "angry"))]


EPOCHS = {"dpo": 1, "sft": 4}  # sft: eight steps of two, so a rank killed after the first checkpoint dies long before the end


def batch_args(kind: str, model_dir, out: Path, data: Path) -> list[str]:
    data.write_text("".join(json.dumps(r) + "\n" for r in (PAIRS if kind == "dpo" else CHATS)))
    flag = "--pairs" if kind == "dpo" else "--data"
    return [kind, "--model", str(model_dir), flag, str(data), "--out", str(out), "--batch-size", "2", "--seed", "1",
            "--learning-rate", str(BATCH_LR), "--epochs", str(EPOCHS[kind])]


@pytest.fixture(scope="module")
def batch_ranks(llama_dir, tmp_path_factory):
    """Factory: kind (sft, dpo) → an uninterrupted 2-rank run and its data file, launched once per module."""
    root, built = tmp_path_factory.mktemp("batch-ranks"), {}

    def run(kind: str) -> tuple[Path, Path]:
        if kind not in built:
            out, data = root / kind, root / f"{kind}.jsonl"
            _, err = finish(launch(batch_args(kind, llama_dir, out, data)))
            assert (out / FINAL_ADAPTER).is_dir(), err[-3000:]
            built[kind] = out, data
        return built[kind]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dpo", "sft"])
def test_two_ranks_splitting_each_batch_equal_one_process(kind, batch_ranks, llama_dir, tmp_path):
    """Each rank takes half of every batch; the pooled step is the whole batch's step (pairs / tokens weighted)."""
    two, data = batch_ranks(kind)
    assert main(batch_args(kind, llama_dir, tmp_path / "one", data)) == 0
    ranks, one = records(two, "seconds"), records(tmp_path / "one", "seconds")
    assert len(ranks) == len(one) == 2 * EPOCHS[kind]
    for a, b in zip(ranks, one, strict=True):
        assert a.keys() == b.keys()
        for key, value in a.items():
            assert value == (pytest.approx(b[key], rel=1e-4, abs=1e-6) if isinstance(value, float) else b[key]), key
    mine = load_arrays(two / FINAL_ADAPTER / "adapters.safetensors", "adapter")
    theirs = load_arrays(tmp_path / "one" / FINAL_ADAPTER / "adapters.safetensors", "adapter")
    for key in mine:  # Adam divides by √v: a near-zero gradient's rounding moves its weight by up to ~lr · 1e-3
        np.testing.assert_allclose(np.array(mine[key]), np.array(theirs[key]), rtol=1e-4, atol=BATCH_LR * 1e-2)
    assert any(not np.array_equal(np.array(v), 0) for k, v in mine.items() if "lora_b" in k)  # it did train


@pytest.mark.slow
def test_a_two_rank_run_resumed_by_one_process_is_refused_in_one_line(two_ranks, llama_dir, capsys):
    before = (two_ranks / LOG_FILE).read_bytes()
    assert main([*selfplay_args(llama_dir, two_ranks), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ranks: run has 2, now 1" in err[0], err
    assert (two_ranks / LOG_FILE).read_bytes() == before  # nothing touched


@pytest.mark.slow
def test_killed_sft_rank_stops_the_other_and_resume_finishes_the_uninterrupted_run(batch_ranks, llama_dir, tmp_path):
    whole, data = batch_ranks("sft")
    out = tmp_path / "killed"
    kill_rank_1_after_the_first_checkpoint(batch_args("sft", llama_dir, out, data), out, tmp_path / "pids")
    assert len(records(out, "seconds")) < 2 * EPOCHS["sft"]  # really interrupted

    _, err = finish(launch([*batch_args("sft", llama_dir, out, data), "--resume"]))
    assert (out / FINAL_ADAPTER).is_dir(), err[-3000:]
    assert records(out, "seconds") == records(whole, "seconds")  # every step exactly once, as uninterrupted
    assert adapter_bytes(out) == adapter_bytes(whole)


# ---------------------------------------------------------------------- tbn-dapt train
DAPT_SAMPLES = 5  # steps of two, two and one sample: in the last, rank 1 has none and still joins every exchange


@pytest.fixture(scope="module")
def dapt_ranks(llama_dir, dapt_samples, tmp_path_factory, dapt_run_args):
    """An uninterrupted 2-rank DAPT run (one sample per rank per step)."""
    out = tmp_path_factory.mktemp("dapt-ranks") / "ranks"
    _, err = finish(launch(dapt_run_args(llama_dir, dapt_samples, out, DAPT_SAMPLES), prog="tbn-dapt"))
    assert (out / ADAPTER_FOLDER).is_dir(), err[-3000:]
    return out


def assert_close(a, b, where: str) -> None:
    """Equal JSON values, floats to the tolerance of a sum taken in another order."""
    if isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-6), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.slow
def test_two_dapt_ranks_equal_one_process_training_two_samples_per_step(dapt_ranks, llama_dir, dapt_samples, tmp_path,
                                                                        dapt_run_args, dapt_records):
    one = dapt_run_args(llama_dir, dapt_samples, tmp_path / "one", DAPT_SAMPLES)
    assert dapt_main([*one, "--samples-per-step", "2"]) == 0
    ranks, one = dapt_records(dapt_ranks), dapt_records(tmp_path / "one")
    steps = [r for r in ranks if r["kind"] == "step"]
    assert [len(r["sample_ids"]) for r in steps] == [2, 2, 1]
    assert any(len(set(r["n_windows"])) > 1 for r in steps)  # a rank ran out of windows before the other
    gated_in = {(r["step"], r["window"]) for r in ranks if r["kind"] == "window" and r["compressor_weight"] > 0}
    assert steps[-1]["compressor_steps"] == len(gated_in)  # one pooled step per window index some sample gated in
    assert_close(ranks, one, "log")
    for name in ("adapters", "compressor"):
        path = (ADAPTER_FOLDER + "/adapters.safetensors") if name == "adapters" else COMPRESSOR_FILE
        mine, theirs = load_arrays(dapt_ranks / path, name), load_arrays(tmp_path / "one" / path, name)
        assert mine.keys() == theirs.keys()
        for key in mine:  # Adam divides by √v: a near-zero gradient's rounding moves its weight by up to ~lr · 1e-3
            np.testing.assert_allclose(np.array(mine[key]), np.array(theirs[key]), rtol=1e-4, atol=1e-5, err_msg=key)
    run = json.loads((dapt_ranks / "run.json").read_text())
    assert run["ranks"] == 2 and run["samples_per_step"] == 2


@pytest.mark.slow
def test_dapt_ranks_started_with_different_settings_are_refused_in_one_line(llama_dir, dapt_samples, tmp_path,
                                                                            dapt_run_args):
    proc = launch(dapt_run_args(llama_dir, dapt_samples, tmp_path / "run", DAPT_SAMPLES),
                  {"TBN_TEST_RANK1_ARGS": "--recap-max-tokens 7"},
                  "tbn-dapt")
    _, err = finish(proc)
    lines = [line for line in err.splitlines() if line.startswith("tbn-dapt: error:")]
    assert len(lines) == 1, err[-3000:]
    assert "different settings" in lines[0] and "recap_max_tokens" in lines[0]
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.slow
def test_killed_dapt_rank_stops_the_other_and_resume_finishes_the_uninterrupted_run(dapt_ranks, llama_dir, dapt_samples,
                                                                                     tmp_path, dapt_run_args,
                                                                                     dapt_records, dapt_outputs):
    out = tmp_path / "killed"
    argv = dapt_run_args(llama_dir, dapt_samples, out, DAPT_SAMPLES)
    kill_rank_1_after_the_first_checkpoint(argv, out, tmp_path / "pids", "tbn-dapt")
    assert sum(r["kind"] == "step" for r in dapt_records(out)) < 3  # really interrupted

    _, err = finish(launch([*dapt_run_args(llama_dir, dapt_samples, out, DAPT_SAMPLES), "--resume"], prog="tbn-dapt"))
    assert (out / ADAPTER_FOLDER).is_dir(), err[-3000:]
    assert dapt_records(out) == dapt_records(dapt_ranks)  # rank 1 read the compressor rank 0 sent it
    assert dapt_outputs(out) == dapt_outputs(dapt_ranks)
