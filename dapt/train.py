"""`tbn-dapt train`: Rolling Recap DAPT over a preprocessed corpus, resumable, ending in an mlx-lm adapter.

The run directory follows tbn_train's layout (``run.json``, ``log.jsonl``, ``checkpoints/``) plus
``adapter/`` — the LoRA adapter ``tbn-train selfplay --init-adapter`` warm-starts from — and
``compressor.safetensors``. Samples come in curriculum order (shortest first, every epoch, App. 29.4),
``samples_per_step`` of them per optimizer step (default one); the log holds one record per window of
every sample and one per step. Checkpoints carry the LoRA and compressor weights, both Adam states and
the step, and seeds derive from (seed, sample position, window), so a killed run resumes to the same
result as an uninterrupted one.

With a :class:`~tbn_train.distributed.World` of R ranks (``mlx.launch -n R … --distributed``) rank r
trains the step's samples r, r+R, …; the compressor's and the LoRA's gradients are pooled over the ranks
(:meth:`~dapt.rra.RollingRecap.group_step`), so R ranks compute what one process given the same
``--samples-per-step`` computes, and rank 0 alone writes the run directory.
"""
from __future__ import annotations

import io
import time
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tbn_train.atomic import atomic_path
from tbn_train.distributed import World, adapter_digest, check_ranks, drop_copy, open_run_dir, start_ranks
from tbn_train.generation import MAX_TEMPERATURE
from tbn_train.lora import DEFAULT_SCALE, PAPER_MODULES, AdapterRouter, LoRASpec, add_adapter, latter_third, set_trainable
from tbn_train.model import load_model, resolve_model
from tbn_train.policy import ModelDir
from tbn_train.update import adam

from .clusters import load_tokenizer
from .compressor import COMPRESSED_SLOTS, KVCompressor, kv_geometry, latent_attention, load_compressor, save_compressor
from .dataset import SampleIndex
from .preprocess import STRATEGIES
from .recap import RECAP_MAX_TOKENS, RECAP_TEMPERATURE
from .rra import COMPRESSOR_LR_FACTOR, RollingRecap
from .windows import WINDOW_JITTER, WINDOW_TOKENS, tokenize, window_bounds

ADAPTER = "dapt"               # the adapter slot's name inside the run
ADAPTER_FOLDER = "adapter"     # OUT/adapter: the mlx-lm adapter for --init-adapter
COMPRESSOR_FILE = "compressor.safetensors"
DAPT_RANK = 32                 # §27.4.1: DAPT adapters are rank 32 on all seven modules
LEARNING_RATE = 1e-5           # choice: mlx-lm's LoRA default; the paper gives no DAPT learning rate
MAX_GRAD_NORM = 1.0            # choice: the same global-norm clip as tbn_train (§9.3.13)
KEEP_CHECKPOINTS = 3           # choice: as tbn_train — survives one bad save, bounds disk use


