"""Trainer settings: one pydantic model, loadable from TOML / JSON / YAML, overridable by CLI flags.

Every default is either a number the paper gives (cited) or a documented choice (see the
constants in the module that uses it, and the table in ``tbn_train/README.md``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tbn_train.generation import CORRECTION_TEMPERATURE, GRPO_TEMPERATURES, MAX_TEMPERATURE, RLAIF_TEMPERATURE
from tbn_train.lora import DEFAULT_SCALE, PAPER_ATTENTION_RANK, PAPER_MLP_RANK, PAPER_MODULES, LoRASpec
from tbn_train.losses import DPO_BETA, GRPO_EPS, GRPO_KL_COEF, RLAIF_BETA

LEARNING_RATE = 1e-6  # §9.3.12: Adam, lr 1e-6, LoRA parameters only
MAX_GRAD_NORM = 1.0  # §9.3.13
RLAIF_WEIGHT = 0.4  # §9.3.13
GRPO_WEIGHT = 0.6  # §9.3.13
MAX_NEW_TOKENS = 512  # room for <thinking> + <say>
KEEP_CHECKPOINTS = 3  # enough to survive one corrupt/partial save plus a look back; bounds disk use


class TrainConfig(BaseModel):
    """All trainer settings. Field descriptions double as ``--help`` text."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    seed: int = Field(0, description="seed for MLX sampling and adapter init")
    therapist_adapter: str = Field("therapist", description="name of the trainable adapter slot")
    reference_adapter: str | None = Field(None, description="frozen adapter used as π_ref for KL/DPO (None = base)")
    lora_layers: list[int] | None = Field(None, description="adapted layers (0-based); default the middle third (§9.3.11)")
    lora_modules: list[str] = Field(list(PAPER_MODULES), description="adapted roles q k v o gate up down (§9.3.11)")
    lora_keys: list[str] | None = Field(None, description="module paths inside a block to adapt instead of the roles, "
                                        "e.g. self_attn.qkv_proj mlp.down_proj (mlx-lm's keys)")
    attn_rank: int = Field(PAPER_ATTENTION_RANK, ge=1, description="LoRA rank on q/k/v/o (§9.3.12)")
    mlp_rank: int = Field(PAPER_MLP_RANK, ge=1, description="LoRA rank on gate/up/down (§9.3.12)")
    lora_scale: float = Field(DEFAULT_SCALE, description="LoRA raw multiplier (mlx-lm default)")
    learning_rate: float = Field(LEARNING_RATE, gt=0, description="Adam learning rate (§9.3.12)")
    max_grad_norm: float = Field(MAX_GRAD_NORM, gt=0, description="global-norm clip per step (§9.3.13)")
    rlaif_weight: float = Field(RLAIF_WEIGHT, description="RLAIF gradient weight (§9.3.13)")
    grpo_weight: float = Field(GRPO_WEIGHT, description="GRPO gradient weight (§9.3.13)")
    rlaif_beta: float = Field(RLAIF_BETA, gt=0, description="β of the RLAIF margin loss (§9.3.9)")
    logp_reduction: Literal["mean", "sum"] = Field("mean", description="per-sequence log-prob: token mean or sum")
    grpo_eps: float = Field(GRPO_EPS, gt=0, description="ε in the GRPO z-score (§9.3.10)")
    kl_coef: float = Field(GRPO_KL_COEF, ge=0, description="λ_KL of the GRPO loss (§9.3.10)")
    dpo_beta: float = Field(DPO_BETA, gt=0, description="β of the DPO loss")
    rlaif_temperature: float = Field(RLAIF_TEMPERATURE, ge=0, le=MAX_TEMPERATURE, description="first-draft temperature (§9.3.9)")
    correction_temperature: float = Field(CORRECTION_TEMPERATURE, ge=0, le=MAX_TEMPERATURE, description="re-generation temperature (§9.3.9)")
    grpo_temperatures: list[float] = Field(list(GRPO_TEMPERATURES), description="one GRPO candidate per temperature (§9.3.10)")
    max_new_tokens: int = Field(MAX_NEW_TOKENS, ge=1, description="generation length cap")
    keep_checkpoints: int = Field(KEEP_CHECKPOINTS, ge=1, description="checkpoints kept on disk")

    @field_validator("grpo_temperatures")
    @classmethod
    def _capped(cls, temps: list[float]) -> list[float]:
        if len(temps) < 2 or any(not 0 <= t <= MAX_TEMPERATURE for t in temps):
            raise ValueError(f"need ≥ 2 GRPO temperatures in [0, {MAX_TEMPERATURE}] (cap from §9.3.10), got {temps}")
        return temps

    def lora_spec(self) -> LoRASpec:
        """The therapist adapter's LoRA layout."""
        return LoRASpec(
            layers=None if self.lora_layers is None else tuple(self.lora_layers),
            modules=tuple(self.lora_modules),
            keys=None if self.lora_keys is None else tuple(self.lora_keys),
            attn_rank=self.attn_rank,
            mlp_rank=self.mlp_rank,
            scale=self.lora_scale,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        """Load from ``.toml``, ``.json`` or ``.yaml``/``.yml`` (YAML needs pyyaml)."""
        return cls(**read_mapping(path))


def read_mapping(path: str | Path) -> dict[str, Any]:
    """Parse a TOML/JSON/YAML file into a dict (a ``[train]`` table/section is unwrapped)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        data = tomllib.loads(text)
    elif suffix == ".json":
        data = json.loads(text)
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:
            raise ImportError(f"reading {path} needs pyyaml (pip install pyyaml)") from exc
        data = yaml.safe_load(text) or {}
    else:
        raise ValueError(f"unsupported config format {suffix!r} for {path}; use .toml, .json or .yaml")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at top level")
    return data.get("train", data)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config FILE`` and one ``--field-name`` flag per TrainConfig field."""
    parser.add_argument("--config", type=Path, help="TOML/JSON/YAML file with trainer settings (flags override it)")
    group = parser.add_argument_group("trainer settings")
    for name, info in TrainConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = f"{info.description} (default: {info.default})"
        if name in ("lora_layers", "lora_modules", "lora_keys", "grpo_temperatures"):
            elem = {"lora_layers": int, "lora_modules": str, "lora_keys": str, "grpo_temperatures": float}[name]
            group.add_argument(flag, dest=name, nargs="+", type=elem, default=None, help=help_text)
        elif name == "reference_adapter":
            group.add_argument(flag, dest=name, default=None, help=help_text + "; 'none' for the base")
        else:
            group.add_argument(flag, dest=name, type=type(info.default), default=None, help=help_text)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults ← ``--config`` file ← explicit flags."""
    values = read_mapping(args.config) if getattr(args, "config", None) else {}
    for name in TrainConfig.model_fields:
        flag_value = getattr(args, name, None)
        if flag_value is not None:
            values[name] = None if name == "reference_adapter" and flag_value.lower() == "none" else flag_value
    return TrainConfig(**values)
