"""Optimizer steps on the trainable adapter: RLAIF, GRPO and DPO, applied sequentially (§9.3.13).

Each step: compute the loss through the trainable adapter, take gradients with respect to the
trainable LoRA factors only (``set_trainable``), clip them to global norm 1.0, *then* scale them
(RLAIF by 0.4 × the treatment-level modifier, GRPO by 0.6) and apply one shared Adam (lr 1e-6).
Clipping first keeps the weights meaningful: scaling first would let the clip undo them.
Per turn the caller runs :meth:`PolicyUpdater.rlaif` first, then
generates the GRPO candidates with the updated policy and runs :meth:`PolicyUpdater.grpo`
(§9.3.10, §9.3.13).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import mlx.core as mx
import mlx.optimizers as optim
from mlx import nn
from mlx.utils import tree_map

from tbn_train.config import TrainConfig
from tbn_train.logprobs import sequence_logprobs
from tbn_train.lora import AdapterRouter
from tbn_train.losses import dpo_loss, grpo_loss, masked_cross_entropy, rlaif_loss, zscore_advantages


@dataclass(frozen=True)
class StepResult:
    """What one optimizer step did. ``skipped``: no update (e.g. a GRPO group of tied scores)."""

    loss: float
    grad_norm: float
    skipped: bool = False
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class UpdateCounters:
    """Running counts for the metrics log (and checkpoints)."""

    rlaif_steps: int = 0
    grpo_steps: int = 0
    grpo_skipped_ties: int = 0
    dpo_steps: int = 0
    sft_steps: int = 0


def adam(learning_rate: float) -> optim.Adam:
    """Adam as the paper's readers know it (PyTorch's): bias-corrected, so the first step is ~lr.

    MLX's `optim.Adam` skips the bias correction by default, which makes the first steps 3-6x the
    nominal learning rate; every optimizer of tbn_train and dapt is made here.
    """
    return optim.Adam(learning_rate=learning_rate, bias_correction=True)


def make_optimizer(config: TrainConfig) -> optim.Adam:
    """The one Adam shared by both per-turn steps (§9.3.12: Adam, lr 1e-6; default betas/eps)."""
    return adam(config.learning_rate)


@dataclass(frozen=True)
class Gradient:
    """One loss's gradients before the update: ``weight`` is what its step scales them by after the
    clip; ``aux`` are the loss function's other outputs (log-probs at the pre-step policy)."""

    loss: mx.array
    grads: dict
    weight: float
    aux: list[mx.array]


def grpo_metrics(part: Gradient) -> dict[str, float]:
    """TRL's k1 KL estimate of a GRPO group, from its gradient's log-probs (policy, reference)."""
    lp, ref_lp = part.aux
    return {"kl": (lp - ref_lp).mean().item()}


