"""Several named LoRA adapter sets on one frozen base model, switched in O(1) (§9.3.12).

Every adapted layer is wrapped in a :class:`MultiLoRALinear` (an ``nn.Linear`` /
``nn.QuantizedLinear``) or a :class:`MultiLoRASwitchLinear` (mixture-of-experts weights held in
mlx-lm's ``SwitchLinear`` / ``QuantizedSwitchLinear``: one ``(A, B)`` per expert per adapter
name, as mlx-lm's ``LoRASwitchLinear``). Each holds one factor pair per adapter name and all share
one :class:`AdapterRouter`; ``router.active = "judge"`` (or ``None`` for the bare base model, the
zero-memory reference policy) is a single attribute assignment: no weights move. The forward pass
is mlx-lm's: ``y = W x + scale · (x A) B`` with a raw multiplier ``scale`` (not alpha/r); the
factors have mlx-lm's shapes, so an adapter exports to its format unchanged.

Where the adapters go is :mod:`tbn_train.placement`'s job (the paper's seven roles mapped onto
whatever projections a family has). Defaults follow the paper: the middle third of the layers
(§9.3.11: layers 21–41 of 62), seven roles q, k, v, o, gate, up, down (§9.3.11), rank 32 on
attention and 16 on MLP (§9.3.12).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import mlx.core as mx
from mlx import nn
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tbn_train.placement import ATTENTION_ROLES, PAPER_MODULES, Site, placement

PAPER_ATTENTION_RANK = 32  # §9.3.12
PAPER_MLP_RANK = 16  # §9.3.12
# The paper gives no scale; mlx-lm's default raw multiplier.
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
    """Where one adapter set lives and how big it is. ``layers=None`` means the middle third.

    ``modules`` are the paper's roles (q k v o gate up down), placed on whatever projections each
    block has; ``keys`` instead names module paths inside a block by hand (mlx-lm's ``keys``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    layers: tuple[int, ...] | None = Field(None, description="0-based layer indices; None = middle third")
    modules: tuple[str, ...] = Field(PAPER_MODULES, description="roles: q k v o gate up down")
    keys: tuple[str, ...] | None = Field(None, description="module paths inside a block, instead of roles")
    attn_rank: int = Field(PAPER_ATTENTION_RANK, ge=1, description="rank of q/k/v/o adapters")
    mlp_rank: int = Field(PAPER_MLP_RANK, ge=1, description="rank of gate/up/down adapters")
    scale: float = Field(DEFAULT_SCALE, description="raw LoRA multiplier (mlx-lm convention)")

    @field_validator("modules")
    @classmethod
    def _known_modules(cls, modules: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in modules if m not in PAPER_MODULES]
        if unknown or not modules:
            raise ValueError(f"unknown LoRA modules {unknown}; choose from {list(PAPER_MODULES)} (or name paths with --lora-keys)")
        return tuple(dict.fromkeys(modules))

    @field_validator("keys")
    @classmethod
    def _some_keys(cls, keys: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if keys is not None and (not keys or any(not k for k in keys)):
            raise ValueError("--lora-keys needs at least one module path such as self_attn.q_proj")
        return None if keys is None else tuple(dict.fromkeys(keys))

    def resolve_layers(self, num_layers: int) -> list[int]:
        """The concrete sorted layer list for a model with ``num_layers`` blocks."""
        if self.layers is None:
            return middle_third(num_layers)
        bad = [i for i in self.layers if not 0 <= i < num_layers]
        if bad or not self.layers:
            raise ValueError(f"LoRA layers {bad or '[]'} out of range for a {num_layers}-layer model")
        return sorted(set(self.layers))

    def rank(self, roles: str | tuple[str, ...]) -> int:
        """Attention rank for attention roles (q, k, v, o), MLP rank otherwise."""
        roles = (roles,) if isinstance(roles, str) else roles
        return self.attn_rank if roles and set(roles) <= ATTENTION_ROLES else self.mlp_rank

    def sites(self, model: nn.Module) -> dict[tuple[int, str], Site]:
        """Every ``(layer, path)`` this spec adapts on ``model`` (see :func:`tbn_train.placement.placement`)."""
        return placement(model, self.resolve_layers(len(model.layers)), self.modules, self.keys)


class AdapterRouter:
    """Shared switch: which adapter every wrapped layer applies (None = base)."""

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
    """One adapter's low-rank factors on one layer, in mlx-lm's layout for that layer type."""

    def __init__(self, lora_a: mx.array, lora_b: mx.array) -> None:
        super().__init__()
        self.lora_a = lora_a
        self.lora_b = lora_b


class MultiLoRA(nn.Module):
    """A frozen base layer plus named LoRA pairs; applies the router's active one."""

    def __init__(self, linear: nn.Module, router: AdapterRouter) -> None:
        super().__init__()
        self.linear = linear
        self.adapters: dict[str, LoRAPair] = {}
        self.router = router  # plain object: stored as an attribute, not a parameter

    def _active_pair(self) -> tuple[LoRAPair | None, float]:
        name = self.router.active
        pair = self.adapters.get(name)
        return pair, (0.0 if pair is None else self.router.specs[name].scale)


class MultiLoRALinear(MultiLoRA):
    """Over ``nn.Linear`` / ``nn.QuantizedLinear``: ``A: (in, r)``, ``B: (r, out)`` (mlx-lm's ``LoRALinear``)."""

    def __call__(self, x: mx.array) -> mx.array:
        y = self.linear(x)
        pair, scale = self._active_pair()
        if pair is None:
            return y
        z = (x @ pair.lora_a) @ pair.lora_b
        return y + (scale * z).astype(x.dtype)


class MultiLoRASwitchLinear(MultiLoRA):
    """Over mlx-lm's (quantized) ``SwitchLinear``: per expert ``A: (E, r, in)``, ``B: (E, out, r)`` (``LoRASwitchLinear``)."""

    def __call__(self, x: mx.array, indices: mx.array, sorted_indices: bool = False) -> mx.array:
        y = self.linear(x, indices, sorted_indices=sorted_indices)
        pair, scale = self._active_pair()
        if pair is None:
            return y
        z = mx.gather_mm(x, pair.lora_a.swapaxes(-1, -2), rhs_indices=indices, sorted_indices=sorted_indices)
        z = mx.gather_mm(z, pair.lora_b.swapaxes(-1, -2), rhs_indices=indices, sorted_indices=sorted_indices)
        return y + (scale * z).astype(x.dtype)


def to_plain(site: Site, a: mx.array, b: mx.array) -> tuple[mx.array, mx.array]:
    """Factors in the ``A: (..., in, r)``, ``B: (..., r, out)`` orientation (an involution: also maps back)."""
    return (a.swapaxes(-1, -2), b.swapaxes(-1, -2)) if site.experts else (a, b)


def init_pair(site: Site, rank: int, key: mx.array) -> tuple[mx.array, mx.array]:
    """Fresh factors as mlx-lm initialises them: A ~ U(±1/√in), B = 0 (so the adapter starts as a no-op)."""
    bound = 1.0 / math.sqrt(site.in_dims)
    lead = (site.experts,) if site.experts else ()
    a = mx.random.uniform(-bound, bound, (*lead, site.in_dims, rank), key=key)
    return to_plain(site, a, mx.zeros((*lead, rank, site.out_dims)))


def pair_shapes(site: Site, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shapes of A and B of rank ``rank`` on ``site``, in its layer type's layout."""
    if site.experts:
        return (site.experts, rank, site.in_dims), (site.experts, site.out_dims, rank)
    return (site.in_dims, rank), (rank, site.out_dims)


def _parent(model: nn.Module, layer: int, path: str) -> tuple[nn.Module, str]:
    parent = model.layers[layer]
    *parents, attr = path.split(".")
    for part in parents:
        parent = getattr(parent, part)
    return parent, attr


def attach_adapter(
    model: nn.Module,
    router: AdapterRouter,
    name: str,
    spec: LoRASpec,
    pairs: dict[tuple[int, str], tuple[mx.array, mx.array]],
) -> None:
    """Install given factors as adapter ``name`` (keys: (layer, path)); wraps layers as needed."""
    if not name or not isinstance(name, str):
        raise ValueError(f"adapter name must be a non-empty string, got {name!r}")
    if name in router.specs:
        raise ValueError(f"adapter {name!r} already exists on this model")
    sites = spec.sites(model)
    if set(pairs) != set(sites):
        raise ValueError(f"adapter {name!r}: factors given for {sorted(set(pairs) ^ set(sites))[:4]}… do not match its spec")
    for key, (a, b) in sorted(pairs.items()):
        site = sites[key]
        want = pair_shapes(site, spec.rank(site.roles))
        if (tuple(a.shape), tuple(b.shape)) != want:
            raise ValueError(f"adapter {name!r} layer {key[0]} {key[1]}: got A{tuple(a.shape)} B{tuple(b.shape)}, "
                             f"expected A{want[0]} B{want[1]}")
        parent, attr = _parent(model, *key)
        mod = getattr(parent, attr)
        if not isinstance(mod, MultiLoRA):
            mod = (MultiLoRASwitchLinear if site.experts else MultiLoRALinear)(mod, router)
            setattr(parent, attr, mod)
        mod.adapters[name] = LoRAPair(a, b)
    router.specs[name] = spec
    _refreeze(model, router)


def add_adapter(model: nn.Module, router: AdapterRouter, name: str, spec: LoRASpec | None = None, seed: int = 0) -> None:
    """Add a fresh adapter set ``name`` (B = 0, so it starts equal to the base model)."""
    spec = spec or LoRASpec()
    sites = spec.sites(model)
    keys = mx.random.split(mx.random.key(seed), len(sites))
    pairs = {k: init_pair(site, spec.rank(site.roles), keys[j]) for j, (k, site) in enumerate(sorted(sites.items()))}
    attach_adapter(model, router, name, spec, pairs)


def lora_layers(model: nn.Module) -> Iterator[tuple[str, MultiLoRA]]:
    """(module path, wrapper) for every adapted layer in the model."""
    for path, mod in model.named_modules():
        if isinstance(mod, MultiLoRA):
            yield path, mod


def adapter_pairs(model: nn.Module, router: AdapterRouter, name: str) -> dict[tuple[int, str], LoRAPair]:
    """The live factors of adapter ``name`` keyed by (layer, path inside the block)."""
    if name not in router.specs:
        raise KeyError(f"unknown adapter {name!r}; known adapters: {sorted(router.specs)}")
    out = {}
    for layer, path in router.specs[name].sites(model):
        parent, attr = _parent(model, layer, path)
        out[(layer, path)] = getattr(parent, attr).adapters[name]
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
