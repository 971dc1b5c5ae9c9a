"""`tbn-train plan`: placement report, exact trainable counts, and the peak-memory estimate against mx.get_peak_memory().

The estimate's copy counts were fitted on a tiny llama; the memory test runs other
families (deepseek_v3 MLA, gemma3_text sliding windows, phi3 fused, MoE, 4-bit).
"""

from __future__ import annotations

import json

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten

from tbn_train.cli import main
from tbn_train.config import TrainConfig
from tbn_train.generation import generate_candidates
from tbn_train.plan import make_plan
from tbn_train.policy import build_policy

PROMPT, NEW = 320, 16
TRAIN = TrainConfig(attn_rank=8, mlp_rank=4, max_new_tokens=NEW)
TOLERANCE = 0.25  # the bound on the estimate


@pytest.mark.parametrize(("arch", "bits"), [("deepseek_v3", None), ("gemma3_text", None), ("phi3", None),
                                            ("glm4_moe", None), ("qwen3_moe", 4), ("llama", 4), ("gpt_oss", None),
                                            ("minimax", None)])
def test_peak_memory_estimate_is_within_25_percent_of_measured(tiny_family, arch, bits):
    model_dir = tiny_family(arch, bits)
    plan = make_plan(model_dir, TRAIN, PROMPT)
    mx.clear_cache()
    mx.reset_peak_memory()
    before = mx.get_active_memory()
    p = build_policy(str(model_dir), TRAIN)  # base + therapist + frozen client/judge slot
    mx.eval(p.model.parameters())
    prompt = (list(range(10, 300)) * 4)[:PROMPT]
    with p.router.use(p.therapist):
        cands = generate_candidates(p.model, p.tokenizer, prompt, TRAIN.grpo_temperatures, max_tokens=NEW)
    full = [(c.tokens + [5] * NEW)[:NEW] for c in cands]  # the worst case the estimate assumes: every candidate runs to the cap
    assert not p.updater.grpo(prompt, full, [0.0, 1.0, 2.0, 3.0]).skipped
    measured = mx.get_peak_memory() - before
    assert abs(plan.peak - measured) <= TOLERANCE * measured, (plan.memory, measured)
    assert plan.trainable == sum(v.size for _, v in tree_flatten(p.model.trainable_parameters()))
    weights = sum(v.nbytes for k, v in tree_flatten(p.model.parameters()) if ".adapters." not in k)
    assert plan.memory["weights"] == weights


def test_plan_cli_reports_family_placement_experts_and_roles(tiny_family, capsys):
    assert main(["plan", "--model", str(tiny_family("glm4_moe_lite")), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["family"] == "glm4_moe_lite" and report["adapted_layers"] == [2, 3]
    assert {"self_attn.q_a_proj", "self_attn.q_b_proj", "self_attn.kv_a_proj_with_mqa", "mlp.switch_mlp.gate_proj",
            "mlp.shared_experts.down_proj", "mlp.gate_proj"} <= set(report["modules"])  # layer 2 dense, layer 3 MoE
    assert list(report["params_by_role"]) == ["q", "k+v", "o", "gate", "up", "down"]
    assert report["peak"] == sum(report["memory"][k] for k in ("weights", "adapters", "optimizer")) + \
        max(report["memory"]["generation"], report["memory"]["grpo_step"])
    assert main(["plan", "--model", str(tiny_family("qwen3_moe"))]) == 0
    text = capsys.readouterr().out
    assert "qwen3_moe, 4 layers" in text and "mlp.switch_mlp.gate_proj: gate, SwitchLinear, 8 experts, r16" in text
    assert "estimated peak" in text


def test_plan_needs_only_config_json(tiny_family, tmp_path, capsys):
    (tmp_path / "config.json").write_text((tiny_family("qwen3") / "config.json").read_text())
    assert main(["plan", "--model", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    weights = make_plan(tiny_family("qwen3"), TrainConfig()).memory["weights"]
    assert report["memory"]["weights"] == weights // 2  # float32 tiny weights vs. the bfloat16 a config-only model assumes
    # a quantized conversion's config alone: quantized as mlx_lm.convert would, and the JSON stays clean
    converted = tiny_family("qwen3_moe", 4)
    config = json.loads((converted / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "torch_dtype": "float32"}))  # the tiny model's dtype
    capsys.readouterr()
    assert main(["plan", "--model", str(tmp_path), "--json"]) == 0
    quantized = json.loads(capsys.readouterr().out)
    on_disk = make_plan(converted, TrainConfig())
    assert quantized["trainable"] == on_disk.trainable
    assert quantized["memory"]["weights"] == on_disk.memory["weights"]
    assert main(["plan", "--model", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith("tbn-train: error: not a local mlx-lm model directory")
