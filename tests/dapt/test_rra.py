"""The Rolling Recap trainer on the tiny model: loss masking, optimizer isolation, one step per sample,
and the accumulated gradient checked against a direct per-window computation."""
from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_map
from mlx_lm.models.cache import KVCache

from dapt.clusters import load_tokenizer
from dapt.compressor import KVCompressor, kv_geometry
from dapt.rra import RollingRecap, masked_ce
from dapt.windows import TokenizedSample, tokenize
from tbn_train.lora import AdapterRouter, LoRASpec, adapter_pairs, add_adapter, set_trainable
from tbn_train.model import load_model

TEXT = ("Client: I keep saying I'm fine, but I haven't slept properly since the move. "
        "Therapist: It sounds like 'fine' has been doing a lot of work for you lately. ") * 3


def trainer(tiny_dir, gating: bool = False, recap_max_tokens: int = 6) -> RollingRecap:
    model, wrapper = load_model(tiny_dir)
    router = AdapterRouter()
    add_adapter(model, router, "dapt", LoRASpec(attn_rank=4, mlp_rank=4), seed=1)
    pairs = list(adapter_pairs(model, router, "dapt").values())
    for key, pair in zip(mx.random.split(mx.random.key(7), len(pairs)), pairs):
        pair.lora_b = 0.02 * mx.random.normal(pair.lora_b.shape, key=key)  # non-zero B: A gets gradients too
    set_trainable(model, router, "dapt")
    router.active = "dapt"
    compressor = KVCompressor(kv_geometry(model), slots=4, seed=0)
    return RollingRecap(model, load_tokenizer(tiny_dir), compressor, optim.Adam(1e-3), optim.Adam(1e-4),
                        wrapper.eos_token_ids, recap_max_tokens=recap_max_tokens, gating=gating)


def sample(rra: RollingRecap) -> TokenizedSample:
    return tokenize({"id": "s", "text": TEXT, "trainable": [[20, 120], [150, 400]]}, rra.tokenizer)


def flat(tree) -> dict[str, mx.array]:
    return dict(tree_flatten(tree))


def direct_window_gradient(model: nn.Module, window) -> dict:
    """∇ of one window's loss written out by hand: slots in a fresh cache, log-softmax, masked mean NLL."""
    def loss():
        caches = []
        for k, v in window.slots or ():
            c = KVCache()
            c.keys, c.values, c.offset = k, v, k.shape[2]
            caches.append(c)
        logits = model(mx.array(window.tokens[None, :-1]), cache=caches or None)[0]
        logp = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        targets = window.tokens[1:]
        nll = -logp[mx.arange(len(targets)), mx.array(targets)]
        return (nll * mx.array(window.mask)).sum() / max(int(window.mask.sum()), 1)

    return nn.value_and_grad(model, loss)()[1]


def test_recap_targets_get_exactly_zero_gradient(tiny_dir):
    rra = trainer(tiny_dir)
    recap = rra.tokenizer.encode("a short recap of the last window", add_special_tokens=False).ids
    content = np.arange(40, 72, dtype=np.int32)
    window = rra.window_input(None, recap, content, np.ones(len(content), dtype=bool))
    tokens = mx.array(window.tokens)
    logits = rra.model(tokens[None, :-1])[0]
    grad = mx.grad(lambda lg: masked_ce(lg, tokens[1:], mx.array(window.mask)))(logits)
    framed = len(rra.open_ids) + len(recap) + len(rra.close_ids)
    row_norms = np.asarray(mx.abs(grad).sum(axis=-1))
    assert np.all(row_norms[: framed - 1] == 0.0)  # every target inside the framed recap: no loss at all
    assert np.all(row_norms[framed - 1:] > 0.0)  # every content target (the first one follows the frame)
    ce = nn.losses.cross_entropy(logits, tokens[1:], reduction="none")
    assert masked_ce(logits, tokens[1:], mx.array(window.mask)).item() == pytest.approx(ce[framed - 1:].mean().item(), rel=1e-6)


