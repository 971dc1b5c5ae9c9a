"""corpus: schema, samplers, offline generation, crash-safe resumable output, validation."""
import asyncio
import json
import subprocess
import sys
import time

import numpy as np
import pytest
from pydantic import ValidationError

from corpus.generate import OfflineBackend, generate, offline_session, run_generation, sample_id
from corpus.sampler import RELIGION_RELEVANT, RELIGIONS, STAGE_WEIGHTS, sample_religion, sample_stage
from corpus.schema import PIPELINES, CounterfactualSample, Session, export_json_schema
from corpus.validate import validate_corpus
from corpus.writer import MANIFEST, read_samples


def test_offline_sessions_are_schema_valid_and_deterministic():
    a, b = offline_session(1, 5), offline_session(1, 5)
    assert a == b and a != offline_session(1, 6)
    Session.model_validate_json(a.model_dump_json())
    assert all(t.therapist_thought.gco and t.therapist_thought.omo for t in a.turns)
    assert [t.index for t in a.turns] == list(range(len(a.turns)))


def test_schema_rejects_bad_records_with_clear_errors():
    s = offline_session(0, 0).model_dump()
    s["client"]["attachment"] = "D9"
    with pytest.raises(ValidationError, match="DMM code"):
        Session.model_validate(s)
    s = offline_session(0, 0).model_dump()
    s["turns"][1]["index"] = 7
    with pytest.raises(ValidationError, match="turn indices"):
        Session.model_validate(s)
    with pytest.raises(ValidationError, match="unknown pipeline"):
        CounterfactualSample.model_validate({"sample_id": "x", "pipeline": "nope", "teaching_factors": ["a"],
                                             "stage": 1, "session_ref": "s", "branches": [], "rationale": "r",
                                             "generation": {"backend": "offline"}})
    assert len(PIPELINES) == 13


def test_json_schemas_export(tmp_path):
    paths = export_json_schema(tmp_path)
    assert {p.name for p in paths} >= {"session.schema.json", "counterfactual.schema.json"}
    session_schema = json.loads((tmp_path / "session.schema.json").read_text())
    assert "turns" in session_schema["properties"] and session_schema["additionalProperties"] is False
    turn = json.loads((tmp_path / "turn.schema.json").read_text())
    assert list(turn["properties"])[1:6] == ["client_thought", "client_utterance", "therapist_model",
                                             "therapist_thought", "therapist_utterance"]   # the 5-tuple order (§7.3)
    assert set(session_schema["$defs"]["TherapistThought"]["required"]) == {"gco", "omo"}


def test_stage_and_religion_distributions():
    rng = np.random.default_rng(0)
    stages = np.bincount([sample_stage(rng) for _ in range(4000)], minlength=5)[1:] / 4000
    assert np.allclose(stages, STAGE_WEIGHTS, atol=0.03) and stages[3] == 0  # 35/45/20/0 (§7.4)
    assert sample_stage(rng, forced=4) == 4
    draws = [sample_religion(rng) for _ in range(6000)]
    relevant = [d for d in draws if d is not None]
    assert abs(len(relevant) / len(draws) - RELIGION_RELEVANT) < 0.03
    share = relevant.count("Christianity") / len(relevant)
    assert abs(share - RELIGIONS["Christianity"] / sum(RELIGIONS.values())) < 0.04


def crash_after(k):
    """An on_written hook that stops the run (like Ctrl-C) after `k` samples."""
    seen = []

    def hook(sid):
        seen.append(sid)
        if len(seen) == k:
            raise KeyboardInterrupt
    return hook


def test_generate_validates_and_writes_every_sample_once(tmp_path):
    ids = generate(tmp_path, 25, seed=2).written
    assert ids == [sample_id(2, i) for i in range(25)]
    valid, errors, claims = validate_corpus(tmp_path)
    assert valid == 25 and errors == []
    assert {c.name.split()[0] for c in claims} == {"C1", "C2", "C4", "C5"}


def test_seeded_runs_are_bit_identical_whatever_the_concurrency(tmp_path):
    generate(tmp_path / "a", 12, seed=8)
    asyncio.run(run_generation(tmp_path / "b", 12, OfflineBackend(), 8, concurrency=5))
    shards = sorted(p.name for p in (tmp_path / "a").glob("sessions-*.jsonl"))
    assert shards and all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in shards)


def test_cluster_counts_grow_with_new_material_and_not_with_repeats():
    from corpus.validate import cluster_counts
    distinct = [{(str(i), "x", "y")} for i in range(8)]
    assert cluster_counts(distinct) == [2, 4, 6, 8]
    assert cluster_counts([{("a", "b", "c")}] * 8) == [1, 1, 1, 1]


