"""Multi-adapter LoRA (§9.3.11/§9.3.12) and lossless mlx-lm export."""

from __future__ import annotations

import json

import tbn_train  # noqa: F401  (preload OpenBLAS before mlx)
import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten

from tbn_train.adapter_io import fit_rank, load_adapter, save_adapter
from tbn_train.lora import AdapterRouter, LoRASpec, add_adapter, middle_third, set_trainable
from tbn_train.model import load_model

ATOL = 1e-5


def test_middle_third_matches_paper():
    assert middle_third(62) == list(range(21, 42))  # §9.3.11: layers 21–41 of 62
    assert middle_third(8) == [3, 4, 5]
    assert middle_third(24) == list(range(8, 16))


def test_switching_and_trainable_set(setup, prompt_of):
    model, tok, router = setup
    x = mx.array([prompt_of(tok, "I feel tired.")])
    outs = {}
    for name in (None, "therapist", "client", "judge"):
        router.active = name
        outs[name] = model(x)
    assert all(not mx.allclose(outs[a], outs[b]).item() for a in outs for b in outs if a != b)
    with router.use("judge"):
        assert mx.array_equal(model(x), outs["judge"]).item()
    assert router.active == "judge"  # use() restores the previous one
    names = [k for k, _ in tree_flatten(model.trainable_parameters())]
    assert len(names) == 3 * 7 * 2 and all(".adapters.therapist.lora_" in k for k in names)


def test_fresh_adapter_equals_base_and_bad_names(llama_dir, prompt_of):
    model, tok = load_model(llama_dir)
    router = AdapterRouter()
    x = mx.array([prompt_of(tok, "hello")])
    base = model(x)
    add_adapter(model, router, "t")
    router.active = "t"
    assert mx.array_equal(model(x), base).item()
    with pytest.raises(KeyError, match="unknown adapter 'nope'"):
        router.active = "nope"
    with pytest.raises(KeyError, match="unknown adapter"):
        set_trainable(model, router, "nope")
    with pytest.raises(ValueError, match="already exists"):
        add_adapter(model, router, "t")
    with pytest.raises(ValueError, match="out of range"):
        add_adapter(model, router, "u", LoRASpec(layers=(99,)))
    with pytest.raises(ValueError, match="unknown LoRA modules"):
        LoRASpec(modules=("q", "qkv"))


@pytest.mark.parametrize("arch", ["llama", "gemma3_text"])
def test_saved_adapter_loads_in_plain_mlx_lm_with_same_logits(tiny_dirs, tmp_path, arch, make_setup, prompt_of):
    model, tok, router = make_setup(tiny_dirs[arch])
    x = mx.array([prompt_of(tok, "My sister said I should talk to someone.")])
    for name in ("therapist", "client"):
        router.active = name
        ours = model(x)
        out = save_adapter(model, router, name, tmp_path / name)
        cfg = json.loads((out / "adapter_config.json").read_text())
        first = min(router.specs[name].resolve_layers(len(model.layers)))
        assert cfg["num_layers"] == len(model.layers) - first
        plain, _ = load_model(tiny_dirs[arch], adapter_path=out)
        assert mx.allclose(plain(x), ours, atol=ATOL).item()
        # and back into a named slot of our model: exact (padding trimmed, layers restored)
        load_adapter(model, router, name + "_copy", out)
        copy, orig = router.specs[name + "_copy"], router.specs[name]
        n = len(model.layers)
        assert copy.resolve_layers(n) == orig.resolve_layers(n) and (copy.attn_rank, copy.mlp_rank) == (orig.attn_rank, orig.mlp_rank)
        router.active = name + "_copy"
        assert mx.allclose(model(x), ours, atol=ATOL).item()


def test_svd_rank_reduction_is_exact_for_low_rank_products():
    rng = np.random.default_rng(0)
    a32 = mx.array(rng.normal(size=(64, 32)).astype(np.float32))
    b32 = mx.array(rng.normal(size=(32, 48)).astype(np.float32))
    a32 = mx.concatenate([a32[:, :16], a32[:, :16] * 0.5], axis=1)  # product has rank ≤ 16 but no zero padding
    a16, b16 = fit_rank(a32, b32, 16, fresh=None)
    assert a16.shape == (64, 16) and b16.shape == (16, 48)
    assert mx.allclose(a16 @ b16, a32 @ b32, atol=1e-3, rtol=1e-4).item()
    # full-rank product: truncation keeps the best rank-16 approximation (Eckart–Young)
    full = mx.array(rng.normal(size=(64, 32)).astype(np.float32))
    a, b = fit_rank(full, b32, 16, fresh=None)
    s = np.linalg.svd(np.array(full @ b32), compute_uv=False)
    assert np.isclose(np.linalg.norm(np.array(full @ b32 - a @ b)), np.sqrt((s[16:] ** 2).sum()), rtol=1e-3)


def test_rank32_checkpoint_seeds_rank16_slot(setup, tmp_path, prompt_of):
    model, tok, router = setup
    save_adapter(model, router, "therapist", tmp_path / "t")
    spec = load_adapter(model, router, "small", tmp_path / "t", LoRASpec(attn_rank=16, mlp_rank=16))
    assert spec.attn_rank == 16
    x = mx.array([prompt_of(tok, "hi")])
    router.active = "therapist"
    full = model(x)
    router.active = "small"
    assert not mx.allclose(model(x), full, atol=ATOL).item()  # attention lost rank 16 → 32 info


def test_padding_stays_zero_after_adam_steps(setup, llama_dir, tmp_path, prompt_of):
    model, tok, router = setup
    out = save_adapter(model, router, "therapist", tmp_path / "t")
    plain, _ = load_model(llama_dir, adapter_path=out)
    plain.freeze()
    plain.unfreeze(keys=["lora_a", "lora_b"], strict=False)
    opt = optim.Adam(learning_rate=1e-2)
    ids = mx.array([prompt_of(tok, "I freeze when we argue.")])

    def loss_fn(m):
        return m(ids).astype(mx.float32).mean() ** 2

    for _ in range(3):
        _, grads = nn.value_and_grad(plain, loss_fn)(plain)
        opt.update(plain, grads)
    mx.eval(plain.parameters())
    mlp = plain.model.layers[3].mlp.up_proj
    attn = plain.model.layers[3].self_attn.q_proj
    assert mx.any(attn.lora_b != 0).item()
    assert not mx.any(mlp.lora_a[:, 16:] != 0).item() and not mx.any(mlp.lora_b[16:] != 0).item()
    assert mx.any(mlp.lora_b[:16] != 0).item()
