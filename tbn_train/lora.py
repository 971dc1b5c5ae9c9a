"""Several named LoRA adapter sets on one frozen base model, switched in O(1) (§9.3.12).

Approach B of ../shared/spec/mlx-notes.md §2: every adapted ``nn.Linear`` is wrapped in a
:class:`MultiLoRALinear` holding one ``(lora_a, lora_b)`` pair per adapter name, and all wrappers
share one :class:`AdapterRouter`. Setting ``router.active = "judge"`` (or ``None`` for the bare
base model, the zero-memory reference policy) is a single attribute assignment: no weights move.
The forward pass is the same as mlx-lm's ``LoRALinear``: ``y = W x + scale · (x A) B`` with
``A: (in, r)``, ``B: (r, out)`` and a raw multiplier ``scale`` (not alpha/r).

Defaults follow the paper: the middle third of the layers (§9.3.11: layers 21–41 of 62), seven
modules q, k, v, o, gate, up, down (§9.3.11), rank 32 on attention and 16 on MLP (§9.3.12).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import mlx.core as mx
import mlx.nn as nn
from pydantic import BaseModel, ConfigDict, Field, field_validator

# Short module names → paths inside one transformer block (llama, gemma3_text, and most
# mlx-lm decoder architectures use these names).
ATTENTION_MODULES = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj"}
MLP_MODULES = {"gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}
MODULE_PATHS = {**ATTENTION_MODULES, **MLP_MODULES}
PATH_TO_MODULE = {path: short for short, path in MODULE_PATHS.items()}

PAPER_MODULES = ("q", "k", "v", "o", "gate", "up", "down")  # §9.3.11: seven modules per layer
PAPER_ATTENTION_RANK = 32  # §9.3.12
PAPER_MLP_RANK = 16  # §9.3.12
# The paper gives no scale; mlx-lm's default raw multiplier (spec env-trainer.md §16.3).
DEFAULT_SCALE = 20.0


def middle_third(num_layers: int) -> list[int]:
    """0-based layer indices of the middle third: start = ceil(L/3), count = ceil(L/3).

    For L = 62 this is 21–41, the paper's range (§9.3.11); for L = 8 it is 3–5.
    """
    if num_layers < 1:
        raise ValueError(f"a model needs at least one layer, got {num_layers}")
    third = math.ceil(num_layers / 3)
    return list(range(third, min(2 * third, num_layers)))


def latter_third(num_layers: int) -> list[int]:
    """0-based indices of the last ceil(L/3) layers, the alternative targeting the paper compares (§9.1)."""
    if num_layers < 1:
        raise ValueError(f"a model needs at least one layer, got {num_layers}")
    return list(range(num_layers - math.ceil(num_layers / 3), num_layers))


class LoRASpec(BaseModel):
    """Where one adapter set lives and how big it is. ``layers=None`` means the middle third."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    layers: tuple[int, ...] | None = Field(None, description="0-based layer indices; None = middle third")
    modules: tuple[str, ...] = Field(PAPER_MODULES, description="short module names (q k v o gate up down)")
    attn_rank: int = Field(PAPER_ATTENTION_RANK, ge=1, description="rank of q/k/v/o adapters")
    mlp_rank: int = Field(PAPER_MLP_RANK, ge=1, description="rank of gate/up/down adapters")
    scale: float = Field(DEFAULT_SCALE, description="raw LoRA multiplier (mlx-lm convention)")

    @field_validator("modules")
    @classmethod
    def _known_modules(cls, modules: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in modules if m not in MODULE_PATHS]
        if unknown or not modules:
            raise ValueError(f"unknown LoRA modules {unknown}; choose from {list(MODULE_PATHS)}")
        return tuple(dict.fromkeys(modules))

    def resolve_layers(self, num_layers: int) -> list[int]:
        """The concrete sorted layer list for a model with ``num_layers`` blocks."""
        if self.layers is None:
            return middle_third(num_layers)
        bad = [i for i in self.layers if not 0 <= i < num_layers]
        if bad or not self.layers:
            raise ValueError(f"LoRA layers {bad or '[]'} out of range for a {num_layers}-layer model")
        return sorted(set(self.layers))

    def rank(self, module: str) -> int:
        return self.attn_rank if module in ATTENTION_MODULES else self.mlp_rank


class AdapterRouter:
    """Shared switch: which adapter every :class:`MultiLoRALinear` applies (None = base)."""

    def __init__(self) -> None:
        self.specs: dict[str, LoRASpec] = {}
        self.trainable: str | None = None  # the one adapter whose factors receive gradients
        self._active: str | None = None

    @property
    def active(self) -> str | None:
        return self._active

    @active.setter
    def active(self, name: str | None) -> None:
        if name is not None and name not in self.specs:
            raise KeyError(f"unknown adapter {name!r}; known adapters: {sorted(self.specs)} (or None for the base)")
        self._active = name

    @contextmanager
    def use(self, name: str | None) -> Iterator[None]:
        """Temporarily activate ``name``; the previous adapter is restored on exit."""
        previous = self._active
        self.active = name
        try:
            yield
        finally:
            self._active = previous


class LoRAPair(nn.Module):
    """One adapter's low-rank factors on one linear layer."""

    def __init__(self, lora_a: mx.array, lora_b: mx.array) -> None:
        super().__init__()
        self.lora_a = lora_a
        self.lora_b = lora_b


def linear_dims(linear: nn.Module) -> tuple[int, int]:
    """(input_dims, output_dims) of a plain or quantized linear layer."""
    out_dims, in_dims = linear.weight.shape
    if isinstance(linear, nn.QuantizedLinear):
        in_dims = in_dims * 32 // linear.bits
    return in_dims, out_dims


