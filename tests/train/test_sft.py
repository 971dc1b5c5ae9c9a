"""`tbn-train sft` (§9.2): assistant-only loss under the chat template, shared machinery, mlx-lm compatible."""

from __future__ import annotations

import json
import subprocess
import sys

import mlx.core as mx
import numpy as np
import pytest

from tbn_train.cli import main
from tbn_train.config import TrainConfig
from tbn_train.losses import masked_cross_entropy
from tbn_train.policy import build_policy
from tbn_train.sft import SFTConfig, batch_arrays, encode_chat, run_sft

SMALL = {"lora_layers": [3, 4], "attn_rank": 4, "mlp_rank": 4}
CLIENT_LINES = ["I could not sleep again.", "Work has been a lot.", "My sister called me.", "I feel stuck.",
                "It was a hard week.", "I keep thinking about it.", "I am tired.", "Nothing feels right."]


def chat(line: str, turns: int = 1) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "You are a psychotherapist in session."}]
    for _ in range(turns):
        messages += [{"role": "user", "content": line},
                     {"role": "assistant", "content": "<think>Stay with her.</think>\nTake your time."}]
    return messages


def write_chats(path, chats) -> str:
    path.write_text("".join(json.dumps({"messages": c}) + "\n" for c in chats), encoding="utf-8")
    return str(path)


# Qwen3's template logic over the tiny tokenizer's role tokens: an assistant message before the last
# user message loses its <think>…</think> block; after it, the reasoning is kept.
QWEN3_LIKE_TEMPLATE = (
    "{%- set ns = namespace(last_query_index=messages|length - 1) %}"
    "{%- for m in messages %}{%- if m.role == 'user' %}{%- set ns.last_query_index = loop.index0 %}{%- endif %}"
    "{%- endfor %}"
    "{%- for m in messages %}"
    "{%- if m.role != 'assistant' %}{{- '<|' + m.role + '|>\\n' + m.content + '<|end|>\\n' }}"
    "{%- else %}"
    "{%- set content = m.content %}{%- set reasoning = '' %}"
    "{%- if '</think>' in content %}"
    "{%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}"
    "{%- if loop.index0 > ns.last_query_index and (loop.last or reasoning) %}"
    "{{- '<|assistant|>\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}"
    "{%- else %}{{- '<|assistant|>\\n' + content }}{%- endif %}"
    "{{- '<|end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|assistant|>\\n' }}{%- endif %}")


@pytest.fixture(scope="module")
def qwen3_like_dir(llama_dir, tmp_path_factory):
    """The tiny llama with a Qwen3-like chat template (everything else, tokenizer included, unchanged)."""
    import shutil

    out = tmp_path_factory.mktemp("qwen3-like") / "model"
    shutil.copytree(llama_dir, out)
    config = json.loads((out / "tokenizer_config.json").read_text())
    (out / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": QWEN3_LIKE_TEMPLATE}))
    return out


def three_turns() -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "You are a psychotherapist in session."}]
    for k, line in enumerate(CLIENT_LINES[:3]):
        messages += [{"role": "user", "content": line},
                     {"role": "assistant", "content": f"<think>Thought {k}: stay with her.</think>\nAnswer {k}."}]
    return messages


def test_a_template_that_strips_earlier_thinking_trains_each_answer_after_its_inference_prompt(qwen3_like_dir):
    """Before: refused ("does not render conversations prefix-wise"). Now one sample per assistant message."""
    from mlx_lm import load

    _, tok = load(str(qwen3_like_dir))
    messages = three_turns()
    whole = tok.decode(tok.apply_chat_template(messages))
    assert "Thought 2" in whole and "Thought 0" not in whole   # the template does strip earlier thinking
    samples = encode_chat(tok, messages)
    assert len(samples) == 3
    for k, (ids, mask) in enumerate(samples):
        n_prompt = mask.index(1.0)
        assert set(mask[:n_prompt]) == {0.0} and set(mask[n_prompt:]) == {1.0}   # the answer, and only it, trains
        prompt_at_inference = tok.apply_chat_template(messages[:2 * k + 2], add_generation_prompt=True)
        assert ids[:n_prompt] == [int(t) for t in prompt_at_inference]
        assert tok.decode(ids[n_prompt:]) == f"<think>\nThought {k}: stay with her.\n</think>\n\nAnswer {k}.<|end|>\n"
        assert all(f"Thought {j}" not in tok.decode(ids[:n_prompt]) for j in range(3))   # earlier thinking stripped


def test_a_template_that_cannot_render_an_answer_after_its_own_prompt_is_refused(qwen3_like_dir, tmp_path):
    """A generation prompt the assistant turn does not start with leaves no place for the mask: refused."""
    import shutil

    from mlx_lm import load

    odd = tmp_path / "odd"
    shutil.copytree(qwen3_like_dir, odd)
    config = json.loads((odd / "tokenizer_config.json").read_text())
    template = config["chat_template"].replace("{{- '<|assistant|>\\n' }}{%- endif %}",
                                               "{{- '<|assistant|>\\nSure: ' }}{%- endif %}")
    (odd / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": template}))
    _, tok = load(str(odd))
    with pytest.raises(ValueError, match="does not render an assistant message after its own generation prompt"):
        encode_chat(tok, [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "No think here."}])


