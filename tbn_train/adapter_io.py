"""Save and load adapters in mlx-lm's format (``adapters.safetensors`` + ``adapter_config.json``).

mlx-lm 0.32 applies LoRA to the *last* ``num_layers`` blocks with one rank and one scale
(``mlx_lm/tuner/utils.py``). A middle-layer, mixed-rank adapter still exports losslessly:

* cover every block from the first adapted one to the last;
* zero-pad rank-16 factors to the largest rank (zero columns of A / rows of B add exactly 0);
* list every adapted module path as a ``key`` and give each block in that range factors for
  every listed path it has: zeros where the adapter does not reach (past its layers, or a dense
  block's ``mlp.gate_proj`` next to an MoE block's ``mlp.switch_mlp.gate_proj``).

Factors keep mlx-lm's shapes: ``(in, r)``/``(r, out)`` on linears, ``(E, r, in)``/``(E, out, r)``
per expert on switch layers (``LoRASwitchLinear``).

So ``mlx_lm.load(base, adapter_path=dir)`` computes the same function as our in-memory model.
The exact layers and ranks are kept under the extra key ``tbn_adapter`` (mlx-lm ignores it) so
loading back into a :class:`~tbn_train.lora.MultiLoRA` slot trims the padding exactly.

Loading into a slot of smaller rank than the file (e.g. a rank-32 DAPT checkpoint seeding a
rank-16 MLP slot) uses the truncated SVD of the product A·B.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import mlx.core as mx
from mlx import nn

from tbn_train.atomic import atomic_path, write_json
from tbn_train.read_files import load_arrays, load_json
from tbn_train.lora import (
    AdapterRouter,
    LoRASpec,
    adapter_pairs,
    attach_adapter,
    init_pair,
    pair_shapes,
    to_plain,
)
from tbn_train.placement import block_layers, placement

WEIGHTS_FILE = "adapters.safetensors"
CONFIG_FILE = "adapter_config.json"


def save_adapter(model: nn.Module, router: AdapterRouter, name: str, out_dir: str | Path) -> Path:
    """Write adapter ``name`` as an mlx-lm adapter directory; each file is replaced atomically."""
    spec = router.specs.get(name)
    if spec is None:
        raise KeyError(f"unknown adapter {name!r}; known adapters: {sorted(router.specs)}")
    pairs = adapter_pairs(model, router, name)
    sites = spec.sites(model)
    num_blocks = len(model.layers)
    layers = spec.resolve_layers(num_blocks)
    keys = sorted({path for _, path in sites})
    rank = max(spec.rank(site.roles) for site in sites.values())
    prefix = _layers_prefix(model)
    weights: dict[str, mx.array] = {}
    for layer in range(layers[0], num_blocks):
        # mlx-lm adapts every listed key present in each of its last num_layers blocks: give each one factors
        here = block_layers(model.layers[layer])
        for (_, path), site in placement(model, [layer], (), tuple(k for k in keys if k in here)).items():
            pair = pairs.get((layer, path))
            native = [mx.zeros(shape) for shape in pair_shapes(site, rank)] if pair is None else [pair.lora_a, pair.lora_b]
            a, b = to_plain(site, *native)
            a, b = to_plain(site, _pad(a, rank, -1), _pad(b, rank, -2))
            weights[f"{prefix}{layer}.{path}.lora_a"], weights[f"{prefix}{layer}.{path}.lora_b"] = a, b
    config = {
        "fine_tune_type": "lora",
        "num_layers": num_blocks - layers[0],
        "lora_parameters": {"rank": rank, "scale": spec.scale, "dropout": 0.0, "keys": keys},
        "tbn_adapter": {"name": name, **spec.model_dump(mode="json"), "layers": layers},
    }
    out = Path(out_dir)
    mx.eval(weights)
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        mx.save_safetensors(str(tmp), weights, metadata={"format": "mlx"})
    write_json(out / CONFIG_FILE, config)
    return out


def read_adapter(
    model: nn.Module, adapter_dir: str | Path, spec: LoRASpec | None = None, seed: int = 0
) -> tuple[LoRASpec, dict[tuple[int, str], tuple[mx.array, mx.array]]]:
    """Read an mlx-lm adapter directory as ``(spec, {(layer, path): (A, B)})`` fitted to ``spec``.

    ``spec=None`` restores the saved layers/ranks (``tbn_adapter``), or, for a plain mlx-lm
    adapter, uses every block and module path it contains at its rank. With an explicit ``spec``
    the file is fitted to it: zero padding is trimmed exactly, a larger non-zero rank is reduced by
    truncated SVD (per expert on switch layers), a smaller rank is padded (A with fresh init from
    ``seed``, B with zeros, so the function is unchanged), a different scale is folded into B, and
    file blocks outside ``spec`` are dropped (with a warning if they were non-zero).
    """
    adapter_dir = Path(adapter_dir)
    cfg_path, w_path = adapter_dir / CONFIG_FILE, adapter_dir / WEIGHTS_FILE
    if not cfg_path.is_file() or not w_path.is_file():
        raise FileNotFoundError(f"{adapter_dir} is not an mlx-lm adapter directory ({CONFIG_FILE} + {WEIGHTS_FILE})")
    config = load_json(cfg_path, "adapter config")
    if config.get("fine_tune_type", "lora") != "lora":
        raise ValueError(f"{adapter_dir}: only LoRA adapters can be loaded, not {config['fine_tune_type']!r}")
    file_scale = float(config["lora_parameters"]["scale"])
    factors = _read_factors(load_arrays(w_path, "adapter weights"), adapter_dir, _layers_prefix(model))
    if spec is None:
        saved = config.get("tbn_adapter")
        if saved is not None:
            spec = LoRASpec(**{k: v for k, v in saved.items() if k != "name"})
        else:
            rank = int(config["lora_parameters"]["rank"])
            spec = LoRASpec(layers=tuple(sorted({layer for layer, _ in factors})), keys=tuple(sorted({p for _, p in factors})),
                            attn_rank=rank, mlp_rank=rank, scale=file_scale)
    sites = spec.sites(model)
    missing = [t for t in sites if t not in factors]
    if missing:
        raise ValueError(f"{adapter_dir} has no factors for (layer, path) {missing[:4]} required by the slot spec")
    dropped = [t for t in factors if t not in sites and mx.any(factors[t][1] != 0).item()]
    if dropped:
        warnings.warn(f"{adapter_dir}: non-zero factors for {dropped[:4]}… lie outside the slot and are dropped", stacklevel=2)
    keys = mx.random.split(mx.random.key(seed), len(sites))
    pairs = {}
    for j, (key, site) in enumerate(sorted(sites.items())):
        a, b = to_plain(site, *factors[key])
        b = b * (file_scale / spec.scale) if file_scale != spec.scale else b
        a, b = fit_rank(a, b, spec.rank(site.roles), lambda r, s=site, k=keys[j]: to_plain(s, *init_pair(s, r, k)))
        pairs[key] = to_plain(site, a, b)
    return spec, pairs


def load_adapter(
    model: nn.Module, router: AdapterRouter, name: str, adapter_dir: str | Path, spec: LoRASpec | None = None, seed: int = 0
) -> LoRASpec:
    """Load an mlx-lm adapter directory into the new slot ``name`` (see :func:`read_adapter`)."""
    spec, pairs = read_adapter(model, adapter_dir, spec, seed)
    attach_adapter(model, router, name, spec, pairs)
    return spec


def restore_adapter(model: nn.Module, router: AdapterRouter, name: str, adapter_dir: str | Path) -> None:
    """Overwrite the factors of the existing slot ``name`` from a directory saved by :func:`save_adapter`."""
    live = adapter_pairs(model, router, name)
    _, pairs = read_adapter(model, adapter_dir, router.specs[name])
    for key, (a, b) in pairs.items():
        live[key].lora_a, live[key].lora_b = a, b


def fit_rank(a: mx.array, b: mx.array, rank: int, fresh) -> tuple[mx.array, mx.array]:
    """Factors of rank ``rank`` for the product ``a @ b`` (``A: (..., in, r)``, ``B: (..., r, out)``).

    Trims exactly when the extra components are zero padding; otherwise keeps the top singular
    directions (truncated SVD of each product in the batch, split √S to both sides). Pads up with
    ``fresh(extra)``'s A columns and zero B rows.
    """
    r = a.shape[-1]
    if r == rank:
        return a, b
    if r < rank:
        fresh_a, fresh_b = fresh(rank - r)
        return mx.concatenate([a, fresh_a], axis=-1), mx.concatenate([b, fresh_b], axis=-2)
    if not (mx.any(a[..., rank:] != 0).item() and mx.any(b[..., rank:, :] != 0).item()):
        return a[..., :rank], b[..., :rank, :]
    u, s, vt = mx.linalg.svd(a.astype(mx.float32) @ b.astype(mx.float32), stream=mx.cpu)
    root = mx.sqrt(s[..., :rank])
    return (u[..., :rank] * root[..., None, :]).astype(a.dtype), (root[..., :, None] * vt[..., :rank, :]).astype(b.dtype)


def _read_factors(weights: dict[str, mx.array], where: Path, prefix: str) -> dict[tuple[int, str], tuple[mx.array, mx.array]]:
    """Factors by (block, path); keys are ``…<blocks>.N.<path>.lora_a/b`` (``<blocks>``: ``layers``, gpt2's ``h``, …)."""
    blocks = prefix.rstrip(".").rsplit(".", 1)[-1]
    pattern = re.compile(rf"^(?:.*\.)?{re.escape(blocks)}\.(\d+)\.(.+)\.lora_([ab])$")
    parts: dict[tuple[int, str], dict[str, mx.array]] = {}
    for key, value in weights.items():
        match = pattern.match(key)
        if match is None:
            raise ValueError(f"{where}: unsupported adapter tensor {key!r} (expected {blocks}.N.<path>.lora_a/b)")
        parts.setdefault((int(match.group(1)), match.group(2)), {})[match.group(3)] = value
    incomplete = [k for k, v in parts.items() if set(v) != {"a", "b"}]
    if incomplete:
        raise ValueError(f"{where}: lora_a/lora_b missing for {incomplete[:4]}")
    return {k: (v["a"], v["b"]) for k, v in parts.items()}


def _pad(x: mx.array, rank: int, axis: int) -> mx.array:
    """Zero-pad the rank axis of a plain-oriented factor up to ``rank``."""
    extra = rank - x.shape[axis]
    if extra == 0:
        return x
    shape = list(x.shape)
    shape[axis] = extra
    return mx.concatenate([x, mx.zeros(shape, dtype=x.dtype)], axis=axis)



def _layers_prefix(model: nn.Module) -> str:
    """Path prefix of the transformer blocks, e.g. ``model.layers.`` for llama and gemma3_text."""
    first = model.layers[0]
    for path, mod in model.named_modules():
        if mod is first:
            return path[: -len("0")]
    raise ValueError("cannot locate model.layers in the module tree")
