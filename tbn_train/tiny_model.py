"""Build a tiny mlx-lm model directory offline (tests, the demo, and the benchmark).

Nothing can be downloaded here, so tests need a model we can build ourselves: an mlx-lm
architecture (``llama`` or ``gemma3_text``) with seeded random weights, a byte-level BPE
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

ARCHITECTURES = ("llama", "gemma3_text")
# Small enough for a ~0.1 s training step on 2 CPU cores, big enough to have a "middle third"
# (8 layers → layers 3–5) and to fit rank-32 attention adapters (hidden 128 > 32).
TINY_LAYERS = 8
TINY_HIDDEN = 128  # intermediate = 3 × hidden = 384
TINY_HEADS = 4
TINY_KV_HEADS = 2
TINY_VOCAB = 512  # byte-level BPE: 256 byte symbols + merges + 8 specials; plenty for ~6 KB of text
TINY_MAX_POSITIONS = 2048
TINY_SLIDING_WINDOW = 64  # gemma3 local layers: short, so tests with long prompts exercise the rotating cache

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


def _model_config(arch: str, vocab_size: int, eos_id: int, bos_id: int, hidden: int, layers: int) -> dict:
    common = {
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
    }
    if arch == "llama":
        return {**common, "architectures": ["LlamaForCausalLM"], "tie_word_embeddings": False}
    head_dim = hidden // TINY_HEADS
    return {
        **common,
        "architectures": ["Gemma3ForCausalLM"],
        "head_dim": head_dim,
        "query_pre_attn_scalar": head_dim,
        "sliding_window": TINY_SLIDING_WINDOW,
        "sliding_window_pattern": 2,
        "rope_local_base_freq": 10000.0,
    }


def make_tiny_model(
    out_dir: str | Path, arch: str = "llama", seed: int = 0, hidden: int = TINY_HIDDEN, layers: int = TINY_LAYERS
) -> Path:
    """Write a loadable mlx-lm model directory to ``out_dir`` and return its path.

    The same arguments always give the same weights and tokenizer. The MLP is 3× ``hidden``
    (the usual SwiGLU ratio); the benchmark uses a wider ``hidden`` than the tests.
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
    (out / "config.json").write_text(json.dumps(config, indent=2))
    arch_module = importlib.import_module(f"mlx_lm.models.{arch}")
    mx.random.seed(seed)
    model = arch_module.Model(arch_module.ModelArgs.from_dict(config))
    weights = dict(tree_flatten(model.parameters()))
    mx.eval(weights)
    mx.save_safetensors(str(out / "model.safetensors"), weights, metadata={"format": "mlx"})
    return out
