"""RRA's parts: token windows and loss masks, the KV compressor and its loss, the recap quality gate."""
from __future__ import annotations

import io

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlx.utils import tree_flatten
from mlx_lm.models.cache import make_prompt_cache

from dapt.clusters import load_tokenizer
from dapt.compressor import KVCompressor, kv_geometry, load_compressor, reconstruction_loss, save_compressor, window_cache
from dapt.recap import GATES, Quality, assess
from dapt.rra import RollingRecap
from dapt.windows import TokenizedSample, loss_mask, window_bounds
from tbn_train.lora import AdapterRouter, LoRASpec, add_adapter, set_trainable
from tbn_train.model import load_model
from tbn_train.tiny_model import TINY_SLIDING_WINDOW


@given(st.integers(0, 5000), st.integers(1, 700), st.floats(0.0, 0.9), st.integers(0, 2**32 - 1))
def test_windows_tile_the_sample_with_sizes_in_range(n, size, jitter, seed):
    bounds = window_bounds(n, size, jitter, np.random.default_rng(seed))
    assert [lo for lo, _ in bounds] == ([0] if n else []) + [hi for _, hi in bounds[:-1]]  # contiguous, no overlap
    assert (bounds[-1][1] if bounds else 0) == n
    widths = [hi - lo for lo, hi in bounds]
    assert all(w >= 1 for w in widths)
    assert all(size * (1 - jitter) - 1 <= w <= size * (1 + jitter) + 1 for w in widths[:-1])
    if jitter == 0.0:
        assert all(w == size for w in widths[:-1])


@given(st.lists(st.integers(0, 4), min_size=1, max_size=60), st.lists(st.integers(0, 6), max_size=12))
def test_loss_mask_marks_exactly_tokens_overlapping_a_span(token_lengths, cuts):
    ends = np.cumsum(token_lengths)
    offsets = np.stack([ends - np.asarray(token_lengths), ends], axis=1)
    points = np.cumsum(cuts).tolist()
    spans = [[a, b] for a, b in zip(points[::2], points[1::2]) if b > a]
    expected = [e > s and any(s < hi and e > lo for lo, hi in spans) for s, e in offsets]
    assert loss_mask(offsets, spans).tolist() == expected


def test_window_bounds_reject_bad_settings():
    with pytest.raises(ValueError, match="window size"):
        window_bounds(10, 0)
    with pytest.raises(ValueError, match="jitter"):
        window_bounds(10, 4, 1.5)
    with pytest.raises(ValueError, match="seeded rng"):
        window_bounds(10, 4, 0.2)


def random_kv(seed: int, layers: int = 3, positions: int = 40) -> list:
    keys = mx.random.split(mx.random.key(seed), 2 * layers)
    return [(2.0 * mx.random.normal((1, 2, positions, 8), key=keys[2 * i]) + 1.0,
             mx.random.normal((1, 2, positions, 8), key=keys[2 * i + 1])) for i in range(layers)]


def test_reconstruction_loss_is_zero_for_a_perfect_copy_and_positive_otherwise():
    kv = random_kv(0)
    loss, parts = reconstruction_loss(kv, kv)
    assert loss.item() == pytest.approx(0.0, abs=1e-6) and set(parts) == {"mean", "variance", "cosine"}
    squashed = [(k * 0.1, v * 0.1) for k, v in kv]
    loss, parts = reconstruction_loss(squashed, kv)
    assert parts["mean"].item() > 0 and parts["variance"].item() > 0 and parts["cosine"].item() == pytest.approx(0, abs=1e-5)
    expected = 1.0 * parts["mean"] + 0.5 * parts["variance"] + 0.5 * parts["cosine"]  # §8.2.1 fn. 15 weights
    assert loss.item() == pytest.approx(expected.item())


def test_compressor_learns_to_reconstruct_the_cache_statistics():
    kv = random_kv(1)
    comp = KVCompressor([(2, 8, 8)] * 3, slots=6, seed=0)
    out = comp(kv)
    assert [k.shape for k, _ in out] == [(1, 2, 6, 8)] * 3
    opt = optim.Adam(1e-2)
    loss_and_grad = nn.value_and_grad(comp, lambda: reconstruction_loss(comp(kv), kv)[0])
    first = loss_and_grad()[0].item()
    for _ in range(60):
        loss, grads = loss_and_grad()
        opt.update(comp, grads)
        mx.eval(comp.parameters(), opt.state)
    assert loss.item() < 0.7 * first


