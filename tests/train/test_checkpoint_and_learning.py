"""Checkpoint/resume equals an uninterrupted run; GRPO learns a scripted preference (§9.3.10)."""

from __future__ import annotations

import json

import tbn_train  # noqa: F401  (preload OpenBLAS before mlx)
import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from tbn_train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, seed_step
from tbn_train.config import TrainConfig
from tbn_train.generation import generate_candidates
from tbn_train.lora import AdapterRouter, add_adapter, set_trainable
from tbn_train.model import load_model
from tbn_train.update import PolicyUpdater

TARGET = frozenset(range(256, 320))  # 1/8 of the tiny vocab: candidates differ in how often they use it
CONFIG = TrainConfig(learning_rate=5e-3, max_new_tokens=8)


def reward(tokens):
    """Scripted judge: the share of tokens drawn from TARGET."""
    return sum(t in TARGET for t in tokens) / len(tokens)


def fresh(llama_dir):
    model, tok = load_model(llama_dir)
    router = AdapterRouter()
    add_adapter(model, router, "therapist", CONFIG.lora_spec(), seed=CONFIG.seed)
    set_trainable(model, router, "therapist")
    router.active = "therapist"
    return model, tok, router, PolicyUpdater(model, router, CONFIG)


def grpo_turn(model, tok, up, prompt, step):
    seed_step(CONFIG.seed, step)
    cands = [c.tokens for c in generate_candidates(model, tok, prompt, CONFIG.grpo_temperatures, max_tokens=CONFIG.max_new_tokens)]
    return up.grpo(prompt, cands, [reward(c) for c in cands])


def test_resume_matches_uninterrupted_run(llama_dir, prompt_of, tmp_path):
    prompt_texts = ["I feel tired.", "Work is stressful.", "I freeze when we argue.", "I miss my mother."]
    model, tok, router, up = fresh(llama_dir)
    prompts = [prompt_of(tok, t) for t in prompt_texts]
    full = [grpo_turn(model, tok, up, prompts[s], s).loss for s in range(4)]

    model, tok, router, up = fresh(llama_dir)
    rng = np.random.default_rng(5)
    for s in range(2):
        grpo_turn(model, tok, up, prompts[s], s)
    rng.random(3)
    save_checkpoint(tmp_path, 2, model, router, up.optimizer, seed=CONFIG.seed, state={"turn": 2, "counters": vars(up.counters)}, numpy_rng=rng)
    expected_rng = rng.random()
    del model, up  # "killed"

    model, tok, router, up = fresh(llama_dir)
    rng = np.random.default_rng(0)
    ck = load_checkpoint(tmp_path, model, router, up.optimizer, numpy_rng=rng)
    assert (ck.step, ck.state["turn"]) == (2, 2) and rng.random() == expected_rng
    resumed = [grpo_turn(model, tok, up, prompts[s], s).loss for s in range(ck.step, 4)]
    assert resumed == full[2:]

    reference_model, _, _, ref_up = fresh(llama_dir)
    for s in range(4):
        grpo_turn(reference_model, tok, ref_up, prompts[s], s)
    a, b = dict(tree_flatten(model.parameters())), dict(tree_flatten(reference_model.parameters()))
    assert all(mx.array_equal(a[k], b[k]).item() for k in a)


def test_failed_save_leaves_previous_checkpoint(llama_dir, tmp_path):
    model, tok, router, up = fresh(llama_dir)
    first = save_checkpoint(tmp_path, 1, model, router, up.optimizer, seed=0, state={"ok": True})
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path, 2, model, router, up.optimizer, seed=0, state={"bad": object()})
    assert latest_checkpoint(tmp_path) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "step-00000001"]
    assert json.loads((first / "state.json").read_text())["state"] == {"ok": True}
    for step in range(2, 6):
        save_checkpoint(tmp_path, step, model, router, up.optimizer, seed=0, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-00000004", "step-00000005"]
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "step-00000001", model, router, up.optimizer)


@pytest.mark.slow
def test_grpo_raises_scripted_reward_on_held_out_prompts(llama_dir, prompt_of):
    model, tok, router, up = fresh(llama_dir)
    train = [prompt_of(tok, t) for t in ["I feel tired.", "My partner says I go cold.", "Work is stressful.", "I don't know why I'm here."]]
    held_out = [prompt_of(tok, t) for t in ["I had a panic attack.", "Nobody notices the effort."]]

    target = mx.array(sorted(TARGET))

    def held_out_reward():
        """The expected scripted reward of the first reply token: its probability mass on TARGET. Exact,
        so the test does not hang on whether 32 sampled tokens happen to flip (they did not with OpenBLAS)."""
        router.active = "therapist"
        probs = [mx.softmax(model(mx.array([p]))[0, -1])[target].sum().item() for p in held_out]
        return float(np.mean(probs))

    before = held_out_reward()
    for step in range(30):
        grpo_turn(model, tok, up, train[step % len(train)], step)
    after = held_out_reward()
    assert up.counters.grpo_steps >= 20
    assert after > before
