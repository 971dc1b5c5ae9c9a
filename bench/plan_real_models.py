"""`tbn-train plan` on real models from their published config shapes (nothing downloaded): the README's memory table.

Each entry is the architecture part of the model's published ``config.json`` plus the
``quantization`` entry of its mlx-community conversion; ``plan`` builds the model lazily from it,
so no weight is read. Prints a markdown table with the paper's adapter layout (middle third, seven
roles, rank 32 attention / 16 MLP, K = 4) at the default sizes (2048-token prompt, 512 new tokens)
and at a lighter setting (1024 + 256, adapters on the latter third so backward stops earlier).

    python bench/plan_real_models.py
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import tbn_train  # noqa: F401  (preload OpenBLAS before mlx)
from tbn_train.config import TrainConfig
from tbn_train.plan import PROMPT_TOKENS, gib, make_plan

Q4 = {"group_size": 64, "bits": 4}  # mlx-community "-4bit" conversions
Q8 = {"group_size": 64, "bits": 8}  # mlx-community "-8bit" conversions
MODELS = {
    "Qwen3-8B-4bit": {
        "model_type": "qwen3", "hidden_size": 4096, "num_hidden_layers": 36, "intermediate_size": 12288,
        "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936,
        "rms_norm_eps": 1e-6, "max_position_embeddings": 40960, "rope_theta": 1e6, "tie_word_embeddings": False,
        "quantization": Q4},
    "gemma-3-27b-it-8bit (the paper's base, §9.3.12)": {
        "model_type": "gemma3_text", "hidden_size": 5376, "num_hidden_layers": 62, "intermediate_size": 21504,
        "num_attention_heads": 32, "num_key_value_heads": 16, "head_dim": 128, "vocab_size": 262208,
        "query_pre_attn_scalar": 168, "sliding_window": 1024, "sliding_window_pattern": 6, "rms_norm_eps": 1e-6,
        "rope_theta": 1e6, "rope_local_base_freq": 10000.0, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
        "max_position_embeddings": 131072, "quantization": Q8},
    "Qwen3-30B-A3B-4bit": {
        "model_type": "qwen3_moe", "hidden_size": 2048, "num_hidden_layers": 48, "intermediate_size": 6144,
        "moe_intermediate_size": 768, "num_experts": 128, "num_experts_per_tok": 8, "decoder_sparse_step": 1,
        "mlp_only_layers": [], "norm_topk_prob": True, "num_attention_heads": 32, "num_key_value_heads": 4,
        "head_dim": 128, "vocab_size": 151936, "rms_norm_eps": 1e-6, "rope_theta": 1e6,
        "max_position_embeddings": 40960, "tie_word_embeddings": False, "quantization": Q4},
    "GLM-4.7-Flash-8bit (MLA + MoE)": {
        "model_type": "glm4_moe_lite", "hidden_size": 2048, "num_hidden_layers": 47, "intermediate_size": 10240,
        "moe_intermediate_size": 1536, "n_routed_experts": 64, "n_shared_experts": 1, "num_experts_per_tok": 4,
        "first_k_dense_replace": 1, "routed_scaling_factor": 1.8, "norm_topk_prob": True, "n_group": 1, "topk_group": 1,
        "num_attention_heads": 20, "num_key_value_heads": 20, "q_lora_rank": 768, "kv_lora_rank": 512,
        "qk_nope_head_dim": 192, "qk_rope_head_dim": 64, "v_head_dim": 256, "vocab_size": 154880,
        "rms_norm_eps": 1e-5, "rope_theta": 1e6, "max_position_embeddings": 202752, "quantization": Q8},
    "MiniMax-M2-4bit": {
        "model_type": "minimax_m2", "hidden_size": 3072, "num_hidden_layers": 62, "intermediate_size": 1536,
        "num_local_experts": 256, "num_experts_per_tok": 8, "shared_intermediate_size": 0, "num_attention_heads": 48,
        "num_key_value_heads": 8, "head_dim": 128, "rotary_dim": 64, "use_qk_norm": True, "vocab_size": 200064,
        "rms_norm_eps": 1e-6, "rope_theta": 5e6, "max_position_embeddings": 196608, "tie_word_embeddings": False,
        "quantization": Q4},
}


LIGHT_PROMPT, LIGHT_NEW = 1024, 256  # a shorter history window and reply cap


def main() -> int:
    default = TrainConfig()
    header = ("| model (mlx-community) | family | adapted layers | trainable | weights | adapters ×2 + grad + Adam "
              f"| generation | GRPO step | **peak** ({PROMPT_TOKENS} + {default.max_new_tokens}) "
              f"| peak ({LIGHT_PROMPT} + {LIGHT_NEW}, latter third) |")
    rows = [header, "|---|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in MODELS.items():
            folder = Path(tmp) / str(len(rows))
            folder.mkdir()
            (folder / "config.json").write_text(json.dumps({**config, "torch_dtype": "bfloat16"}))
            plan = make_plan(folder, default, PROMPT_TOKENS)
            layers = config["num_hidden_layers"]
            light_layers = list(range(layers - -(-layers // 3), layers))  # the latter third (§9.1)
            light = make_plan(folder, default.model_copy(update={"max_new_tokens": LIGHT_NEW, "lora_layers": light_layers}),
                              LIGHT_PROMPT)
            m = plan.memory
            rows.append(f"| {name} | {plan.family} | {plan.adapted_layers[0]}–{plan.adapted_layers[-1]} of {plan.num_layers} "
                        f"| {plan.trainable / 1e6:.1f} M | {gib(m['weights'])} | {gib(m['adapters'] + m['optimizer'])} "
                        f"| {gib(m['generation'])} | {gib(m['grpo_step'])} | **{gib(plan.peak)}** | {gib(light.peak)} |")
            print(rows[-1], file=sys.stderr)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
