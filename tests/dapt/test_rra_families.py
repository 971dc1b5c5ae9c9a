"""One RRA step (`tbn-dapt train --max-steps 1`) on every tested mlx-lm family, tiny random weights.

Families with per-head KV caches (dense, sliding-window, MoE, quantized) train the compressor; MLA
families (glm4_moe_lite, mistral4, deepseek_v3), whose cache holds one shared latent, run with
recaps only and no compressor (§30.8). Each run ends in an adapter plain ``mlx_lm.load`` applies.
"""
from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm import load as mlx_lm_load

from corpus.generate import generate
from dapt.cli import main
from dapt.compressor import kv_geometry, latent_attention
from dapt.preprocess import preprocess
from dapt.train import COMPRESSOR_FILE
from tbn_train.model import load_model
from tbn_train.run_dir import LOG_FILE
from tbn_train.tiny_model import TESTED_FAMILIES

FAMILIES = [pytest.param(arch, bits, id=f"{arch}-{bits}bit" if bits else arch) for arch, bits in TESTED_FAMILIES]
MLA = {"glm4_moe_lite", "mistral4", "deepseek_v3"}


@pytest.fixture(scope="module")
def data_dir(tiny_family, tmp_path_factory):
    """One offline session cut into DFR samples; every tiny family shares the same tokenizer."""
    root = tmp_path_factory.mktemp("dapt-family-data")
    generate(root / "corpus", n=1, seed=0)
    preprocess(root / "corpus", root / "samples", ("dfr",), tokenizer_dir=tiny_family("llama"))
    return root / "samples"


@pytest.mark.parametrize(("arch", "bits"), FAMILIES)
def test_one_rra_step_on_each_family(tiny_family, data_dir, arch, bits, tmp_path):
    model_dir, out = tiny_family(arch, bits), tmp_path / "run"
    assert main(["train", "--model", str(model_dir), "--data", str(data_dir), "--out", str(out), "--max-steps", "1",
                 "--window-tokens", "160", "--recap-max-tokens", "4", "--compressor-slots", "4", "--rank", "4",
                 "--learning-rate", "1e-2", "--seed", "1", "--no-recap-gating"]) == 0
    rows = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    windows = [r for r in rows if r["kind"] == "window"]
    step = next(r for r in rows if r["kind"] == "step")
    assert len(windows) >= 2 and step["stepped"] and step["grad_norm"] > 0
    assert all(np.isfinite(w["loss"]) for w in windows)
    model, _ = load_model(model_dir)
    assert latent_attention(model) is (arch in MLA)
    if arch in MLA:
        assert not (out / COMPRESSOR_FILE).exists() and step["compressor_steps"] == 0
        assert all(w["recon_loss"] is None and w["compressor_weight"] == 0.0 for w in windows)
        with pytest.raises(ValueError, match="latent attention"):
            kv_geometry(model)
    else:
        assert (out / COMPRESSOR_FILE).is_file() and step["compressor_steps"] == len(windows)
        assert all(np.isfinite(w["recon_loss"]) for w in windows)
    base, tok = mlx_lm_load(str(model_dir))
    adapted, _ = mlx_lm_load(str(model_dir), adapter_path=str(out / "adapter"))
    ids = mx.array([tok.encode("I keep saying I'm fine.")])
    assert not mx.allclose(base(ids), adapted(ids), atol=1e-5).item()  # the step moved the adapter


def test_a_placement_refusal_writes_no_run_dir(tiny_family, data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", str(tiny_family("qwen3_moe")), "--data", str(data_dir), "--out", str(out),
                 "--lora-keys", "mlp.gate"]) == 2
    assert "tbn-dapt: error: --lora-keys mlp.gate is the mixture-of-experts router" in capsys.readouterr().err
    assert not out.exists()
