"""The MLX backend on tbn_train's tiny local model (skipped when tbn_train's MLX side is absent).

Only counterfactual prompts are sent: a session prompt is longer than the tiny model's context, and
the session path above `complete` is the shared one the Anthropic tests cover.
"""
import asyncio
import json

import pytest

pytest.importorskip("tbn_train.model")
pytest.importorskip("tbn_train.tiny_model")

from corpus.counterfactuals import run_counterfactuals  # noqa: E402
from corpus.generate import generate, sample_id  # noqa: E402
from corpus.mlx_backend import MLXBackend  # noqa: E402


@pytest.mark.slow
def test_a_tiny_model_s_replies_go_through_repair_to_the_rejects_file(tmp_path, tiny_dirs):
    import mlx.core as mx

    mx.disable_compile()
    backend = MLXBackend(tiny_dirs["llama"], max_tokens=8, attempts=2)
    generate(tmp_path / "s", 1, seed=0)
    report = asyncio.run(run_counterfactuals(tmp_path / "s", tmp_path / "cf", backend, per_session=2, concurrency=2))
    assert report.written == [] and report.rejected == [f"{sample_id(0, 0)}-cf0", f"{sample_id(0, 0)}-cf1"]
    assert report.stats["calls"] == 4 and report.stats["input_tokens"] > 0 and report.stats["cost_usd"] == 0.0
    rejects = [json.loads(x) for x in (tmp_path / "cf" / "rejects.jsonl").read_text().splitlines()]
    assert all("no JSON object" in r["reason"] and "reply" in r["raw"] for r in rejects)


def test_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a local mlx-lm model"):
        MLXBackend(tmp_path / "nowhere")
