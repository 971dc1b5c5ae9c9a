"""Stage-gated context, DMM catalogue, and counterfactual samples from the 13 pipelines (App. 22, 25, 28)."""
import json

import pytest

from corpus.context import dmm, pipelines, stage_description
from corpus.counterfactuals import BRANCH_PROBABILITIES
from corpus.generate import generate, generate_counterfactuals
from corpus.schema import DMM_CODES, PIPELINES
from corpus.validate import validate_corpus
from corpus.writer import read_samples


def test_stage_descriptions_cover_seven_dimensions_in_every_stage():
    for stage in (1, 2, 3, 4):
        text = stage_description(stage)
        for dim in ("Neurobiological", "Emotional", "Cognitive", "Behavioral", "Parts", "Relational", "Existential"):
            assert f"{dim}:" in text
    with pytest.raises(ValueError, match="stage"):
        stage_description(5)


def test_dmm_catalogue_has_22_strategies_with_parity():
    assert all(dmm(code)["label"] and dmm(code)["description"] for code in DMM_CODES)
    assert dmm("A3")["parity"] == "inhibitory" and dmm("C4")["parity"] == "excitatory"
    assert dmm("B3")["parity"] == "balanced" and dmm("A6")["label"] == "compulsively self-reliant"
    with pytest.raises(ValueError, match="DMM"):
        dmm("D1")


def test_thirteen_pipelines_with_teaching_factors_and_templates():
    specs = pipelines()
    assert list(specs) == list(PIPELINES)
    for name, spec in specs.items():
        assert spec["teaching_factors"] and "{context}" in spec["prompt"] and "{client}" in spec["prompt"], name


def test_counterfactuals_rotate_through_pipelines_and_validate(tmp_path):
    generate(tmp_path / "sessions", 13, seed=1)
    ids = generate_counterfactuals(tmp_path / "sessions", tmp_path / "cf", per_session=1).written
    assert len(ids) == 13
    samples = [json.loads(line) for _, _, line in read_samples(tmp_path / "cf", prefix="counterfactuals")]
    assert {s["pipeline"] for s in samples} == set(PIPELINES)
    assert all(abs(sum(b["probability"] for b in s["branches"]) - sum(BRANCH_PROBABILITIES)) < 1e-9 for s in samples)
    valid, errors, _ = validate_corpus(tmp_path / "cf")
    assert valid == 13 and errors == []
    assert generate_counterfactuals(tmp_path / "sessions", tmp_path / "cf", 1, resume=True).written == []
    with pytest.raises(FileNotFoundError, match="no session corpus"):
        generate_counterfactuals(tmp_path / "missing", tmp_path / "cf-missing")
    assert not (tmp_path / "cf-missing").exists()


def test_branch_probabilities_may_not_exceed_one_and_stats_count_pipelines(tmp_path):
    from pydantic import ValidationError

    from corpus.generate import generate_counterfactuals as gen_cf
    from corpus.schema import CounterfactualSample
    from corpus.validate import stats
    generate(tmp_path / "s", 4, seed=2)
    gen_cf(tmp_path / "s", tmp_path / "cf", per_session=2)
    line = next(read_samples(tmp_path / "cf"))[2]
    sample = json.loads(line)
    sample["branches"][0]["probability"] = 0.9
    with pytest.raises(ValidationError, match="sum to 1.300"):
        CounterfactualSample.model_validate(sample)
    st = stats(tmp_path / "cf")
    assert st["by_kind"] == {"counterfactual": 8} and sum(st["by_pipeline"].values()) == 8
    assert len(st["by_pipeline"]) == 8
