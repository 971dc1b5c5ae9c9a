"""The RRA KV compressor (§8.2.2.1): a learned module that rolls a window's KV cache into fixed slots.

Per layer and KV head it holds ``slots`` learned queries; each slot is an attention-weighted average
of the window's keys and values (softmax of query·key). The input is the whole cache of the window
just trained on, which itself starts with the previous compressed slots, so the summary rolls forward
over windows 1..n. It is trained on a reconstruction loss, never on the prediction loss, and its
output enters the next window gradient-detached (§8.2.1 fn. 15).
"""
from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten
from mlx_lm.models.cache import KVCache, make_prompt_cache

from tbn_train.read_files import load_arrays

COMPRESSED_SLOTS = 64   # choice: history length per layer; a 2048-token window (D16) is cut 32× at the first roll
MEAN_WEIGHT = 1.0       # §8.2.1 fn. 15: MSE of sequence-averaged K and V
VARIANCE_WEIGHT = 0.5   # §8.2.1 fn. 15: MSE of per-head variance
COSINE_WEIGHT = 0.5     # §8.2.1 fn. 15: cosine similarity (directional preservation)

KV = list[tuple[mx.array, mx.array]]  # per layer: keys, values shaped (1, kv_heads, positions, head_dim)


def kv_geometry(model: nn.Module) -> list[tuple[int, int, int]]:
    """(kv_heads, key_dim, value_dim) of every layer, read from one token pushed through a fresh cache.

    Sliding-window layers (Gemma 3's rotating caches) are fine: RRA gives every layer a plain growing
    cache and mlx-lm masks those layers to their window. Raises ValueError for layers without a KV
    cache (state-space layers) and for MLA-style layers whose values are empty (the paper removes
    the compressor there, §30.8).
    """
    cache = make_prompt_cache(model)
    model(mx.array([[0]]), cache=cache)
    shapes = []
    for i, c in enumerate(cache):
        keys, values = getattr(c, "keys", None), getattr(c, "values", None)
        if not isinstance(keys, mx.array) or not isinstance(values, mx.array):
            raise ValueError(f"layer {i} uses a {type(c).__name__} without keys and values; RRA needs attention KV caches")
        if values.size == 0 or values.shape[-1] == 0:
            raise ValueError(f"layer {i} has empty values (an MLA latent cache): run RRA without the compressor (§30.8)")
        shapes.append((keys.shape[1], keys.shape[-1], values.shape[-1]))
    return shapes


def window_cache(slots: KV | None, count: int) -> list[KVCache]:
    """Fresh per-layer caches holding ``slots`` as positions 0..M-1 (empty caches for the first window)."""
    caches = [KVCache() for _ in range(count)]
    for c, (k, v) in zip(caches, slots or ()):
        c.keys, c.values, c.offset = k, v, k.shape[2]
    return caches


def cache_contents(caches: list[KVCache]) -> KV:
    """The filled part of each layer's cache."""
    return [(c.keys[..., : c.offset, :], c.values[..., : c.offset, :]) for c in caches]


class KVCompressor(nn.Module):
    """Learned attention pooling of every layer's KV cache into ``slots`` positions."""

    def __init__(self, geometry: list[tuple[int, int, int]], slots: int = COMPRESSED_SLOTS, seed: int = 0) -> None:
        super().__init__()
        if slots < 1:
            raise ValueError(f"the compressor needs at least one slot, got {slots}")
        keys = mx.random.split(mx.random.key(seed), len(geometry))
        self.queries = [mx.random.normal((heads, slots, k_dim), key=key) for (heads, k_dim, _), key in zip(geometry, keys)]

    @property
    def slots(self) -> int:
        return self.queries[0].shape[1]

    def __call__(self, kv: KV) -> KV:
        if len(kv) != len(self.queries):
            raise ValueError(f"KV for {len(kv)} layers, compressor built for {len(self.queries)}")
        out = []
        for q, (k, v) in zip(self.queries, kv):
            keys = k.astype(q.dtype)
            weights = mx.softmax((q[None] @ keys.swapaxes(-1, -2)) * q.shape[-1] ** -0.5, axis=-1)  # (1, heads, slots, positions)
            out.append(((weights @ keys).astype(k.dtype), (weights @ v.astype(q.dtype)).astype(v.dtype)))
        return out


def reconstruction_loss(compressed: KV, original: KV) -> tuple[mx.array, dict[str, mx.array]]:
    """Weighted reconstruction loss and its three parts, averaged over layers and over K and V.

    mean: MSE of the sequence means; variance: MSE of each head's per-channel variance over positions;
    cosine: 1 − cosine of each head's sequence-mean vector (§8.2.1 fn. 15).
    """
    parts = {"mean": [], "variance": [], "cosine": []}
    for pair_c, pair_o in zip(compressed, original):
        for c, o in zip(pair_c, pair_o):
            c, o = c.astype(mx.float32), mx.stop_gradient(o).astype(mx.float32)
            mc, mo = c.mean(axis=2), o.mean(axis=2)
            parts["mean"].append(mx.mean((mc - mo) ** 2))
            parts["variance"].append(mx.mean((c.var(axis=2) - o.var(axis=2)) ** 2))
            cos = (mc * mo).sum(-1) / (mx.linalg.norm(mc, axis=-1) * mx.linalg.norm(mo, axis=-1) + 1e-8)
            parts["cosine"].append(mx.mean(1.0 - cos))
    means = {name: mx.mean(mx.stack(values)) for name, values in parts.items()}
    total = MEAN_WEIGHT * means["mean"] + VARIANCE_WEIGHT * means["variance"] + COSINE_WEIGHT * means["cosine"]
    return total, means


def save_compressor(file, compressor: KVCompressor, optimizer) -> None:
    """Compressor weights and its Adam state as one safetensors file (a path or a binary file object)."""
    arrays = {f"params.{k}": v for k, v in tree_flatten(compressor.parameters())}
    arrays |= {f"optimizer.{k}": v for k, v in tree_flatten(optimizer.state)}
    mx.eval(arrays)
    mx.save_safetensors(file, dict(sorted(arrays.items())))  # fixed order: equal state, equal bytes


def load_compressor(path, compressor: KVCompressor, optimizer) -> None:
    """Restore what :func:`save_compressor` wrote; shapes must match the live compressor."""
    arrays = load_arrays(path, "compressor weights")
    params = [(k.removeprefix("params."), v) for k, v in arrays.items() if k.startswith("params.")]
    live = dict(tree_flatten(compressor.parameters()))
    if {k: v.shape for k, v in params} != {k: v.shape for k, v in live.items()}:
        raise ValueError(f"{path}: compressor shapes {sorted((k, v.shape) for k, v in params)[:2]}… do not match "
                         f"this model's {sorted((k, v.shape) for k, v in live.items())[:2]}…")
    compressor.update(tree_unflatten(params), strict=True)
    optimizer.state = tree_unflatten([(k.removeprefix("optimizer."), v) for k, v in arrays.items() if k.startswith("optimizer.")])
    mx.eval(compressor.parameters(), optimizer.state)
