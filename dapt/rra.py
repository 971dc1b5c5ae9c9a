"""Rolling Recap training of one sample (§8.2): windows, recaps, the compressor, one LoRA step.

Window n is the compressed KV of windows 1..n−1 (held in the cache, gradient-detached) ⊕ the recap
R_{n−1} (framed by markers, empty for window 1, masked from the loss) ⊕ the content C_n. Per window:

1. forward + backward through the LoRA adapter: masked cross-entropy on C_n's trainable tokens;
   the gradient is weighted by the quality of the recap this window read and accumulated;
2. the compressor rolls this window's cache into new slots and gets its reconstruction gradient;
3. the model (adapters active) writes R_n from the new slots; R_n's quality gates the compressor's
   Adam step now (at 0.1× the LoRA lr) and the LoRA gradient of window n+1 (§8.2.1 fn. 15).

Without a compressor (MLA models, whose latent cache it cannot pool, §30.8) the recap is the only
bridge: R_n is written from window n's own full cache, which is then dropped, and window n+1 is
R_n ⊕ C_{n+1}; the gate then weighs the LoRA gradient only.

After the last window the accumulated LoRA gradient is divided by the window count N (§8.2.2.2),
clipped, and applied in a single optimizer step.

Several samples can share a step (``--samples-per-step``, or one per rank with ``--distributed``): they
run side by side window index by window index, the compressor steps once per window index on their
pooled gradients, and the LoRA steps once on the mean of their sample gradients; pooled over the ranks
with ``all_sum``, every rank applies the same updates and holds the same weights bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_map

from tbn_train.checkpoint import seed_step
from tbn_train.distributed import World, pooled_gradient
from tbn_train.update import Gradient

from .compressor import KV, KVCompressor, cache_contents, reconstruction_loss, window_cache
from .recap import GATES, RECAP_CLOSE, RECAP_MAX_TOKENS, RECAP_OPEN, RECAP_TEMPERATURE, assess, generate_recap
from .windows import TokenizedSample

COMPRESSOR_LR_FACTOR = 0.1  # §8.2.2.1, §8.2.1 fn. 15: the compressor's Adam runs at 0.1× the main learning rate


@dataclass(frozen=True)
class WindowInput:
    """What one window feeds the model: cached slots (None for window 1), tokens, and the target mask."""

    slots: KV | None
    tokens: np.ndarray   # framed recap + content
    mask: np.ndarray     # over tokens[1:]: True where the target is a trainable content token


@dataclass(frozen=True)
class WindowLog:
    """One iteration's record (§8.2.2.2 judges progress by these, one per window)."""

    window: int
    content_tokens: int
    trainable_tokens: int
    loss: float
    recon_loss: float | None  # None without a compressor
    recon_parts: dict[str, float]
    recap_quality: str
    lora_weight: float
    compressor_weight: float
    recap: str


@dataclass
class SampleGradients:
    """The mean-normalised LoRA gradient of one sample, its window logs, and (optionally) the inputs."""

    grads: dict
    windows: list[WindowLog]
    inputs: list[WindowInput] = field(default_factory=list)


def masked_ce(logits: mx.array, targets: mx.array, mask: mx.array) -> mx.array:
    """Mean cross-entropy over the masked-in targets (0 when none are)."""
    ce = nn.losses.cross_entropy(logits, targets, reduction="none")
    return (ce * mask).sum() / mx.maximum(mask.sum(), 1)


