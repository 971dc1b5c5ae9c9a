"""The trainer's losses as small pure functions of log-probs (no model inside).

* RLAIF margin (§9.3.9): −log σ(β (log π(y_corr|x) − log π(y_orig|x))), reference-free.
* GRPO (§9.3.10): (1/K) Σ_k [−A_k log π(y_k|x) + λ_KL (log π(y_k|x) − log π_ref(y_k|x))] with
  z-scored advantages A_k = (s_k − s̄)/(σ_s + ε).
* DPO: −log σ(β ((π_c − ref_c) − (π_r − ref_r))).
* SFT (§9.2): token-mean cross-entropy on the assistant's tokens only (the one loss here on logits).
"""

from __future__ import annotations

import mlx.core as mx

# The paper gives no β (§9.3.9); 2.0 with length-normalised log-probs is the SimPO-shaped
# default of  (use 0.1 with summed log-probs).
RLAIF_BETA = 2.0
GRPO_EPS = 1e-8  # §9.3.10
# The paper names λ_KL but gives no value (§9.3.10); 0.04 is DeepSeekMath's
GRPO_KL_COEF = 0.04
DPO_BETA = 0.1  # the DPO paper's default
# Judge scores live on a 0–10 scale (§9.3.7.1): spreads below this are float noise, and a group
# that "differs" only by noise would be blown up to unit-variance advantages by the z-score.
SCORE_TIE_TOLERANCE = 1e-6


def _softplus_neg(z: mx.array) -> mx.array:
    """−log σ(z), computed stably as log(1 + e^(−z))."""
    return mx.logaddexp(mx.zeros_like(z), -z)


def _same_shape(**arrays: mx.array) -> None:
    shapes = {name: tuple(a.shape) for name, a in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"shape mismatch: {shapes}")
    if 0 in next(iter(shapes.values())):
        raise ValueError(f"empty inputs: {shapes}")


def rlaif_loss(lp_corrected: mx.array, lp_original: mx.array, beta: float = RLAIF_BETA) -> mx.array:
    """Mean over pairs of −log σ(β (lp_corrected − lp_original)) (§9.3.9)."""
    _same_shape(lp_corrected=lp_corrected, lp_original=lp_original)
    return _softplus_neg(beta * (lp_corrected - lp_original)).mean()


def zscore_advantages(scores: mx.array, eps: float = GRPO_EPS,
                      tie_tolerance: float = SCORE_TIE_TOLERANCE) -> mx.array | None:
    """A_k = (s_k − mean)/(std + ε) with the population std (§9.3.10).

    Returns None when all scores are equal within ``tie_tolerance``: such a group carries no
    signal, and the caller skips its update (and counts it).
    """
    scores = mx.array(scores, dtype=mx.float32)
    if scores.ndim != 1 or scores.size < 2:
        raise ValueError(f"GRPO needs a 1-D group of at least 2 scores, got shape {tuple(scores.shape)}")
    if (scores.max() - scores.min()).item() <= tie_tolerance:
        return None
    return (scores - scores.mean()) / (mx.std(scores) + eps)


def grpo_loss(lp: mx.array, ref_lp: mx.array, advantages: mx.array, kl_coef: float = GRPO_KL_COEF) -> mx.array:
    """(1/K) Σ_k [−A_k lp_k + λ_KL (lp_k − ref_lp_k)] — the literal k1 KL estimate (§9.3.10)."""
    _same_shape(lp=lp, ref_lp=ref_lp, advantages=advantages)
    ref_lp, advantages = mx.stop_gradient(ref_lp), mx.stop_gradient(advantages)
    return (-advantages * lp + kl_coef * (lp - ref_lp)).mean()


def dpo_loss(
    lp_chosen: mx.array, lp_rejected: mx.array, ref_chosen: mx.array, ref_rejected: mx.array, beta: float = DPO_BETA
) -> mx.array:
    """Mean over pairs of −log σ(β ((lp_c − ref_c) − (lp_r − ref_r)))."""
    _same_shape(lp_chosen=lp_chosen, lp_rejected=lp_rejected, ref_chosen=ref_chosen, ref_rejected=ref_rejected)
    margin = (lp_chosen - mx.stop_gradient(ref_chosen)) - (lp_rejected - mx.stop_gradient(ref_rejected))
    return _softplus_neg(beta * margin).mean()


def masked_cross_entropy(logits: mx.array, targets: mx.array, mask: mx.array) -> mx.array:
    """SFT: mean next-token cross-entropy over the positions where ``mask`` is 1 (the assistant's tokens)."""
    _same_shape(targets=targets, mask=mask)
    logp = logits.astype(mx.float32)
    token = mx.logsumexp(logp, axis=-1) - mx.take_along_axis(logp, targets[..., None], axis=-1).squeeze(-1)
    return (token * mask).sum() / mx.maximum(mask.sum(), 1.0)