@pytest.mark.parametrize("gating", [False, True])
def test_accumulated_gradient_is_the_mean_of_direct_per_window_gradients(tiny_dir, gating):
    rra = trainer(tiny_dir, gating=gating)
    s = sample(rra)
    bounds = [(0, 20), (20, 45), (45, 60), (60, len(s.ids))]
    mx.random.seed(3)
    result = rra.sample_gradients(s, bounds, keep_inputs=True)
    assert len(result.inputs) == len(result.windows) == 4
    assert all(w.slots is not None for w in result.inputs[1:]) and result.inputs[0].slots is None
    expected = None
    for window, log in zip(result.inputs, result.windows):
        g = tree_map(lambda x: log.lora_weight * x, direct_window_gradient(rra.model, window))
        expected = g if expected is None else tree_map(mx.add, expected, g)
    expected = flat(tree_map(lambda x: x / len(bounds), expected))
    got = flat(result.grads)
    assert got.keys() == expected.keys() and len(got) == 2 * 7 * 3  # A and B of 7 modules on 3 middle layers
    for key in got:
        np.testing.assert_allclose(np.asarray(got[key]), np.asarray(expected[key]), rtol=2e-4, atol=1e-7, err_msg=key)
    assert any(np.abs(np.asarray(v)).max() > 0 for v in got.values())
    if not gating:
        assert all(w.lora_weight == 1.0 and w.compressor_weight == 1.0 for w in result.windows)


def test_each_optimizer_sees_only_its_own_parameters(tiny_dir):
    rra = trainer(tiny_dir)
    before_model = {k: mx.array(v) for k, v in flat(rra.model.parameters()).items()}
    before_comp = {k: mx.array(v) for k, v in flat(rra.compressor.parameters()).items()}
    s = sample(rra)
    rra.step(s, [(0, 30), (30, len(s.ids))])
    lora_keys = set(flat(rra.model.trainable_parameters()))
    assert lora_keys and all(k.endswith((".lora_a", ".lora_b")) and ".adapters.dapt." in k for k in lora_keys)
    lora_state = {k.rsplit(".", 1)[0] for k in flat(rra.lora_optimizer.state) if k not in ("step", "learning_rate")}
    comp_state = {k.rsplit(".", 1)[0] for k in flat(rra.compressor_optimizer.state) if k not in ("step", "learning_rate")}
    assert lora_state == lora_keys
    assert comp_state == set(before_comp) == {f"queries.{i}" for i in range(len(rra.model.layers))}
    after = flat(rra.model.parameters())
    changed = {k for k in after if not mx.array_equal(after[k], before_model[k]).item()}
    assert changed and changed <= lora_keys  # base weights bit-identical
    assert all(not mx.array_equal(v, before_comp[k]).item() for k, v in flat(rra.compressor.parameters()).items())


def test_one_lora_step_per_sample_whatever_the_window_count(tiny_dir):
    rra = trainer(tiny_dir)
    s = sample(rra)
    n = len(s.ids)
    plans = [[(0, n)], [(0, 40), (40, n)], [(0, 10), (10, 20), (20, 50), (50, 80), (80, n)]]
    for i, bounds in enumerate(plans, 1):
        logs, norm, stepped = rra.step(s, bounds)
        assert len(logs) == len(bounds) and norm > 0 and stepped
        assert rra.lora_optimizer.state["step"].item() == i
    assert rra.compressor_optimizer.state["step"].item() == sum(map(len, plans))  # stepped every window


def test_compressor_is_not_trained_on_the_prediction_loss(tiny_dir):
    """Masking every target out of the CE loss leaves the compressor's update unchanged."""
    updates = []
    for trainable in ([[0, len(TEXT)]], []):
        rra = trainer(tiny_dir)
        s = tokenize({"id": "s", "text": TEXT, "trainable": trainable}, rra.tokenizer)
        mx.random.seed(0)
        rra.sample_gradients(s, [(0, 30), (30, 60)])
        updates.append(flat(rra.compressor.parameters()))
    assert all(mx.array_equal(updates[0][k], updates[1][k]).item() for k in updates[0])