def test_compressor_save_load_round_trips_and_rejects_a_mismatch(tmp_path):
    comp, opt = KVCompressor([(2, 8, 8)] * 2, slots=4, seed=1), optim.Adam(1e-3)
    opt.update(comp, nn.value_and_grad(comp, lambda: reconstruction_loss(comp(random_kv(2, 2)), random_kv(2, 2))[0])()[1])
    blob = io.BytesIO()
    save_compressor(blob, comp, opt)
    (tmp_path / "c.safetensors").write_bytes(blob.getvalue())
    other, other_opt = KVCompressor([(2, 8, 8)] * 2, slots=4, seed=9), optim.Adam(1e-3)
    load_compressor(tmp_path / "c.safetensors", other, other_opt)
    for (k, a), (_, b) in zip(tree_flatten(comp.parameters()), tree_flatten(other.parameters())):
        assert mx.array_equal(a, b).item(), k
    assert other_opt.state["step"].item() == 1
    wrong, wrong_opt = KVCompressor([(2, 8, 8)] * 2, slots=5, seed=3), optim.Adam(1e-3)
    before = [mx.array(v) for _, v in tree_flatten(wrong.parameters())]
    with pytest.raises(ValueError, match="do not match"):
        load_compressor(tmp_path / "c.safetensors", wrong, wrong_opt)
    assert all(mx.array_equal(a, b).item() for a, (_, b) in zip(before, tree_flatten(wrong.parameters())))


def test_kv_geometry_reads_the_model(tiny_dir):
    model, _ = load_model(tiny_dir)
    assert kv_geometry(model) == [(2, 32, 32)] * 8  # tiny llama: 2 KV heads of 128/4 dims, 8 layers


def test_rra_runs_on_sliding_window_layers_masked_to_their_window(tiny_dirs):
    """Gemma 3's local layers get plain growing caches; mlx-lm still masks them to the sliding window."""
    gemma_dir = tiny_dirs["gemma3_text"]
    model, wrapper = load_model(gemma_dir)
    assert {type(c).__name__ for c in make_prompt_cache(model)} == {"KVCache", "RotatingKVCache"}
    geometry = kv_geometry(model)
    assert len(geometry) == len(model.layers)
    tokens = mx.array([[(7 * i) % 300 + 10 for i in range(TINY_SLIDING_WINDOW * 2)]])
    plain = window_cache(None, len(model.layers))
    assert mx.allclose(model(tokens, cache=plain), model(tokens), atol=1e-4).item()  # same function as mlx-lm's own caches
    router = AdapterRouter()
    add_adapter(model, router, "dapt", LoRASpec(attn_rank=4, mlp_rank=4), seed=0)
    set_trainable(model, router, "dapt")
    router.active = "dapt"
    rra = RollingRecap(model, load_tokenizer(gemma_dir), KVCompressor(geometry, slots=4), optim.Adam(1e-3),
                       optim.Adam(1e-4), wrapper.eos_token_ids, recap_max_tokens=4, gating=False)
    ids = np.arange(10, 10 + 3 * TINY_SLIDING_WINDOW, dtype=np.int32)
    sample = TokenizedSample("g", ids, np.ones(len(ids), dtype=bool))
    logs, norm, stepped = rra.step(sample, window_bounds(len(ids), TINY_SLIDING_WINDOW + 16))
    assert stepped and norm > 0 and len(logs) == 3 and all(np.isfinite(w.loss) for w in logs)


WINDOW = "She said the move felt like losing the last place where her mother's voice still lived."


@pytest.mark.parametrize("recap, quality", [
    ("", Quality.GARBAGE),
    ("ok", Quality.GARBAGE),
    ("\u201c\u201d" * 30, Quality.GARBAGE),                      # App. 31.3.0.8: repeated quotation marks
    ("the the the the the the the the the the", Quality.GARBAGE),  # a loop
    ("losing her mother's voice after the move", Quality.HIGH),
    ("quarterly revenue projections exceeded expectations", Quality.LOW),
])
def test_recap_quality(recap, quality):
    assert assess(recap, WINDOW) is quality


def test_gates_are_the_papers():
    assert GATES == {Quality.HIGH: (1.0, 1.2), Quality.LOW: (0.6, 0.5), Quality.GARBAGE: (0.0, 0.0)}  # §8.2.1 fn. 15
