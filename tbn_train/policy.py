"""The shared model with its adapter slots, as self-play and DPO start it (§9.3.11, §9.3.12).

Slots on one base model:

* ``therapist`` — trainable; the start adapter fitted to the therapist layout (rank 32 attention,
  16 MLP; a rank-32 MLP file is reduced by truncated SVD);
* ``client_judge`` — frozen; the start adapter exactly as saved (the paper's Icarus 9.1,
  §9.3.12), or, with no start adapter, a fresh one with zero B, i.e. the base model;
* ``reference`` — only when fitting changed the start (different layers, ranks or scale): the
  fitted start, so π_ref equals the therapist's starting point exactly. Otherwise π_ref is
  ``client_judge`` itself and costs no memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import mlx.nn as nn
from pydantic import AfterValidator

from tbn_train.adapter_io import CONFIG_FILE as ADAPTER_CONFIG, load_adapter
from tbn_train.config import TrainConfig
from tbn_train.lora import AdapterRouter, LoRASpec, add_adapter, set_trainable
from tbn_train.model import check_model_name, load_model
from tbn_train.update import PolicyUpdater

FROZEN_ADAPTER = "client_judge"
REFERENCE_ADAPTER = "reference"


@dataclass
class Policy:
    """Model, tokenizer, router and the updater of the trainable therapist adapter."""

    model: nn.Module
    tokenizer: object
    router: AdapterRouter
    updater: PolicyUpdater

    @property
    def therapist(self) -> str:
        return self.updater.config.therapist_adapter


def existing_model_dir(path: str) -> str:
    """Validator: ``path`` is a local mlx-lm model directory or a Hub id (checked before a run starts)."""
    try:
        return check_model_name(path)
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None


def existing_adapter_dir(path: str | None) -> str | None:
    """Validator: ``path`` is None or an mlx-lm adapter directory."""
    if path is not None and not (Path(path) / ADAPTER_CONFIG).is_file():
        raise ValueError(f"adapter directory {path!r} does not exist or has no {ADAPTER_CONFIG}")
    return path


ModelDir = Annotated[str, AfterValidator(existing_model_dir)]  # a local directory or a Hugging Face repository id
AdapterDir = Annotated[Optional[str], AfterValidator(existing_adapter_dir)]


def _same_layout(a: LoRASpec, b: LoRASpec, model: nn.Module) -> bool:
    sites_a, sites_b = a.sites(model), b.sites(model)
    return (sites_a.keys() == sites_b.keys() and a.scale == b.scale
            and all(a.rank(s.roles) == b.rank(s.roles) for s in sites_a.values()))


def build_policy(model_dir: str | Path, config: TrainConfig, init_adapter: str | Path | None = None) -> Policy:
    """Load the base model and install the therapist, frozen client/judge and reference slots."""
    if config.reference_adapter is not None:
        raise ValueError(
            f"reference_adapter={config.reference_adapter!r}: self-play and DPO always use the frozen starting "
            "adapter as the reference; leave it unset"
        )
    model, tokenizer = load_model(model_dir)
    router = AdapterRouter()
    spec, name = config.lora_spec(), config.therapist_adapter
    if name in (FROZEN_ADAPTER, REFERENCE_ADAPTER):
        raise ValueError(f"therapist_adapter may not be named {name!r}: that slot is reserved")
    reference = FROZEN_ADAPTER
    if init_adapter is None:
        add_adapter(model, router, name, spec, seed=config.seed)
        add_adapter(model, router, FROZEN_ADAPTER, spec, seed=config.seed)
    else:
        load_adapter(model, router, name, init_adapter, spec=spec, seed=config.seed)
        frozen = load_adapter(model, router, FROZEN_ADAPTER, init_adapter)
        if not _same_layout(frozen, spec, model):
            load_adapter(model, router, REFERENCE_ADAPTER, init_adapter, spec=spec, seed=config.seed)
            reference = REFERENCE_ADAPTER
    set_trainable(model, router, name)
    updater = PolicyUpdater(model, router, config.model_copy(update={"reference_adapter": reference}))
    return Policy(model, tokenizer, router, updater)