def test_recap_gate_weights_follow_the_quality_of_the_recap_read(tiny_dir):
    rra = trainer(tiny_dir, gating=True)
    s = sample(rra)
    mx.random.seed(5)
    logs = rra.sample_gradients(s, [(0, 20), (20, 40), (40, 60)]).windows
    gates = {"high": (1.0, 1.2), "low": (0.6, 0.5), "garbage": (0.0, 0.0)}
    assert logs[0].lora_weight == 1.0  # window 1 reads no recap
    for prev, cur in zip(logs, logs[1:]):
        assert cur.lora_weight == gates[prev.recap_quality][0]
    assert all(w.compressor_weight == gates[w.recap_quality][1] for w in logs)


def test_a_sample_whose_windows_are_all_gated_out_takes_no_step(tiny_dir):
    rra = trainer(tiny_dir, gating=True, recap_max_tokens=1)  # a one-token recap is always garbage
    s = tokenize({"id": "s", "text": TEXT, "trainable": [[200, len(TEXT)]]}, rra.tokenizer)
    bounds = [(0, 30), (30, 60), (60, len(s.ids))]
    assert not s.mask[:30].any() and s.mask[30:].any()  # window 1 (ungated) has nothing to train on
    before = {k: mx.array(v) for k, v in flat(rra.model.trainable_parameters()).items()}
    logs, norm, stepped = rra.step(s, bounds)
    assert [w.recap_quality for w in logs] == ["garbage"] * 3 and [w.lora_weight for w in logs] == [1.0, 0.0, 0.0]
    assert not stepped and norm == 0.0 and rra.lora_optimizer.state["step"].item() == 0
    assert all(mx.array_equal(v, before[k]).item() for k, v in flat(rra.model.trainable_parameters()).items())


def test_two_copies_of_a_sample_in_one_step_step_as_the_sample_alone(tiny_dir):
    """The pooled steps are means: two equal samples (same seeds) give the one sample's compressor and LoRA steps."""
    results = []
    for copies in (1, 2):
        rra = trainer(tiny_dir, gating=True)
        s = sample(rra)
        bounds = [(0, 30), (30, 60), (60, len(s.ids))]
        logs, norm, stepped = rra.group_step([s] * copies, [bounds] * copies, seeds=[(0, 0)] * copies)
        assert stepped and all(window == logs[0] for window in logs)
        results.append((logs[0], norm, flat(rra.model.trainable_parameters()), flat(rra.compressor.parameters())))
    (logs1, norm1, lora1, comp1), (logs2, norm2, lora2, comp2) = results
    assert [w.recap for w in logs1] == [w.recap for w in logs2] and norm2 == pytest.approx(norm1, rel=1e-5)
    for one, two in ((lora1, lora2), (comp1, comp2)):
        for key in one:
            np.testing.assert_allclose(np.asarray(two[key]), np.asarray(one[key]), rtol=1e-5, atol=1e-7, err_msg=key)


def test_samples_side_by_side_step_the_compressor_once_per_window_index(tiny_dir):
    rra = trainer(tiny_dir)
    s = sample(rra)
    n = len(s.ids)
    logs, _, stepped = rra.group_step([s, s], [[(0, 20), (20, 40), (40, n)], [(0, n)]], seeds=[(0, 0), (0, 1)])
    assert [len(w) for w in logs] == [3, 1] and stepped
    assert rra.compressor_optimizer.state["step"].item() == 3 and rra.lora_optimizer.state["step"].item() == 1


def test_a_step_of_one_sample_after_a_step_of_two(tiny_dir):
    """A run's last step may hold fewer samples (one takes no pooling): Adam must accept either step's gradient."""
    rra = trainer(tiny_dir)
    s = sample(rra)
    bounds = [(0, 30), (30, len(s.ids))]
    rra.group_step([s, s], [bounds, bounds], seeds=[(0, 0), (0, 1)])
    _, _, stepped = rra.group_step([s], [bounds], seeds=[(0, 2)])
    assert stepped and rra.lora_optimizer.state["step"].item() == 2
