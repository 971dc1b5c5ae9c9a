"""Save and load adapters in mlx-lm's format (``adapters.safetensors`` + ``adapter_config.json``).

mlx-lm 0.32 applies LoRA to the *last* ``num_layers`` blocks with one rank and one scale
(``mlx_lm/tuner/utils.py``). A middle-layer, mixed-rank adapter still exports losslessly:

* cover every block from the first adapted one to the last;
* zero-pad rank-16 factors to the largest rank (zero columns of A / rows of B add exactly 0);
* give blocks past the adapted range zero factors.

So ``mlx_lm.load(base, adapter_path=dir)`` computes the same function as our in-memory model.
The exact layers and ranks are kept under the extra key ``tbn_adapter`` (mlx-lm ignores it) so
loading back into a :class:`~tbn_train.lora.MultiLoRALinear` slot trims the padding exactly.

Loading into a slot of smaller rank than the file (e.g. a rank-32 DAPT checkpoint seeding a
rank-16 MLP slot, spec env-trainer.md §16.3) uses the truncated SVD of the product A·B.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn

from tbn_train.atomic import atomic_path, write_json
from tbn_train.read_files import load_arrays, load_json
from tbn_train.lora import (
    MODULE_PATHS,
    PATH_TO_MODULE,
    AdapterRouter,
    LoRASpec,
    adapter_pairs,
    attach_adapter,
    base_linear,
    init_pair,
    linear_dims,
)

WEIGHTS_FILE = "adapters.safetensors"
CONFIG_FILE = "adapter_config.json"
_KEY = re.compile(r"^(?:.*\.)?layers\.(\d+)\.(.+)\.lora_([ab])$")


def save_adapter(model: nn.Module, router: AdapterRouter, name: str, out_dir: str | Path) -> Path:
    """Write adapter ``name`` as an mlx-lm adapter directory; each file is replaced atomically."""
    spec = router.specs.get(name)
    if spec is None:
        raise KeyError(f"unknown adapter {name!r}; known adapters: {sorted(router.specs)}")
    pairs = adapter_pairs(model, router, name)
    num_blocks = len(model.layers)
    layers = spec.resolve_layers(num_blocks)
    rank = max(spec.rank(m) for m in spec.modules)
    prefix = _layers_prefix(model)
    weights: dict[str, mx.array] = {}
    for layer in range(layers[0], num_blocks):
        for module in spec.modules:
            in_dims, out_dims = linear_dims(base_linear(model, layer, module))
            pair = pairs.get((layer, module))
            a = mx.zeros((in_dims, rank)) if pair is None else _pad_cols(pair.lora_a, rank)
            b = mx.zeros((rank, out_dims)) if pair is None else _pad_cols(pair.lora_b.T, rank).T
            key = f"{prefix}{layer}.{MODULE_PATHS[module]}"
            weights[f"{key}.lora_a"], weights[f"{key}.lora_b"] = a, b
    config = {
        "fine_tune_type": "lora",
        "num_layers": num_blocks - layers[0],
        "lora_parameters": {
            "rank": rank,
            "scale": spec.scale,
            "dropout": 0.0,
            "keys": [MODULE_PATHS[m] for m in spec.modules],
        },
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
    """Read an mlx-lm adapter directory as ``(spec, {(layer, module): (A, B)})`` fitted to ``spec``.

    ``spec=None`` restores the saved layers/ranks (``tbn_adapter``), or, for a plain mlx-lm
    adapter, uses every block and module it contains at its rank. With an explicit ``spec`` the
    file is fitted to it: zero padding is trimmed exactly, a larger non-zero rank is reduced by
    truncated SVD, a smaller rank is padded (A with fresh init from ``seed``, B with zeros, so
    the function is unchanged), a different scale is folded into B, and file blocks outside
    ``spec`` are dropped (with a warning if they were non-zero).
    """
    adapter_dir = Path(adapter_dir)
    cfg_path, w_path = adapter_dir / CONFIG_FILE, adapter_dir / WEIGHTS_FILE
    if not cfg_path.is_file() or not w_path.is_file():
        raise FileNotFoundError(f"{adapter_dir} is not an mlx-lm adapter directory ({CONFIG_FILE} + {WEIGHTS_FILE})")
    config = load_json(cfg_path, "adapter config")
    if config.get("fine_tune_type", "lora") != "lora":
        raise ValueError(f"{adapter_dir}: only LoRA adapters can be loaded, not {config['fine_tune_type']!r}")
    file_scale = float(config["lora_parameters"]["scale"])
    factors = _read_factors(load_arrays(w_path, "adapter weights"), adapter_dir)
    if spec is None:
        saved = config.get("tbn_adapter")
        if saved is not None:
            spec = LoRASpec(**{k: v for k, v in saved.items() if k != "name"})
        else:
            rank = int(config["lora_parameters"]["rank"])
            spec = LoRASpec(
                layers=tuple(sorted({layer for layer, _ in factors})),
                modules=tuple(m for m in MODULE_PATHS if any(mod == m for _, mod in factors)),
                attn_rank=rank,
                mlp_rank=rank,
                scale=file_scale,
            )
    targets = [(i, m) for i in spec.resolve_layers(len(model.layers)) for m in spec.modules]
    missing = [t for t in targets if t not in factors]
    if missing:
        raise ValueError(f"{adapter_dir} has no factors for (layer, module) {missing[:4]} required by the slot spec")
    dropped = [t for t in factors if t not in set(targets) and mx.any(factors[t][1] != 0).item()]
    if dropped:
        warnings.warn(f"{adapter_dir}: non-zero factors for {dropped[:4]}… lie outside the slot and are dropped", stacklevel=2)
    keys = mx.random.split(mx.random.key(seed), len(targets))
    pairs = {}
    for j, (layer, module) in enumerate(targets):
        a, b = factors[(layer, module)]
        b = b * (file_scale / spec.scale) if file_scale != spec.scale else b
        pairs[(layer, module)] = fit_rank(a, b, spec.rank(module), lambda r: init_pair(model, layer, module, r, keys[j]))
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
    """Factors of rank ``rank`` for the product ``a @ b``.

    Trims exactly when the extra components are zero padding; otherwise keeps the top singular
    directions (truncated SVD, split √S to both sides). Pads up with ``fresh(extra)``'s A columns
    and zero B rows.
    """
    r = a.shape[1]
    if r == rank:
        return a, b
    if r < rank:
        fresh_a, fresh_b = fresh(rank - r)
        return mx.concatenate([a, fresh_a], axis=1), mx.concatenate([b, fresh_b], axis=0)
    if not (mx.any(a[:, rank:] != 0).item() and mx.any(b[rank:] != 0).item()):
        return a[:, :rank], b[:rank]
    u, s, vt = mx.linalg.svd(a.astype(mx.float32) @ b.astype(mx.float32), stream=mx.cpu)
    root = mx.sqrt(s[:rank])
    return (u[:, :rank] * root).astype(a.dtype), (root[:, None] * vt[:rank]).astype(b.dtype)


def _read_factors(weights: dict[str, mx.array], where: Path) -> dict[tuple[int, str], tuple[mx.array, mx.array]]:
    parts: dict[tuple[int, str], dict[str, mx.array]] = {}
    for key, value in weights.items():
        match = _KEY.match(key)
        if match is None or match.group(2) not in PATH_TO_MODULE:
            raise ValueError(f"{where}: unsupported adapter tensor {key!r} (expected layers.N.<{'|'.join(PATH_TO_MODULE)}>.lora_a/b)")
        parts.setdefault((int(match.group(1)), PATH_TO_MODULE[match.group(2)]), {})[match.group(3)] = value
    incomplete = [k for k, v in parts.items() if set(v) != {"a", "b"}]
    if incomplete:
        raise ValueError(f"{where}: lora_a/lora_b missing for {incomplete[:4]}")
    return {k: (v["a"], v["b"]) for k, v in parts.items()}


def _pad_cols(x: mx.array, cols: int) -> mx.array:
    extra = cols - x.shape[1]
    return x if extra == 0 else mx.concatenate([x, mx.zeros((x.shape[0], extra), dtype=x.dtype)], axis=1)


def _layers_prefix(model: nn.Module) -> str:
    """Path prefix of the transformer blocks, e.g. ``model.layers.`` for llama and gemma3_text."""
    first = model.layers[0]
    for path, mod in model.named_modules():
        if mod is first:
            return path[: -len("0")]
    raise ValueError("cannot locate model.layers in the module tree")
