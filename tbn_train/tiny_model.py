"""Build a tiny mlx-lm model directory offline (tests, the demo, and the benchmark).

Nothing can be downloaded here, so tests need a model we can build ourselves: an mlx-lm
architecture (one of :data:`ARCHITECTURES`: dense, fused-projection, mixture-of-experts and MLA
families) with seeded random weights, optionally quantized by mlx-lm, a byte-level BPE
tokenizer trained locally with ``tokenizers`` on the therapy-flavoured text in
``tbn_train/data/tiny_corpus.txt``, and a chat template. The directory loads with plain
``mlx_lm.load(path)``. ``tbn-train make-tiny-model DIR`` calls :func:`make_tiny_model`.
"""

from __future__ import annotations

import importlib
import json
from importlib import resources
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten

ARCHITECTURES = (
    "llama", "gemma3_text", "qwen3", "ministral3", "phi3",  # dense (phi3: fused qkv_proj / gate_up_proj)
    "qwen3_moe", "glm4_moe", "minimax", "gpt_oss",  # mixture-of-experts (SwitchGLU experts)
    "glm4_moe_lite", "mistral4", "deepseek_v3",  # MLA attention + mixture-of-experts
)
# Small enough for a ~0.1 s training step on 2 CPU cores, big enough to have a "middle third"
# (8 layers → layers 3–5) and to fit rank-32 attention adapters (hidden 128 > 32).
TINY_LAYERS = 8
TINY_HIDDEN = 128  # intermediate = 3 × hidden = 384
TINY_HEADS = 4
TINY_KV_HEADS = 2
TINY_VOCAB = 512  # byte-level BPE: 256 byte symbols + merges + 8 specials; plenty for ~6 KB of text
TINY_MAX_POSITIONS = 2048
TINY_SLIDING_WINDOW = 64  # gemma3 local layers: short, so tests with long prompts exercise the rotating cache
# Every architecture, plus 4-bit quantized dense and MoE bases: the families the test suite trains.
TESTED_FAMILIES = tuple((arch, None) for arch in ARCHITECTURES) + (("llama", 4), ("qwen3_moe", 4))
FAMILY_LAYERS, FAMILY_HIDDEN = 4, 64  # the family suite's size: 14 families stay well under 3 minutes on 2 cores
TINY_EXPERTS = 8  # routed experts per MoE layer (a qwen3_moe-like count, scaled down)
TINY_EXPERTS_PER_TOKEN = 2
TINY_LATENT = 32  # MLA kv_lora_rank / q_lora_rank
TINY_ROPE_DIM = 8  # MLA qk_rope_head_dim and minimax rotary_dim
QUANT_GROUP_SIZE = 32  # divides every tiny input dimension (hidden, expert and latent widths)

PAD, BOS, EOS_TEXT, UNK = "<pad>", "<s>", "</s>", "<unk>"
SYSTEM, USER, ASSISTANT, END = "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"
SPECIAL_TOKENS = [PAD, BOS, EOS_TEXT, UNK, SYSTEM, USER, ASSISTANT, END]
# Each message is "<|role|>\n{content}<|end|>\n"; the generation prompt opens the assistant turn,
# so a reply ends with <|end|>, which is the eos token (config.json and tokenizer agree).
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def corpus_text() -> str:
    """The few KB of therapy-flavoured dialogue the tiny tokenizer is trained on."""
    return resources.files("tbn_train").joinpath("data/tiny_corpus.txt").read_text(encoding="utf-8")


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_text().splitlines(), trainer=trainer)
    return tok