def test_modality_and_coverage_claims_detect_a_dominant_school(tmp_path):
    from corpus.validate import C4_MAX_SHARE
    generate(tmp_path / "mixed", 60, seed=3)
    _, _, claims = validate_corpus(tmp_path / "mixed")
    by = {c.name.split(" (")[0]: c for c in claims}
    assert by["C4 largest modality share"].passed and by["C4 modality entropy / max"].passed
    # rewrite every therapist to one school: C4 must fail
    one = tmp_path / "one"
    one.mkdir()
    for shard in (tmp_path / "mixed").glob("sessions-*.jsonl"):
        rows = [json.loads(x) for x in shard.read_text().splitlines()]
        for r in rows:
            r["therapist"]["schools"] = ["Internal Family Systems (IFS)"]
        (one / shard.name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, _, claims = validate_corpus(one)
    by = {c.name.split(" (")[0]: c for c in claims}
    assert by["C4 largest modality share"].value == 1.0 > C4_MAX_SHARE and not by["C4 largest modality share"].passed
    assert not by["C4 modality entropy / max"].passed


def test_a_crash_mid_write_resumes_with_nothing_lost_or_repeated(tmp_path):
    full, crashed = tmp_path / "full", tmp_path / "crashed"
    generate(full, 30, seed=4)
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(run_generation(crashed, 30, OfflineBackend(), 4, on_written=crash_after(12)))
    shard = next(crashed.glob("sessions-*.jsonl"))
    with open(shard, "a", encoding="utf-8") as fh:  # the run died half-way through writing a line
        fh.write('{"session_id": "s4-000012", "trunc')
    with pytest.raises(FileExistsError, match="--resume"):
        generate(crashed, 30, seed=4)
    assert len(generate(crashed, 30, seed=4, resume=True).written) == 18
    lines = [line for _, _, line in read_samples(crashed)]
    assert lines == [line for _, _, line in read_samples(full)]
    assert len({json.loads(x)["session_id"] for x in lines}) == 30


def test_resume_refuses_different_settings_and_nothing_to_resume(tmp_path):
    generate(tmp_path / "a", 3, seed=1)
    with pytest.raises(ValueError, match="different settings"):
        generate(tmp_path / "a", 3, seed=9, resume=True)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        generate(tmp_path / "b", 3, resume=True)


def test_cli_generate_kill_resume_and_validate(tmp_path):
    out = tmp_path / "corpus"
    cmd = [sys.executable, "-m", "corpus.cli", "generate", "--n", "40", "--out", str(out), "--seed", "5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (out / MANIFEST).exists() or len(json.loads((out / MANIFEST).read_text())["ids"]) < 5:
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert subprocess.run(cmd + ["--resume"], capture_output=True).returncode == 0
    ids = [json.loads(line)["session_id"] for _, _, line in read_samples(out)]
    assert ids == [sample_id(5, i) for i in range(40)]
    result = subprocess.run([sys.executable, "-m", "corpus.cli", "validate", str(out)], capture_output=True, text=True)
    assert result.returncode == 0 and "40 schema-valid samples, 0 invalid" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "corpus.cli", "generate", "--n", "0", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--n must be at least 1" in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "corpus.cli", "generate", "--n", "3", "--concurrency", "0",
                          "--out", str(tmp_path / "y")], capture_output=True, text=True)
    assert bad.returncode == 2 and "--concurrency must be at least 1" in bad.stderr
    assert not (tmp_path / "y").exists()   # nothing was started


def test_validate_reports_invalid_lines(tmp_path):
    generate(tmp_path, 3, seed=0)
    shard = next(tmp_path.glob("sessions-*.jsonl"))
    lines = shard.read_text().splitlines()
    broken = json.loads(lines[1])
    broken["turns"] = []
    shard.write_text("\n".join([lines[0], json.dumps(broken), lines[2]]) + "\n")
    (tmp_path / MANIFEST).unlink()  # validate a directory of shards without a manifest too
    valid, errors, _ = validate_corpus(tmp_path)
    assert valid == 2 and len(errors) == 1 and "turns" in errors[0]


def test_over_50_personality_dimensions_follow_the_stage():
    from corpus.sampler import PERSONALITY, sample_client
    assert len(PERSONALITY) > 50
    rng = np.random.default_rng(3)
    early = np.mean([sample_client(rng, "c", 1).personality["dysregulation"] for _ in range(300)])
    late = np.mean([sample_client(rng, "c", 4).personality["dysregulation"] for _ in range(300)])
    assert early > late + 0.2


def test_offline_backend_makes_100_valid_sessions(tmp_path):
    assert len(generate(tmp_path, 100, seed=11).written) == 100
    valid, errors, claims = validate_corpus(tmp_path)
    assert valid == 100 and not errors
    assert {c.name: c.passed for c in claims}["C2 GCO/OMO present"]
