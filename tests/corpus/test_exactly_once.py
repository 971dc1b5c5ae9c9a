"""Exactly-once, deterministic resume of every corpus writer: kills at any point, a resume
equal byte for byte to an uninterrupted run, one writer per directory, no foreign or padded shards."""
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corpus.writer as writer_module
from corpus.cli import main as corpus_main
from corpus.generate import generate, generate_counterfactuals
from corpus.validate import validate_corpus
from corpus.writer import MANIFEST, CorpusWriter, audit, read_samples
from dapt.cli import main as dapt_main
from dapt.preprocess import preprocess
from tbn_train.dir_lock import LOCK_FILE

REPO = Path(__file__).resolve().parents[2]
FORK = multiprocessing.get_context("fork")


def files(directory: Path) -> dict[str, bytes]:
    """Every file a writer leaves (the lock file aside), by name."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.name != LOCK_FILE}


def _die_after(k: int):
    """on_written hook: the process vanishes (no cleanup, no final commit) after k written samples."""
    seen = [0]

    def hook(_sid):
        seen[0] += 1
        if seen[0] >= k:
            os._exit(9)
    return hook


def _child(job, commit_seconds):
    writer_module.COMMIT_SECONDS = commit_seconds
    job()
    os._exit(0)


def killed(job, commit_seconds: float) -> int:
    """Run `job` in a forked process with this commit interval; return its exit code."""
    proc = FORK.Process(target=_child, args=(job, commit_seconds))
    proc.start()
    proc.join()
    return proc.exitcode


def _generate_job(out, n, k, pool):
    import asyncio

    from corpus.generate import OfflineBackend, run_generation
    return lambda: asyncio.run(run_generation(out, n, OfflineBackend(), 3, pool_path=pool, on_written=_die_after(k)))


@settings(max_examples=12)
@given(k=st.integers(1, 24), commit_seconds=st.sampled_from([0.0, 3600.0]))
def test_a_pooled_generate_killed_after_any_sample_resumes_to_the_uninterrupted_bytes(tmp_path_factory, k,
                                                                                      commit_seconds):
    root = tmp_path_factory.mktemp("gen")
    full, crashed = root / "full", root / "crashed"
    generate(full, 24, seed=3, pool_path=full / "micro_pool.json")
    assert killed(_generate_job(crashed, 24, k, crashed / "micro_pool.json"), commit_seconds) == 9
    generate(crashed, 24, seed=3, resume=True, pool_path=crashed / "micro_pool.json")
    assert files(crashed) == files(full)
    assert audit(crashed) == []


def test_lines_written_before_the_first_commit_are_not_written_twice(tmp_path):
    """Before the fix: the uncommitted first shard kept its lines: 2 x 5 records."""
    full = tmp_path / "full"
    generate(full, 8, seed=1)
    first = list(read_samples(full))[:5]
    crashed = tmp_path / "crashed"
    w = CorpusWriter(crashed, config={"backend": "offline", "n": 8, "seed": 1, "stage": None})
    for _, _, line in first:   # the run dies with these lines written but no commit after them
        w.write(_Raw(line), json.loads(line)["session_id"])
    writer_module.unlock_directory(crashed)
    generate(crashed, 8, seed=1, resume=True)
    assert files(crashed) == files(full)


class _Raw:
    def __init__(self, line):
        self.line = line

    def model_dump_json(self):
        return self.line


@pytest.mark.slow
@settings(max_examples=6)
@given(k=st.integers(1, 13), commit_seconds=st.sampled_from([0.0, 3600.0]))
def test_counterfactuals_and_preprocess_killed_anywhere_resume_to_the_same_bytes(tmp_path_factory, k,
                                                                                 commit_seconds):
    root = tmp_path_factory.mktemp("cf")
    generate(root / "sessions", 8, seed=2)
    generate_counterfactuals(root / "sessions", root / "cf-full", 2)
    job = lambda: __import__("asyncio").run(__import__("corpus.counterfactuals").counterfactuals.run_counterfactuals(  # noqa: E731
        root / "sessions", root / "cf", _Dying(k), 2))
    assert killed(job, commit_seconds) == 9
    generate_counterfactuals(root / "sessions", root / "cf", 2, resume=True)
    assert files(root / "cf") == files(root / "cf-full")

    total = preprocess(root / "sessions", root / "pre-full")
    kill_at = 1 + (k * 37) % (total - 1)
    import dapt.preprocess as pre
    original = pre.CorpusWriter.write

    def dying(self, sample, sid, state=None, _n=[0]):
        original(self, sample, sid, state)
        _n[0] += 1
        if _n[0] >= kill_at:
            os._exit(9)
    job = lambda: (setattr(pre.CorpusWriter, "write", dying), preprocess(root / "sessions", root / "pre"))  # noqa: E731
    assert killed(job, commit_seconds) == 9
    preprocess(root / "sessions", root / "pre", resume=True)
    assert files(root / "pre") == files(root / "pre-full")


class _Dying:
    """The offline backend, except that the process dies when it is asked for sample k + 1."""

    name = "offline"

    def __init__(self, k):
        from corpus.generate import OfflineBackend
        self.inner, self.k, self.asked = OfflineBackend(), k, 0

    async def counterfactual(self, m):
        self.asked += 1
        if self.asked > self.k + 2:   # the driver looks two items ahead; sample k is written by then
            os._exit(9)
        return await self.inner.counterfactual(m)

    def stats(self):
        return {}

    async def aclose(self):
        pass


def _cli(*args):
    return [sys.executable, "-m", *args]


GENERATE = _cli("corpus.cli", "generate", "--n", "300", "--seed", "3", "--out")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """An uninterrupted `tbn-corpus generate` and how long it took, start to exit."""
    out = tmp_path_factory.mktemp("uninterrupted") / "corpus"
    start = time.monotonic()
    subprocess.run([*GENERATE, str(out)], check=True, capture_output=True, cwd=REPO)
    return out, time.monotonic() - start


@pytest.mark.slow
@settings(max_examples=5)
@given(fraction=st.floats(0.0, 1.0))
def test_sigkill_at_any_time_then_resume_gives_the_uninterrupted_corpus(uninterrupted, tmp_path_factory, fraction):
    """A real SIGKILL of `tbn-corpus generate` at a drawn moment, from process start (before the first
    commit) to the end of the run; the resumed directory equals an uninterrupted run's, byte for byte."""
    full, duration = uninterrupted
    run = tmp_path_factory.mktemp("sigkill") / "corpus"
    proc = subprocess.Popen([*GENERATE, str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        proc.wait(timeout=fraction * duration)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    again = ["--resume"] if run.exists() else []   # killed before it made its directory: start again
    resumed = subprocess.run([*GENERATE, str(run), *again], capture_output=True, text=True, cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr
    assert files(run) == files(full)
    valid, errors, _ = validate_corpus(run)
    assert (valid, errors) == (300, [])


def test_resume_after_a_kill_before_the_manifest_starts_afresh(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / LOCK_FILE).write_text("123\n")  # all a run killed at its start leaves
    generate(tmp_path / "out", 3, seed=0, resume=True)
    generate(tmp_path / "full", 3, seed=0)
    assert files(tmp_path / "out") == files(tmp_path / "full")


@pytest.mark.slow
def test_shard_order_does_not_depend_on_the_hash_seed(tmp_path):
    """Before the fix: a commit spanning shards listed them in set order."""
    generate(tmp_path / "sessions", 7, seed=1)
    script = ("import sys, corpus.writer as w; w.SHARD_SIZE = 3; w.COMMIT_SECONDS = 3600\n"
              "from corpus.generate import generate_counterfactuals\n"
              "generate_counterfactuals(sys.argv[1], sys.argv[2], 2)")
    manifests = set()
    for hash_seed in range(6):
        out = tmp_path / f"cf{hash_seed}"
        subprocess.run([sys.executable, "-c", script, str(tmp_path / "sessions"), str(out)], check=True, cwd=REPO,
                       env={**os.environ, "PYTHONHASHSEED": str(hash_seed)})
        manifests.add((out / MANIFEST).read_text())
        names = list(json.loads((out / MANIFEST).read_text())["shards"])
        assert names == sorted(names) and len(names) == 5
    assert len(manifests) == 1


def test_a_fresh_run_refuses_a_directory_holding_foreign_shards(tmp_path, capsys):
    """Before the fix: the old shard was merged: 40 lines for 20 ids."""
    generate(tmp_path / "old", 20, seed=1)
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "sessions-00000.jsonl").write_bytes((tmp_path / "old" / "sessions-00000.jsonl").read_bytes())
    assert corpus_main(["generate", "--n", "20", "--seed", "1", "--out", str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tbn-corpus: error:") and "sessions-00000.jsonl" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [LOCK_FILE, "sessions-00000.jsonl"]


def test_a_second_writer_on_one_directory_exits_2_naming_the_holder(tmp_path, capsys):
    """Before the fix: both writers ran."""
    out = tmp_path / "corpus"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from tbn_train.dir_lock import lock_directory;"
                               "lock_directory(sys.argv[1]); print('held', flush=True); time.sleep(60)", str(out)],
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert corpus_main(["generate", "--n", "3", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and err.startswith("tbn-corpus: error:")
        assert dapt_main(["preprocess", "--corpus", str(tmp_path), "--out", str(out)]) == 2
        assert f"pid {holder.pid}" in capsys.readouterr().err
        assert not (out / MANIFEST).exists()
    finally:
        holder.kill()
        holder.wait()
    assert corpus_main(["generate", "--n", "3", "--out", str(out)]) == 0   # the kernel dropped the dead holder's lock


def test_resume_never_pads_a_shard_with_nul_bytes(tmp_path, capsys):
    """Before the fix: a manifest length past the shard's end appended NULs."""
    generate(tmp_path, 5, seed=0)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    shard = tmp_path / "sessions-00000.jsonl"
    manifest["shards"][shard.name] += 100
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    before = shard.read_bytes()
    assert corpus_main(["generate", "--n", "5", "--seed", "0", "--out", str(tmp_path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "sessions-00000.jsonl" in err and "outside the writer" in err
    assert shard.read_bytes() == before and b"\0" not in before


def test_validate_and_stats_fail_on_repeated_ids_and_a_disagreeing_manifest(tmp_path, capsys):
    """Before the fix: the doubled corpus validated."""
    generate(tmp_path / "ok", 4, seed=0)
    doubled = tmp_path / "doubled"
    doubled.mkdir()
    shard = (tmp_path / "ok" / "sessions-00000.jsonl").read_bytes()
    (doubled / "sessions-00000.jsonl").write_bytes(shard + shard)
    assert corpus_main(["validate", str(doubled)]) == 1
    assert "repeats" in capsys.readouterr().out
    assert corpus_main(["stats", str(doubled)]) == 2
    assert "repeats" in capsys.readouterr().err
    manifest = json.loads((tmp_path / "ok" / MANIFEST).read_text())
    manifest["ids"] = manifest["ids"][:3]
    (tmp_path / "ok" / MANIFEST).write_text(json.dumps(manifest))
    assert corpus_main(["validate", str(tmp_path / "ok")]) == 1
    assert "do not match" in capsys.readouterr().out
    preprocess(tmp_path / "ok", tmp_path / "pre")
    pre_shard = tmp_path / "pre" / "samples-00000.jsonl"
    first = pre_shard.read_text().splitlines()[0]
    with open(pre_shard, "a") as fh:
        fh.write(first + "\n")
    manifest = json.loads((tmp_path / "pre" / MANIFEST).read_text())
    manifest["shards"][pre_shard.name] = pre_shard.stat().st_size   # the repeat is committed
    manifest["ids"].append(manifest["ids"][0])
    (tmp_path / "pre" / MANIFEST).write_text(json.dumps(manifest))
    assert dapt_main(["stats", str(tmp_path / "pre")]) == 2
    assert "tbn-dapt: error:" in capsys.readouterr().err