def _family_config(arch: str, hidden: int, layers: int) -> dict:
    """The architecture-specific part of config.json, scaled to ``hidden`` and ``layers``."""
    head_dim = hidden // TINY_HEADS
    experts = {"num_experts_per_tok": TINY_EXPERTS_PER_TOKEN, "moe_intermediate_size": hidden // 2, "norm_topk_prob": True}
    # MoE families with leading dense layers get all but the last one dense, so the middle third mixes both kinds.
    routed = {**experts, "n_routed_experts": TINY_EXPERTS, "n_shared_experts": 1, "routed_scaling_factor": 1.0,
              "n_group": 1, "topk_group": 1, "first_k_dense_replace": layers - 1}
    mla = {**routed, "kv_lora_rank": TINY_LATENT, "q_lora_rank": TINY_LATENT, "qk_rope_head_dim": TINY_ROPE_DIM,
           "qk_nope_head_dim": head_dim, "v_head_dim": head_dim, "num_key_value_heads": TINY_HEADS}
    # Mistral 3/4's llama-4 attention scaling reads its settings from rope_parameters.
    mistral_rope = {"rope_type": "default", "rope_theta": 10000.0, "llama_4_scaling_beta": 0.1,
                    "original_max_position_embeddings": TINY_MAX_POSITIONS}
    alternating = ["sliding_attention", "full_attention"] * (layers // 2) + ["sliding_attention"] * (layers % 2)
    return {
        "llama": {"architectures": ["LlamaForCausalLM"]},
        "gemma3_text": {"architectures": ["Gemma3ForCausalLM"], "head_dim": head_dim, "query_pre_attn_scalar": head_dim,
                        "sliding_window": TINY_SLIDING_WINDOW, "sliding_window_pattern": 2, "rope_local_base_freq": 10000.0},
        "qwen3": {"architectures": ["Qwen3ForCausalLM"], "head_dim": head_dim},
        "ministral3": {"architectures": ["Ministral3ForCausalLM"], "head_dim": head_dim, "layer_types": alternating,
                       "sliding_window": TINY_SLIDING_WINDOW, "rope_parameters": mistral_rope},
        "phi3": {"architectures": ["Phi3ForCausalLM"]},
        "qwen3_moe": {**experts, "architectures": ["Qwen3MoeForCausalLM"], "head_dim": head_dim, "num_experts": TINY_EXPERTS,
                      "decoder_sparse_step": 1, "mlp_only_layers": []},
        "glm4_moe": {**routed, "architectures": ["Glm4MoeForCausalLM"], "head_dim": head_dim, "use_qk_norm": True,
                     "attention_bias": False, "partial_rotary_factor": 0.5, "rope_scaling": None},
        "minimax": {"architectures": ["MiniMaxM2ForCausalLM"], "num_local_experts": TINY_EXPERTS,
                    "num_experts_per_tok": TINY_EXPERTS_PER_TOKEN, "intermediate_size": hidden // 2,
                    "shared_intermediate_size": 0, "rotary_dim": TINY_ROPE_DIM, "head_dim": head_dim},
        "gpt_oss": {"architectures": ["GptOssForCausalLM"], "num_local_experts": TINY_EXPERTS,
                    "num_experts_per_tok": TINY_EXPERTS_PER_TOKEN, "intermediate_size": hidden // 2, "head_dim": head_dim,
                    "sliding_window": TINY_SLIDING_WINDOW, "layer_types": alternating},
        "glm4_moe_lite": {**mla, "architectures": ["Glm4MoeLiteForCausalLM"]},
        "mistral4": {**mla, "architectures": ["Mistral4ForCausalLM"], "rope_parameters": mistral_rope},
        "deepseek_v3": {**mla, "architectures": ["DeepseekV3ForCausalLM"]},
    }[arch]


def _model_config(arch: str, vocab_size: int, eos_id: int, bos_id: int, hidden: int, layers: int) -> dict:
    return {
        "model_type": arch,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "intermediate_size": 3 * hidden,
        "num_attention_heads": TINY_HEADS,
        "num_key_value_heads": TINY_KV_HEADS,
        "vocab_size": vocab_size,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "max_position_embeddings": TINY_MAX_POSITIONS,
        "eos_token_id": eos_id,
        "bos_token_id": bos_id,
        "tie_word_embeddings": False,
        **_family_config(arch, hidden, layers),
    }


def make_tiny_model(
    out_dir: str | Path,
    arch: str = "llama",
    seed: int = 0,
    hidden: int = TINY_HIDDEN,
    layers: int = TINY_LAYERS,
    bits: int | None = None,
) -> Path:
    """Write a loadable mlx-lm model directory to ``out_dir`` and return its path.

    The same arguments always give the same weights and tokenizer. The dense MLP is 3× ``hidden``
    (the usual SwiGLU ratio), each expert ½× ``hidden``; the benchmark uses a wider ``hidden`` than
    the tests. ``bits`` (4 or 8) quantizes the model with mlx-lm's own ``quantize_model``, as
    ``mlx_lm.convert -q`` does, so ``config.json`` carries the ``quantization`` entry mlx-lm reads.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {ARCHITECTURES}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    tok = _train_tokenizer(TINY_VOCAB)
    vocab_size = tok.get_vocab_size()
    eos_id, bos_id = tok.token_to_id(END), tok.token_to_id(BOS)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": BOS,
                "eos_token": END,
                "pad_token": PAD,
                "unk_token": UNK,
                "add_bos_token": False,
                "model_max_length": TINY_MAX_POSITIONS,
                "chat_template": CHAT_TEMPLATE,
            },
            indent=2,
        )
    )
    (out / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": BOS, "eos_token": END, "pad_token": PAD, "unk_token": UNK}, indent=2)
    )

    config = _model_config(arch, vocab_size, eos_id, bos_id, hidden, layers)
    arch_module = importlib.import_module(f"mlx_lm.models.{arch}")
    mx.random.seed(seed)
    model = arch_module.Model(arch_module.ModelArgs.from_dict(config))
    if bits is not None:
        from mlx_lm.utils import quantize_model

        model, config = quantize_model(model, config, QUANT_GROUP_SIZE, bits)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    weights = dict(tree_flatten(model.parameters()))
    mx.eval(weights)
    mx.save_safetensors(str(out / "model.safetensors"), weights, metadata={"format": "mlx"})
    return out
