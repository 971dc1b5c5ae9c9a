"""``make-tiny-model --pretrain``: a short, seeded next-token warm-up of the tiny model on the offline
corpus, so it writes words in the therapist's turn format instead of random tokens.

Examples are therapist turns of offline corpus sessions (``corpus.generate.offline_session``), each
the exact self-play therapist prompt (``tbn_train.prompts.therapist_messages``) followed by the
``<think>…</think>`` thought and the spoken words. Every weight is trained (it is a base model, not
an adapter) with AdamW; the loss is on the answer tokens only. The same seed gives the same weights.
"""
from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import mlx.optimizers as optim
import numpy as np
from mlx import nn
from mlx.utils import tree_flatten

from tbn_env.protocols import DialogueTurn
from tbn_train.prompts import (
    TherapistView,
    format_therapist_turn,
    render,
    therapist_messages,
)

PRETRAIN_STEPS = 150      # a few minutes at most on 2 cores; enough for words and the turn format
PRETRAIN_LR = 2e-3        # a small model from scratch tolerates a large step
PRETRAIN_BATCH = 8        # examples per step
PRETRAIN_SESSIONS = 60    # offline sessions drawn (~600 therapist turns)
MAX_EXAMPLE_TOKENS = 256  # prompts are cut from the left (oldest dialogue first) to fit
HISTORY_TURNS = 3         # dialogue turns of context in each example prompt


def examples(tokenizer, sessions: int = PRETRAIN_SESSIONS, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, answer ids) for every therapist turn of ``sessions`` offline sessions."""
    from corpus.generate import offline_session

    out = []
    for i in range(sessions):
        s = offline_session(seed, i)
        history: list[DialogueTurn] = []
        for t in s.turns:
            thought = " ".join(v for v in (t.therapist_thought.gco, t.therapist_thought.omo) if v)
            view = TherapistView(client_utterance=t.client_utterance, history=tuple(history[-HISTORY_TURNS:]),
                                 stage=s.context.stage, phase=t.phase, stance="rapport_building", guidance="",
                                 profile_card="", rupture_pending=False)
            prompt = render(tokenizer, therapist_messages(view))
            answer = tokenizer.encode(format_therapist_turn(thought, t.therapist_utterance), add_special_tokens=False)
            answer = [*answer, tokenizer.eos_token_id][: MAX_EXAMPLE_TOKENS // 2]
            out.append((prompt[-(MAX_EXAMPLE_TOKENS - len(answer)):], answer))
            history.append(DialogueTurn(client=t.client_utterance, therapist=t.therapist_utterance))
    return out


def _batch(rows: list[tuple[list[int], list[int]]]) -> tuple[mx.array, mx.array, mx.array]:
    """Right-padded inputs, next-token targets and a mask that is 1 on answer tokens."""
    seqs = [p + a for p, a in rows]
    width = max(map(len, seqs)) - 1
    inputs = np.zeros((len(rows), width), np.int32)
    targets = np.zeros((len(rows), width), np.int32)
    mask = np.zeros((len(rows), width), np.float32)
    for r, ((p, _), seq) in enumerate(zip(rows, seqs)):
        n = len(seq) - 1
        inputs[r, :n], targets[r, :n] = seq[:-1], seq[1:]
        mask[r, len(p) - 1:n] = 1.0
    return mx.array(inputs), mx.array(targets), mx.array(mask)


def _loss(model, inputs, targets, mask):
    ce = nn.losses.cross_entropy(model(inputs), targets, reduction="none")
    return (ce * mask).sum() / mask.sum()


def pretrain(model_dir: str | Path, steps: int = PRETRAIN_STEPS, seed: int = 0) -> dict[str, float]:
    """Warm up the model in ``model_dir`` in place; return the answer-token loss on held-out
    examples (sessions the training never saw) before and after."""
    from mlx_lm import load

    if steps < 1:
        raise ValueError(f"--pretrain-steps must be >= 1, got {steps}")
    model_dir = Path(model_dir)
    model, tokenizer = load(str(model_dir))
    data = examples(tokenizer, seed=seed)
    held_out = examples(tokenizer, sessions=4, seed=seed + 1)[:PRETRAIN_BATCH]
    rng = np.random.default_rng(seed)
    step = nn.value_and_grad(model, _loss)
    opt = optim.AdamW(learning_rate=PRETRAIN_LR)
    before = _loss(model, *_batch(held_out)).item()
    for _ in range(steps):
        rows = [data[i] for i in rng.choice(len(data), PRETRAIN_BATCH, replace=False)]
        _, grads = step(model, *_batch(rows))
        opt.update(model, grads)
        mx.eval(model.parameters(), opt.state)
    after = _loss(model, *_batch(held_out)).item()
    weights = dict(tree_flatten(model.parameters()))
    mx.save_safetensors(str(model_dir / "model.safetensors"), weights, metadata={"format": "mlx"})
    return {"held_out_loss_before": before, "held_out_loss_after": after}