class RollingRecap:
    """Trains the router's active LoRA adapter and a :class:`KVCompressor`, one sample per call."""

    def __init__(self, model: nn.Module, tokenizer, compressor: KVCompressor | None, lora_optimizer: optim.Optimizer,
                 compressor_optimizer: optim.Optimizer | None, eos_ids, *, recap_max_tokens: int = RECAP_MAX_TOKENS,
                 recap_temperature: float = RECAP_TEMPERATURE, gating: bool = True, max_grad_norm: float = 1.0,
                 world: World | None = None) -> None:
        self.model, self.tokenizer, self.compressor = model, tokenizer, compressor
        self.world = world or World()
        self.lora_optimizer, self.compressor_optimizer = lora_optimizer, compressor_optimizer
        self.eos_ids = set(eos_ids)
        self.recap_max_tokens, self.recap_temperature = recap_max_tokens, recap_temperature
        self.gating, self.max_grad_norm = gating, max_grad_norm
        self.open_ids = tokenizer.encode(RECAP_OPEN, add_special_tokens=False).ids
        self.close_ids = tokenizer.encode(RECAP_CLOSE, add_special_tokens=False).ids
        self._lora_grad = nn.value_and_grad(model, self.window_loss)
        self._compress_grad = None if compressor is None else nn.value_and_grad(compressor, self._reconstruct)

    def window_input(self, slots: KV | None, recap: list[int], content: np.ndarray, content_mask: np.ndarray) -> WindowInput:
        """Frame the recap, append the content, and mask every target that is not trainable content."""
        prefix = self.open_ids + recap + self.close_ids
        tokens = np.concatenate([np.asarray(prefix, dtype=np.int32), content])
        mask = np.concatenate([np.zeros(len(prefix), dtype=bool), content_mask])[1:]
        return WindowInput(slots, tokens, mask)

    def window_loss(self, window: WindowInput) -> tuple[mx.array, KV]:
        """Masked CE of one window, and the filled KV cache (for the compressor)."""
        caches = window_cache(window.slots, len(self.model.layers))
        tokens = mx.array(window.tokens)
        logits = self.model(tokens[None, :-1], cache=caches)[0]
        return masked_ce(logits, tokens[1:], mx.array(window.mask)), cache_contents(caches)

    def _reconstruct(self, kv: KV):
        compressed = self.compressor(kv)
        loss, parts = reconstruction_loss(compressed, kv)
        return loss, (compressed, parts)

    def window_gradients(self, window: WindowInput) -> tuple[mx.array, KV, dict]:
        """The window's loss, its filled cache, and the loss's gradient on the LoRA factors."""
        (loss, kv), grads = self._lora_grad(window)
        return loss, kv, grads

    def compress(self, kv: KV) -> tuple[mx.array, KV, dict[str, mx.array], dict]:
        """Reconstruction loss, the new (detached) slots, the loss's parts, and its compressor gradient."""
        (recon, (slots, parts)), grads = self._compress_grad(kv)
        return recon, [(mx.stop_gradient(k), mx.stop_gradient(v)) for k, v in slots], parts, grads

    def sample_gradients(self, sample: TokenizedSample, bounds: list[tuple[int, int]], keep_inputs: bool = False) -> SampleGradients:
        """Run every window of ``sample`` (stepping the compressor) and return the mean LoRA gradient."""
        return self.group_gradients([sample], [bounds], keep_inputs=keep_inputs)[0]

    def group_gradients(self, samples: list[TokenizedSample], bounds: list[list[tuple[int, int]]], *,
                        step_samples: int | None = None, windows: int | None = None, seeds: list[tuple[int, ...]] | None = None,
                        what: str = "a DAPT step", keep_inputs: bool = False) -> list[SampleGradients]:
        """Run several samples side by side, window index by window index; return each one's mean LoRA gradient.

        After window n of every sample that has one, the compressor takes one step on their pooled
        reconstruction gradients (:func:`~tbn_train.distributed.pooled_gradient`: the gate-weighted mean,
        scaled by the mean gate, over the samples whose recap did not gate it out), so with one sample it
        is that sample's own gated step. ``step_samples`` is the number of samples over every rank of
        ``self.world`` (default: these), ``windows`` the most windows any of them has: every rank then
        takes the same compressor steps, a rank out of windows (or without a sample) pooling nothing.
        ``seeds[i]`` reseeds the recap sampler before each window n of sample i (``(*seeds[i], n)``), so a
        sample's recaps do not depend on which samples run beside it.
        """
        for sample, b in zip(samples, bounds, strict=True):
            if not b:
                raise ValueError(f"sample {sample.sample_id!r} has no windows")
        runs = [_SampleRun(sample, b) for sample, b in zip(samples, bounds)]
        step_samples = len(runs) if step_samples is None else step_samples
        windows = max(map(len, bounds)) if windows is None else windows
        for n in range(windows):
            parts = [self._window(run, n, None if seeds is None else seeds[i], keep_inputs)
                     for i, run in enumerate(runs) if n < len(run.bounds)]
            if self.compressor is not None:
                pooled, _ = pooled_gradient(parts, self.compressor.parameters(), self.world, step_samples,
                                            f"the compressor step of window {n + 1} of {what}")
                if pooled is not None:
                    self.compressor_optimizer.update(self.compressor, tree_map(lambda g: pooled.weight * g, pooled.grads))
                    mx.eval(self.compressor.parameters(), self.compressor_optimizer.state)
        results = []
        for run in runs:
            mean = tree_map(lambda a: a / len(run.bounds), run.total)
            mx.eval(mean)
            results.append(SampleGradients(mean, run.logs, run.inputs))
        return results

    def _window(self, run: _SampleRun, n: int, seed: tuple[int, ...] | None, keep_inputs: bool) -> Gradient | None:
        """Window n of one sample: its LoRA gradient (accumulated), the compressor roll, the recap and its gate.

        Returns the compressor's gradient weighted by the gate, or None when there is none (no
        compressor, or a garbage recap gated it out)."""
        lo, hi = run.bounds[n]
        sample = run.sample
        window = self.window_input(run.slots, run.recap, sample.ids[lo:hi], sample.mask[lo:hi])
        loss, kv, grads = self.window_gradients(window)
        w = run.lora_weight
        run.total = tree_map(lambda g: w * g, grads) if run.total is None else \
            tree_map(lambda a, g: a + w * g, run.total, grads)
        if self.compressor is None:  # recaps only: R_n continues window n's own cache, which is then dropped
            recon, parts, bridge, comp_grads = None, {}, kv, None
            mx.eval(run.total, loss)
        else:
            recon, run.slots, parts, comp_grads = self.compress(kv)
            bridge = run.slots
            mx.eval(run.total, run.slots, recon, parts, loss)
        if seed is not None:
            seed_step(*seed, n)
        recap = generate_recap(self.model, bridge, self.open_ids, self.eos_ids,
                               max_tokens=self.recap_max_tokens, temperature=self.recap_temperature)
        recap_text = self.tokenizer.decode(recap)
        quality = assess(recap_text, self.tokenizer.decode(sample.ids[lo:hi].tolist()))
        next_lora, comp_weight = GATES[quality] if self.gating else (1.0, 1.0)
        if self.compressor is None:
            comp_weight = 0.0
        if keep_inputs:
            run.inputs.append(window)
        run.logs.append(WindowLog(n, hi - lo, int(window.mask.sum()), loss.item(), None if recon is None else recon.item(),
                                  {k: v.item() for k, v in parts.items()}, quality.value, w, comp_weight, recap_text))
        run.recap, run.lora_weight = recap, next_lora
        return Gradient(recon, comp_grads, comp_weight, []) if comp_weight > 0 else None

    def step(self, sample: TokenizedSample, bounds: list[tuple[int, int]]) -> tuple[list[WindowLog], float, bool]:
        """One sample → one LoRA optimizer step: the window logs, the pre-clip gradient norm, and whether it stepped."""
        logs, norm, stepped = self.group_step([sample], [bounds])
        return logs[0], norm, stepped

    def group_step(self, samples: list[TokenizedSample], bounds: list[list[tuple[int, int]]], *,
                   step_samples: int | None = None, windows: int | None = None, seeds: list[tuple[int, ...]] | None = None,
                   what: str = "a DAPT step") -> tuple[list[list[WindowLog]], float, bool]:
        """Several samples (over every rank) → one LoRA optimizer step: each sample's window logs, the pre-clip
        gradient norm, and whether it stepped.

        The step's gradient is the mean of the samples' mean gradients (:func:`group_gradients` takes
        the other arguments), each sample counting once whatever its window count, then the clip and Adam.
        A sample none of whose windows carries a gradient (each was gated out by a garbage recap, §8.2.1
        fn. 15, or had no trainable token) stays out of the mean; when that is every sample the step is
        skipped: Adam's momentum would still move the weights on a zero gradient.
        """
        results = self.group_gradients(samples, bounds, step_samples=step_samples, windows=windows, seeds=seeds, what=what)
        parts = [Gradient(mx.array(0.0), r.grads, 1.0, [])
                 if any(w.lora_weight > 0 and w.trainable_tokens > 0 for w in r.windows) else None for r in results]
        pooled, _ = pooled_gradient(parts, self.model.trainable_parameters(), self.world,
                                    len(results) if step_samples is None else step_samples, f"the LoRA step of {what}")
        logs = [r.windows for r in results]
        if pooled is None:
            return logs, 0.0, False
        clipped, norm = optim.clip_grad_norm(pooled.grads, self.max_grad_norm)
        self.lora_optimizer.update(self.model, clipped)
        mx.eval(self.model.parameters(), self.lora_optimizer.state)
        return logs, norm.item(), True


@dataclass
class _SampleRun:
    """One sample's state between its windows: the slots and recap the next window reads, its gate, the gradient so far."""

    sample: TokenizedSample
    bounds: list[tuple[int, int]]
    slots: KV | None = None
    recap: list[int] = field(default_factory=list)
    lora_weight: float = 1.0
    total: dict | None = None
    logs: list[WindowLog] = field(default_factory=list)
    inputs: list[WindowInput] = field(default_factory=list)
