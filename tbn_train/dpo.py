"""DPO from preference pairs — Methods A and B of §9.3.11 — on the self-play machinery.

Method A (pairs from the DAPT corpus) and Method B (the same preferences under the full
curriculum's contexts) differ only in where the pairs come from (``tbn-corpus pairs``,
:mod:`corpus.pairs`); the trainer reads one JSONL of ``{"prompt", "chosen", "rejected"}`` records.
``prompt`` is a string (one user message) or a list of chat messages; it is rendered with the
tokenizer's chat template, and each completion ends with EOS so the stop decision is trained too.
The reference is the frozen starting adapter (:mod:`tbn_train.policy`), β = 0.1 (the DPO paper's
default). Batches follow a per-epoch permutation derived from (seed, epoch), so a resumed run
replays exactly the same order. With ``--heldout`` the mean chosen-minus-rejected log-prob margin
on held-out pairs is measured before the first and after the last step (``summary.json``).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm import tqdm

from tbn_train.atomic import write_json
from tbn_train.config import TrainConfig
from tbn_train.distributed import World, batch_step, begin_run, weighted_means
from tbn_train.epochs import batch_at, steps_per_epoch
from tbn_train.logprobs import sequence_logprobs
from tbn_train.policy import AdapterDir, ModelDir, build_policy
from tbn_train.prompts import render
from tbn_train.read_files import read_jsonl
from tbn_train.update import dpo_metrics

SUMMARY_FILE = "summary.json"   # held-out evidence of a finished run (also written by tbn_train.sft)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str
    content: str


class PreferencePair(BaseModel):
    """One preference pair: the same prompt, a chosen and a rejected completion."""

    model_config = ConfigDict(extra="ignore")  # corpus records may carry provenance fields

    prompt: str | list[ChatMessage]
    chosen: str = Field(min_length=1)
    rejected: str = Field(min_length=1)

    @field_validator("prompt")
    @classmethod
    def _non_empty(cls, v):
        if not v:
            raise ValueError("prompt is empty")
        return v

    def messages(self) -> list[dict[str, str]]:
        if isinstance(self.prompt, str):
            return [{"role": "user", "content": self.prompt}]
        return [m.model_dump() for m in self.prompt]


def read_pairs(path: str | Path) -> list[PreferencePair]:
    """Parse a pairs JSONL file; errors name the file and line."""
    pairs = read_jsonl(path, PreferencePair, "preference pairs", "a preference pair", "{prompt, chosen, rejected}")
    if not pairs:
        raise ValueError(f"{path} holds no preference pairs")
    return pairs


class DPOConfig(BaseModel):
    """Everything a DPO run depends on (stored in run.json; a resume must match it)."""

    model_config = ConfigDict(extra="forbid")

    model: ModelDir = Field(description="mlx-lm model directory or Hugging Face repository id")
    pairs: str = Field(description="preference pairs JSONL {prompt, chosen, rejected}")
    init_adapter: AdapterDir = Field(None, description="mlx-lm adapter: therapist start and DPO reference")
    heldout: str | None = Field(None, description="held-out pairs JSONL: its chosen-minus-rejected margin is "
                                                  "measured before and after (summary.json)")
    epochs: int = Field(1, ge=1, description="passes over the pairs (default 1)")
    batch_size: int = Field(1, ge=1, description="pairs per optimizer step")
    checkpoint_every: int = Field(1, ge=1, description="checkpoint every N steps (and at the end)")
    ranks: int = Field(1, ge=1, description="processes of the data-parallel group (--distributed: mlx.launch -n R)")
    train: TrainConfig = Field(default_factory=TrainConfig)


def _encode(tokenizer, pair: PreferencePair) -> tuple[list[int], list[int], list[int]]:
    eos = tokenizer.eos_token_id
    prompt = render(tokenizer, pair.messages())
    chosen = tokenizer.encode(pair.chosen, add_special_tokens=False) + [eos]
    rejected = tokenizer.encode(pair.rejected, add_special_tokens=False) + [eos]
    return prompt, chosen, rejected


def margin(policy, encoded: list[tuple[list[int], list[int], list[int]]]) -> float:
    """Mean over pairs of log π(chosen | x) − log π(rejected | x) under the trainable adapter (no gradient)."""
    if not encoded:
        raise ValueError("no pairs to measure a margin on")
    how = policy.updater.config.logp_reduction
    total = 0.0
    with policy.router.use(policy.therapist):
        for prompt, chosen, rejected in encoded:
            lp = sequence_logprobs(policy.model, [prompt, prompt], [chosen, rejected]).reduce(how)
            total += (lp[0] - lp[1]).item()
    return total / len(encoded)


def run_dpo(cfg: DPOConfig, out: str | Path, resume: bool = False, world: World | None = None) -> Path | None:
    """Train the therapist adapter with DPO; return the saved adapter directory (None on ranks other than 0).

    With a :class:`World` of R ranks each batch is split over them (rank r takes every R-th pair), the
    pair-weighted gradients are pooled into the whole batch's step, and rank 0 writes the run.
    """
    world = world or World()

    def build():
        pairs = read_pairs(cfg.pairs)
        heldout_pairs = read_pairs(cfg.heldout) if cfg.heldout else []
        policy = build_policy(cfg.model, cfg.train, cfg.init_adapter)  # a placement refusal writes nothing
        return (policy, [_encode(policy.tokenizer, p) for p in pairs],
                [_encode(policy.tokenizer, p) for p in heldout_pairs])

    (policy, encoded, heldout), run, ck = begin_run(world, cfg, out, resume, build)
    writer = world.rank == 0
    up = policy.updater
    per_epoch = steps_per_epoch(len(encoded), cfg.batch_size)
    total = cfg.epochs * per_epoch
    step = ck.state["step"] if ck else 0
    before = ck.state.get("heldout_margin_before") if ck else (margin(policy, heldout) if heldout and writer else None)
    if ck:
        up.counters.__dict__.update(ck.state["updater_counters"])
    with tqdm(total=total, initial=step, desc="dpo", unit="step", disable=None if writer else True) as bar:
        while step < total:
            epoch, chosen_ids = batch_at(step, len(encoded), cfg.batch_size, cfg.train.seed)
            batch = [encoded[i] for i in chosen_ids]
            start = time.perf_counter()
            if world.size == 1:
                result = up.dpo(*(list(col) for col in zip(*batch)))
                loss, norm, metrics = result.loss, result.grad_norm, result.metrics
            else:
                loss, norm, metrics = _shared_dpo_step(up, world, batch[world.rank::world.size], step)
            step += 1
            if writer:
                run.log({"step": step, "epoch": epoch, "pairs": chosen_ids, "loss": loss, "grad_norm": norm, **metrics,
                         "seconds": time.perf_counter() - start})
            if writer and (step % cfg.checkpoint_every == 0 or step == total):
                run.checkpoint(step, policy.model, policy.router, up.optimizer, seed=cfg.train.seed,
                               state={"step": step, "heldout_margin_before": before,
                                      "updater_counters": asdict(up.counters)}, keep=cfg.train.keep_checkpoints)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
    if not writer:
        return None
    write_json(Path(out) / SUMMARY_FILE, {"steps": total, "train_pairs": len(encoded), "heldout_pairs": len(heldout),
                                          "heldout_margin_before": before,
                                          "heldout_margin_after": margin(policy, heldout) if heldout else None})
    return run.finish(policy.model, policy.router, policy.therapist)


def _shared_dpo_step(up, world: World, mine: list, step: int) -> tuple[float, float, dict[str, float]]:
    """This rank's pairs of a batch split over the ranks: one pooled step; the batch's loss and metrics."""
    what = f"DPO step {step + 1}"
    part = up.dpo_gradient(*(list(col) for col in zip(*mine))) if mine else None
    norm = batch_step(up, world, part, float(len(mine)), what)
    up.counters.dpo_steps += 1
    values = {}
    if part is not None:
        n = len(mine)
        lp, ref = part.aux
        values = {"loss": part.loss.item(), **dpo_metrics(lp[:n], lp[n:], ref[:n], ref[n:], up.config.dpo_beta)}
    means = weighted_means(world, float(len(mine)), values, what)
    return means.pop("loss"), norm, means