class DAPTConfig(BaseModel):
    """Everything a run depends on; a --resume must match it exactly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelDir = Field(description="mlx-lm model directory or Hugging Face repository id")
    data: str = Field(description="a `tbn-dapt preprocess` output directory")
    strategies: tuple[str, ...] = Field(STRATEGIES, description="sample strategies trained on")
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1, description="stop after this many samples")
    samples_per_step: int = Field(1, ge=1, description="samples pooled into one optimizer step (over every rank)")
    window_tokens: int = Field(WINDOW_TOKENS, ge=1)
    window_jitter: float = Field(WINDOW_JITTER, ge=0.0, lt=1.0)
    compressor_slots: int = Field(COMPRESSED_SLOTS, ge=1)
    recap_max_tokens: int = Field(RECAP_MAX_TOKENS, ge=1)
    recap_temperature: float = Field(RECAP_TEMPERATURE, ge=0.0, le=MAX_TEMPERATURE)
    recap_gating: bool = Field(True, description="weight gradients by recap quality (§8.2.1 fn. 15)")
    layers: Literal["middle", "latter"] = Field("middle", description="LoRA on the middle (§9.1) or latter third")
    rank: int = Field(DAPT_RANK, ge=1)
    modules: tuple[str, ...] = Field(PAPER_MODULES)
    lora_keys: tuple[str, ...] | None = Field(None, description="module paths inside a block instead of the roles")
    lora_scale: float = Field(DEFAULT_SCALE)
    learning_rate: float = Field(LEARNING_RATE, gt=0)
    max_grad_norm: float = Field(MAX_GRAD_NORM, gt=0)
    seed: int = 0
    checkpoint_every: int = Field(1, ge=1)
    keep_checkpoints: int = Field(KEEP_CHECKPOINTS, ge=1)
    ranks: int = Field(1, ge=1, description="processes of the data-parallel group (--distributed: mlx.launch -n R)")


def plan(cfg: DAPTConfig, index) -> list[str]:
    """Sample ids in training order: the curriculum once per epoch, cut at max_steps."""
    unknown = set(cfg.strategies) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"unknown strategies {sorted(unknown)}; choose from {STRATEGIES}")
    order = index.order(cfg.strategies)
    if not order:
        raise ValueError(f"{cfg.data} has no samples of strategies {list(cfg.strategies)}")
    steps = order * cfg.epochs
    return steps[: cfg.max_steps] if cfg.max_steps else steps


def lora_spec(cfg: DAPTConfig, num_layers: int) -> LoRASpec:
    """One rank on all modules (§27.4.1), on the middle third (§9.1) or the latter third."""
    layers = tuple(latter_third(num_layers)) if cfg.layers == "latter" else None
    return LoRASpec(layers=layers, modules=cfg.modules, keys=cfg.lora_keys, attn_rank=cfg.rank, mlp_rank=cfg.rank,
                    scale=cfg.lora_scale)


def token_mean(windows: list[dict]) -> float:
    """A step's loss: its window records' losses weighted by their trainable tokens."""
    tokens = sum(w["trainable_tokens"] for w in windows)
    return sum(w["loss"] * w["trainable_tokens"] for w in windows) / max(tokens, 1)


def check_samples_per_step(cfg: DAPTConfig) -> None:
    """Refuse a step too small to give every rank a sample."""
    if cfg.samples_per_step < cfg.ranks:
        raise ValueError(f"--samples-per-step {cfg.samples_per_step} leaves ranks idle: with {cfg.ranks} ranks "
                         f"give at least {cfg.ranks} (the default is one sample per rank)")


class _Built:
    """What every rank builds before the run directory opens: the plan, the model, the trainer."""

    def __init__(self, cfg: DAPTConfig, world: World) -> None:
        check_samples_per_step(cfg)
        self.index = SampleIndex(cfg.data)
        self.plan = plan(cfg, self.index)
        model_path = resolve_model(cfg.model)
        self.model, wrapper = load_model(model_path)
        self.router = AdapterRouter()
        add_adapter(self.model, self.router, ADAPTER, lora_spec(cfg, len(self.model.layers)), seed=cfg.seed)
        self.tokenizer = load_tokenizer(model_path)
        set_trainable(self.model, self.router, ADAPTER)
        self.router.active = ADAPTER  # recaps are written with the adapter active (§8.2.1)
        # MLA caches hold a shared latent the compressor cannot pool: recaps only there (§30.8)
        self.compressor = None if latent_attention(self.model) else \
            KVCompressor(kv_geometry(self.model), cfg.compressor_slots, seed=cfg.seed)
        self.lora_opt = adam(cfg.learning_rate)
        self.comp_opt = None if self.compressor is None else adam(cfg.learning_rate * COMPRESSOR_LR_FACTOR)
        self.trainer = RollingRecap(self.model, self.tokenizer, self.compressor, self.lora_opt, self.comp_opt,
                                    wrapper.eos_token_ids, recap_max_tokens=cfg.recap_max_tokens,
                                    recap_temperature=cfg.recap_temperature, gating=cfg.recap_gating,
                                    max_grad_norm=cfg.max_grad_norm, world=world)


def train(cfg: DAPTConfig, out: str | Path, resume: bool = False, progress: bool = False,
          world: World | None = None) -> Path | None:
    """Run (or resume) DAPT into ``out``; return the adapter directory (None on ranks other than 0)."""
    world = world or World(prog="tbn-dapt")
    check_ranks(cfg.ranks, world)
    b = start_ranks(world, cfg, resume, lambda: _Built(cfg, world))  # a refusal writes nothing
    run, ck = open_run_dir(world, cfg, out, resume, b.model, b.router, b.lora_opt)
    start = 0
    if ck is not None:
        try:
            if b.compressor is not None:
                world.together("the compressor checkpoint",
                               lambda: load_compressor(ck.path / COMPRESSOR_FILE, b.compressor, b.comp_opt))
        finally:
            drop_copy(ck)
        start = ck.step
    writer = world.rank == 0
    size = cfg.samples_per_step
    total = -(-len(b.plan) // size)
    bar = None
    if progress and writer:
        from tqdm import tqdm
        bar = tqdm(total=total, initial=start, desc="steps", unit="step")
    for step in range(start, total):
        began = time.perf_counter()
        positions = list(range(step * size, min((step + 1) * size, len(b.plan))))
        mine = positions[world.rank::world.size]
        what = f"DAPT step {step + 1}"
        samples = world.together(f"the samples of {what}", lambda: [tokenize(b.index.read(b.plan[p]), b.tokenizer)
                                                                    for p in mine])  # a bad sample on any rank: one line
        bounds = [window_bounds(len(sample.ids), cfg.window_tokens, cfg.window_jitter, np.random.default_rng([cfg.seed, p]))
                  for sample, p in zip(samples, mine)]
        counts = [n for rank in world.gather_json([len(bd) for bd in bounds], f"the window counts of {what}") for n in rank]
        logs, grad_norm, stepped = b.trainer.group_step(samples, bounds, step_samples=len(positions), windows=max(counts),
                                                        seeds=[(cfg.seed, p) for p in mine], what=what)
        mine_logs = [(p, sample.sample_id, [asdict(w) for w in windows]) for p, sample, windows in zip(mine, samples, logs)]
        every = sorted(s for rank in world.gather_json(mine_logs, f"the log of {what}") for s in rank)
        checkpoint = (step + 1) % cfg.checkpoint_every == 0 or step + 1 == total
        if checkpoint and world.size > 1:
            _check_same_weights(world.gather_json([adapter_digest(m) for m in (b.model, b.compressor) if m is not None],
                                                  f"the weights check of {what}"), step)
        if writer:
            for _, sample_id, windows in every:
                for w in windows:
                    run.log({"kind": "window", "step": step, "sample_id": sample_id, "n_windows": len(windows), **w})
            run.log({"kind": "step", "step": step, "sample_ids": [sample_id for _, sample_id, _ in every],
                     "n_windows": [len(windows) for _, _, windows in every],
                     "loss": token_mean([w for _, _, windows in every for w in windows]), "grad_norm": grad_norm,
                     "stepped": stepped, "compressor_steps": 0 if b.comp_opt is None else b.comp_opt.state["step"].item(),
                     "seconds": time.perf_counter() - began})
            if checkpoint:
                files = {}
                if b.compressor is not None:
                    blob = io.BytesIO()
                    save_compressor(blob, b.compressor, b.comp_opt)
                    files[COMPRESSOR_FILE] = blob.getvalue()
                run.checkpoint(step + 1, b.model, b.router, b.lora_opt, seed=cfg.seed, state={}, files=files,
                               keep=cfg.keep_checkpoints)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if not writer:
        return None
    if b.compressor is not None:
        with atomic_path(Path(out) / COMPRESSOR_FILE) as tmp:
            save_compressor(str(tmp), b.compressor, b.comp_opt)
    return run.finish(b.model, b.router, ADAPTER, ADAPTER_FOLDER)


def _check_same_weights(digests: list[list[str]], step: int) -> None:
    """Stop when the ranks' LoRA or compressor weights differ at a checkpoint: their updates diverged."""
    if len({tuple(d) for d in digests}) > 1:
        raise RuntimeError(f"the ranks hold different weights after DAPT step {step + 1} ({digests}): their updates "
                           f"diverged; resume from the last checkpoint")
