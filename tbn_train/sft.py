"""SFT on chat samples (§9.2): loss on the assistant's tokens only, on the shared trainer machinery.

§9.3.11 has the RL trainer share loading, LoRA slots, optimizer and checkpoints with SFT, so this
is the DPO trainer with another loss: :func:`~tbn_train.policy.build_policy` (``--init-adapter``
warm-starts the trainable slot), :meth:`~tbn_train.update.PolicyUpdater.sft` (the same clip and
bias-corrected Adam), :class:`~tbn_train.run_dir.RunDir` (resumable, ``OUT/therapist`` in mlx-lm
format at the end).

Data is mlx-lm's chat JSONL, ``{"messages": [{"role", "content"}, …]}`` (``tbn-corpus export-sft``
writes it). Each sample is rendered with the model's own chat template; the tokens of every
assistant message (its template closing included, so the stop is learned) train, everything else
is masked. The mask is found by rendering the conversation up to each assistant message. A
template that rewrites earlier assistant turns (Qwen3 strips their ``<think>``) trains each
assistant message as its own sample after the prompt the template would give at inference
(:func:`encode_chat`); one that cannot even render an answer after its own generation prompt is
refused rather than masked wrongly.
With a held-out file the token-mean loss on it is logged before the first and after the last step.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import mlx.core as mx
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from tbn_train.atomic import write_json
from tbn_train.config import TrainConfig
from tbn_train.distributed import World, batch_step, begin_run, weighted_means
from tbn_train.epochs import batch_at, steps_per_epoch
from tbn_train.dpo import SUMMARY_FILE, ChatMessage
from tbn_train.losses import masked_cross_entropy
from tbn_train.read_files import read_jsonl
from tbn_train.policy import AdapterDir, ModelDir, build_policy

TRAIN_FILE, VALID_FILE = "train.jsonl", "valid.jsonl"   # mlx-lm's data directory layout


class ChatSample(BaseModel):
    """One chat sample; it must hold an assistant message to train on."""

    model_config = ConfigDict(extra="ignore")
    messages: list[ChatMessage] = Field(min_length=1)

    def plain(self) -> list[dict[str, str]]:
        return [m.model_dump() for m in self.messages]


def _trainable(sample: ChatSample) -> str | None:
    if not any(m.role == "assistant" for m in sample.messages):
        return ('no assistant message, so nothing to train on; every sample needs at least one '
                '{"role": "assistant"} turn')
    return None


def read_chats(path: str | Path) -> list[list[dict[str, str]]]:
    """Parse a chat JSONL file; a bad line is refused with its file and line number."""
    samples = read_jsonl(path, ChatSample, "chat samples", "a chat sample", '{"messages": [...]}', _trainable)
    chats = [sample.plain() for sample in samples]
    if not chats:
        raise ValueError(f"{path} holds no chat samples")
    return chats


def data_files(data: str | Path, valid: str | Path | None = None) -> tuple[str, str | None]:
    """(train file, held-out file or None) from a JSONL file or an mlx-lm data directory."""
    data = Path(data)
    if data.is_dir():
        train = data / TRAIN_FILE
        if valid is None and (data / VALID_FILE).is_file():
            valid = data / VALID_FILE
        data = train
    return str(data), None if valid is None else str(valid)


Encoded = tuple[list[int], list[float]]   # token ids and their 0/1 loss mask


def encode_chat(tokenizer, messages: list[dict[str, str]]) -> list[Encoded]:
    """The training samples of one conversation: token ids and a 0/1 mask marking assistant tokens.

    A template that renders the conversation prefix-wise gives one sample, every assistant message
    masked in place. A template that rewrites earlier assistant turns once the conversation moves on
    (Qwen3's drops their ``<think>`` blocks) gives one sample per assistant message: the conversation
    up to it rendered as the template renders a prompt at inference, then that message, the only
    trained tokens, so each answer keeps its own thinking.
    """
    def render(msgs: list[dict[str, str]], generation_prompt: bool = False) -> list[int]:
        return [int(t) for t in tokenizer.apply_chat_template(msgs, add_generation_prompt=generation_prompt)]

    turns = []   # (prompt, prompt + answer) per assistant message
    for i, m in enumerate(messages):
        if m["role"] == "assistant":
            before, through = render(messages[:i], True), render(messages[: i + 1])
            if through[: len(before)] != before:
                raise ValueError("the model's chat template does not render an assistant message after its own "
                                 "generation prompt, so the assistant tokens cannot be located; use a model whose "
                                 "template does")
            turns.append((before, through))
    ids = render(messages)
    if all(ids[: len(through)] == through for _, through in turns):
        mask = [0.0] * len(ids)
        for before, through in turns:
            mask[len(before): len(through)] = [1.0] * (len(through) - len(before))
        return [(ids, mask)]
    return [(through, [0.0] * len(before) + [1.0] * (len(through) - len(before))) for before, through in turns]


def batch_arrays(samples: list[Encoded]) -> tuple[mx.array, mx.array, mx.array]:
    """Right-padded (inputs, targets, mask) for next-token prediction; padding is masked."""
    width = max(len(ids) for ids, _ in samples)
    ids = mx.array([s + [0] * (width - len(s)) for s, _ in samples])
    mask = mx.array([m + [0.0] * (width - len(m)) for _, m in samples])
    return ids[:, :-1], ids[:, 1:], mask[:, 1:]


def heldout_loss(policy, encoded: list[Encoded]) -> float:
    """Token-mean SFT loss of the trainable adapter over ``encoded`` (no gradient)."""
    total, tokens = 0.0, 0.0
    with policy.router.use(policy.therapist):
        for sample in encoded:
            inputs, targets, mask = batch_arrays([sample])
            n = mask.sum().item()
            total += masked_cross_entropy(policy.model(inputs), targets, mask).item() * n
            tokens += n
    return total / max(tokens, 1.0)


class SFTConfig(BaseModel):
    """Everything an SFT run depends on (stored in run.json; a resume must match it)."""

    model_config = ConfigDict(extra="forbid")

    model: ModelDir = Field(description="local mlx-lm model directory")
    data: str = Field(description="chat JSONL {messages} to train on")
    valid: str | None = Field(None, description="held-out chat JSONL: its loss is logged before and after")
    init_adapter: AdapterDir = Field(None, description="mlx-lm adapter the trainable slot starts from")
    epochs: int = Field(1, ge=1, description="passes over the samples")
    batch_size: int = Field(1, ge=1, description="samples per optimizer step")
    max_steps: int | None = Field(None, ge=1, description="stop after this many steps")
    checkpoint_every: int = Field(1, ge=1, description="checkpoint every N steps (and at the end)")
    ranks: int = Field(1, ge=1, description="processes of the data-parallel group (--distributed: mlx.launch -n R)")
    train: TrainConfig = Field(default_factory=TrainConfig)


def run_sft(cfg: SFTConfig, out: str | Path, resume: bool = False, world: World | None = None) -> Path | None:
    """Train the therapist adapter on the chat samples; return the saved adapter directory (None on ranks other than 0).

    With a :class:`World` of R ranks each batch is split over them (rank r takes every R-th sample), the
    token-weighted gradients are pooled into the whole batch's step, and rank 0 writes the run.
    """
    world = world or World()

    def build():
        chats = read_chats(cfg.data)
        valid_chats = read_chats(cfg.valid) if cfg.valid else []
        policy = build_policy(cfg.model, cfg.train, cfg.init_adapter)
        return (policy, [sample for c in chats for sample in encode_chat(policy.tokenizer, c)],
                [sample for c in valid_chats for sample in encode_chat(policy.tokenizer, c)])

    (policy, encoded, valid), run, ck = begin_run(world, cfg, out, resume, build)
    writer = world.rank == 0
    up = policy.updater
    per_epoch = steps_per_epoch(len(encoded), cfg.batch_size)
    total = min(cfg.epochs * per_epoch, cfg.max_steps or cfg.epochs * per_epoch)
    step = ck.state["step"] if ck else 0
    before = ck.state["heldout_before"] if ck else (heldout_loss(policy, valid) if valid and writer else None)
    if ck:
        up.counters.__dict__.update(ck.state["updater_counters"])
    elif valid and writer:
        run.log({"kind": "heldout", "step": 0, "loss": before})
    with tqdm(total=total, initial=step, desc="sft", unit="step", disable=None if writer else True) as bar:
        while step < total:
            epoch, picked = batch_at(step, len(encoded), cfg.batch_size, cfg.train.seed)
            start = time.perf_counter()
            if world.size == 1:
                result = up.sft(*batch_arrays([encoded[i] for i in picked]))
                loss, norm = result.loss, result.grad_norm
            else:
                loss, norm = _shared_sft_step(up, world, [encoded[i] for i in picked[world.rank::world.size]], step)
            step += 1
            if writer:
                run.log({"kind": "step", "step": step, "epoch": epoch, "samples": picked, "loss": loss,
                         "grad_norm": norm, "seconds": time.perf_counter() - start})
            if writer and (step % cfg.checkpoint_every == 0 or step == total):
                run.checkpoint(step, policy.model, policy.router, up.optimizer, seed=cfg.train.seed,
                               state={"step": step, "heldout_before": before,
                                      "updater_counters": asdict(up.counters)},
                               keep=cfg.train.keep_checkpoints)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
    if not writer:
        return None
    after = heldout_loss(policy, valid) if valid else None
    summary = {"steps": total, "train_samples": len(encoded), "heldout_samples": len(valid),
               "heldout_loss_before": before, "heldout_loss_after": after}
    write_json(Path(out) / SUMMARY_FILE, summary)
    return run.finish(policy.model, policy.router, policy.therapist)


def _shared_sft_step(up, world: World, mine: list, step: int) -> tuple[float, float]:
    """This rank's samples of a batch split over the ranks: one pooled step; the batch's token-mean loss."""
    what = f"SFT step {step + 1}"
    part, tokens = None, 0.0
    if mine:
        inputs, targets, mask = batch_arrays(mine)
        part, tokens = up.sft_gradient(inputs, targets, mask), mask.sum().item()
    norm = batch_step(up, world, part, tokens, what)
    up.counters.sft_steps += 1
    means = weighted_means(world, tokens, {"loss": part.loss.item()} if part is not None else {}, what)
    return means["loss"], norm
