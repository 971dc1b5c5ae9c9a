"""Every mlx-lm family the trainer supports, on tiny random-weight models (4 layers, hidden 64).

Dense (llama, qwen3, gemma3_text, ministral3), fused projections (phi3), mixture-of-experts
(qwen3_moe, glm4_moe, minimax, gpt_oss), MLA + MoE (glm4_moe_lite, mistral4, deepseek_v3) and
4-bit quantized llama and qwen3_moe: adapter placement, one self-play turn with the model's own
client and judge (three roles on one base), one DPO step, checkpoint + resume, and the export
loading in plain ``mlx_lm.load`` with the same logits. Before generic placement every MoE, fused and MLA
family died here with an AttributeError.
"""

from __future__ import annotations

import json
import shutil

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten
from mlx_lm import load as mlx_lm_load

from tbn_train.adapter_io import load_adapter
from tbn_train.cli import main
from tbn_train.config import TrainConfig
from tbn_train.generation import generate_candidates
from tbn_train.lora import AdapterRouter
from tbn_train.model import load_model
from tbn_train.placement import PAPER_MODULES
from tbn_train.policy import FROZEN_ADAPTER, build_policy
from tbn_train.run_dir import CHECKPOINTS, FINAL_ADAPTER, LOG_FILE
from tbn_train.selfplay import SelfPlay, SelfPlayConfig
from tbn_train.tiny_model import FAMILY_LAYERS, TESTED_FAMILIES, TINY_EXPERTS

FAMILIES = [pytest.param(arch, bits, id=f"{arch}-{bits}bit" if bits else arch) for arch, bits in TESTED_FAMILIES]
MOE = {"qwen3_moe", "glm4_moe", "minimax", "gpt_oss", "glm4_moe_lite", "mistral4", "deepseek_v3"}
TRAIN = TrainConfig(attn_rank=8, mlp_rank=4, max_new_tokens=8, seed=3, learning_rate=1e-2)
TRAIN_FLAGS = ["--attn-rank", "8", "--mlp-rank", "4", "--learning-rate", "1e-2", "--seed", "3", "--max-new-tokens", "8"]
PAIRS = [
    {"prompt": "I keep going quiet when it matters.", "chosen": "What happens right before you go quiet?", "rejected": "Just speak up."},
    {"prompt": "Work is stressful.", "chosen": "Tell me about the stress.", "rejected": "Everyone is stressed."},
]


def flat(model) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in tree_flatten(model.parameters())}


@pytest.mark.parametrize(("arch", "bits"), FAMILIES)
def test_seven_roles_are_placed_and_the_router_stays_frozen(tiny_family, arch, bits):
    policy = build_policy(str(tiny_family(arch, bits)), TRAIN)
    sites = policy.router.specs[policy.therapist].sites(policy.model)
    layers = sorted({layer for layer, _ in sites})
    assert layers == [2, 3]  # the middle third of 4 layers (§9.3.11)
    for layer in layers:
        assert {r for (i, _), s in sites.items() if i == layer for r in s.roles} == set(PAPER_MODULES)
    assert not any(path.rsplit(".", 1)[-1] in ("gate", "router") for _, path in sites)
    experts = [s for s in sites.values() if s.experts]
    if arch in MOE:
        assert experts and all(s.experts == TINY_EXPERTS and set(s.roles) <= {"gate", "up", "down"} for s in experts)
    else:
        assert not experts
    if bits:
        assert {s.kind for s in sites.values()} <= {"QuantizedLinear", "QuantizedSwitchLinear"}
    trainable = [k for k, _ in tree_flatten(policy.model.trainable_parameters())]
    assert trainable and all(".adapters.therapist.lora_" in k for k in trainable)


@pytest.mark.parametrize(("arch", "bits"), FAMILIES)
def test_selfplay_turn_with_model_client_and_judge_trains_only_the_therapist(tiny_family, arch, bits, tmp_path):
    cfg = SelfPlayConfig(model=str(tiny_family(arch, bits)), sessions=1, max_turns=1, client="model", judge="model",
                         judge_max_tokens=8, client_max_tokens=8, train=TRAIN)
    sp = SelfPlay(cfg, tmp_path / "run")
    p = sp.policy
    before = flat(p.model)
    record = sp.step()
    assert len(record["grpo"]["scores"]) == 4 and record["timings"]["judging"] > 0 and record["timings"]["client"] > 0
    # one GRPO step with distinct scores, so a step surely happens whatever the random model said
    prompt = p.tokenizer.apply_chat_template([{"role": "user", "content": "I feel tired."}], add_generation_prompt=True)
    with p.router.use(p.therapist):
        cands = [c.tokens for c in generate_candidates(p.model, p.tokenizer, prompt, TRAIN.grpo_temperatures, max_tokens=8)]
    assert not p.updater.grpo(prompt, cands, [0.0, 1.0, 2.0, 3.0]).skipped
    assert np.isfinite(p.updater.rlaif(prompt, cands[0], cands[1]).loss)
    after = flat(p.model)
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert changed and all(".adapters.therapist." in k for k in changed)  # client/judge adapter and base untouched
    assert any(f".adapters.{FROZEN_ADAPTER}." in k for k in before)
    if arch in MOE:  # the experts' own factors learn (A and B per expert)
        assert any((".switch_mlp." in k or ".experts." in k) and k.endswith("lora_b") for k in changed)
    # the switch: the frozen slot (fresh, B = 0) is exactly the base; the trained therapist differs
    ids = mx.array([prompt])
    outputs = {}
    for name in (None, FROZEN_ADAPTER, p.therapist):
        with p.router.use(name):
            outputs[name] = p.model(ids)
    assert mx.array_equal(outputs[None], outputs[FROZEN_ADAPTER]).item()
    assert not mx.allclose(outputs[None], outputs[p.therapist], atol=1e-5).item()