class PolicyUpdater:
    """Applies RLAIF / GRPO / DPO steps to ``router.trainable`` with one shared optimizer."""

    def __init__(self, model: nn.Module, router: AdapterRouter, config: TrainConfig,
                 optimizer: optim.Optimizer | None = None):
        if router.trainable is None:
            raise ValueError("no trainable adapter: call set_trainable(model, router, name) first")
        if config.reference_adapter is not None and config.reference_adapter not in router.specs:
            raise KeyError(f"reference adapter {config.reference_adapter!r} is not loaded; "
                           f"known: {sorted(router.specs)}")
        self.model, self.router, self.config = model, router, config
        self.optimizer = optimizer or make_optimizer(config)
        self.counters = UpdateCounters()

    def _logprobs(self, prompts, completions) -> mx.array:
        return sequence_logprobs(self.model, prompts, completions).reduce(self.config.logp_reduction)

    def gradient(self, loss_fn: Callable[[], tuple[mx.array, ...]], weight: float) -> Gradient:
        """Gradients of ``loss_fn``'s first output w.r.t. the trainable parameters (no update)."""
        with self.router.use(self.router.trainable):
            (loss, *aux), grads = nn.value_and_grad(self.model, loss_fn)()
        return Gradient(loss, grads, weight, aux)

    def apply(self, grads, weight: float) -> mx.array:
        """Clip ``grads`` to the global norm, scale by ``weight``, one Adam step; return the pre-clip norm."""
        grads, norm = optim.clip_grad_norm(grads, max_norm=self.config.max_grad_norm)
        grads = tree_map(lambda g: g * weight, grads)
        self.optimizer.update(self.model, grads)
        return norm

    def _apply(self, loss_fn: Callable[[], tuple[mx.array, ...]], weight: float) -> tuple[float, float, list[mx.array]]:
        """One step: grads of ``loss_fn``'s first output w.r.t. trainable params, clip, scale by
        ``weight``, Adam. The other outputs (log-probs at the pre-step policy) come back for logging."""
        part = self.gradient(loss_fn, weight)
        norm = self.apply(part.grads, part.weight)
        mx.eval(self.model.trainable_parameters(), self.optimizer.state, *part.aux)
        return part.loss.item(), norm.item(), part.aux

    def reference_logprobs(self, prompts, completions) -> mx.array:
        """log π_ref under the frozen reference adapter (None = base), computed with no gradient."""
        with self.router.use(self.config.reference_adapter):
            lp = mx.stop_gradient(self._logprobs(prompts, completions))
        mx.eval(lp)
        return lp

    def rlaif(self, prompt: Sequence[int], original: Sequence[int], corrected: Sequence[int],
              modifier: float = 1.0) -> StepResult:
        """Step 1 of a turn (§9.3.9): push π toward the corrected response, away from the original.

        ``prompt`` excludes the judges' feedback (distillation); ``modifier`` is the turn's
        treatment-level reward signal, multiplied into the RLAIF weight (§9.3.13).
        """
        loss, norm, _ = self._apply(self._rlaif_loss(prompt, original, corrected), self.config.rlaif_weight * modifier)
        self.counters.rlaif_steps += 1
        return StepResult(loss, norm, metrics={"modifier": float(modifier)})

    def _rlaif_loss(self, prompt, original, corrected) -> Callable[[], tuple[mx.array]]:
        def loss_fn() -> tuple[mx.array]:
            lp = self._logprobs([prompt, prompt], [corrected, original])
            return (rlaif_loss(lp[:1], lp[1:], beta=self.config.rlaif_beta),)

        return loss_fn

    def rlaif_gradient(self, prompt: Sequence[int], original: Sequence[int], corrected: Sequence[int],
                       modifier: float = 1.0) -> Gradient:
        """:meth:`rlaif`'s gradients and weight without the update (one client's share of a pooled step)."""
        return self.gradient(self._rlaif_loss(prompt, original, corrected), self.config.rlaif_weight * modifier)

    def grpo(self, prompt: Sequence[int], candidates: Sequence[Sequence[int]], scores: Sequence[float]) -> StepResult:
        """Step 2 of a turn (§9.3.10): group-relative policy gradient with a k1 KL to the reference.

        A group whose scores are all equal carries no signal: no update, counted in
        ``counters.grpo_skipped_ties``.
        """
        part = self.grpo_gradient(prompt, candidates, scores)
        if part is None:
            self.counters.grpo_skipped_ties += 1
            return StepResult(loss=0.0, grad_norm=0.0, skipped=True)
        norm = self.apply(part.grads, part.weight)
        mx.eval(self.model.trainable_parameters(), self.optimizer.state, *part.aux)
        self.counters.grpo_steps += 1
        return StepResult(part.loss.item(), norm.item(), metrics=grpo_metrics(part))

    def grpo_gradient(self, prompt: Sequence[int], candidates: Sequence[Sequence[int]],
                      scores: Sequence[float]) -> Gradient | None:
        """:meth:`grpo`'s gradients and weight without the update; None for a group of tied scores."""
        if len(candidates) != len(scores):
            raise ValueError(f"got {len(scores)} scores for {len(candidates)} candidates")
        advantages = zscore_advantages(mx.array(scores, dtype=mx.float32), eps=self.config.grpo_eps)
        if advantages is None:
            return None
        ref_lp = self.reference_logprobs(prompt, candidates)  # before the step (§9.3.10)

        def loss_fn() -> tuple[mx.array, mx.array, mx.array]:
            lp = self._logprobs(prompt, candidates)
            return grpo_loss(lp, ref_lp, advantages, kl_coef=self.config.kl_coef), lp, ref_lp

        return self.gradient(loss_fn, self.config.grpo_weight)

    def dpo(self, prompts: Sequence[Sequence[int]], chosen: Sequence[Sequence[int]],
            rejected: Sequence[Sequence[int]]) -> StepResult:
        """One DPO step over a batch of preference pairs, reference = the frozen reference adapter."""
        if not len(prompts) == len(chosen) == len(rejected):
            raise ValueError(f"DPO batch sizes differ: {len(prompts)} prompts, {len(chosen)} chosen, "
                             f"{len(rejected)} rejected")
        part = self.dpo_gradient(prompts, chosen, rejected)
        n = len(prompts)
        norm = self.apply(part.grads, part.weight)
        mx.eval(self.model.trainable_parameters(), self.optimizer.state, *part.aux)
        self.counters.dpo_steps += 1
        lp, ref = part.aux
        return StepResult(part.loss.item(), norm.item(), metrics=dpo_metrics(lp[:n], lp[n:], ref[:n], ref[n:], self.config.dpo_beta))

    def dpo_gradient(self, prompts: Sequence[Sequence[int]], chosen: Sequence[Sequence[int]],
                     rejected: Sequence[Sequence[int]]) -> Gradient:
        """:meth:`dpo`'s gradients (weight 1) without the update; ``aux`` = (log π, log π_ref), chosen then rejected."""
        both_prompts, both = list(prompts) * 2, list(chosen) + list(rejected)
        ref = self.reference_logprobs(both_prompts, both)
        n = len(prompts)

        def loss_fn() -> tuple[mx.array, mx.array, mx.array]:
            lp = self._logprobs(both_prompts, both)
            return dpo_loss(lp[:n], lp[n:], ref[:n], ref[n:], beta=self.config.dpo_beta), lp, ref

        return self.gradient(loss_fn, 1.0)

    def sft(self, inputs: mx.array, targets: mx.array, mask: mx.array) -> StepResult:
        """One SFT step (§9.2): cross-entropy on the tokens ``mask`` marks, the same clip and Adam."""
        loss, norm, _ = self._apply(self._sft_loss(inputs, targets, mask), 1.0)
        self.counters.sft_steps += 1
        return StepResult(loss, norm)

    def _sft_loss(self, inputs, targets, mask) -> Callable[[], tuple[mx.array]]:
        def loss_fn() -> tuple[mx.array]:
            return (masked_cross_entropy(self.model(inputs), targets, mask),)

        return loss_fn

    def sft_gradient(self, inputs: mx.array, targets: mx.array, mask: mx.array) -> Gradient:
        """:meth:`sft`'s gradients (weight 1) without the update."""
        return self.gradient(self._sft_loss(inputs, targets, mask), 1.0)


def dpo_metrics(lp_c: mx.array, lp_r: mx.array, ref_c: mx.array, ref_r: mx.array, beta: float) -> dict[str, float]:
    """TRL's DPO log names: implicit rewards β (log π − log π_ref) of chosen and rejected, their
    margin, how often chosen wins, and the policy's log-probs (all at the pre-step policy)."""
    chosen, rejected = beta * (lp_c - ref_c), beta * (lp_r - ref_r)
    return {"rewards/chosen": chosen.mean().item(), "rewards/rejected": rejected.mean().item(),
            "rewards/margins": (chosen - rejected).mean().item(),
            "rewards/accuracies": (chosen > rejected).astype(mx.float32).mean().item(),
            "logps/chosen": lp_c.mean().item(), "logps/rejected": lp_r.mean().item()}
