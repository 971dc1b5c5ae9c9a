"""RLAIF / GRPO / DPO steps: what changes, loss values, determinism, bad input (§9.3.9–§9.3.13)."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from tbn_train.checkpoint import seed_step
from tbn_train.config import TrainConfig
from tbn_train.generation import generate, generate_candidates
from tbn_train.logprobs import sequence_logprobs
from tbn_train.update import PolicyUpdater

FAST = TrainConfig(learning_rate=1e-3, max_new_tokens=8)  # big lr so one step visibly moves a tiny model


def _snapshot(model):
    params = dict(tree_flatten(model.parameters()))
    mx.eval(params)
    return params


def _turn(model, tok, router, prompt_of, config=FAST, seed=0):
    """One RLAIF step, then K candidates from the updated policy, then one GRPO step."""
    seed_step(seed, 0)
    prompt = prompt_of(tok, "I keep replaying the conversation all night.")
    with router.use("therapist"):
        original = generate(model, tok, prompt, temperature=0.7, max_tokens=config.max_new_tokens).tokens
        corrected = generate(model, tok, prompt, temperature=0.5, max_tokens=config.max_new_tokens).tokens
    up = PolicyUpdater(model, router, config)
    r1 = up.rlaif(prompt, original, corrected, modifier=0.5)
    with router.use("therapist"):
        cands = [c.tokens for c in generate_candidates(model, tok, prompt, config.grpo_temperatures, max_tokens=config.max_new_tokens)]
    r2 = up.grpo(prompt, cands, scores=[float(len(set(c))) + 0.1 * i for i, c in enumerate(cands)])
    return up, r1, r2


def test_steps_change_only_therapist_lora(setup, prompt_of):
    model, tok, router = setup
    before = _snapshot(model)
    _, r1, r2 = _turn(model, tok, router, prompt_of)
    assert not r1.skipped and not r2.skipped
    after = _snapshot(model)
    changed = {k for k in before if not mx.array_equal(before[k], after[k]).item()}
    therapist = {k for k in before if ".adapters.therapist." in k}
    assert changed and changed <= therapist
    assert any(k.endswith("lora_b") for k in changed)


def test_rlaif_and_grpo_losses_equal_hand_computation(setup, prompt_of):
    model, tok, router = setup
    prompt = prompt_of(tok, "I feel invisible at work.")
    orig, corr = [12, 40, 7], [33, 90, 101, 7]
    router.active = "therapist"
    lp = sequence_logprobs(model, prompt, [corr, orig]).mean
    up = PolicyUpdater(model, router, TrainConfig(learning_rate=1e-3))
    r = up.rlaif(prompt, orig, corr)
    d = (lp[0] - lp[1]).item()
    assert r.loss == pytest.approx(np.log1p(np.exp(-2.0 * d)), rel=1e-5)

    cands, scores = [[5, 6, 7], [8, 9], [10, 11, 12, 7], [13]], [6.0, 7.0, 8.0, 9.5]
    with router.use("therapist"):
        lp = np.array(sequence_logprobs(model, prompt, cands).mean)  # after the RLAIF step, as GRPO sees it
    with router.use(None):
        ref = np.array(sequence_logprobs(model, prompt, cands).mean)  # reference = base (config default)
    s = np.array(scores)
    adv = (s - s.mean()) / (s.std() + 1e-8)
    r = up.grpo(prompt, cands, scores)
    assert r.loss == pytest.approx(np.mean(-adv * lp + 0.04 * (lp - ref)), rel=1e-5, abs=1e-6)
    assert r.metrics["kl"] == pytest.approx(np.mean(lp - ref), rel=1e-5, abs=1e-6)  # TRL's k1 at the pre-step policy


def test_equal_scores_skip_update_and_are_counted(setup, prompt_of):
    model, tok, router = setup
    before = _snapshot(model)
    up = PolicyUpdater(model, router, FAST)
    r = up.grpo(prompt_of(tok, "hi"), [[5, 6], [7, 8], [9], [10]], [7.0] * 4)
    assert r.skipped and up.counters.grpo_skipped_ties == 1 and up.counters.grpo_steps == 0
    after = _snapshot(model)
    assert all(mx.array_equal(before[k], after[k]).item() for k in before)


def test_two_seeded_runs_are_bit_identical(llama_dir, make_setup, prompt_of):
    results = []
    for _ in range(2):
        model, tok, router = make_setup(llama_dir)
        _, r1, r2 = _turn(model, tok, router, prompt_of, seed=7)
        results.append((r1.loss, r2.loss, _snapshot(model)))
    assert results[0][:2] == results[1][:2]
    assert all(mx.array_equal(v, results[1][2][k]).item() for k, v in results[0][2].items())


def test_dpo_step_moves_margin(setup, prompt_of):
    model, tok, router = setup
    prompt = prompt_of(tok, "Do you think I'm broken?")
    chosen, rejected = [40, 41, 42, 7], [50, 51, 7]
    up = PolicyUpdater(model, router, TrainConfig(learning_rate=1e-2))
    first = up.dpo([prompt], [chosen], [rejected])
    later = [up.dpo([prompt], [chosen], [rejected]) for _ in range(3)]
    assert later[-1].loss < first.loss and up.counters.dpo_steps == 4
    with router.use(None):  # the reference (config default: the base model)
        ref_c, ref_r = (sequence_logprobs(model, prompt, [c]).mean.item() for c in (chosen, rejected))
    m = later[-1].metrics  # TRL's names, at the pre-step policy
    assert m["rewards/chosen"] == pytest.approx(0.1 * (m["logps/chosen"] - ref_c), rel=1e-4, abs=1e-6)
    assert m["rewards/rejected"] == pytest.approx(0.1 * (m["logps/rejected"] - ref_r), rel=1e-4, abs=1e-6)
    assert m["rewards/margins"] == pytest.approx(m["rewards/chosen"] - m["rewards/rejected"], abs=1e-6)
    assert m["rewards/margins"] > first.metrics["rewards/margins"] and m["rewards/accuracies"] == 1.0


def test_bad_input_gives_clear_errors(setup, prompt_of):
    model, tok, router = setup
    prompt = prompt_of(tok, "hi")
    up = PolicyUpdater(model, router, FAST)
    with pytest.raises(ValueError, match="completion 1 is empty"):
        up.rlaif(prompt, [], [5, 6])
    with pytest.raises(ValueError, match="3 scores for 4 candidates"):
        up.grpo(prompt, [[5], [6], [7], [8]], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="prompt is empty"):
        sequence_logprobs(model, [], [[5]])
    with pytest.raises(ValueError, match="2 prompts for 3 completions"):
        sequence_logprobs(model, [prompt, prompt], [[5], [6], [7]])
    with pytest.raises(KeyError, match="reference adapter 'nope'"):
        PolicyUpdater(model, router, TrainConfig(reference_adapter="nope"))


def test_batched_logprobs_equal_single(setup, prompt_of):
    model, tok, router = setup
    router.active = "client"
    prompt = prompt_of(tok, "Walking through water.")
    comps = [[5, 6, 7, 8, 9], [10, 7], [11, 12, 13]]
    batched = sequence_logprobs(model, prompt, comps)
    for i, c in enumerate(comps):
        single = sequence_logprobs(model, prompt, [c])
        assert np.allclose(np.array(single.total), np.array(batched.total[i : i + 1]), atol=1e-4)
    assert np.allclose(np.array(batched.mean), np.array(batched.total) / np.array([5, 2, 3]), atol=1e-6)


@pytest.mark.parametrize("lr", [1e-6, 1e-3])
def test_the_first_adam_step_is_the_learning_rate(lr):
    """Bias-corrected Adam (§9.3.12 as PyTorch readers know it): step 1 moves each weight by ~lr, not 3x lr."""
    from mlx import nn

    from tbn_train.config import TrainConfig
    from tbn_train.update import make_optimizer

    layer = nn.Linear(8, 8)
    layer.weight = mx.zeros((8, 8))  # float32 resolves a 1e-6 step exactly around zero
    before = np.array(layer.weight)
    grads = {"weight": mx.array(np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)),
             "bias": mx.zeros((8,))}
    opt = make_optimizer(TrainConfig(learning_rate=lr))
    opt.update(layer, grads)
    mx.eval(layer.parameters())
    step = np.abs(np.array(layer.weight) - before)
    np.testing.assert_allclose(step, lr, rtol=0.01)
