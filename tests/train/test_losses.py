"""Loss functions against hand computations (§9.3.9, §9.3.10) and their input checks."""

from __future__ import annotations

import tbn_train  # noqa: F401  (preload OpenBLAS before mlx)
import mlx.core as mx
import numpy as np
import pytest

from tbn_train.losses import dpo_loss, grpo_loss, rlaif_loss, zscore_advantages


def _nls(z):
    return np.log1p(np.exp(-z))


def test_rlaif_matches_formula():
    c, o = np.array([-1.2, -3.0]), np.array([-1.5, -2.0])
    got = rlaif_loss(mx.array(c), mx.array(o), beta=2.0).item()
    assert got == pytest.approx(_nls(2.0 * (c - o)).mean(), rel=1e-6)


def test_zscore_population_std_and_ties():
    s = np.array([6.0, 7.0, 7.5, 9.0])
    adv = np.array(zscore_advantages(mx.array(s)))
    assert np.allclose(adv, (s - s.mean()) / (s.std() + 1e-8), atol=1e-6)
    assert zscore_advantages(mx.array([5.0, 5.0, 5.0, 5.0])) is None
    assert zscore_advantages(mx.array([5.0, 5.0 + 1e-9, 5.0, 5.0])) is None  # float noise is a tie
    with pytest.raises(ValueError, match="at least 2 scores"):
        zscore_advantages(mx.array([1.0]))


def test_grpo_matches_formula():
    lp, ref, adv = np.array([-2.0, -1.0, -3.0, -0.5]), np.array([-2.1, -1.2, -2.9, -0.4]), np.array([1.0, -0.5, 0.2, -0.7])
    got = grpo_loss(mx.array(lp), mx.array(ref), mx.array(adv), kl_coef=0.04).item()
    assert got == pytest.approx(np.mean(-adv * lp + 0.04 * (lp - ref)), rel=1e-6)


def test_dpo_matches_formula():
    pc, pr, rc, rr = (np.array(v) for v in ([-1.0, -2.0], [-1.5, -1.0], [-1.1, -2.2], [-1.4, -1.3]))
    got = dpo_loss(*(mx.array(v) for v in (pc, pr, rc, rr)), beta=0.1).item()
    assert got == pytest.approx(_nls(0.1 * ((pc - rc) - (pr - rr))).mean(), rel=1e-6)


def test_shape_mismatch_and_empty_inputs_are_named():
    with pytest.raises(ValueError, match="shape mismatch"):
        rlaif_loss(mx.array([1.0, 2.0]), mx.array([1.0]))
    with pytest.raises(ValueError, match="shape mismatch"):
        grpo_loss(mx.zeros(4), mx.zeros(4), mx.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        rlaif_loss(mx.zeros(0), mx.zeros(0))
