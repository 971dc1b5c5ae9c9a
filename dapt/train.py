"""`tbn-dapt train`: Rolling Recap DAPT over a preprocessed corpus, resumable, ending in an mlx-lm adapter.

The run directory follows tbn_train's layout (``run.json``, ``log.jsonl``, ``checkpoints/``) plus
``adapter/`` — the LoRA adapter ``tbn-train selfplay --init-adapter`` warm-starts from — and
``compressor.safetensors``. Each step is one sample in curriculum order (shortest first, every epoch,
App. 29.4); the log holds one record per window and one per step. Checkpoints carry the LoRA and
compressor weights, both Adam states and the step, and seeds derive from (seed, step), so a killed run
resumes to the same result as an uninterrupted one.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tbn_train.atomic import atomic_path
from tbn_train.checkpoint import seed_step
from tbn_train.generation import MAX_TEMPERATURE
from tbn_train.lora import DEFAULT_SCALE, PAPER_MODULES, AdapterRouter, LoRASpec, add_adapter, latter_third, set_trainable
from tbn_train.model import load_model
from tbn_train.policy import ModelDir
from tbn_train.run_dir import RunDir
from tbn_train.update import adam

from .clusters import load_tokenizer
from .compressor import COMPRESSED_SLOTS, KVCompressor, kv_geometry, load_compressor, save_compressor
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

    model: ModelDir = Field(description="local mlx-lm model directory")
    data: str = Field(description="a `tbn-dapt preprocess` output directory")
    strategies: tuple[str, ...] = Field(STRATEGIES, description="sample strategies trained on")
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1, description="stop after this many samples")
    window_tokens: int = Field(WINDOW_TOKENS, ge=1)
    window_jitter: float = Field(WINDOW_JITTER, ge=0.0, lt=1.0)
    compressor_slots: int = Field(COMPRESSED_SLOTS, ge=1)
    recap_max_tokens: int = Field(RECAP_MAX_TOKENS, ge=1)
    recap_temperature: float = Field(RECAP_TEMPERATURE, ge=0.0, le=MAX_TEMPERATURE)
    recap_gating: bool = Field(True, description="weight gradients by recap quality (§8.2.1 fn. 15)")
    layers: Literal["middle", "latter"] = Field("middle", description="LoRA on the middle (§9.1) or latter third")
    rank: int = Field(DAPT_RANK, ge=1)
    modules: tuple[str, ...] = Field(PAPER_MODULES)
    lora_scale: float = Field(DEFAULT_SCALE)
    learning_rate: float = Field(LEARNING_RATE, gt=0)
    max_grad_norm: float = Field(MAX_GRAD_NORM, gt=0)
    seed: int = 0
    checkpoint_every: int = Field(1, ge=1)
    keep_checkpoints: int = Field(KEEP_CHECKPOINTS, ge=1)


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
    return LoRASpec(layers=layers, modules=cfg.modules, attn_rank=cfg.rank, mlp_rank=cfg.rank, scale=cfg.lora_scale)


def token_mean(windows) -> float:
    """The sample's loss: window losses weighted by their trainable tokens."""
    tokens = sum(w.trainable_tokens for w in windows)
    return sum(w.loss * w.trainable_tokens for w in windows) / max(tokens, 1)


def train(cfg: DAPTConfig, out: str | Path, resume: bool = False, progress: bool = False) -> Path:
    """Run (or resume) DAPT into ``out``; return the adapter directory."""
    index = SampleIndex(cfg.data)
    steps = plan(cfg, index)
    run = RunDir(out, cfg, resume)
    model, wrapper = load_model(cfg.model)
    tokenizer = load_tokenizer(cfg.model)
    router = AdapterRouter()
    add_adapter(model, router, ADAPTER, lora_spec(cfg, len(model.layers)), seed=cfg.seed)
    set_trainable(model, router, ADAPTER)
    router.active = ADAPTER  # recaps are written with the adapter active (§8.2.1)
    compressor = KVCompressor(kv_geometry(model), cfg.compressor_slots, seed=cfg.seed)
    lora_opt = adam(cfg.learning_rate)
    comp_opt = adam(cfg.learning_rate * COMPRESSOR_LR_FACTOR)
    trainer = RollingRecap(model, tokenizer, compressor, lora_opt, comp_opt, wrapper.eos_token_ids,
                           recap_max_tokens=cfg.recap_max_tokens, recap_temperature=cfg.recap_temperature,
                           gating=cfg.recap_gating, max_grad_norm=cfg.max_grad_norm)
    ck = run.restore(model, router, lora_opt)
    start = 0
    if ck is not None:
        load_compressor(ck.path / COMPRESSOR_FILE, compressor, comp_opt)
        start = ck.step
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(steps), initial=start, desc="samples", unit="sample")
    for step in range(start, len(steps)):
        seed_step(cfg.seed, step)
        sample = tokenize(index.read(steps[step]), tokenizer)
        rng = np.random.default_rng([cfg.seed, step])
        bounds = window_bounds(len(sample.ids), cfg.window_tokens, cfg.window_jitter, rng)
        windows, grad_norm, stepped = trainer.step(sample, bounds)
        for w in windows:
            run.log({"kind": "window", "step": step, "sample_id": sample.sample_id, "n_windows": len(windows), **vars(w)})
        run.log({"kind": "step", "step": step, "sample_id": sample.sample_id, "n_windows": len(windows),
                 "loss": token_mean(windows), "grad_norm": grad_norm, "stepped": stepped,
                 "compressor_steps": comp_opt.state["step"].item()})
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == len(steps):
            blob = io.BytesIO()
            save_compressor(blob, compressor, comp_opt)
            run.checkpoint(step + 1, model, router, lora_opt, seed=cfg.seed, state={},
                           files={COMPRESSOR_FILE: blob.getvalue()}, keep=cfg.keep_checkpoints)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    with atomic_path(Path(out) / COMPRESSOR_FILE) as tmp:
        save_compressor(str(tmp), compressor, comp_opt)
    return run.finish(model, router, ADAPTER, ADAPTER_FOLDER)