class MultiLoRALinear(nn.Module):
    """A frozen linear layer plus named LoRA pairs; applies the router's active one."""

    def __init__(self, linear: nn.Module, router: AdapterRouter) -> None:
        super().__init__()
        self.linear = linear
        self.adapters: dict[str, LoRAPair] = {}
        self.router = router  # plain object: stored as an attribute, not a parameter

    def __call__(self, x: mx.array) -> mx.array:
        y = self.linear(x)
        pair = self.adapters.get(self.router.active)
        if pair is None:
            return y
        z = (x @ pair.lora_a) @ pair.lora_b
        return y + (self.router.specs[self.router.active].scale * z).astype(x.dtype)


def _resolve(block: nn.Module, rel_path: str) -> tuple[nn.Module, str, nn.Module]:
    parent_path, attr = rel_path.rsplit(".", 1)
    parent = block
    for part in parent_path.split("."):
        parent = getattr(parent, part)
    return parent, attr, getattr(parent, attr)


def base_linear(model: nn.Module, layer: int, module: str) -> nn.Module:
    """The frozen base linear layer at ``layer``/``module`` (unwrapped if adapted)."""
    _, _, mod = _resolve(model.layers[layer], MODULE_PATHS[module])
    return mod.linear if isinstance(mod, MultiLoRALinear) else mod


def init_pair(model: nn.Module, layer: int, module: str, rank: int, key: mx.array) -> tuple[mx.array, mx.array]:
    """Fresh factors as mlx-lm initialises them: A ~ U(±1/√in), B = 0 (so the adapter starts as a no-op)."""
    in_dims, out_dims = linear_dims(base_linear(model, layer, module))
    bound = 1.0 / math.sqrt(in_dims)
    return mx.random.uniform(-bound, bound, (in_dims, rank), key=key), mx.zeros((rank, out_dims))


def attach_adapter(
    model: nn.Module,
    router: AdapterRouter,
    name: str,
    spec: LoRASpec,
    pairs: dict[tuple[int, str], tuple[mx.array, mx.array]],
) -> None:
    """Install given factors as adapter ``name`` (keys: (layer, module)); wraps layers as needed."""
    if not name or not isinstance(name, str):
        raise ValueError(f"adapter name must be a non-empty string, got {name!r}")
    if name in router.specs:
        raise ValueError(f"adapter {name!r} already exists on this model")
    expected = {(i, m) for i in spec.resolve_layers(len(model.layers)) for m in spec.modules}
    if set(pairs) != expected:
        raise ValueError(f"adapter {name!r}: factors given for {sorted(set(pairs) ^ expected)[:4]}… do not match its spec")
    for (layer, module), (a, b) in sorted(pairs.items()):
        in_dims, out_dims = linear_dims(base_linear(model, layer, module))
        rank = spec.rank(module)
        if a.shape != (in_dims, rank) or b.shape != (rank, out_dims):
            raise ValueError(
                f"adapter {name!r} layer {layer} {module}: got A{tuple(a.shape)} B{tuple(b.shape)}, "
                f"expected A{(in_dims, rank)} B{(rank, out_dims)}"
            )
        parent, attr, mod = _resolve(model.layers[layer], MODULE_PATHS[module])
        if not isinstance(mod, MultiLoRALinear):
            mod = MultiLoRALinear(mod, router)
            setattr(parent, attr, mod)
        mod.adapters[name] = LoRAPair(a, b)
    router.specs[name] = spec
    _refreeze(model, router)


def add_adapter(model: nn.Module, router: AdapterRouter, name: str, spec: LoRASpec | None = None, seed: int = 0) -> None:
    """Add a fresh adapter set ``name`` (B = 0, so it starts equal to the base model)."""
    spec = spec or LoRASpec()
    targets = [(i, m) for i in spec.resolve_layers(len(model.layers)) for m in spec.modules]
    keys = mx.random.split(mx.random.key(seed), len(targets))
    pairs = {t: init_pair(model, *t, spec.rank(t[1]), keys[j]) for j, t in enumerate(targets)}
    attach_adapter(model, router, name, spec, pairs)


def lora_layers(model: nn.Module) -> Iterator[tuple[str, MultiLoRALinear]]:
    """(module path, wrapper) for every adapted linear layer in the model."""
    for path, mod in model.named_modules():
        if isinstance(mod, MultiLoRALinear):
            yield path, mod


def adapter_pairs(model: nn.Module, router: AdapterRouter, name: str) -> dict[tuple[int, str], LoRAPair]:
    """The live factors of adapter ``name`` keyed by (layer, module)."""
    if name not in router.specs:
        raise KeyError(f"unknown adapter {name!r}; known adapters: {sorted(router.specs)}")
    spec = router.specs[name]
    out = {}
    for layer in spec.resolve_layers(len(model.layers)):
        for module in spec.modules:
            _, _, mod = _resolve(model.layers[layer], MODULE_PATHS[module])
            out[(layer, module)] = mod.adapters[name]
    return out


def set_trainable(model: nn.Module, router: AdapterRouter, name: str | None) -> None:
    """Freeze everything except adapter ``name``'s factors (None: freeze all).

    The choice is remembered on the router, so adapters added later stay frozen.
    """
    if name is not None and name not in router.specs:
        raise KeyError(f"unknown adapter {name!r}; known adapters: {sorted(router.specs)}")
    router.trainable = name
    _refreeze(model, router)


def _refreeze(model: nn.Module, router: AdapterRouter) -> None:
    model.freeze()
    if router.trainable is not None:
        for _, mod in lora_layers(model):
            if router.trainable in mod.adapters:
                mod.adapters[router.trainable].unfreeze()