@pytest.mark.parametrize(("arch", "bits"), FAMILIES)
def test_dpo_resumes_exactly_and_exports_to_plain_mlx_lm(tiny_family, arch, bits, tmp_path):
    model_dir = tiny_family(arch, bits)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    ref = tmp_path / "ref"
    assert main(["dpo", "--model", str(model_dir), "--pairs", str(pairs), "--out", str(ref), *TRAIN_FLAGS]) == 0

    # a run killed after its first checkpoint: the second step, its checkpoint and the final adapter are gone
    cut = tmp_path / "cut"
    shutil.copytree(ref, cut)
    shutil.rmtree(cut / CHECKPOINTS / "step-00000002")
    shutil.rmtree(cut / FINAL_ADAPTER)
    (cut / CHECKPOINTS / "latest.json").write_text(json.dumps({"step": 1, "dir": "step-00000001"}))
    assert main(["dpo", "--model", str(model_dir), "--pairs", str(pairs), "--out", str(cut), *TRAIN_FLAGS, "--resume"]) == 0
    assert (cut / LOG_FILE).read_text().count("\n") == 2
    assert [json.loads(x)["loss"] for x in (cut / LOG_FILE).read_text().splitlines()] == \
        [json.loads(x)["loss"] for x in (ref / LOG_FILE).read_text().splitlines()]
    saved = (ref / FINAL_ADAPTER / "adapters.safetensors").read_bytes()
    assert (cut / FINAL_ADAPTER / "adapters.safetensors").read_bytes() == saved

    # the export: plain mlx_lm.load with adapter_path computes what our named slot computes
    ours, tok = load_model(model_dir)
    router = AdapterRouter()
    load_adapter(ours, router, "therapist", ref / FINAL_ADAPTER)
    ids = mx.array([tok.apply_chat_template([{"role": "user", "content": "I freeze when we argue."}], add_generation_prompt=True)])
    base = ours(ids)
    router.active = "therapist"
    adapted = ours(ids)
    plain, _ = mlx_lm_load(str(model_dir), adapter_path=str(ref / FINAL_ADAPTER))
    assert not mx.allclose(adapted, base, atol=1e-4).item()  # two steps at lr 1e-2 moved the adapter
    assert mx.allclose(plain(ids), adapted, atol=1e-4).item()
    assert len(plain.layers) == FAMILY_LAYERS


@pytest.mark.parametrize(("arch", "bits"), [("qwen3_moe", None), ("deepseek_v3", None), ("qwen3_moe", 4)])
def test_a_rank8_start_adapter_seeds_smaller_expert_slots_by_svd(tiny_family, arch, bits, tmp_path):
    """--init-adapter: the frozen slot is the file exactly; the therapist's rank-4 expert slots are its per-expert SVD."""
    from tbn_train.adapter_io import save_adapter
    from tbn_train.lora import LoRASpec, adapter_pairs, add_adapter

    model_dir = tiny_family(arch, bits)
    model, tok = load_model(model_dir)
    router = AdapterRouter()
    add_adapter(model, router, "dapt", LoRASpec(attn_rank=8, mlp_rank=8), seed=5)
    for i, pair in enumerate(adapter_pairs(model, router, "dapt").values()):
        pair.lora_b = 0.05 * mx.random.normal(pair.lora_b.shape, key=mx.random.key(i))
    start = save_adapter(model, router, "dapt", tmp_path / "dapt")

    policy = build_policy(str(model_dir), TrainConfig(attn_rank=8, mlp_rank=4), init_adapter=start)
    assert policy.updater.config.reference_adapter == "reference"  # fitting changed the start: π_ref is the fitted copy
    ids = mx.array([tok.encode("I keep saying I'm fine.")])
    plain, _ = mlx_lm_load(str(model_dir), adapter_path=str(start))
    with policy.router.use(FROZEN_ADAPTER):
        assert mx.allclose(policy.model(ids), plain(ids), atol=1e-4).item()
    therapist = adapter_pairs(policy.model, policy.router, policy.therapist)
    original = adapter_pairs(model, router, "dapt")
    switch = [k for k in therapist if ".switch_mlp." in k[1]]
    assert switch
    for key in switch:
        a4, b4 = therapist[key].lora_a, therapist[key].lora_b  # (E, 4, in), (E, out, 4)
        a8, b8 = original[key].lora_a, original[key].lora_b
        assert a4.shape[1] == 4 and b4.shape[2] == 4
        full, best = (b8 @ a8).astype(mx.float32), (b4 @ a4).astype(mx.float32)  # per-expert ΔW (E, out, in)
        s = np.linalg.svd(np.array(full), compute_uv=False)
        residual = np.linalg.norm(np.array(full - best), axis=(1, 2))
        assert np.allclose(residual, np.sqrt((s[:, 4:] ** 2).sum(axis=1)), rtol=1e-3, atol=1e-6)  # Eckart–Young per expert
