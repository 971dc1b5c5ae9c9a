"""Placement refusals and hand-picked ``--lora-keys``; models named by Hugging Face id, resolved offline from a cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten
from mlx_lm import load as mlx_lm_load

from tbn_train.adapter_io import load_adapter
from tbn_train.cli import main
from tbn_train.lora import AdapterRouter, LoRASpec, add_adapter
from tbn_train.model import load_model, resolve_model
from tbn_train.placement import PlacementError
from tbn_train.run_dir import FINAL_ADAPTER

PAIRS = [{"prompt": "I feel tired.", "chosen": "Tell me about the tiredness.", "rejected": "Sleep more."}]
FLAGS = ["--attn-rank", "4", "--mlp-rank", "4", "--learning-rate", "1e-2", "--seed", "1"]


@pytest.fixture(scope="module")
def gpt2_dir(tiny_family, tmp_path_factory):
    """A tiny gpt2 (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj): layer names no role maps onto."""
    from mlx_lm.models import gpt2

    out = tmp_path_factory.mktemp("gpt2")
    for f in tiny_family("llama").iterdir():
        if f.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(f, out / f.name)
    llama = json.loads((tiny_family("llama") / "config.json").read_text())
    config = {"model_type": "gpt2", "n_ctx": 512, "n_embd": 64, "n_head": 4, "n_layer": 3, "n_positions": 512,
              "layer_norm_epsilon": 1e-5, "vocab_size": llama["vocab_size"], "eos_token_id": llama["eos_token_id"]}
    (out / "config.json").write_text(json.dumps(config))
    mx.random.seed(0)
    model = gpt2.Model(gpt2.ModelArgs.from_dict(config))
    mx.save_safetensors(str(out / "model.safetensors"), dict(tree_flatten(model.parameters())))
    return out


def dpo(model, out, tmp_path, *extra) -> int:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    return main(["dpo", "--model", str(model), "--pairs", str(pairs), "--out", str(out), *FLAGS, *extra])


def test_unplaceable_roles_are_refused_in_one_line_before_any_run_dir(gpt2_dir, tmp_path, capsys):
    model, _ = load_model(gpt2_dir)
    with pytest.raises(PlacementError, match=r"cannot place LoRA roles \['q', 'k', 'v', 'o', 'gate', 'up', 'down'\] in layer 1"):
        add_adapter(model, AdapterRouter(), "t")
    assert dpo(gpt2_dir, tmp_path / "run", tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("tbn-train: error: cannot place LoRA roles")
    assert "attn.c_attn Linear" in err and "mlp.c_fc Linear" in err and "--lora-keys" in err
    assert not (tmp_path / "run").exists()  # nothing written: a corrected command can use the same --out


def test_lora_keys_adapt_hand_picked_layers_and_export(gpt2_dir, tmp_path):
    out = tmp_path / "run"
    assert dpo(gpt2_dir, out, tmp_path, "--lora-keys", "attn.c_attn", "mlp.c_fc") == 0
    config = json.loads((out / FINAL_ADAPTER / "adapter_config.json").read_text())
    assert config["lora_parameters"]["keys"] == ["attn.c_attn", "mlp.c_fc"]
    ours, tok = load_model(gpt2_dir)
    router = AdapterRouter()
    load_adapter(ours, router, "t", out / FINAL_ADAPTER)
    router.active = "t"
    plain, _ = mlx_lm_load(str(gpt2_dir), adapter_path=str(out / FINAL_ADAPTER))
    ids = mx.array([tok.encode("I feel tired.")])
    assert mx.allclose(plain(ids), ours(ids), atol=1e-4).item()
    with pytest.raises(PlacementError, match="--lora-keys attn.nothing: no adaptable layer at that path in layer 1"):
        add_adapter(ours, router, "u", LoRASpec(keys=("attn.nothing",)))


def test_a_router_key_is_refused(tiny_family, tmp_path, capsys):
    assert dpo(tiny_family("qwen3_moe"), tmp_path / "run", tmp_path, "--lora-keys", "mlp.gate") == 2
    assert "mlp.gate is the mixture-of-experts router, which stays frozen" in capsys.readouterr().err


def hub_cache(root, repo: str, model_dir) -> None:
    """A Hugging Face cache folder holding ``repo`` as `huggingface_hub` lays it out."""
    commit = "0" * 40
    repo_dir = root / f"models--{repo.replace('/', '--')}"
    shutil.copytree(model_dir, repo_dir / "snapshots" / commit)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)


def test_model_by_hub_id_resolves_from_the_cache_offline(tiny_family, tmp_path):
    hub_cache(tmp_path / "hub", "tiny-org/tiny-qwen3-moe", tiny_family("qwen3_moe"))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps(PAIRS[0]) + "\n")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1", "MLX_DISABLE_COMPILE": "1"}

    def cli(model, out):
        return subprocess.run([sys.executable, "-m", "tbn_train.cli", "dpo", "--model", model, "--pairs", str(pairs),
                               "--out", str(tmp_path / out), *FLAGS], env=env, capture_output=True, text=True, check=False)

    ok = cli("tiny-org/tiny-qwen3-moe", "run")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["model"] == "tiny-org/tiny-qwen3-moe"
    missing = cli("tiny-org/not-cached", "run2")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith("tbn-train: error: model 'tiny-org/not-cached' is not in the Hugging Face cache")
    assert not (tmp_path / "run2").exists()


def test_bad_model_names_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="nor a Hugging Face repository id"):
        resolve_model(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve_model(tmp_path / "empty")
