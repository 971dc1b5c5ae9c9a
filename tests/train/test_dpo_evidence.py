"""DPO on Method A pairs raises the chosen-minus-rejected margin on held-out pairs (§9.3.11)."""

from __future__ import annotations

import json

import pytest

from tbn_train.config import TrainConfig
from tbn_train.dpo import DPOConfig, run_dpo


@pytest.mark.slow
def test_dpo_raises_the_heldout_margin(llama_dir, tmp_path):
    from corpus.generate import generate, generate_counterfactuals
    from corpus.pairs import heldout_path, write_pairs

    generate(tmp_path / "sessions", 3, seed=5)
    generate_counterfactuals(tmp_path / "sessions", tmp_path / "cf", per_session=2)
    report = write_pairs(tmp_path / "sessions", tmp_path / "cf", "A", tmp_path / "pairs.jsonl")
    assert report.train and report.heldout
    cfg = DPOConfig(model=str(llama_dir), pairs=str(tmp_path / "pairs.jsonl"),
                    heldout=str(heldout_path(tmp_path / "pairs.jsonl")),
                    train=TrainConfig(learning_rate=1e-3, lora_layers=[3, 4], attn_rank=4, mlp_rank=4))
    run_dpo(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == report.train and summary["heldout_pairs"] == report.heldout
    assert summary["heldout_margin_after"] > summary["heldout_margin_before"] + 0.03   # nats per token (mean log-probs)