def test_sft_trains_on_a_qwen3_like_template(qwen3_like_dir, tmp_path):
    cfg = SFTConfig(model=str(qwen3_like_dir), data=write_chats(tmp_path / "train.jsonl", [three_turns()]),
                    max_steps=3, train=TrainConfig(**SMALL))
    run_sft(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["train_samples"] == 3 and summary["steps"] == 3   # one conversation, three answers


def test_only_assistant_tokens_are_trained(llama_dir):
    """The mask covers exactly the assistant messages (and their closing); every other position gets zero gradient."""
    policy = build_policy(llama_dir, TrainConfig(**SMALL))
    messages = chat("I could not sleep again.", turns=2)
    [(ids, mask)] = encode_chat(policy.tokenizer, messages)   # prefix-wise template: one sample
    trained = policy.tokenizer.decode([t for t, m in zip(ids, mask) if m])
    assert trained == 2 * "<think>Stay with her.</think>\nTake your time.<|end|>\n"
    inputs, targets, m = batch_arrays([(ids, mask)])
    logits = policy.model(inputs)
    grad = mx.grad(lambda z: masked_cross_entropy(z, targets, m))(logits)
    per_position, trains = np.abs(np.array(grad)).sum(axis=-1)[0], np.array(m)[0] == 1
    assert trains.sum() == sum(mask) and (per_position[~trains] == 0).all() and (per_position[trains] > 0).all()


@pytest.mark.slow
def test_sft_lowers_heldout_loss_and_its_adapter_loads_in_mlx_lm(llama_dir, tmp_path):
    from mlx_lm import load

    cfg = SFTConfig(model=str(llama_dir),
                    data=write_chats(tmp_path / "train.jsonl", [chat(x) for x in CLIENT_LINES[:6]]),
                    valid=write_chats(tmp_path / "valid.jsonl", [chat(x) for x in CLIENT_LINES[6:]]), epochs=2,
                    train=TrainConfig(learning_rate=1e-3, **SMALL))
    adapter = run_sft(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 12
    assert summary["heldout_loss_after"] < 0.8 * summary["heldout_loss_before"]
    model, tok = load(str(llama_dir), adapter_path=str(adapter))
    base, _ = load(str(llama_dir))
    ids = mx.array([encode_chat(tok, chat("I am tired."))[0][0]])
    assert not mx.allclose(model(ids), base(ids)).item()   # the trained adapter is what mlx-lm applies


@pytest.mark.slow
def test_exported_corpus_trains_with_sft_and_with_plain_mlx_lm_lora(llama_dir, tmp_path):
    from corpus.generate import generate, generate_counterfactuals
    from corpus.sft import export_sft

    generate(tmp_path / "sessions", 2, seed=4)
    generate_counterfactuals(tmp_path / "sessions", tmp_path / "cf", per_session=1)
    export_sft(tmp_path / "sessions", tmp_path / "data", tmp_path / "cf")
    done = subprocess.run([sys.executable, "-m", "mlx_lm", "lora", "--model", str(llama_dir), "--train",
                           "--data", str(tmp_path / "data"), "--iters", "2", "--batch-size", "1", "--val-batches", "1",
                           "--steps-per-eval", "100", "--num-layers", "2", "--max-seq-length", "256",
                           "--adapter-path", str(tmp_path / "plain")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "plain" / "adapters.safetensors").is_file()
    code = main(["sft", "--model", str(llama_dir), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                 "--max-steps", "1", "--lora-layers", "3", "--attn-rank", "4", "--mlp-rank", "4"])
    assert code == 0 and (tmp_path / "run" / "therapist" / "adapter_config.json").is_file()


@pytest.mark.slow
def test_sft_resumes_to_the_same_adapter(llama_dir, tmp_path):
    data = write_chats(tmp_path / "train.jsonl", [chat(x) for x in CLIENT_LINES[:4]])
    args = ["sft", "--model", str(llama_dir), "--data", data, "--learning-rate", "1e-3", "--lora-layers", "3",
            "--attn-rank", "4", "--mlp-rank", "4"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    assert main([*args, "--out", str(tmp_path / "cut"), "--max-steps", "2"]) == 0
    import shutil

    shutil.rmtree(tmp_path / "cut" / "therapist")
    (tmp_path / "cut" / "run.json").write_text((tmp_path / "whole" / "run.json").read_text())
    assert main([*args, "--out", str(tmp_path / "cut"), "--resume"]) == 0
    a = mx.load(str(tmp_path / "whole" / "therapist" / "adapters.safetensors"))
    b = mx.load(str(tmp_path / "cut" / "therapist" / "adapters.safetensors"))
    assert a.keys() == b.keys() and all(mx.array_equal(a[k], b[k]).item() for k in a)


@pytest.mark.parametrize("line, problem", [
    ({"messages": [{"role": "user", "content": "hello"}]}, "no assistant message"),
    ({"messages": []}, "messages"),
    ({"text": "plain"}, "messages"),
])
def test_a_chat_file_without_an_assistant_turn_is_refused_with_one_line(llama_dir, tmp_path, capsys, line, problem):
    data = write_chats(tmp_path / "bad.jsonl", [chat("fine")])
    with open(data, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
    code = main(["sft", "--model", str(llama_dir), "--data", data, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("tbn-train: error: ") and problem in err[0]
    assert "bad.jsonl:2" in err[0] and not (tmp_path / "run").exists()


def test_a_pair_without_a_chosen_side_is_refused_with_one_line(llama_dir, tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n"
                     + json.dumps({"prompt": "p", "rejected": "b"}) + "\n", encoding="utf-8")
    code = main(["dpo", "--model", str(llama_dir), "--pairs", str(pairs), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pairs.jsonl:2" in err[0] and "chosen: Field required" in err[0]
    assert not (tmp_path / "run").exists()
